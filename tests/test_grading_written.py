"""Written answers graded by people: rubrics, their release, the store the grader fills, and
what regrading keeps.

The example assignment (tests/grading_example) gets a written question here, in a copy:
its fourth question ("Why does Adam divide m_t by 1 - beta1^t?") becomes ``bias/why``,
worth 3 points with a three-item rubric. Submissions are the released notebook with the
solution's code put back and an answer written into the answer cell, as a student would.
Expected values are worked out from the definitions in the test (the rubric's points,
the late policy's days and percent), never read from the grader's own files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import nbformat
import pytest

from coursekit.grading import (
    Assignment,
    GradingSpecError,
    Item,
    MarkerError,
    Question,
    Written,
    build_plan,
    grade,
    load_assignment,
    release,
    written_of,
)
from coursekit.grading.answers import digest, read
from coursekit.grading.feedback_html import render
from coursekit.grading.store import Store
from tests.grading_helpers import SOLUTIONS

KEY = "bias/why"
RUBRIC = {"zero_start": 2.0, "first_step": 1.0, "unsupported": -1.0}
WRITTEN = '''
    Question("bias", "Bias correction, in words", written=[
        Written("why", "Why Adam divides by 1 - beta1^t", points=3, rubric=[
            Item("zero_start", 2, "the moments start at zero, so E[m_t] = (1 - beta1^t) E[g]"),
            Item("first_step", 1, "the uncorrected first step is (1-b1)/sqrt(1-b2) ~ 3x"),
            Item("unsupported", -1, "a claim the notebook does not show"),
        ]),
    ]),
])
'''
DEADLINE = "2026-10-01T23:59:00+00:00"
LATE = 'deadline="{deadline}", late=Late(per_day=10, grace="15min", cap=30))'


def _course(root: Path, *, late: bool = False) -> Path:
    """A copy of the example's solutions with the written question; released to homework/."""
    solutions = root / "solutions"
    shutil.copytree(SOLUTIONS, solutions)
    grading = solutions / "example_grading.py"
    text = grading.read_text(encoding="utf-8")
    assert text.rstrip().endswith("])")
    text = text.rstrip()[:-2].rstrip() + "\n" + WRITTEN
    if late:
        text = text.rstrip()[:-1] + ", " + LATE.format(deadline=DEADLINE) + "\n"
    text = text.replace("from coursekit.grading import ",
                        "from coursekit.grading import Item, Late, Written, ", 1)
    grading.write_text(text, encoding="utf-8")
    notebook = solutions / "example.ipynb"
    source = notebook.read_text(encoding="utf-8")
    assert source.count("<!-- BEGIN ANSWER -->") == 1
    notebook.write_text(source.replace("<!-- BEGIN ANSWER -->",
                                       f"<!-- BEGIN ANSWER {KEY} -->"), encoding="utf-8")
    release(solutions, root / "homework")
    return grading


def _submission(root: Path, answer: str | None) -> nbformat.NotebookNode:
    """The released notebook with the solution's code back in and ``answer`` written."""
    released = nbformat.read(root / "homework" / "example.ipynb", as_version=4)
    solution = nbformat.read(root / "solutions" / "example.ipynb", as_version=4)
    code = {cell.id: cell.source for cell in solution.cells if cell.cell_type == "code"}
    for cell in released.cells:
        if cell.cell_type == "code":
            cell.source = code[cell.id]
        elif cell.get("metadata", {}).get("coursekit", {}).get("answer") == KEY:
            if answer is None:
                cell.metadata = {}
                cell.source = "I forgot this one."
            else:
                cell.source = cell.source.replace("YOUR ANSWER HERE", answer)
    return released


def _write(root: Path, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    folder = root / "submissions"
    folder.mkdir(exist_ok=True)
    for name, notebook in notebooks.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    return folder


def _grade(grading: Path, root: Path, **options) -> dict:
    results = grade(grading, root / "submissions", root / "out", workers=2, progress=False,
                    timeout=120, cell_timeout=60, **options)
    return {r.name: r for r in results}


def _gradebook(root: Path) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((root / "out" / "gradebook.csv").read_text())))
    return {row["submission"]: row for row in rows}


def _dump(path: Path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


# The grading file: rubrics -------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: Written("why", "t", 3, []), "rubric must be a non-empty list"),
    (lambda: Written("why", "t", 3, [Item("a", 2, "x")]), "add up to 2, less than its 3"),
    (lambda: Written("why", "t", 2, [Item("a", 2, "x"), Item("a", 1, "y")]),
     "duplicate rubric item ids"),
    (lambda: Written("why", "t", 0, [Item("a", 1, "x")]), "points must be a finite number > 0"),
    (lambda: Item("Bad Id", 1, "x"), "lower-case identifier"),
    (lambda: Item("a", 0, "x"), "other than 0"),
    (lambda: Item("a", 1, "  "), "needs a description"),
    (lambda: Question("q", "t"), "has no tests and no written answers"),
])
def test_a_bad_rubric_is_refused_naming_the_problem(make, message):
    with pytest.raises(GradingSpecError, match=message):
        make()


def test_the_plan_carries_rubrics_only_with_the_hidden_tests(tmp_path):
    assignment = load_assignment(_course(tmp_path))
    full = build_plan(assignment)
    public = build_plan(assignment, include_hidden=False)
    (written,) = full.written
    assert written.key == KEY and written.points == 3
    assert written.item_points() == RUBRIC
    assert public.written[0].rubric == () and public.written[0].points == 3
    assert full.total_points("bias") == 3 and full.max_points("bias") == 0
    assert full.total_points() == full.max_points() + 3


# The release: points shown, rubric kept back -------------------------------------------------

def test_the_release_shows_the_points_and_never_the_rubric(tmp_path):
    _course(tmp_path)
    text = (tmp_path / "homework" / "example.ipynb").read_text(encoding="utf-8")
    released = nbformat.reads(text, as_version=4)
    (cell,) = [c for c in released.cells if c.get("metadata", {}).get("coursekit")]
    assert cell.metadata["coursekit"] == {"answer": KEY}
    assert "*3 points, graded by hand.*" in cell.source
    assert "YOUR ANSWER HERE" in cell.source and "BEGIN ANSWER" not in cell.source
    for word in ("zero_start", "the moments start at zero", "a claim the notebook"):
        assert word not in text  # nowhere: not in the cells, not in the embedded checks
    checks = json.loads(released.metadata["coursekit"]["public_checks"])
    assert checks["written"] == [{"question": "bias", "name": "why", "points": 3.0,
                                  "rubric": [], "title": "Why Adam divides by 1 - beta1^t"}]


def test_answer_regions_and_written_answers_must_match_one_to_one(tmp_path):
    grading = _course(tmp_path)
    notebook = tmp_path / "solutions" / "example.ipynb"
    named = notebook.read_text(encoding="utf-8")
    notebook.write_text(named.replace(KEY, "bias/how"), encoding="utf-8")
    with pytest.raises(MarkerError, match=r"'bias/how' has no Written answer in "
                                          r"example_grading\.py"):
        release(tmp_path / "solutions", tmp_path / "out1")
    notebook.write_text(named.replace(f" {KEY} -->", " -->"), encoding="utf-8")
    with pytest.raises(MarkerError, match=r"declares the written answer bias/why, but "
                                          r"example\.ipynb has no region"):
        release(tmp_path / "solutions", tmp_path / "out2")
    two = named.replace("<!-- END ANSWER -->",
                        "<!-- END ANSWER -->\\n<!-- BEGIN ANSWER bias/more -->\\nx\\n"
                        "<!-- END ANSWER -->")
    notebook.write_text(two, encoding="utf-8")
    with pytest.raises(MarkerError, match="give each graded answer a markdown cell"):
        release(tmp_path / "solutions", tmp_path / "out3")
    assert not (tmp_path / "out1").exists() and grading.is_file()


# Reading answers from a submission ----------------------------------------------------------

def test_answers_are_read_from_their_cell_with_the_outputs_of_their_part(tmp_path):
    grading = _course(tmp_path)
    written = build_plan(load_assignment(grading)).written
    notebook = _submission(tmp_path, "Because **both** moments start at $0$.")
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    notebook.cells.insert(len(notebook.cells) - 1, nbformat.v4.new_code_cell(
        "plot()", outputs=[
            nbformat.v4.new_output("display_data", {"image/png": _b64(png),
                                                    "text/plain": "<Figure>"}),
            nbformat.v4.new_output("display_data", {"image/png": _b64(b"GIF89a fake")}),
            nbformat.v4.new_output("stream", text="loss 0.12\n")]))
    answer = read(nbformat.writes(notebook).encode(), written)[KEY]
    assert answer.present and "Because **both** moments" in answer.text
    assert answer.sha256 == digest(answer.text) == digest(answer.text + "  \n")
    ((_, outputs),) = answer.outputs
    assert [(o.kind, o.data) for o in outputs] == [("png", png), ("text", "loss 0.12\n")]
    for data in (b"not json", b"[1, 2]", json.dumps({"cells": [5, {"source": 3}]}).encode()):
        assert not read(data, written)[KEY].present
    missing = read(nbformat.writes(_submission(tmp_path, None)).encode(), written)[KEY]
    assert not missing.present and "no cell for this answer" in missing.note


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


# Grade, grade by hand, regrade: people's grades survive ---------------------------------------

@pytest.mark.slow
def test_regrading_keeps_every_manual_grade_and_flags_changed_answers(tmp_path):
    grading = _course(tmp_path)
    good = "Both moments start at zero, so early averages shrink towards it."
    _write(tmp_path, {"ann": _submission(tmp_path, good),
                      "bob": _submission(tmp_path, "It makes Adam faster."),
                      "cid": _submission(tmp_path, None)})
    first = _grade(grading, tmp_path)
    store_path = tmp_path / "out" / "grades.sqlite"
    with Store.open(tmp_path / "out") as store:
        rows = {r.submission: r for r in store.answers(KEY)}
        assert rows["ann"].present and not rows["cid"].present
        assert rows["ann"].sha256 == digest(
            _submission(tmp_path, good).cells[-1].source)
        store.save_grade("ann", KEY, items=["zero_start", "first_step"], extra=0,
                         comment="Clear.", grader="ta1", expected_version=None,
                         answer_sha256=rows["ann"].sha256)
        store.save_grade("bob", KEY, items=["unsupported", "zero_start"], extra=0.5,
                         comment="Why faster?", grader="ta2", expected_version=None,
                         answer_sha256=rows["bob"].sha256)
    grades, log = _dump(store_path, "grades"), _dump(store_path, "log")

    _grade(grading, tmp_path)  # every record reused: the people's grades folded in
    book = _gradebook(tmp_path)
    auto = {name: r.score() for name, r in first.items()}
    assert float(book["ann"]["total"]) == pytest.approx(auto["ann"] + 3)
    assert float(book["bob"]["total"]) == pytest.approx(auto["bob"] + 2 - 1 + 0.5)
    assert float(book["cid"]["total"]) == pytest.approx(auto["cid"])
    assert float(book["ann"]["bias"]) == 3 and book["cid"]["graded_by_hand"] == "0/1"
    maximum = build_plan(load_assignment(grading)).total_points()
    assert book["(points possible)"]["total"] == f"{maximum:g}"

    page = json.loads((tmp_path / "out" / "feedback" / "bob.json").read_text())
    (question,) = [q for q in page["questions"] if q["id"] == "bias"]
    (entry,) = question["written"]
    assert entry["points"] == 1.5 and entry["comment"] == "Why faster?"
    assert sorted(i["points"] for i in entry["items"]) == [-1, 2]
    html = (tmp_path / "out" / "feedback" / "bob.html").read_text()
    assert "Why faster?" in html and "the uncorrected first step" not in html

    _grade(grading, tmp_path, force=True)
    assert _dump(store_path, "grades") == grades and _dump(store_path, "log") == log

    grading.write_text(grading.read_text().replace(
        'Test("short_run", trajectory, reference=trajectory_reference, points=1,',
        'Test("short_run", trajectory, reference=trajectory_reference, points=2,'))
    _grade(grading, tmp_path)  # a changed test: every record is graded again
    assert _dump(store_path, "grades") == grades
    after = _dump(store_path, "log")
    assert after[:len(log)] == log  # appended to, never changed
    assert {row[3] for row in after[len(log):]} <= {"autograde"}

    _write(tmp_path, {"ann": _submission(tmp_path, good + " Also, I resubmitted.")})
    _grade(grading, tmp_path)
    assert _dump(store_path, "grades") == grades
    book = _gradebook(tmp_path)
    assert "answer changed since graded: bias/why" in book["ann"]["review"]
    assert float(book["ann"]["bias"]) == 3  # kept, and flagged for a second look
    with Store.open(tmp_path / "out") as store:
        assert store.answer("ann", KEY).changed and not store.answer("bob", KEY).changed


# Late work -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_late_policy_is_applied_in_the_gradebook_and_explained(tmp_path):
    grading = _course(tmp_path, late=True)
    deadline = datetime.fromisoformat(DEADLINE)
    late_by = {"early": -timedelta(hours=1), "grace": timedelta(minutes=10),
               "one_day": timedelta(minutes=16), "three": timedelta(days=2, minutes=1),
               "capped": timedelta(days=5, hours=1), "extended": timedelta(hours=30),
               "excused": timedelta(days=1)}
    folder = _write(tmp_path, {name: _submission(tmp_path, "Zero start.") for name in late_by})
    for name, delta in late_by.items():
        stamp = (deadline + delta).timestamp()
        os.utime(folder / f"{name}.ipynb", (stamp, stamp))
    (tmp_path / "out").mkdir()
    with Store.open(tmp_path / "out", create=True) as store:
        store.set_override("extended", extension_hours=48, who="prof")
        store.set_override("excused", excused=True, who="prof")
    results = _grade(grading, tmp_path)
    book = _gradebook(tmp_path)
    # days: a part of a day counts as a day; the grace only forgives the first 15 minutes
    days = {"early": 0, "grace": 0, "one_day": 1, "three": 3, "capped": 6, "extended": 0}
    for name, expected_days in days.items():
        score = results[name].score()
        percent = min(30, 10 * expected_days)
        row = book[name]
        assert int(row["days_late"]) == expected_days, name
        assert float(row["penalty"]) == pytest.approx(score * percent / 100), name
        assert float(row["total"]) == pytest.approx(score * (1 - percent / 100)), name
    assert book["excused"]["total"] == "EX" and "excused" in book["excused"]["reason"]
    assert book["one_day"]["submitted_at"] == (deadline + late_by["one_day"]).isoformat()
    page = json.loads((tmp_path / "out" / "feedback" / "three.json").read_text())
    assert page["late"]["days_late"] == 3 and page["late"]["penalty_percent"] == 30
    assert "3 days (or part of a day) after the deadline" in page["late"]["explanation"]
    assert "30% of the score is deducted" in render(page)
    assert math.isclose(page["score"], results["three"].score() * 0.7)


def test_a_deadline_without_an_offset_is_refused(tmp_path):
    grading = _course(tmp_path)
    _write(tmp_path, {})
    with pytest.raises(ValueError, match="offset"):
        grade(grading, tmp_path / "submissions", tmp_path / "out", deadline="2026-10-01 23:59",
              progress=False)


def test_an_unreadable_store_stops_the_run_before_any_grading(tmp_path):
    grading = _course(tmp_path)
    _write(tmp_path, {"ann": _submission(tmp_path, "x")})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "grades.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception, match=r"grades\.sqlite") as caught:
        grade(grading, tmp_path / "submissions", tmp_path / "out", progress=False)
    assert type(caught.value).__name__ == "StoreError"
    assert not (tmp_path / "out" / "results").exists()


def test_the_gradebook_of_an_assignment_without_written_answers_is_unchanged():
    from coursekit.grading.report import gradebook
    from tests.grading_helpers import full_plan

    plan = full_plan()
    header = gradebook([], plan).splitlines()[0]
    assert plan.written == ()
    assert header == "submission,momentum,adam,trajectory,total,percent,status,reason"


def test_an_answer_shows_the_outputs_of_the_parts_it_names(tmp_path):
    """``Written(shows=...)``: a discussion answer's grader sees the parts it discusses."""
    heading = nbformat.v4.new_markdown_cell
    cells = [heading("## Part 1: runs"), nbformat.v4.new_code_cell("a", outputs=[
                 nbformat.v4.new_output("stream", text="one\n")]),
             heading("### 2a. more"), nbformat.v4.new_code_cell("b", outputs=[
                 nbformat.v4.new_output("stream", text="two\n")]),
             heading("## Discussion"), heading("Answer here.")]
    cells[-1].metadata["coursekit"] = {"answer": "discussion/why"}
    data = nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()
    plain = Written("why", "t", 1, [Item("a", 1, "x")])
    for shows, expected in (((), []), (("2a.",), [3]), (("Part 1", "2a."), [1, 3])):
        question = Question("discussion", "D", written=[
            Written(plain.name, plain.title, 1, plain.rubric, shows=shows)])
        written = written_of(Assignment(seed=0, questions=[question]))
        answer = read(data, written)["discussion/why"]
        assert [index for index, _ in answer.outputs] == expected, shows


def test_nbgrader_export_gives_a_written_answer_its_points(tmp_path):
    """A named answer becomes nbgrader's manually graded answer worth the Written's points;
    a written-only question gets no test cell (``assert_valid_nbgrader`` is the nbgrader
    schema check of tests/test_grading_nbgrader.py)."""
    from coursekit.grading import export_nbgrader
    from tests.test_grading_nbgrader import assert_valid_nbgrader

    grading = _course(tmp_path)
    path = export_nbgrader(tmp_path / "solutions" / "example.ipynb", grading, tmp_path / "nbg")
    exported = nbformat.read(path, as_version=4)
    assert_valid_nbgrader(exported)
    (answer,) = [c for c in exported.cells if c.cell_type == "markdown"
                 and c.metadata.get("nbgrader", {}).get("grade")]
    assert answer.metadata["nbgrader"]["grade_id"] == "bias_why"
    assert answer.metadata["nbgrader"]["points"] == 3
    assert "### BEGIN SOLUTION" in answer.source and "<!--" not in answer.source
    plan = build_plan(load_assignment(grading))
    tests = [c for c in exported.cells if c.cell_type == "code"
             and c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.metadata["nbgrader"]["points"] for c in tests] == \
        [plan.max_points(q) for q, _ in plan.questions if q != "bias"]
