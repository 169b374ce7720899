"""Homework 1 (momentum and Adam for the primer graph): the grader against known submissions.

One batch, graded once for the module with two workers, holds the committed solution
(full marks), the released homework (nothing, without stopping the batch) and typical
wrong answers made from the solution with nbformat. The wrong answers leave out the
experiment cells to keep the batch short, so they also lose the results question.
Expected scores are the grading file's points minus those of the tests each mistake
should fail; the references those tests compare with come from torch.optim and the torch
twin, not from the solution.

Two more submissions run the experiments: the solution with its results edited by hand
after the run (it must lose exactly the results points: the results tests re-run the
experiments and compare), and an honest run of a wrong Adam (its results are what its code
computes, so it keeps the results points and loses only the tests of its mistake).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from grading_helpers import grade_batch, points_split, with_cell

from coursekit.grading import build_plan, check_sync, load_assignment

ROOT = Path(__file__).resolve().parents[1]
NAME = "hw1_primer_optimizers"
SOLUTION = ROOT / "solutions" / f"{NAME}.ipynb"
GRADING = ROOT / "solutions" / f"{NAME}_grading.py"
HOMEWORK = ROOT / "homework" / f"{NAME}.ipynb"
PUBLIC = ROOT / "homework" / f"{NAME}_public.json"

# test key ("question/name") -> points, in the grading file's order
POINTS = {f"{question.id}/{test.name}": test.points
          for question in load_assignment(GRADING).questions for test in question.tests}
TOTAL = sum(POINTS.values())

# The cells that run the experiments (and the checks, which the grader skips anyway).
EXPERIMENT_CELLS = ("verify-run", "verify-fails", "lr-code", "lr-plot", "beta-run",
                    "beta-plot", "check-all")

# name: (cell id, text in the solution, replacement, test keys the mistake should fail)
MISTAKES = {
    "sgd_plus_sign_error": (
        "sgd-plus-code", "p -= self.lr * v", "p += self.lr * v",
        ("sgd_plus/two_steps", "sgd_plus/several_steps", "verify/sgd_plus_on_model")),
    # the moments stay right; every parameter update is wrong
    "adam_without_bias_correction": (
        "adam-code", "p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)",
        "p -= self.lr * m / (np.sqrt(v) + self.eps)",
        ("adam/first_step", "adam/bias_correction", "adam/several_steps", "adam/eps",
         "verify/adam_on_model")),
    # the original report's formula: invisible with unit-sized gradients, caught by a
    # large eps and by 200 steps on the model, whose gradients are small
    "adam_eps_inside_sqrt": (
        "adam-code", "(np.sqrt(v_hat) + self.eps)", "np.sqrt(v_hat + self.eps)",
        ("adam/eps", "verify/adam_on_model")),
    # torch's gradients accumulate: the verification reports differences that are not there
    "verification_without_zero_grad": (
        "verify-code", "        torch_optimizer.zero_grad()\n", "",
        ("verify/matched", "verify/mismatched_momentum", "verify/mismatched_betas")),
}


# The solution with RESULTS edited after the experiments ran: one loss curve replaced by
# plausible numbers near it, and the beta-grid tables as typed from the printed table.
FABRICATED = """
rng = np.random.default_rng(7)
curve = RESULTS["lr_curves"]["multi_neuron"]["Adam"][1e-3]
RESULTS["lr_curves"]["multi_neuron"]["Adam"][1e-3] = curve + rng.normal(0, 0.01, curve.shape)
for entry in RESULTS["beta_grid"].values():
    for field in ("final_loss", "min_loss"):
        entry[field] = np.round(entry[field], 4)
"""

# An honest run of a wrong Adam (the original report's eps inside the square root), with
# every experiment: the notebook's own check against torch raises, the later cells run.
HONEST_WRONG_ADAM = ("adam-code", "(np.sqrt(v_hat) + self.eps)", "np.sqrt(v_hat + self.eps)",
                     ("adam/eps", "verify/adam_on_model"))


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def _without_experiments(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    ids = {cell.id for cell in notebook.cells}
    assert set(EXPERIMENT_CELLS) <= ids, sorted(set(EXPERIMENT_CELLS) - ids)
    notebook.cells = [cell for cell in notebook.cells if cell.id not in EXPERIMENT_CELLS]
    return notebook


def _edited(cell_id: str, old: str, new: str) -> nbformat.NotebookNode:
    notebook = _without_experiments(_solution())
    cell = next(cell for cell in notebook.cells if cell.id == cell_id)
    assert cell.source.count(old) == 1, f"{old!r} is not once in cell {cell_id}"
    cell.source = cell.source.replace(old, new)
    return notebook


def _points_without(*failing: str) -> float:
    """The score of a submission that fails exactly the tests ``failing`` (keys or prefixes)."""
    assert all(key in POINTS or key.endswith("/") for key in failing), failing
    return sum(points for key, points in POINTS.items() if not key.startswith(failing))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw1")
    cell_id, old, new, _ = HONEST_WRONG_ADAM
    honest = _solution()
    cell = next(cell for cell in honest.cells if cell.id == cell_id)
    cell.source = cell.source.replace(old, new)
    submissions = {
        "solution": _solution(),
        "homework": nbformat.read(HOMEWORK, as_version=4),
        "fabricated_results": with_cell(_solution(), FABRICATED),
        "honest_wrong_adam": honest,
        **{name: _edited(cell_id, old, new)
           for name, (cell_id, old, new, _) in MISTAKES.items()},
    }
    return grade_batch(GRADING, submissions, root, timeout=300, cell_timeout=120)


def test_the_solution_earns_full_marks(graded):
    result = graded["solution"]
    assert result.status == "ok", result.detail
    failed = [(t.test.key, t.message) for t in result.tests if not t.passed]
    assert failed == []
    assert result.score() == pytest.approx(TOTAL)


def test_the_released_homework_earns_nothing_and_is_graded_to_the_end(graded):
    result = graded["homework"]
    assert result.status == "errors", result.detail
    assert sorted(t.test.key for t in result.tests) == sorted(POINTS)
    assert result.score() == 0.0


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_a_typical_mistake_loses_exactly_the_points_of_its_tests(graded, name):
    result = graded[name]
    assert result.status == "ok", result.detail
    failing = MISTAKES[name][3]
    assert sorted(t.test.key for t in result.tests if not t.passed) == sorted(
        [*failing, *(key for key in POINTS if key.startswith("results/"))])
    assert result.score() == pytest.approx(_points_without(*failing, "results/"))


def test_results_edited_after_the_run_lose_exactly_the_results_points(graded):
    result = graded["fabricated_results"]
    assert result.status == "ok", result.detail
    results = sorted(key for key in POINTS if key.startswith("results/"))
    assert results  # the results question exists and all of it is re-run
    assert sorted(t.test.key for t in result.tests if not t.passed) == results
    assert result.score() == pytest.approx(_points_without("results/"))


def test_honest_results_of_a_wrong_optimizer_keep_the_results_points(graded):
    result = graded["honest_wrong_adam"]
    assert result.status == "errors", result.detail  # the notebook's own torch check raises
    failing = HONEST_WRONG_ADAM[3]
    assert sorted(t.test.key for t in result.tests if not t.passed) == sorted(failing)
    assert result.score() == pytest.approx(_points_without(*failing))


def test_the_results_tests_re_run_every_curve_and_whole_runs():
    plan = build_plan(load_assignment(GRADING))
    inputs = {t.name: t.inputs for t in plan.tests if t.question == "results"}
    lr = inputs["lr_grid"]
    assert sorted(map(tuple, lr["cells"])) == sorted(
        (m, name, rate) for m in ("one_neuron", "multi_neuron") for name in ("SGD", "SGD+", "Adam")
        for rate in (1e-2, 1e-3, 1e-4))
    assert lr["picks"][-1] == lr["prefix"] - 1 and lr["full_picks"][-1] == lr["iterations"] - 1
    assert list(lr["full"]) in [list(cell) for cell in lr["cells"]]
    beta = [tuple(cell) for cell in inputs["beta_grid"]["cells"]]
    assert len(set(beta)) == len(beta) == 4
    assert sorted({cell[0] for cell in beta}) == [8, 32]


def test_hidden_tests_carry_most_points_as_the_grading_file_says():
    plan = build_plan(load_assignment(GRADING))
    stated, actual = points_split(plan, GRADING)
    assert stated == actual
    assert actual[2] > actual[1]


def test_homework_is_the_release_of_the_solution(tmp_path):
    solutions, homework = tmp_path / "solutions", tmp_path / "homework"
    solutions.mkdir()
    homework.mkdir()
    for path in (SOLUTION, GRADING):
        shutil.copy(path, solutions / path.name)
    for path in (HOMEWORK, PUBLIC):
        shutil.copy(path, homework / path.name)
    assert check_sync(solutions, homework) == []
