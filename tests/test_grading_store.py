"""The grading store: people's grades kept across regrades, concurrent graders, the log.

What is checked here is read back with plain ``sqlite3`` where it matters (a dump of the
tables, counts of log rows), not only through the store's own API, and the schema is
compared with the columns the design lists (written out below, not taken from the
module).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from coursekit.grading.store import (
    AnswerRow,
    Conflict,
    Grade,
    NotFound,
    Store,
    StoreError,
    SubmissionRow,
    unknown_items,
    written_score,
)

ROOT = Path(__file__).resolve().parents[1]
WHEN = "2026-12-07T22:05:23+00:00"
RUBRIC = {"factor": 2.0, "numbers": 1.0, "no_run": -1.0}  # part3/a, 3 points

# The schema of the design (.helpers/issue20-design.md), column by column.
DESIGN_COLUMNS = {
    "submissions": ["name", "path", "sha256", "submitted_at", "time_source", "status",
                    "detail", "auto_json", "graded_at"],
    "answers": ["submission", "answer", "sha256", "chars", "present"],
    "grades": ["submission", "answer", "items_json", "extra", "comment", "grader",
               "graded_at", "answer_sha256", "flagged", "version"],
    "overrides": ["student", "extension_hours", "excused", "note", "who", "at"],
    "log": ["id", "at", "who", "action", "submission", "answer", "before_json",
            "after_json"],
    "meta": ["key", "value"],
}


def submission(name: str, **changes) -> SubmissionRow:
    fields = {"name": name, "path": f"subs/{name}.ipynb", "sha256": f"nb-{name}",
              "submitted_at": "2026-10-01T21:00:00+00:00", "time_source": "mtime",
              "status": "graded", "detail": "", "auto": {"part1": 4.0, "part3": 2.5},
              "graded_at": WHEN}
    fields.update(changes)
    return SubmissionRow(**fields)


def answers_of(name: str, text_hash: str = "") -> dict[str, tuple[str, int, bool]]:
    return {"part3/a": (text_hash or f"a-{name}", 120, True),
            "part3/b": (f"b-{name}", 0, False)}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output folder whose store holds alice and bob, each with part3/a and part3/b."""
    with Store.open(tmp_path, create=True) as store:
        store.set_meta("assignment", "hw1")
        for name in ("alice", "bob"):
            store.sync_submission(submission(name), answers_of(name))
    return tmp_path


def dump(out: Path) -> str:
    """Every table's rows, as SQL text, read with sqlite3 itself."""
    with contextlib.closing(sqlite3.connect(out / "grades.sqlite")) as db:
        return "\n".join(db.iterdump())


def raw(out: Path, sql: str, args: tuple = ()) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(out / "grades.sqlite")) as db:
        return db.execute(sql, args).fetchall()


def save(store: Store, name: str = "alice", answer: str = "part3/a", *, items=("factor",),
         extra=0.5, comment="good", grader="ta1", expected_version=None, **options) -> Grade:
    return store.save_grade(name, answer, items=items, extra=extra, comment=comment,
                            grader=grader, expected_version=expected_version,
                            answer_sha256=options.pop("answer_sha256", f"a-{name}"),
                            **options)


# The schema --------------------------------------------------------------------------------

def test_store_has_the_design_schema_in_wal_mode_with_an_append_only_log(out):
    for table, columns in DESIGN_COLUMNS.items():
        assert [row[1] for row in raw(out, f"PRAGMA table_info({table})")] == columns
    assert raw(out, "PRAGMA user_version") == [(1,)]
    assert raw(out, "PRAGMA journal_mode") == [("wal",)]
    triggers = {name for (name,) in raw(out, "SELECT name FROM sqlite_master "
                                             "WHERE type = 'trigger'")}
    assert triggers == {"log_no_update", "log_no_delete"}


def test_every_table_and_column_is_documented_in_the_module_docstring():
    from coursekit.grading import store as module

    doc = module.__doc__
    for table, columns in DESIGN_COLUMNS.items():
        assert f"``{table}" in doc, table
        for column in columns:
            assert f"``{column}``" in doc or f"{column} TEXT" in doc, (table, column)


# Concurrent graders ---------------------------------------------------------------------

WRITER = """
import pathlib, sys, time
from coursekit.grading.store import Conflict, Store
out, who, answer, go = sys.argv[1:]
with Store.open(out) as store:
    pathlib.Path(out, f"ready-{who}").touch()
    while not pathlib.Path(go).exists():
        time.sleep(0.001)
    for i in range(200):
        loaded = store.answer(f"s{i:03d}", answer)  # as the page does: load, read, save
        time.sleep(0.001)
        store.save_grade(f"s{i:03d}", answer, items=["x"] if i % 3 else [],
                         extra=i / 4, comment=f"{who} {i}", grader=who,
                         expected_version=loaded.grade and loaded.grade.version,
                         answer_sha256=loaded.sha256)
    try:
        store.save_grade("s000", "shared", items=[], extra=1, comment=who, grader=who,
                         expected_version=None, answer_sha256="shared")
        print("won")
    except Conflict:
        print("lost")
"""


def test_two_processes_writing_200_grades_each_keep_all_400_and_their_log(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        for i in range(200):
            store.sync_submission(
                submission(f"s{i:03d}"),
                {"q/a": (f"q/a-{i}", 10, True), "q/b": (f"q/b-{i}", 10, True),
                 **({"shared": ("shared", 1, True)} if i == 0 else {})})
    go = tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), who, answer,
                                 str(go)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
               for who, answer in (("A", "q/a"), ("B", "q/b"))]
    while not all((tmp_path / f"ready-{who}").exists() for who in "AB"):
        assert all(writer.poll() is None for writer in writers)
        time.sleep(0.005)
    go.touch()  # both start together, with their stores open
    outputs = [writer.communicate(timeout=120)[0].strip() for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0]
    assert sorted(outputs) == ["lost", "won"]  # both loaded "no grade": exactly one saves

    rows = raw(tmp_path, "SELECT submission, answer, items_json, extra, comment, grader, "
                         "answer_sha256, version FROM grades WHERE answer != 'shared' "
                         "ORDER BY answer, submission")
    expected = [(f"s{i:03d}", answer, '["x"]' if i % 3 else "[]", i / 4, f"{who} {i}", who,
                 f"{answer}-{i}", 1)
                for who, answer in (("A", "q/a"), ("B", "q/b")) for i in range(200)]
    assert rows == expected
    saves = raw(tmp_path, "SELECT who, count(*) FROM log WHERE action = 'save' AND answer "
                          "!= 'shared' GROUP BY who ORDER BY who")
    assert saves == [("A", 200), ("B", 200)]
    shared = raw(tmp_path, "SELECT action, who FROM log WHERE answer = 'shared' ORDER BY id")
    winner = "A" if outputs[0] == "won" else "B"
    loser = "B" if winner == "A" else "A"
    assert shared == [("save", winner), ("conflict", loser)]
    assert raw(tmp_path, "SELECT grader FROM grades WHERE answer = 'shared'") == [(winner,)]


def test_same_answer_saved_by_two_graders_from_one_version_conflicts_and_logs_the_loser(out):
    with Store.open(out) as first, Store.open(out) as second:
        loaded_by_first = first.answer("alice", "part3/a").grade
        loaded_by_second = second.answer("alice", "part3/a").grade
        assert loaded_by_first is None and loaded_by_second is None
        won = save(first, items=["factor", "numbers"], extra=0, comment="first",
                   grader="ta1", expected_version=None)
        assert won.version == 1
        with pytest.raises(Conflict, match="ta1 saved version 1") as caught:
            save(second, items=["no_run"], extra=2, comment="second", grader="ta2",
                 expected_version=None)
        assert caught.value.current == won
        assert caught.value.attempted["comment"] == "second"

        assert second.answer("alice", "part3/a").grade == won  # the winner stays
        log = second.log("alice", "part3/a")
        assert [(entry.action, entry.who) for entry in log] == [("save", "ta1"),
                                                                ("conflict", "ta2")]
        assert log[1].after == {"submission": "alice", "answer": "part3/a",
                                "items": ["no_run"], "extra": 2.0, "comment": "second",
                                "grader": "ta2", "answer_sha256": "a-alice",
                                "flagged": False, "expected_version": None}
        assert log[1].before["comment"] == "first"

        again = save(second, items=["no_run"], extra=2, comment="second", grader="ta2",
                     expected_version=1)  # reloaded, then saved
        assert (again.version, again.comment) == (2, "second")


def test_a_save_expecting_a_grade_that_is_not_there_conflicts(out):
    with Store.open(out) as store:
        with pytest.raises(Conflict, match="there is no grade, but you loaded version 3"):
            save(store, expected_version=3)
        assert store.answer("alice", "part3/a").grade is None
        assert [entry.action for entry in store.log("alice")] == ["autograde", "conflict"]


def test_threads_sharing_one_store_each_save_their_answers(out):
    names = [f"t{i}" for i in range(8)]
    with Store.open(out) as store:
        for name in names:
            store.sync_submission(submission(name), answers_of(name))

        def grade(name: str) -> None:
            for answer in ("part3/a", "part3/b"):
                save(store, name, answer, grader=name)

        threads = [threading.Thread(target=grade, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        graded = {(row.submission, row.answer): row.grade.grader
                  for row in store.answers() if row.grade is not None}
    assert graded == {(name, answer): name for name in names
                      for answer in ("part3/a", "part3/b")}


# Regrading keeps people's work ------------------------------------------------------------

def test_syncing_the_same_submission_twice_writes_nothing(out):
    with Store.open(out) as store:
        save(store)
        store.set_override("bob", extension_hours=24, who="prof")
    before = dump(out)
    with Store.open(out) as store:
        store.set_meta("assignment", "hw1")
        for name in ("alice", "bob"):
            store.sync_submission(submission(name), answers_of(name))
    assert dump(out) == before

    with Store.open(out) as store:  # a --force regrade: only the autograder's time differs
        store.sync_submission(submission("alice", graded_at="2026-12-08T09:00:00+00:00"),
                              answers_of("alice"))
    after = dump(out)
    assert after != before
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert len(changed) == 1 and "INSERT INTO \"submissions\" VALUES('alice'" in changed[0]
    assert "2026-12-08T09:00:00+00:00" in changed[0]


def test_a_changed_answer_keeps_its_grade_and_is_marked_changed(out):
    with Store.open(out) as store:
        grade = save(store)
        assert store.answer("alice", "part3/a").changed is False
        store.sync_submission(submission("alice", sha256="nb-alice-2"),
                              answers_of("alice", text_hash="a-alice-resubmitted"))
        row = store.answer("alice", "part3/a")
        assert row == AnswerRow("alice", "part3/a", "a-alice-resubmitted", 120, True, grade,
                                changed=True)
        assert store.answer("alice", "part3/b").changed is False  # ungraded: nothing to flag
        entry = store.log("alice")[-1]
        assert entry.action == "autograde"
        assert entry.before == {"sha256": "nb-alice",
                                "answers": {"part3/a": {"sha256": "a-alice", "chars": 120,
                                                        "present": True}}}
        assert entry.after == {"sha256": "nb-alice-2",
                               "answers": {"part3/a": {"sha256": "a-alice-resubmitted",
                                                       "chars": 120, "present": True}}}
        regraded = save(store, answer_sha256="a-alice-resubmitted", expected_version=1)
        assert store.answer("alice", "part3/a").changed is False
        assert regraded.version == 2


def test_sync_records_the_autograder_view_and_never_a_grade(out):
    with Store.open(out) as store:
        grade = save(store)
        store.sync_submission(submission("alice", status="timeout", detail="over 60 s",
                                         auto={"part1": 0.0}), {})
        assert store.answer("alice", "part3/a").grade == grade
        assert [row.name for row in store.submissions()] == ["alice", "bob"]
        assert store.submissions()[0] == submission("alice", status="timeout",
                                                    detail="over 60 s", auto={"part1": 0.0})
        entry = store.log("alice")[-1]
        assert entry.before == {"status": "graded", "detail": "",
                                "auto": {"part1": 4.0, "part3": 2.5}}
        assert entry.after == {"status": "timeout", "detail": "over 60 s",
                               "auto": {"part1": 0.0}}
        assert store.meta() == {"assignment": "hw1"}


def test_sync_refuses_malformed_rows(out):
    with Store.open(out) as store:
        with pytest.raises(ValueError, match="submitted_at must be an ISO 8601 time"):
            store.sync_submission(submission("carol", submitted_at="2026-10-01 21:00"), {})
        with pytest.raises(ValueError, match="time_source must be one of mtime, csv"):
            store.sync_submission(submission("carol", time_source="lms"), {})
        with pytest.raises(ValueError, match=r"answers\['part3/a'\] must be"):
            store.sync_submission(submission("carol"), {"part3/a": "hash"})
        assert [row.name for row in store.submissions()] == ["alice", "bob"]


# The log ----------------------------------------------------------------------------------

def test_the_log_refuses_update_and_delete(out):
    with Store.open(out) as store:
        save(store)
    db = sqlite3.connect(out / "grades.sqlite")
    try:
        for statement in ("UPDATE log SET who = 'nobody'", "DELETE FROM log",
                          "DELETE FROM log WHERE action = 'save'"):
            with pytest.raises(sqlite3.IntegrityError, match="the log is append-only"):
                db.execute(statement)
    finally:
        db.close()
    assert raw(out, "SELECT action, who FROM log ORDER BY id") == [
        ("meta", "coursekit"), ("autograde", "autograder"), ("autograde", "autograder"),
        ("save", "ta1")]


# Refused grades ---------------------------------------------------------------------------

def test_items_outside_the_rubric_are_refused_naming_them(out):
    before = dump(out)
    with Store.open(out) as store:
        with pytest.raises(ValueError, match=r"alice part3/a: rubric item\(s\) 'bogus', "
                                             r"'typo' not in the rubric"):
            save(store, items=["factor", "typo", "bogus"], rubric=RUBRIC, maximum=3)
    assert dump(out) == before


@pytest.mark.parametrize(("items", "extra", "score"), [
    (["no_run"], 0.5, -0.5),              # -1 + 0.5 < 0
    (["factor", "numbers"], 0.5, 3.5),    # 2 + 1 + 0.5 > 3
    ([], -0.25, -0.25),
])
def test_scores_outside_zero_to_maximum_are_refused(out, items, extra, score):
    before = dump(out)
    with Store.open(out) as store:
        with pytest.raises(ValueError, match=rf"alice part3/a: {score:g} points outside "
                                             r"the rubric's range \[0, 3\]"):
            save(store, items=items, extra=extra, rubric=RUBRIC, maximum=3)
    assert dump(out) == before


def test_scores_at_the_ends_of_the_range_are_saved(out):
    with Store.open(out) as store:
        low = save(store, items=["no_run"], extra=1, rubric=RUBRIC, maximum=3)
        high = save(store, "bob", items=["numbers", "factor"], extra=0, rubric=RUBRIC,
                    maximum=3)
    assert (written_score(low, RUBRIC), written_score(high, RUBRIC)) == (0.0, 3.0)
    assert high.items == ("factor", "numbers")  # stored sorted


def test_unknown_submissions_and_answers_are_refused_naming_them(out):
    before = dump(out)
    with Store.open(out) as store:
        with pytest.raises(NotFound, match="no submission 'mallory'"):
            save(store, "mallory")
        with pytest.raises(NotFound, match="submission 'alice' has no written answer "
                                           "'part9/z'"):
            save(store, "alice", "part9/z")
        with pytest.raises(NotFound, match="no submission 'mallory'"):
            store.answer("mallory", "part3/a")
        with pytest.raises(NotFound, match="has no grade to flag"):
            store.set_flag("alice", "part3/a", True, "ta1")
    assert dump(out) == before
    assert issubclass(NotFound, StoreError) and issubclass(NotFound, LookupError)


def test_written_score_counts_items_gone_from_the_rubric_as_zero_and_names_them():
    grade = Grade("alice", "part3/a", ("factor", "numbers", "old"), 0.5, "", "ta1", WHEN,
                  "h", False, 1)
    assert written_score(grade, RUBRIC) == 2 + 1 + 0.5
    assert written_score(grade, {"factor": 1.5}) == 1.5 + 0.5
    assert unknown_items(grade, RUBRIC) == ("old",)
    assert unknown_items(grade, {"factor": 1.5}) == ("numbers", "old")


# Flags and overrides ----------------------------------------------------------------------

def test_a_flag_bumps_the_version_so_an_older_load_conflicts(out):
    with Store.open(out) as store:
        loaded = save(store)
        flagged = store.set_flag("alice", "part3/a", True, "prof")
        assert (flagged.flagged, flagged.version, flagged.comment) == (True, 2, "good")
        with pytest.raises(Conflict):
            save(store, comment="overwrites the flag", expected_version=loaded.version)
        assert store.answer("alice", "part3/a").grade == flagged
        assert [entry.action for entry in store.log("alice", "part3/a")] == [
            "save", "flag", "conflict"]


def test_overrides_round_trip_and_keep_what_is_not_given(out):
    with Store.open(out) as store:
        first = store.set_override("bob", extension_hours=48, note="sick note", who="prof")
        store.set_override("carol", excused=True, who="prof")  # no submission yet: allowed
        second = store.set_override("bob", excused=True, who="ta1")
        assert (second.extension_hours, second.excused, second.note) == (48.0, True,
                                                                         "sick note")
        with pytest.raises(ValueError, match="extension_hours must be >= 0, got -1"):
            store.set_override("bob", extension_hours=-1, who="prof")
    with Store.open(out) as store:
        overrides = store.overrides()
        assert list(overrides) == ["bob", "carol"]
        assert overrides["bob"] == second
        assert (overrides["carol"].extension_hours, overrides["carol"].excused) == (0.0,
                                                                                    True)
        log = store.log("bob")
        assert [entry.action for entry in log] == ["autograde", "override", "override"]
        assert log[1].before is None and log[1].after["note"] == "sick note"
        assert log[2].before["excused"] is False and log[2].after["excused"] is True
        assert first.at <= second.at


def test_answers_are_sorted_and_filtered_by_answer_id_or_submission(out):
    with Store.open(out) as store:
        save(store, "bob")
        rows = store.answers()
        assert [(row.submission, row.answer) for row in rows] == [
            ("alice", "part3/a"), ("alice", "part3/b"), ("bob", "part3/a"),
            ("bob", "part3/b")]
        assert [row.grade is not None for row in rows] == [False, False, True, False]
        assert [row.submission for row in store.answers("part3/b")] == ["alice", "bob"]
        assert store.answers("part9/z") == []
        assert store.answers_of("bob") == rows[2:]
        assert store.answers_of("mallory") == []
        assert store.answer("alice", "part3/b").present is False


# Errors: the path and the cause, nothing written ------------------------------------------

def test_a_missing_store_is_an_error_without_create(tmp_path):
    with pytest.raises(StoreError, match=re.escape(f"{tmp_path / 'grades.sqlite'}: no grading "
                                                   "store here")):
        Store.open(tmp_path)
    assert not (tmp_path / "grades.sqlite").exists()


def test_a_file_that_is_not_a_database_is_an_error_and_left_as_it_was(tmp_path):
    garbage = b"gradebook, not sqlite\n" * 300
    (tmp_path / "grades.sqlite").write_bytes(garbage)
    for create in (False, True):
        with pytest.raises(StoreError, match=r"grades\.sqlite: file is not a database"):
            Store.open(tmp_path, create=create)
    assert (tmp_path / "grades.sqlite").read_bytes() == garbage


def test_another_database_or_a_newer_store_is_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    with contextlib.closing(sqlite3.connect(other / "grades.sqlite")) as db:
        db.execute("CREATE TABLE students (name TEXT)")
    with pytest.raises(StoreError, match=r"not a grading store \(a database with tables "
                                         r"students\)"):
        Store.open(other, create=True)
    assert raw(other, "PRAGMA journal_mode") == [("delete",)]  # left as it was

    newer = tmp_path / "newer"
    Store.open(newer, create=True).close()
    with contextlib.closing(sqlite3.connect(newer / "grades.sqlite")) as db:
        db.execute("PRAGMA user_version = 2")
    with pytest.raises(StoreError, match=r"newer coursekit \(schema version 2; this one "
                                         r"reads 1\)"):
        Store.open(newer)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "grades.sqlite").touch()
    with pytest.raises(StoreError, match="an empty database, not a grading store"):
        Store.open(empty)


def test_a_folder_that_cannot_be_made_is_an_error_naming_it(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(StoreError, match=re.escape(f"{blocker / 'grades.sqlite'}: cannot "
                                                   f"make the folder {blocker}")):
        Store.open(blocker, create=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes through permissions")
def test_a_folder_without_write_permission_is_an_error_and_the_store_untouched(out):
    before = dump(out)
    out.chmod(0o555)
    (out / "grades.sqlite").chmod(0o444)
    try:
        with pytest.raises(StoreError, match=r"grades\.sqlite: .*(readonly|unable to open)"):
            with Store.open(out) as store:
                save(store)
    finally:
        (out / "grades.sqlite").chmod(0o644)
        out.chmod(0o755)
    assert dump(out) == before
    fresh = out / "fresh"
    fresh.mkdir(mode=0o555)
    try:
        with pytest.raises(StoreError, match=r"fresh/grades\.sqlite: unable to open"):
            Store.open(fresh, create=True)
    finally:
        fresh.chmod(0o755)


def test_a_write_while_another_process_holds_the_lock_is_refused_and_changes_nothing(out):
    with Store.open(out) as store:
        save(store)
    before = dump(out)
    holder = sqlite3.connect(out / "grades.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with Store.open(out, timeout=0.05) as store:
            with pytest.raises(StoreError, match=re.escape(f"{out / 'grades.sqlite'}: "
                                                           "database is locked")):
                save(store, "bob", comment="while locked")
            with pytest.raises(StoreError, match="database is locked"):
                store.sync_submission(submission("carol"), answers_of("carol"))
            assert store.answer("bob", "part3/a").grade is None  # reads go on
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert dump(out) == before


def test_opening_a_store_locked_exclusively_is_an_error_naming_it(out):
    before = dump(out)
    holder = sqlite3.connect(out / "grades.sqlite", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("INSERT INTO meta VALUES ('held', 'yes')")
        with pytest.raises(StoreError, match=re.escape(f"{out / 'grades.sqlite'}: database "
                                                   "is locked")):
            Store.open(out, timeout=0.05)
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert dump(out) == before
