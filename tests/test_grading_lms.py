"""Grades exported for Canvas and Moodle: the import formats, the matching rule, the leftovers.

The expected columns are written out here from the LMS documentation, not taken from
coursekit: Canvas's gradebook import (Grades > Import) reads the identity columns
``Student, ID, SIS User ID, SIS Login ID, Section`` followed by one column per
assignment, and skips a second row whose first cell is ``Points Possible``; Moodle's
CSV grade import maps one identifier column (``Email address`` or ``ID number``) to
its users and reads a grade column. The gradebook's header comes from the grader's
own writer for Homework 1, so the export reads what ``coursekit grade`` writes.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.grading import build_plan, load_assignment
from coursekit.grading.lms import (
    ExportError,
    export,
    gradebook_maximum,
    read_gradebook,
    read_roster,
)
from coursekit.grading.report import gradebook as write_gradebook

ROOT = Path(__file__).resolve().parents[1]
PLAN = build_plan(load_assignment(ROOT / "solutions" / "hw1_primer_optimizers_grading.py"))
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]

# Canvas's own gradebook export, used as the roster (its "Points Possible" row included).
CANVAS_ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,Homework 0 (101)
Points Possible,,,,,10
"Doe, Jane",9001,s1001,jdoe,Sec A,10
"Lee, Ann",9002,s1002,alee,Sec A,9
"Roe, Rick",9003,s1003,rroe,Sec B,8
"Poe, Ed",9004,s1004,epoe,Sec B,7
"""


def gradebook(totals: dict[str, float]) -> str:
    """A gradebook.csv as the grader writes it (its header and points-possible row), then
    one row per submission."""
    header, possible = write_gradebook([], PLAN).splitlines()
    columns = header.split(",")
    rows = []
    for name, total in totals.items():
        row = dict.fromkeys(columns, "0")
        row.update(submission=name, total=f"{total:g}", percent="", status="ok", reason="",
                   graded_by_hand="0/0", review="")
        rows.append(",".join(row[c] for c in columns))
    return "\n".join([header, possible, *rows]) + "\n"


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_canvas_import_has_its_identity_columns_and_one_grade_per_student():
    book = gradebook({"jdoe": 30, "S1002": 25.5, "rroe": 12, "stranger": 40})
    result = export(book, CANVAS_ROSTER, "canvas", "Homework 1", max_points=40)
    table = rows(result.text)
    assert table[0] == [*CANVAS_HEADER, "Homework 1"]
    assert table[1] == ["Points Possible", "", "", "", "", "40"]
    grades = {row[3]: row[5] for row in table[2:]}            # by SIS Login ID
    assert grades == {"jdoe": "30", "alee": "25.5", "rroe": "12", "epoe": ""}
    assert table[2][:5] == ["Doe, Jane", "9001", "s1001", "jdoe", "Sec A"]  # copied as read
    assert result.unmatched_submissions == ["stranger"]
    assert result.students_without_submission == ["Poe, Ed"]
    assert not result.complete
    assert "stranger" in result.report() and "Poe, Ed" in result.report()


def test_an_email_or_its_name_matches_and_a_name_shared_by_two_students_matches_neither():
    roster = ("Full name,Email address,ID number\nJo Lee,jlee@a.edu,7\nJon Lee,jlee@b.edu,8\n"
              "Max Mu,mmu@a.edu,9\n")
    book = gradebook({"jlee": 10, "MMU@a.edu": 20})
    result = export(book, roster, "moodle", "Homework 1")
    assert result.ambiguous_submissions == {"jlee": ["Jo Lee", "Jon Lee"]}
    assert result.matched == {"MMU@a.edu": "Max Mu"}
    assert rows(result.text) == [["Email address", "Homework 1"], ["jlee@a.edu", ""],
                                 ["jlee@b.edu", ""], ["mmu@a.edu", "20"]]
    assert sorted(result.students_without_submission) == ["Jo Lee", "Jon Lee"]


def test_moodle_import_by_id_number_and_in_percent():
    roster = "Full name,Email address,ID number\nAl Bo,abo@a.edu,123\nCy Do,cdo@a.edu,456\n"
    result = export(gradebook({"123": 30, "cdo": 10}), roster, "moodle", "HW1",
                    percent=True, max_points=40, identifier="id")
    assert rows(result.text) == [["ID number", "HW1"], ["123", "75"], ["456", "25"]]
    assert result.complete


@pytest.mark.parametrize(("book", "roster", "options", "message"), [
    ("submission,score\na,1\n", CANVAS_ROSTER, {}, "lacks the column"),
    (None, CANVAS_ROSTER, {"lms": "blackboard"}, "lms must be one of"),
    (None, "Student,Section\nA,1\n", {}, "no identifier column"),
    ("submission,total\njdoe,1\n", CANVAS_ROSTER, {"percent": True}, "needs max_points"),
    (None, "Full name,Email address\nNo Mail,\n", {}, "roster line 2"),
    ("submission,total\njdoe,lots\n", CANVAS_ROSTER, {}, "total must be a number"),
])
def test_unusable_input_is_refused_with_a_reason(book, roster, options, message):
    options = {"lms": "canvas", **options}
    lms = options.pop("lms")
    with pytest.raises(ExportError, match=message):
        export(book or gradebook({"jdoe": 1}), roster, lms, "HW1", **options)


def test_readers_accept_the_grader_gradebook_and_skip_points_possible():
    assert read_gradebook(gradebook({"a": 1.5, "b": 0})) == {"a": 1.5, "b": 0.0}
    assert gradebook_maximum(gradebook({})) == pytest.approx(PLAN.total_points())
    # without max_points, the gradebook's points-possible row gives the maximum
    book = gradebook({"jdoe": PLAN.total_points() / 4})
    table = rows(export(book, CANVAS_ROSTER, "canvas", "HW1", percent=True).text)
    assert table[1][-1] == "100" and {r[3]: r[5] for r in table[2:]}["jdoe"] == "25"
    assert [s.name for s in read_roster(CANVAS_ROSTER)] == ["Doe, Jane", "Lee, Ann",
                                                           "Roe, Rick", "Poe, Ed"]


def test_export_command_reads_summary_json_and_exits_1_on_leftovers(tmp_path):
    """The assignment's name comes from summary.json, the maximum from the gradebook's
    points-possible row (tests and written answers: summary.json's max_score is the
    autograder's alone)."""
    (tmp_path / "gradebook.csv").write_text(gradebook({"jdoe": 30, "alee": 20, "rroe": 5,
                                                       "epoe": 40}))
    (tmp_path / "summary.json").write_text(json.dumps({"assignment": "hw1_primer_optimizers",
                                                       "max_score": 40}))
    (tmp_path / "roster.csv").write_text(CANVAS_ROSTER)
    command = [sys.executable, "-m", "coursekit.cli", "export", "--lms", "canvas",
               str(tmp_path / "gradebook.csv"), str(tmp_path / "roster.csv")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    table = rows((tmp_path / "canvas_import.csv").read_text())
    maximum = PLAN.total_points()
    assert table[0][-1] == "hw1_primer_optimizers" and table[1][-1] == f"{maximum:g}"

    (tmp_path / "roster.csv").write_text(CANVAS_ROSTER + '"New, Stu",9005,s1005,snew,Sec B,\n')
    done = subprocess.run([*command, "--percent"], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "student without a submission (grade left empty): New, Stu" in done.stdout
    table = rows((tmp_path / "canvas_import.csv").read_text())
    assert float({row[3]: row[5] for row in table[2:]}["jdoe"]) == pytest.approx(
        100 * 30 / maximum, rel=1e-5)


def test_an_excused_student_is_ex_in_canvas_and_listed_for_moodle():
    book = gradebook({"jdoe": 12, "alee": 0})
    columns = book.splitlines()[0].split(",")
    lines = book.splitlines()
    cells = lines[3].split(",")
    cells[columns.index("total")] = "EX"  # as the grader writes an excused student
    book = "\n".join([*lines[:3], ",".join(cells)]) + "\n"
    assert read_gradebook(book) == {"jdoe": 12.0, "alee": None}
    canvas = {row[3]: row[5] for row in rows(export(book, CANVAS_ROSTER, "canvas", "HW1").text)}
    assert canvas["alee"] == "EX" and canvas["jdoe"] == "12"
    roster = "Full name,Email address\nAnn Lee,alee@example.edu\nJane Doe,jdoe@example.edu\n"
    moodle = export(book, roster, "moodle", "HW1")
    assert rows(moodle.text)[1:] == [["alee@example.edu", ""], ["jdoe@example.edu", "12"]]
    assert moodle.excused == ["Ann Lee"] and "excused: Ann Lee" in moodle.report()
