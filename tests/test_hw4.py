"""Homework 4 (Muon): grading the solution, the homework, mistakes and hostile submissions.

One batch (graded once per module, two workers) holds the committed solution, the released
homework, typical wrong answers, results edited after the runs, and hostile submissions
built as tests/test_grading_hostile.py builds them for the example assignment (a notebook
that patches the comparisons, one that forges the grader's replies, one that scans its own
memory for the hidden inputs, one that exits on a hidden input). The wrong answers are edits
of the solution without the experiment's training runs (the slow part), so each loses the
``experiment/comparison_runs`` test as well as the tests its mistake should fail; expected
scores come from the grading file's points, never typed in. The last tests check, with torch
as the judge, that the hidden inputs and the tolerances tell the mistakes apart and let the
correct variants through.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import test_grading_hostile as hostile
import torch
from grading_helpers import (
    edit,
    grade_batch,
    index,
    load_module,
    points_split,
    points_without,
    with_cell,
)

from coursekit.grading import build_plan, check_sync, load_assignment
from coursekit.optim.muon import newton_schulz

ROOT = Path(__file__).resolve().parents[1]
NAME = "hw4_muon"
SOLUTION = ROOT / "solutions" / f"{NAME}.ipynb"
HOMEWORK = ROOT / "homework" / f"{NAME}.ipynb"
GRADING = ROOT / "solutions" / f"{NAME}_grading.py"
PLAN = build_plan(load_assignment(GRADING))
TOTAL = PLAN.max_points()
GRADING_MODULE = load_module(GRADING, f"{NAME}_grading")
MUON_RUNS = ("muon/first_steps", "muon/nesterov_off", "muon/weight_decay", "muon/match_rms_adamw",
             "muon/many_steps_state", "muon/groups_and_missing_grads")
NS_NONZERO = ("newton_schulz/wide", "newton_schulz/tall", "newton_schulz/square",
              "newton_schulz/steps", "newton_schulz/large_norm")


def solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def quick_solution() -> nbformat.NotebookNode:
    """The solution without the training runs: every graded function, RESULTS["spectrum"]."""
    notebook = solution()
    notebook.cells = notebook.cells[:index(notebook, "experiment-run")]
    return notebook


def mistake(cell_id: str, old: str, new: str) -> nbformat.NotebookNode:
    return edit(quick_solution(), cell_id, old, new)


CUBIC = ("settings", "NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)",
         "NS_COEFFICIENTS = (1.5, -0.5, 0.0)")

def _coupled_decay() -> nbformat.NotebookNode:
    """L2 weight decay: lambda W added to the gradient, no decoupled shrinking."""
    notebook = mistake("muon-code", '                param.mul_(1 - lr * group["weight_decay"])\n',
                       "")
    return edit(notebook, "muon-code", "grad = param.grad\n",
                'grad = param.grad + group["weight_decay"] * param\n')


# name: (notebook, the tests it fails, expected status). A mistake in newton_schulz or MyMuon
# makes the notebook's own check against torch raise, hence "errors".
CASES = {
    "solution": (solution(), (), "ok"),
    "homework": (nbformat.read(HOMEWORK, as_version=4), ("",), "errors"),
    # every curve scaled by 1.01 and the spectrum rounded after the runs
    "fabricated_results": (with_cell(solution(), """
for record in RESULTS["runs"].values():
    record["batch_loss"] = [1.01 * x for x in record["batch_loss"]]
    record["train_loss_per_seed"] = [[1.01 * x for x in c] for c in record["train_loss_per_seed"]]
RESULTS["spectrum"] = {k: np.round(v, 3) for k, v in RESULTS["spectrum"].items()}
"""), ("experiment/comparison_runs", "experiment/spectrum"), "ok"),
    # the classic cubic iteration: every iterate differs, the zero matrix stays zero
    "cubic_coefficients": (mistake(*CUBIC), (*NS_NONZERO, *MUON_RUNS,
                                             "experiment/comparison_runs"), "errors"),
    # no division by the Frobenius norm: singular values above 1 explode
    "no_normalisation": (mistake("ns-code", "X = X / X.norm().clamp(min=eps)", "X = X"),
                         (*NS_NONZERO, *MUON_RUNS, "experiment/comparison_runs"), "errors"),
    # fan-in over fan-out: wide matrices get the boost that tall ones should
    "lr_adjustment_swapped": (mistake("muon-code", "math.sqrt(max(1.0, m / n))",
                                      "math.sqrt(max(1.0, n / m))"),
                              ("muon/adjust_lr", "muon/adjust_lr_any", "muon/first_steps",
                               "muon/nesterov_off", "muon/weight_decay", "muon/many_steps_state",
                               "muon/groups_and_missing_grads", "experiment/comparison_runs"),
                              "errors"),
    # nesterov ignored: the buffer itself is orthogonalised
    "nesterov_ignored": (mistake("muon-code", 'if group["nesterov"] else B', "if False else B"),
                         ("muon/first_steps", "muon/weight_decay", "muon/match_rms_adamw",
                          "muon/many_steps_state", "muon/groups_and_missing_grads",
                          "experiment/comparison_runs"), "errors"),
    # L2 weight decay added to the gradient instead of decoupled decay
    "coupled_weight_decay": (_coupled_decay(),
                             ("muon/first_steps", "muon/weight_decay", "muon/match_rms_adamw",
                              "muon/many_steps_state", "muon/groups_and_missing_grads",
                              "experiment/comparison_runs"), "errors"),
    # the decay at the adjusted rate: differs for tall matrices and with match_rms_adamw
    "decay_at_adjusted_rate": (
        mistake("muon-code", 'param.mul_(1 - lr * group["weight_decay"])',
                'param.mul_(1 - adjusted_lr(lr, param.shape, group["adjust_lr_fn"])'
                ' * group["weight_decay"])'),
        ("muon/first_steps", "muon/weight_decay", "muon/match_rms_adamw", "muon/many_steps_state",
         "muon/groups_and_missing_grads", "experiment/comparison_runs"), "errors"),
    # the output layer given to Muon as well
    "output_layer_to_muon": (mistake("experiment-code", "if p.ndim == 2][:-1]", "if p.ndim == 2]"),
                             ("experiment/split", "experiment/comparison_runs"), "ok"),
}


def _with_hw4_plan(function, *args, tests=PLAN.tests):
    """Call a builder of tests/test_grading_hostile.py with HW4's tests in place of the
    example's (they read the module's PLAN)."""
    saved, hostile.PLAN = hostile.PLAN, SimpleNamespace(tests=tests)
    try:
        return function(*args)
    finally:
        hostile.PLAN = saved


def _hidden_exit() -> nbformat.NotebookNode:
    """Exits, with a code made of a hidden input, when newton_schulz meets a matrix with an
    entry above 100: only the hidden large_norm test gives one."""
    return edit(quick_solution(), "ns-code", "    ### BEGIN SOLUTION\n",
                "    ### BEGIN SOLUTION\n    if float(G.abs().max()) > 100:\n        import os\n"
                "        os._exit(int(float(G.abs().max())) % 200 + 3)\n")


def _points_before(key: str) -> float:
    order = sorted(PLAN.tests, key=lambda t: t.hidden)
    return sum(t.points for t in order[:[t.key for t in order].index(key)])


# The hidden tests whose inputs and expected values hold distinctive numbers: the zero matrix
# and the results' differences (zeros) would be "found" in any process's memory.
SECRETS = [t for t in PLAN.tests
           if t.key.startswith("muon/") or t.key in NS_NONZERO]

HOSTILE = {
    # the cell also patches builtins.all, which the notebook's own split_parameters uses
    "cheat_patches": (with_cell(mistake(*CUBIC), hostile.CHEAT),
                      (*CASES["cubic_coefficients"][1], "experiment/split"), "errors"),
    "forged_replies": (with_cell(mistake(*CUBIC), _with_hw4_plan(hostile._forged_replies)),
                       CASES["cubic_coefficients"][1], "errors"),
    "snoop": (with_cell(quick_solution(), _with_hw4_plan(hostile._snoop, [str(GRADING)],
                                                         [str(GRADING.parent)], tests=SECRETS)),
              ("experiment/comparison_runs",), "errors"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw4")
    notebooks = {name: notebook for name, (notebook, _, _) in {**CASES, **HOSTILE}.items()}
    notebooks["hidden_exit_code"] = _hidden_exit()
    return grade_batch(GRADING, notebooks, root, timeout=300, cell_timeout=120)


@pytest.mark.parametrize("name", sorted({**CASES, **HOSTILE}))
def test_each_submission_fails_exactly_the_tests_its_mistake_should(graded, name):
    _, failing, status = {**CASES, **HOSTILE}[name]
    result = graded[name]
    assert result.status == status, result.detail
    failed = sorted(t.test.key for t in result.tests if not t.passed)
    expected = sorted(t.key for t in PLAN.tests if failing and t.key.startswith(failing))
    assert failed == expected, (set(failed) - set(expected), set(expected) - set(failed))
    assert result.score() == pytest.approx(points_without(PLAN, *failing) if failing else TOTAL)


def test_the_solution_earns_every_point_and_the_homework_none(graded):
    assert graded["solution"].score() == pytest.approx(TOTAL)
    assert all(t.passed for t in graded["solution"].tests)
    assert not any(t.passed for t in graded["homework"].tests)


def test_the_hidden_inputs_are_in_no_memory_of_the_running_cells(graded):
    found = hostile._snooped(graded)
    assert found["canary"] >= 1, "the memory scan found nothing, not even its canary"
    # HW4's figures leave matplotlib's font files open (readable descriptors of the
    # notebook's own); no other descriptor may be readable
    assert found["memory"] == [] and hostile.foreign_descriptors(found) == []


def test_a_notebook_that_exits_on_a_hidden_input_keeps_what_it_earned_before(graded):
    result = graded["hidden_exit_code"]
    assert result.status == "crashed"
    assert result.detail == "the process stopped during the hidden tests"
    assert result.score() == pytest.approx(_points_before("newton_schulz/large_norm"))


def test_hidden_tests_carry_most_points_as_the_grading_file_says():
    stated, actual = points_split(PLAN, GRADING)
    assert stated == actual
    assert actual[2] > actual[1]


def test_homework_is_released_from_the_solution():
    assert [d for d in check_sync(ROOT / "solutions", ROOT / "homework") if NAME in d] == []


# The references, the hidden inputs and the tolerances, checked against torch --------------


def _inputs(key: str) -> dict:
    return next(t.inputs for t in PLAN.tests if t.key == key)


def _tests(prefix: str):
    return [t for t in PLAN.tests if t.key.startswith(prefix)]


def test_the_float64_reference_is_torchs_iteration_without_the_bfloat16_cast():
    """Run in float64, torch's code equals coursekit's newton_schulz(dtype=None) to rounding,
    and its real bfloat16 output is 1e-2 away: the gap the tolerance must not cover."""
    for test in _tests("newton_schulz/"):
        G = torch.tensor(test.inputs["G"])
        steps = test.inputs["steps"] or 5
        expected = GRADING_MODULE.ns_reference(**test.inputs)["X"]
        np.testing.assert_allclose(expected, newton_schulz(G, steps, dtype=None).numpy(),
                                   rtol=0, atol=1e-13)
        bfloat16 = newton_schulz(G, steps, dtype=torch.bfloat16).double().numpy()
        if G.abs().max() > 0:
            assert np.abs(bfloat16 - expected).max() > 100 * GRADING_MODULE.NS_ATOL


def _authors_normalisation(G, steps):
    """Jordan et al.'s first version: G / (||G||_F + eps), products in another order."""
    a, b, c = GRADING_MODULE.QUINTIC
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / (np.linalg.norm(X) + 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + b * (A @ X) + c * (A @ (A @ X))
    return X.T if tall else X


def test_the_newton_schulz_tolerance_passes_correct_variants_and_fails_the_cubic():
    for test in _tests("newton_schulz/"):
        G, steps = np.asarray(test.inputs["G"]), test.inputs["steps"] or 5
        expected = GRADING_MODULE.ns_reference(**test.inputs)["X"]
        margin = np.abs(_authors_normalisation(G, steps) - expected) - (
            test.atol + test.rtol * np.abs(expected))
        assert margin.max() < 0, test.key
        if np.abs(G).max() > 0:
            cubic = newton_schulz(torch.tensor(G), steps, coefficients=(1.5, -0.5, 0.0),
                                  dtype=None).numpy()
            assert np.abs(cubic - expected).max() > 1e3 * test.atol, test.key


def _run(inputs, **changes):
    return GRADING_MODULE.muon_run_reference(**{**inputs, "options": {**inputs["options"],
                                                                       **changes}})["params"]


def _largest_gap(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def test_the_hidden_muon_inputs_tell_each_flag_apart():
    assert _largest_gap(_run(_inputs("muon/nesterov_off")),
                        _run(_inputs("muon/nesterov_off"), nesterov=True)) > 1e-3
    assert _largest_gap(_run(_inputs("muon/weight_decay")),
                        _run(_inputs("muon/weight_decay"), weight_decay=0.0)) > 1e-3
    assert _largest_gap(_run(_inputs("muon/match_rms_adamw")),
                        _run(_inputs("muon/match_rms_adamw"), adjust_lr_fn=None)) > 1e-3
    tall = [s for s in (np.shape(p) for p in _inputs("muon/weight_decay")["params"])
            if s[0] > s[1]]
    assert tall and math.sqrt(tall[0][0] / tall[0][1]) > 1.2


def test_the_lr_reference_is_torchs_adjustment():
    inputs = _inputs("muon/adjust_lr_any")
    expected = GRADING_MODULE.lr_reference(**inputs)
    for (shape, fn), value in zip(inputs["cases"], expected, strict=True):
        m, n = shape
        factor = 0.2 * math.sqrt(max(m, n)) if fn == "match_rms_adamw" else math.sqrt(max(1, m / n))
        assert value == pytest.approx(inputs["lr"] * factor, rel=1e-12)
