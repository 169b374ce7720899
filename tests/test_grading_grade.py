"""Grading a folder of example submissions: scores, statuses, gradebook, feedback.

One batch (graded once per module, two workers) holds the solution, the released
homework, three typical wrong answers and the broken notebooks real classes
hand in. Expected scores come from the grading file's points and the tests each
mistake is meant to fail; expected statuses are the documented ones.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from grading_helpers import (
    GRADING,
    NO_BIAS_CORRECTION,
    OFF_BY_ONE,
    SIGN_ERROR,
    as_markdown,
    duplicated,
    edit,
    emptied,
    full_plan,
    grade_batch,
    homework,
    moved_first,
    points_without,
    solution,
    stamped,
    with_cell,
    without,
)

PLAN = full_plan()
TOTAL = PLAN.max_points()
CELL_TIMEOUT = 3.0

# name: (notebook or raw text, expected total, expected status)
CASES = {
    "solution": (solution(), TOTAL, "ok"),
    "homework": (homework(), 0.0, "errors"),
    "wrong_sign": (edit(solution(), *SIGN_ERROR), points_without(PLAN, "momentum/"), "ok"),
    # without bias correction the moments are still right; every update of theta is
    # not, including those in the trajectory, which calls adam_step
    "wrong_bias": (edit(solution(), *NO_BIAS_CORRECTION),
                   points_without(PLAN, "adam/first_step", "adam/later_step",
                                  "adam/several_steps", "trajectory/"), "ok"),
    "wrong_steps": (edit(solution(), *OFF_BY_ONE), points_without(PLAN, "trajectory/"), "ok"),
    "deleted_cell": (without(solution(), "momentum-code"), points_without(PLAN, "momentum/"),
                     "ok"),
    "duplicated_cells": (duplicated(solution()), TOTAL, "ok"),
    "reordered_cells": (moved_first(solution(), "try-it"), TOTAL, "errors"),
    "markdown_cell": (as_markdown(solution(), "adam-code"),
                      points_without(PLAN, "adam/", "trajectory/"), "errors"),
    "raising_cell": (with_cell(solution(), "1 / 0", after="imports"), TOTAL, "errors"),
    "extra_cells": (with_cell(with_cell(solution(), "scratch = [i**2 for i in range(10)]"),
                              "# notes to self", after="imports"), TOTAL, "ok"),
    "infinite_loop": (with_cell(solution(), "while True:\n    pass", after="adam-code"),
                      TOTAL, "cell_timeout"),
    "magics": (with_cell(solution(), "%matplotlib inline\n!pip install nothing\n%time z = 1",
                         after="imports"), TOTAL, "ok"),
    "crash": (with_cell(solution(), "import os\nos._exit(3)"), 0.0, "crashed"),
    "invalid_json": ('{"cells": [', 0.0, "invalid"),
    "not_a_notebook": ('{"hello": "world"}', 0.0, "invalid"),
    "empty": (emptied(solution()), 0.0, "empty"),
    "markdown_only": (as_markdown(as_markdown(as_markdown(as_markdown(as_markdown(
        solution(), "imports"), "momentum-code"), "adam-code"), "trajectory-code"), "try-it"),
        0.0, "empty"),
    "other_assignment": (stamped(solution(), "hw2"), 0.0, "wrong_assignment"),
    "right_assignment": (stamped(solution(), "example"), TOTAL, "ok"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    notebooks = {name: notebook for name, (notebook, _, _) in CASES.items()}
    return root / "out", grade_batch(GRADING, notebooks, root, timeout=60,
                                     cell_timeout=CELL_TIMEOUT)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_submission_gets_its_expected_score_and_status(graded, name):
    _, results = graded
    _, total, status = CASES[name]
    assert results[name].status == status, results[name].detail
    assert results[name].score() == pytest.approx(total)


def test_gradebook_has_a_sorted_row_per_submission_and_a_column_per_question(graded):
    out, results = graded
    with open(out / "gradebook.csv", newline="") as f:
        rows = list(csv.reader(f))
    questions = [qid for qid, _ in PLAN.questions]
    assert rows[0] == ["submission", *questions, "total", "percent", "status", "reason"]
    # the points possible: each question's tests' points, their sum, and 100 percent
    possible = [sum(t.points for t in PLAN.tests if t.question == q) for q in questions]
    assert rows[1][0] == "(points possible)"
    assert [float(x) for x in rows[1][1:-2]] == pytest.approx([*possible, sum(possible), 100])
    assert [row[0] for row in rows[2:]] == sorted(CASES)
    for row in rows[2:]:
        result = results[row[0]]
        scores = [float(x) for x in row[1:-4]]
        assert scores == pytest.approx([result.score(q) for q in questions])
        assert float(row[-4]) == pytest.approx(sum(scores))
        assert float(row[-3]) == pytest.approx(100 * sum(scores) / sum(possible), rel=1e-3)
        assert row[-2] == CASES[row[0]][2]
        # why a notebook was not graded at all; nothing for one that ran
        not_graded = row[-2] in ("invalid", "wrong_assignment", "empty")
        assert row[-1] == (result.detail if not_graded else "")
        assert "\n" not in row[-1] and (row[-1] != "") == not_graded


def test_feedback_details_public_tests_and_hides_hidden_ones(graded):
    out, _ = graded
    report = json.loads((out / "feedback" / "wrong_bias.json").read_text())
    tests = {(q["id"], t["name"]): t for q in report["questions"] for t in q["tests"]}
    assert set(tests) == {(t.question, t.name) for t in PLAN.tests}
    for planned in PLAN.tests:
        entry = tests[planned.question, planned.name]
        if planned.hidden:
            assert sorted(entry) == ["max_points", "name", "passed", "points", "visibility"]
        else:
            assert entry["inputs"] is not None and entry["expected"] is not None
    public_adam = tests["adam", "first_step"]
    assert not public_adam["passed"]
    assert public_adam["message"].startswith("theta:")
    assert tests["adam", "moments"]["passed"]


def _floats(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _floats(item)
    elif isinstance(value, np.ndarray):
        yield from (float(x) for x in value.flat)
    elif isinstance(value, float):
        yield value


def test_no_hidden_input_or_reference_value_appears_in_any_feedback(graded):
    out, _ = graded
    text = "".join(p.read_text() for p in sorted((out / "feedback").glob("*.json")))
    public = {x for t in PLAN.tests if not t.hidden
              for x in (*_floats(t.inputs), *_floats(t.expected))}
    secrets = {repr(x) for t in PLAN.tests if t.hidden
               for x in (*_floats(t.inputs), *_floats(t.expected))} - {repr(x) for x in public}
    assert len(secrets) > 50
    assert [s for s in secrets if s in text] == []


def test_feedback_names_the_missing_function_and_the_failing_cell(graded):
    out, _ = graded
    deleted = json.loads((out / "feedback" / "deleted_cell.json").read_text())
    momentum = next(q for q in deleted["questions"] if q["id"] == "momentum")
    assert "does not define 'momentum_step'" in momentum["tests"][0]["message"]
    raising = json.loads((out / "feedback" / "raising_cell.json").read_text())
    assert raising["cells"] == [{"cell": 3, "status": "error",
                                 "error": "ZeroDivisionError: division by zero (cell 3, line 1)"
                                          "\n  cell 3, line 1, in <module>\n    1 / 0"}]


def test_summary_counts_statuses_and_scores(graded):
    out, results = graded
    summary = json.loads((out / "summary.json").read_text())
    assert summary["submissions"] == len(CASES)
    assert summary["max_score"] == pytest.approx(TOTAL)
    expected = {}
    for _, _, status in CASES.values():
        expected[status] = expected.get(status, 0) + 1
    assert summary["statuses"] == expected
    totals = [r.score() for r in results.values()]
    assert summary["score"]["mean"] == pytest.approx(sum(totals) / len(totals), abs=1e-6)
