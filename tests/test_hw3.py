"""Homework 3 (hyperoptimizers and clipping): its grader on the solution, the released
homework and typical wrong answers.

One batch, graded once for the module with two workers: the committed solution
(full marks), the released homework (0, without crashing) and six wrong answers
made from the solution with nbformat. To keep the batch quick the wrong answers
lose the experiment cells, so each of them also loses the ``results`` question;
every expected score is the grading file's total minus the points of the tests
the mistake should fail, read from the grading file. One more submission runs the
experiments and then edits ``RESULTS`` by hand: the results tests re-run part of the
experiments and compare, so it loses exactly the ``results`` question. Two quick ones report
the table and the sweep in other layouts than Part 5's DataFrames (the dicts of an older
release; a missing column and a missing run): they lose the ``results`` question, each test
with a message that says what is expected, and the grading goes on.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from grading_helpers import edit, grade_batch, points_split, with_cell, without

from coursekit.grading import build_plan, check_sync, load_assignment

ROOT = Path(__file__).resolve().parents[1]
NAME = "hw3_hyperoptimizers"
SOLUTION = ROOT / "solutions" / f"{NAME}.ipynb"
GRADING = ROOT / "solutions" / f"{NAME}_grading.py"
HOMEWORK = ROOT / "homework" / f"{NAME}.ipynb"

ASSIGNMENT = load_assignment(GRADING)
POINTS = {f"{q.id}/{t.name}": t.points for q in ASSIGNMENT.questions for t in q.tests}
TOTAL = sum(POINTS.values())
EXPERIMENT_CELLS = ("hand-check", "setup", "table-code", "table-show", "sweep-code",
                    "sweep-plot", "paths-plot")


def points_without(*failing: str) -> float:
    """The score of a submission failing exactly the tests whose key starts with one of
    ``failing`` (``"clipping/"`` for a question, ``"clipping/zero_gradient"`` for a test)."""
    return sum(points for key, points in POINTS.items() if not key.startswith(failing))


def solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def without_experiments(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` without the experiment cells."""
    for experiment in EXPERIMENT_CELLS:
        without(notebook, experiment)
    return notebook


def mistake(cell_id: str, old: str, new: str) -> nbformat.NotebookNode:
    """The solution with one edit and without its experiment cells."""
    return without_experiments(edit(solution(), cell_id, old, new))


# name: (notebook, tests it should fail besides the experiments')
WRONG = {
    "sgd_sign_error": (
        mistake("sgd-code", "return -float(np.dot(grad, prev_grad))",
                "return float(np.dot(grad, prev_grad))"),
        ("sgd_sgd/",)),
    "sgd_stale_alpha": (
        mistake("sgd-code",
                "    if prev_grad is not None:\n"
                "        alpha = alpha - kappa * sgd_hypergradient(grad, prev_grad)\n"
                "    return w - alpha * grad, alpha",
                "    new_w = w - alpha * grad\n"
                "    if prev_grad is not None:\n"
                "        alpha = alpha - kappa * sgd_hypergradient(grad, prev_grad)\n"
                "    return new_w, alpha"),
        ("sgd_sgd/short_run", "sgd_sgd/long_run")),
    # the stored direction still drives alpha, so the hypergradient test passes
    "adam_no_bias_correction": (
        mistake("adam-code", "return m_hat / (np.sqrt(v_hat) + eps), m, v",
                "return m / (np.sqrt(v) + eps), m, v"),
        ("adam_sgd/direction_first_step", "adam_sgd/direction_later", "adam_sgd/short_run",
         "adam_sgd/long_run")),
    "adam_current_direction": (
        mistake("adam-code",
                "    if state[\"direction\"] is not None:\n"
                "        alpha = alpha + kappa * float(np.dot(grad, state[\"direction\"]))\n"
                "    t = state[\"t\"] + 1\n"
                "    direction, m, v = adam_direction(grad, state[\"m\"], state[\"v\"], t, "
                "beta1, beta2, eps)\n",
                "    t = state[\"t\"] + 1\n"
                "    direction, m, v = adam_direction(grad, state[\"m\"], state[\"v\"], t, "
                "beta1, beta2, eps)\n"
                "    if state[\"direction\"] is not None:\n"
                "        alpha = alpha + kappa * float(np.dot(grad, direction))\n"),
        ("adam_sgd/hypergradient", "adam_sgd/short_run", "adam_sgd/long_run")),
    "clip_mean_of_raw_norms": (
        mistake("clip-code", "self.theta = ((self.t - 1) * self.theta + scale * norm) / self.t",
                "self.theta = ((self.t - 1) * self.theta + norm) / self.t"),
        ("clipping/",)),
    "clip_divides_by_zero": (
        mistake("clip-code", "scale = 1.0 if norm == 0 else min(1.0, threshold / norm)",
                "scale = min(1.0, threshold / norm)"),
        ("clipping/zero_gradient",)),
}

# The solution with RESULTS edited after the runs: the table and the sweep as typed from the
# printed tables (2 decimals), and a by-hand check that merely looks like rounding error.
FABRICATED = """
RESULTS["table"] = RESULTS["table"].round({"test error %": 2})
RESULTS["sweep"] = RESULTS["sweep"].round({"test error %": 2})
RESULTS["hand_check"] = {"sgd": 1e-10, "adam": 1e-10}
"""

# RESULTS in other layouts than Part 5's, set after the solution's code without its
# experiments. name: (the cell, {test: words its failure message must contain})
LAYOUTS = {
    "results_as_dicts": ("""
RESULTS = {"data": "digits", "hand_check": {"sgd": 1e-16, "adam": 1e-16},
           "table": {"SGD": 13.8, "SGD / SGD": 3.6},
           "sweep": {"kappa": np.array([0.01, 0.1]), "no_clip": np.array([3.6, 2.9]),
                     "clip": np.array([3.6, 2.9]), "baseline": 13.8}}
""", {"results/table": ("must be a pandas DataFrame", "got dict"),
      "results/sweep": ("must be a pandas DataFrame", "got dict")}),
    "results_incomplete": ("""
RESULTS = {"data": "digits", "hand_check": {"sgd": 1e-16, "adam": 1e-16},
           "table": pd.DataFrame({"stack": ["SGD", "SGD"], "seed": [0, 1],
                                  "error": [13.1, 14.5]}),
           "sweep": pd.DataFrame({"kappa": [0.01, 0.01], "clipped": [False, False],
                                  "seed": [0, 1], "test error %": [3.3, 3.9]})}
""", {"results/table": ("no column 'test error %'",),
      "results/sweep": ("no run with kappa=0.01, clipped=True, seed=0",)}),
}

# name: (notebook, expected score, expected status); the notebook's own comparison of
# the clippers feeds a zero gradient, so dividing by zero raises there too
CASES = {
    "solution": (solution(), TOTAL, "ok"),
    "homework": (nbformat.read(HOMEWORK, as_version=4), 0.0, "errors"),
    "fabricated_results": (with_cell(solution(), FABRICATED), points_without("results/"), "ok"),
    **{name: (with_cell(without_experiments(solution()), cell), points_without("results/"), "ok")
       for name, (cell, _) in LAYOUTS.items()},
    **{name: (notebook, points_without("results/", *failing),
              "errors" if name == "clip_divides_by_zero" else "ok")
       for name, (notebook, failing) in WRONG.items()},
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw3")
    notebooks = {name: notebook for name, (notebook, _, _) in CASES.items()}
    return grade_batch(GRADING, notebooks, root, timeout=240, cell_timeout=120)


@pytest.mark.parametrize("name", sorted(CASES))
def test_submission_gets_its_intended_score_and_status(graded, name):
    _, total, status = CASES[name]
    result = graded[name]
    assert result.status == status, result.detail
    assert result.score() == pytest.approx(total), [
        (t.test.key, t.message) for t in result.tests if not t.passed]


def test_every_mistake_fails_its_own_public_or_hidden_tests_and_nothing_else(graded):
    for name, (_, failing) in WRONG.items():
        failed = {t.test.key for t in graded[name].tests if not t.passed}
        expected = {key for key in POINTS if key.startswith(("results/", *failing))}
        assert failed == expected, name


def test_results_edited_after_the_runs_fail_exactly_the_results_tests(graded):
    failed = sorted(t.test.key for t in graded["fabricated_results"].tests if not t.passed)
    assert failed == sorted(key for key in POINTS if key.startswith("results/"))


def test_results_in_another_layout_fail_with_a_message_that_says_what_is_expected(graded):
    for name, (_, messages) in LAYOUTS.items():
        failed = {t.test.key: t.message for t in graded[name].tests if not t.passed}
        assert sorted(failed) == sorted(key for key in POINTS if key.startswith("results/"))
        for key, words in messages.items():
            assert all(word in failed[key] for word in words), (name, key, failed[key])


def test_hidden_tests_carry_most_points_as_the_grading_file_says():
    plan = build_plan(ASSIGNMENT)
    stated, actual = points_split(plan, GRADING)
    assert stated == actual
    assert actual[2] > actual[1]
    assert all(t.hidden for t in plan.tests if t.question == "results")


def test_homework_is_released_from_this_solution():
    problems = [p for p in check_sync(ROOT / "solutions", ROOT / "homework") if NAME in p]
    assert problems == []


def test_homework_keeps_the_probed_names_and_strips_every_answer():
    homework = nbformat.read(HOMEWORK, as_version=4)
    code = "\n".join(c.source for c in homework.cells if c.cell_type == "code")
    markdown = "\n".join(c.source for c in homework.cells if c.cell_type == "markdown")
    for name in ("def sgd_hypergradient(grad, prev_grad):",
                 "def sgd_sgd_step(w, grad, prev_grad, alpha, kappa):",
                 "def adam_direction(grad, m, v, t, beta1=0.9, beta2=0.999, eps=1e-8):",
                 "def adam_sgd_step(w, grad, state, alpha, kappa, beta1=0.9, beta2=0.999, "
                 "eps=1e-8):",
                 "class RunningMeanClipper:"):
        assert name in code
    for answer in ("np.dot", "self.theta", "def runs(", "def sweep_run(", "rule.history"):
        assert answer not in code
    assert "YOUR ANSWER HERE" in markdown and "control rows explain" not in markdown
