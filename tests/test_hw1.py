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

The beta-grid probe reads RESULTS["beta_grid"], the DataFrame ``sweep`` returns; it is also
run here directly, in this process, on sweeps of a stand-in ``adam_run``: it must accept the
DataFrame, find numbers changed after the run, and fail with a message naming the problem
(never a traceback from inside) for anything else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from grading_helpers import grade_batch, load_module, points_split, with_cell

from coursekit.experiments.sweep import sweep
from coursekit.grading import build_plan, check_sync, load_assignment
from coursekit.grading.child import call_probe, decode, describe, encode
from coursekit.grading.verdict import compare

ROOT = Path(__file__).resolve().parents[1]
NAME = "hw1_primer_optimizers"
SOLUTION = ROOT / "solutions" / f"{NAME}.ipynb"
GRADING = ROOT / "solutions" / f"{NAME}_grading.py"
HOMEWORK = ROOT / "homework" / f"{NAME}.ipynb"

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
# plausible numbers near it, and the beta grid's losses as typed from the printed table.
FABRICATED = """
rng = np.random.default_rng(7)
curve = RESULTS["lr_curves"]["multi_neuron"]["Adam"][1e-3]
RESULTS["lr_curves"]["multi_neuron"]["Adam"][1e-3] = curve + rng.normal(0, 0.01, curve.shape)
losses = ["final_loss", "min_loss"]
RESULTS["beta_grid"][losses] = RESULTS["beta_grid"][losses].round(4)
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
    # without the experiment cells RESULTS["beta_grid"] is still None: a message, not a crash
    beta = next(t for t in result.tests if t.test.key == "results/beta_grid")
    assert "must be the pandas DataFrame that sweep returns" in beta.message
    assert "got NoneType" in beta.message


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
    shutil.copy(HOMEWORK, homework / HOMEWORK.name)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)  # where the launch links point
    assert check_sync(solutions, homework) == []


# The beta-grid probe in this process, on sweeps of a stand-in adam_run -------------------------

GRADING_MODULE = load_module(GRADING, f"{NAME}_grading")
BETA_INPUTS = next(t.inputs for t in build_plan(load_assignment(GRADING)).tests
                   if t.key == "results/beta_grid")


def _stand_in_adam_run(beta1, beta2, batch_size):
    """Numbers that change with every argument, in place of a training run."""
    return {"final_loss": 0.05 + beta1 * beta2 / batch_size, "min_loss": 0.05 - beta2 / batch_size,
            "final_loss_se": 0.001 * beta1}


def _beta_grid(adam_run=_stand_in_adam_run):
    inputs = BETA_INPUTS
    return sweep(adam_run, {"batch_size": inputs["batch_sizes"], "beta1": inputs["beta1s"],
                            "beta2": inputs["beta2s"]}, executor="serial", progress=False)


def _probe_beta_grid(grid, adam_run=_stand_in_adam_run):
    """(the grader's verdict: None when it passes, else its message; the probe's error)."""
    student = {"RESULTS": {"beta_grid": grid}, "adam_run": adam_run}
    probe = GRADING_MODULE.beta_grid_rerun
    try:
        value = decode(encode(call_probe(probe.source, probe.name, student, BETA_INPUTS)))
    except Exception as exc:  # what the grader reports as the test's message
        return None, describe(exc)
    expected = GRADING_MODULE.beta_grid_expected(**BETA_INPUTS)
    return compare(value, expected, rtol=0.0, atol=GRADING_MODULE.RESULTS_ATOL), None


def _cell_rows(grid, cell):
    batch_size, i, j = cell
    return ((grid["batch_size"] == batch_size) & (grid["beta1"] == BETA_INPUTS["beta1s"][i])
            & (grid["beta2"] == BETA_INPUTS["beta2s"][j]))


def test_the_beta_grid_probe_accepts_the_dataframe_sweep_returns():
    grid = _beta_grid()
    assert len(grid) == 18 and grid["error"].isna().all()
    assert _probe_beta_grid(grid) == (None, None)
    # the same rows in another order, or with extra columns, are the same results
    shuffled = grid.sample(frac=1.0, random_state=0).assign(note="reordered")
    assert _probe_beta_grid(shuffled) == (None, None)


@pytest.mark.parametrize("field", ["final_loss", "min_loss"])
def test_the_beta_grid_probe_finds_a_loss_changed_after_the_run(field):
    grid = _beta_grid()
    cell = BETA_INPUTS["cells"][0]
    grid.loc[_cell_rows(grid, cell), field] += 1e-6
    message, error = _probe_beta_grid(grid)
    assert error is None
    batch_size, i, j = cell
    beta1, beta2 = BETA_INPUTS["beta1s"][i], BETA_INPUTS["beta2s"][j]
    assert f"batch_{batch_size}/beta1={beta1:g}/beta2={beta2:g}" in message and field in message


def test_the_beta_grid_probe_finds_a_time_that_is_not_positive():
    grid = _beta_grid()
    grid.loc[grid.index[-1], "time"] = 0.0
    message, error = _probe_beta_grid(grid)
    assert error is None and "time_sign" in message


def _old_dict_form(grid):
    """RESULTS["beta_grid"] as the homework used to have it: batch size -> 3x3 tables."""
    return {batch_size: {"beta1": list(BETA_INPUTS["beta1s"]), "beta2": list(BETA_INPUTS["beta2s"]),
                         **{field: runs.pivot(index="beta1", columns="beta2", values=field)
                            .to_numpy() for field in ("time", "final_loss", "min_loss")}}
            for batch_size, runs in grid.groupby("batch_size")}


@pytest.mark.parametrize(("make", "kind"), [
    (_old_dict_form, "dict"),
    (lambda grid: grid.to_dict("records"), "list"),
    (lambda grid: grid[["final_loss", "min_loss"]].to_numpy(), "ndarray"),
    (lambda grid: None, "NoneType"),
])
def test_the_beta_grid_probe_names_what_it_got_instead_of_a_dataframe(make, kind):
    message, error = _probe_beta_grid(make(_beta_grid()))
    assert message is None
    assert error.startswith("TypeError: RESULTS['beta_grid'] must be the pandas DataFrame that "
                            f"sweep returns (one row per run), got {kind}")


def test_the_beta_grid_probe_names_a_missing_column():
    _, error = _probe_beta_grid(_beta_grid().drop(columns=["min_loss", "time"]))
    assert error.startswith("ValueError: RESULTS['beta_grid'] has no column 'time', 'min_loss'")


def test_the_beta_grid_probe_names_a_missing_or_repeated_grid_point():
    grid = _beta_grid()
    last = grid.iloc[-1]
    point = (f"batch_size={last['batch_size']:g}, beta1={last['beta1']:g}, "
             f"beta2={last['beta2']:g}")
    _, error = _probe_beta_grid(grid.iloc[:-1])
    assert error == f"ValueError: RESULTS['beta_grid'] must have one row for {point}, it has 0"
    _, error = _probe_beta_grid(pd.concat([grid, grid.iloc[[-1]]]))
    assert error == f"ValueError: RESULTS['beta_grid'] must have one row for {point}, it has 2"


def test_the_beta_grid_probe_names_a_run_that_failed():
    def adam_run(beta1, beta2, batch_size):
        if (beta1, beta2, batch_size) == (0.9, 0.8, 32):
            raise FloatingPointError("overflow in exp")
        return _stand_in_adam_run(beta1, beta2, batch_size)

    grid = _beta_grid(adam_run)
    assert grid["error"].notna().sum() == 1  # sweep keeps the failed run, with its error
    _, error = _probe_beta_grid(grid, adam_run)
    assert error == ("ValueError: RESULTS['beta_grid']: the run batch_size=32, beta1=0.9, "
                     "beta2=0.8 failed (FloatingPointError: overflow in exp); fix adam_run and "
                     "run the sweep again")


def test_the_grading_file_loads_without_pandas():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('grading', {str(GRADING)!r})\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "print('pandas' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
