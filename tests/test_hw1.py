"""Homework 1 (momentum and Adam for the primer graph): the grader against known submissions.

One batch, graded once for the module with two workers, holds the committed solution
(full marks), the released homework (nothing, without stopping the batch) and typical
wrong answers made from the solution with nbformat. The wrong answers leave out the
experiment cells to keep the batch short, so they also lose the results question.
Expected scores are the grading file's points minus those of the tests each mistake
should fail; the references those tests compare with come from torch.optim and the torch
twin, not from the solution.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from grading_helpers import grade_batch

from coursekit.grading import check_sync, load_assignment

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
    submissions = {
        "solution": _solution(),
        "homework": nbformat.read(HOMEWORK, as_version=4),
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


def test_homework_is_the_release_of_the_solution(tmp_path):
    solutions, homework = tmp_path / "solutions", tmp_path / "homework"
    solutions.mkdir()
    homework.mkdir()
    for path in (SOLUTION, GRADING):
        shutil.copy(path, solutions / path.name)
    for path in (HOMEWORK, PUBLIC):
        shutil.copy(path, homework / path.name)
    assert check_sync(solutions, homework) == []
