"""Homework 2 (Adam with scheduled betas): grading the solution, the homework and mistakes.

One batch (graded once per module, two workers) holds the committed solution, the
released homework and typical wrong answers. The wrong answers are edits of the solution
with the experiment cells cut off (they are the slow part), so each loses the experiment
question's points as well as the points of the tests its mistake should fail; expected
scores come from the grading file's points, never typed in. One more submission runs the
experiments and then edits its results by hand: the experiment tests re-run part of every
run and compare, so it loses exactly the experiment question's points. The last tests check
that the hidden tests' inputs can tell the mistakes apart, with torch as the judge.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
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

ROOT = Path(__file__).resolve().parents[1]
NAME = "hw2_adam_schedules"
SOLUTION = ROOT / "solutions" / f"{NAME}.ipynb"
HOMEWORK = ROOT / "homework" / f"{NAME}.ipynb"
GRADING = ROOT / "solutions" / f"{NAME}_grading.py"
PLAN = build_plan(load_assignment(GRADING))
TOTAL = PLAN.max_points()
FIRST_EXPERIMENT_CELL = "experiment-text"


GRADING_MODULE = load_module(GRADING, f"{NAME}_grading")


def solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def quick_solution() -> nbformat.NotebookNode:
    """The solution up to Part 3: every graded function, none of the training runs."""
    notebook = solution()
    notebook.cells = notebook.cells[:index(notebook, FIRST_EXPERIMENT_CELL)]
    return notebook


def mistake(cell_id: str, old: str, new: str) -> nbformat.NotebookNode:
    return edit(quick_solution(), cell_id, old, new)


# The solution with its results edited after the runs: every curve scaled by 1.01, the test
# accuracies and the skewness table as typed from the printed tables (3 decimals).
FABRICATED = """
for record in [*RESULTS["digits"]["runs"].values(), *EXPLORATION["digits"]["runs"].values()]:
    for field in ("batch_loss", "train_loss"):
        record[field] = [1.01 * value for value in record[field]]
    record["test_acc_per_seed"] = [round(value, 3) for value in record["test_acc_per_seed"]]
for stats in EXPLORATION["digits"]["skewness"].values():
    for key in ("per_example", "minibatch", "predicted_minibatch", "share_per_example_above_1"):
        stats[key] = round(stats[key], 3)
"""

ADAM_UPDATE_TESTS = ("adam/torch_contract", "adam/first_steps", "adam/many_steps", "adam/state",
                     "adam/weight_decay", "adam/amsgrad", "adam/groups_and_missing_grads")

# name: (notebook, expected total, expected status). A mistake in MyAdam makes the
# notebook's own check against torch (cell adam-verify) raise, hence "errors".
CASES = {
    "solution": (solution(), TOTAL, "ok"),
    "homework": (nbformat.read(HOMEWORK, as_version=4), 0.0, "errors"),
    "fabricated_results": (with_cell(solution(), FABRICATED), points_without(PLAN, "experiment/"),
                           "ok"),
    # AdamW's decay instead of torch Adam's L2 term: only the weight-decay test sees it
    "decoupled_weight_decay": (
        mistake("adam-code", 'grad = grad + group["weight_decay"] * param',
                'param.mul_(1 - group["lr"] * group["weight_decay"])'),
        points_without(PLAN, "adam/weight_decay", "experiment/"), "errors"),
    # the running maximum is kept but never used
    "amsgrad_maximum_unused": (
        mistake("adam-code", '                    v = state["max_exp_avg_sq"]\n', ""),
        points_without(PLAN, "adam/amsgrad", "experiment/"), "errors"),
    # every update of MyAdam is wrong; ScheduledAdam has its own corrections and survives
    "no_bias_correction": (
        mistake("adam-code", "return 1 - beta1**t, 1 - beta2**t", "return 1.0, 1.0"),
        points_without(PLAN, *ADAM_UPDATE_TESTS, "experiment/"), "errors"),
    # epoch = t // n: the decay starts one step early in every epoch
    "epoch_off_by_one": (
        mistake("scheduled-code", 'epoch = (state["step"] - 1) // self.steps_per_epoch',
                'epoch = state["step"] // self.steps_per_epoch'),
        points_without(PLAN, "schedule/per_epoch_steps", "experiment/"), "ok"),
    # the rate k ignored: right for the report's k = 1 only, so even k = 0 decays
    "schedule_ignores_k": (
        mistake("schedule-code", "return beta * np.exp(-k * t)", "return beta * np.exp(-t)"),
        points_without(PLAN, "schedule/any_k", "schedule/no_decay_is_adam",
                       "schedule/per_epoch_steps", "experiment/"), "ok"),
    # torch's 1 - beta_t^t kept under scheduled betas
    "scheduled_power_correction": (
        mistake("scheduled-code", 'state["beta1_product"] = state.get("beta1_product", 1.0) '
                '* beta1\n        state["beta2_product"] = state.get("beta2_product", 1.0) '
                '* beta2\n        return 1 - state["beta1_product"], 1 - state["beta2_product"]',
                'return super().bias_corrections(state, beta1, beta2)'),
        points_without(PLAN, "schedule/per_epoch_steps", "experiment/"), "ok"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw2")
    notebooks = {name: notebook for name, (notebook, _, _) in CASES.items()}
    return grade_batch(GRADING, notebooks, root, timeout=300, cell_timeout=120)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_submission_gets_its_intended_score_and_status(graded, name):
    _, total, status = CASES[name]
    result = graded[name]
    assert result.status == status, result.detail
    assert result.score() == pytest.approx(total)


def test_the_solution_passes_every_test_and_the_homework_none(graded):
    assert all(t.passed for t in graded["solution"].tests)
    assert not any(t.passed for t in graded["homework"].tests)


def test_results_edited_after_the_runs_fail_exactly_the_experiment_tests(graded):
    failed = sorted(t.test.key for t in graded["fabricated_results"].tests if not t.passed)
    assert failed == sorted(t.key for t in PLAN.tests if t.question == "experiment")


def test_the_experiment_tests_re_run_every_reported_run():
    inputs = {t.name: t.inputs for t in PLAN.tests if t.question == "experiment"}
    runs = GRADING_MODULE.COMPARISON
    assert sorted(inputs["comparison_runs"]["names"]) == sorted(runs)
    assert inputs["comparison_runs"]["full"] in runs
    assert sorted(inputs["ours_matches_torch"]["names"]) == ["adam_ours", "adam_torch"]
    assert sorted(inputs["exploration_runs"]["names"]) == ["p2", "p3", "p4"]
    assert inputs["exploration_runs"]["full"] in ("p3", "p4")
    assert inputs["exploration_runs"]["skewness"] in ("init", "trained")
    assert all(1 <= i["prefix_epochs"] <= 2 and i["other_seed"] in (1, 2)
               for i in inputs.values())


def test_hidden_tests_carry_most_points_as_the_grading_file_says():
    stated, actual = points_split(PLAN, GRADING)
    assert stated == actual
    assert actual[2] > actual[1]


def test_homework_is_released_from_the_solution():
    assert [d for d in check_sync(ROOT / "solutions", ROOT / "homework") if NAME in d] == []


# The references and the hidden inputs, checked against torch -------------------------------


def _inputs(key: str) -> dict:
    return next(t.inputs for t in PLAN.tests if t.key == key)


def test_the_written_out_schedule_reference_without_decay_is_torch_adam():
    inputs = {**_inputs("schedule/per_epoch_steps"), "k": 0.0}
    ours = GRADING_MODULE.scheduled_recursion_reference(**inputs)["params"]
    torch_adam = GRADING_MODULE.scheduled_torch_reference(**inputs)["params"]
    for a, b in zip(ours, torch_adam, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_the_schedule_reference_decays_betas_per_epoch_as_written():
    inputs = _inputs("schedule/per_epoch_steps")
    k, n = inputs["k"], inputs["steps_per_epoch"]
    beta1, beta2 = inputs["options"]["betas"]
    lr, eps = inputs["options"]["lr"], inputs["options"]["eps"]
    theta = torch.tensor(inputs["params"][1], dtype=torch.float64)
    m, v, weights1, weights2 = 0 * theta, 0 * theta, [], []
    for t, g in enumerate(torch.tensor(inputs["grads"][1], dtype=torch.float64), start=1):
        b1, b2 = beta1 * np.exp(-k * ((t - 1) // n)), beta2 * np.exp(-k * ((t - 1) // n))
        weights1 = [w * b1 for w in weights1] + [1 - b1]
        weights2 = [w * b2 for w in weights2] + [1 - b2]
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / sum(weights1)) / ((v / sum(weights2)).sqrt() + eps)
    expected = GRADING_MODULE.scheduled_recursion_reference(**inputs)["params"][1]
    np.testing.assert_allclose(expected, theta.numpy(), rtol=1e-10)


def _params_after(optimizer_class, inputs, **options):
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in inputs["params"]]
    optimizer = optimizer_class(tensors, **options)
    for step in range(len(inputs["has_grad"])):
        for tensor, grads in zip(tensors, inputs["grads"], strict=True):
            tensor.grad = torch.tensor(grads[step], dtype=torch.float64)
        optimizer.step()
    return torch.cat([t.detach().flatten() for t in tensors])


def test_the_hidden_weight_decay_inputs_tell_l2_from_decoupled_decay():
    inputs = _inputs("adam/weight_decay")
    options = {**inputs["options"], "betas": tuple(inputs["options"]["betas"])}
    l2 = _params_after(torch.optim.Adam, inputs, **options)
    decoupled = _params_after(torch.optim.AdamW, inputs, **options)
    assert (l2 - decoupled).abs().max() > 1e-3


def test_the_hidden_amsgrad_inputs_make_the_running_maximum_matter():
    inputs = _inputs("adam/amsgrad")
    options = {**inputs["options"], "betas": tuple(inputs["options"]["betas"])}
    with_max = _params_after(torch.optim.Adam, inputs, **options)
    without = _params_after(torch.optim.Adam, inputs, **{**options, "amsgrad": False})
    assert (with_max - without).abs().max() > 1e-3
