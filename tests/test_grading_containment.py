"""One submission never stops the batch, and what the grader spends on it is bounded.

One batch (two workers) holds honest submissions and notebooks that attack the
grader's own side of the wall: values that broke the comparison, a simulated bug of
the grader on one submission's values, a flood of huge messages and values meant to
fill the output folder, a notebook slow to turn into Python, one over the cap on
code cells, and a file name that is not UTF-8. The batch must complete, the honest
submissions keep their scores, each bad one gets a status and a reason, what is
written for each submission stays under the documented bound, and running the same
command again gives the identical gradebook.
"""

from __future__ import annotations

import csv
import json
import os
import re

import pytest
from grading_helpers import (
    GRADING,
    SIGN_ERROR,
    edit,
    full_plan,
    grade_batch,
    points_without,
    solution,
    with_cell,
    write,
)

from coursekit.grading import grade, grader
from coursekit.grading.child import MAX_CODE_CELLS, MAX_TEXT
from coursekit.grading.report import MAX_CELL_PROBLEMS, MAX_SUBMISSION_BYTES, MAX_VALUE_CHARS

PLAN = full_plan()
TOTAL = PLAN.max_points()
CELL_TIMEOUT = 3.0
TRAP = 31337.25  # a value the simulated grader bug trips on
NOT_UTF8 = os.fsdecode(b"caf\xe9")  # a file name that is not UTF-8 (a surrogate in Python)

BREAKS_COMPARISON = '''
def momentum_step(theta, grad, velocity, lr, mu):
    # integers too large for a float, NaN, booleans: the comparison once raised on these
    return [10**400] * len(theta), [float("nan"), True, 10**30][:1] * len(theta)

def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    return [[[]]] * len(theta), {"m": m, "unexpected": "x" * 10_000}, [[1.0], [2.0, 3.0]]
'''

GRADER_BUG = f'''
def momentum_step(theta, grad, velocity, lr, mu):
    return theta * 0 + {TRAP!r}, velocity
'''

FLOOD = '''
import sys
import numpy as np

def _answer(reply):
    """Answer the grader's request in flight directly, as code in the child can."""
    frame = sys._getframe()
    while frame is not None and "channel" not in frame.f_locals:
        frame = frame.f_back
    frame.f_locals["channel"].send(frame.f_locals["request"], reply)

def momentum_step(theta, grad, velocity, lr, mu):
    # 4 MB: far past the child's own 500 characters, and quick to write within the limit
    _answer({"ok": False, "error": "E" * 4_000_000})
    return theta, velocity

def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    return np.arange(300_000.0), ["x" * 10_000] * 100, {"\\ud800" * 5_000: np.ones(300_000)}

def adam_trajectory(theta0, grad_fn, num_steps, lr):
    return np.arange(900_000.0)

_answer({"status": "error", "error": "F" * 4_000_000})  # a cell's reply, over its limit
'''
RAISES = "raise ValueError('\\ud800 ' + 'x' * 10**6)"  # cut by the child, then by the grader

SLOW_TO_TRANSFORM = "".join(f"%time x{j} = {j}\n" for j in range(499))  # ~11 s in IPython


def _flood():
    notebook = with_cell(solution(), FLOOD)
    for _ in range(2 * MAX_CELL_PROBLEMS):
        notebook = with_cell(notebook, RAISES)
    return notebook


def _over_the_cap():
    notebook = solution()
    for i in range(MAX_CODE_CELLS):
        notebook = with_cell(notebook, f"x = {i}")
    return notebook


# name: (notebook, expected total, expected status)
CASES = {
    "honest": (solution(), TOTAL, "ok"),
    "honest_wrong_sign": (edit(solution(), *SIGN_ERROR), points_without(PLAN, "momentum/"),
                          "ok"),
    NOT_UTF8: (solution(), TOTAL, "ok"),
    "breaks_comparison": (with_cell(solution(), BREAKS_COMPARISON),
                          points_without(PLAN, "momentum/", "adam/", "trajectory/"), "ok"),
    "grader_bug": (with_cell(solution(), GRADER_BUG), 0.0, "grader_error"),
    "flood": (_flood(), points_without(PLAN, "momentum/", "adam/", "trajectory/"), "errors"),
    "slow_to_transform": (with_cell(solution(), SLOW_TO_TRANSFORM, after="imports"), TOTAL,
                          "cell_timeout"),
    "over_the_cap": (_over_the_cap(), 0.0, "invalid"),
}


def _buggy(judge):
    """``judge`` with a bug that fires on one submission's values."""
    def judge_with_a_bug(test, run, not_run):
        outcome = run.outputs.get(test.key) if run is not None else None
        value = outcome.value if outcome is not None else None
        if isinstance(value, dict) and TRAP in getattr(value.get("theta"), "tolist", list)():
            raise RuntimeError("a bug that fires on this submission's values")
        return judge(test, run, not_run)
    return judge_with_a_bug


def _files(out):
    """Every file the grader wrote, but the grading store (which holds times of grading)."""
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file()
            and not p.name.startswith("grades.sqlite")}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The batch graded once, then again as after an interruption (same command)."""
    root = tmp_path_factory.mktemp("containment")
    notebooks = {name: notebook for name, (notebook, _, _) in CASES.items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grader, "judge", _buggy(grader.judge))
        results = grade_batch(GRADING, notebooks, root, timeout=120, cell_timeout=CELL_TIMEOUT)
        first = _files(root / "out")
        again = grade(GRADING, root / "submissions", root / "out", workers=2, timeout=120,
                      cell_timeout=CELL_TIMEOUT, progress=False)
    return root / "out", results, first, {r.name: r for r in again}


def test_the_batch_completes_and_every_submission_gets_its_score_and_status(graded):
    _, results, _, _ = graded
    got = {name: (results[name].score(), results[name].status) for name in CASES}
    expected = {name: (pytest.approx(total), status) for name, (_, total, status) in CASES.items()}
    assert got == expected, {name: results[name].detail for name in CASES}


def test_values_that_broke_the_comparison_fail_their_tests_with_a_message(graded):
    _, results, _, _ = graded
    messages = {r.test.key: r.message for r in results["breaks_comparison"].tests}
    assert messages["momentum/first_step"].startswith(
        "theta: 3 of 3 values differ; the largest difference is at index (0,): got an "
        "integer of 401 digits")
    assert messages["adam/first_step"] == \
        "m: expected numbers of shape (3,), got a dict with keys ['m', 'unexpected']"


def test_a_failure_of_the_grader_is_that_submissions_grader_error_with_a_reason(graded):
    out, results, _, _ = graded
    detail = "the grader failed while judging it (RuntimeError)"
    message = "a bug that fires on this submission's values"  # could quote a hidden input
    assert (results["grader_bug"].detail, results["grader_bug"].note) == (detail, message)
    report = json.loads((out / "feedback" / "grader_bug.json").read_text())
    assert (report["status"], report["detail"], report["score"]) == ("grader_error", detail, 0)
    assert message not in (out / "feedback" / "grader_bug.json").read_text()
    with open(out / "gradebook.csv", newline="") as f:
        rows = {row[0]: row for row in csv.reader(f)}
    assert rows["grader_bug"][-2:] == ["grader_error", f"{detail}: {message}"]
    assert rows["honest"][-2:] == ["ok", ""]
    assert rows["over_the_cap"][-2:] == [
        "invalid", f"more than {MAX_CODE_CELLS} code cells ({MAX_CODE_CELLS + 5})"]


def test_what_is_written_for_each_submission_stays_under_the_bound(graded):
    out, results, _, _ = graded
    for name in CASES:
        written = sum((out / folder / f"{name}.json").stat().st_size
                      for folder in ("feedback", "results"))
        assert written <= MAX_SUBMISSION_BYTES, name
    flood = results["flood"]
    texts = [flood.detail, *(r.message for r in flood.tests),
             *(p.error for p in flood.cell_problems)]
    assert max(len(text) for text in texts) <= MAX_TEXT
    assert len(flood.cell_problems) == MAX_CELL_PROBLEMS
    assert flood.detail.endswith(" more")  # the detail counts the cells it does not list
    assert all(isinstance(r.got, str) and r.got.startswith("(not kept: ")
               for r in flood.tests if r.test.key.startswith(("adam/", "trajectory/")))
    record = json.loads((out / "results" / "flood.json").read_text())
    assert all(len(json.dumps(t["got"])) <= MAX_VALUE_CHARS for t in record["tests"].values())
    cut = re.fullmatch(r"(E+)\.\.\. \((\d+) more characters\)",
                       record["tests"]["momentum/first_step"]["message"])
    assert len(cut[1]) > MAX_TEXT - 40 and len(cut[1]) + int(cut[2]) == 4_000_000
    assert not any(r.startswith("FFFF") for r in (p.error for p in flood.cell_problems))


def test_a_notebook_slow_to_turn_into_python_costs_its_own_time_not_the_graders(graded):
    _, results, _, _ = graded
    slow = results["slow_to_transform"]
    assert slow.detail == (f"cell 3 stopped after {CELL_TIMEOUT:g} s while compiling it "
                           "(turning its IPython magics and !commands into Python)")


def test_running_again_gives_the_same_files_and_grades_the_grader_error_again(graded):
    out, results, first, again = graded
    assert _files(out) == first
    assert sorted(name for name, r in again.items() if not r.reused) == ["grader_bug"]
    assert {name: (r.status, r.score()) for name, r in again.items()} == \
        {name: (r.status, r.score()) for name, r in results.items()}


def test_a_failure_while_writing_is_a_grader_error_and_the_rest_is_written(tmp_path,
                                                                           monkeypatch):
    def feedback(result, plan, *by_hand):
        if result.name == "unlucky" and result.status != "grader_error":
            raise OSError(28, "No space left on device")
        return real(result, plan, *by_hand)

    real = grader.feedback
    monkeypatch.setattr(grader, "feedback", feedback)
    write(solution(), tmp_path / "subs" / "lucky.ipynb")
    write(solution(), tmp_path / "subs" / "unlucky.ipynb")
    results = grade(GRADING, tmp_path / "subs", tmp_path / "out", workers=1, timeout=60,
                    cell_timeout=10, progress=False)
    assert [(r.name, r.status, r.score()) for r in results] == \
        [("lucky", "ok", TOTAL), ("unlucky", "grader_error", 0.0)]
    assert (results[1].detail, results[1].note) == (
        "the grader failed while writing its feedback (OSError)",
        "[Errno 28] No space left on device")
    report = json.loads((tmp_path / "out" / "feedback" / "unlucky.json").read_text())
    assert report["status"] == "grader_error"
