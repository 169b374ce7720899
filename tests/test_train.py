"""coursekit.train: fit against a hand-written loop, divergence, schedulers, checkpoints.

The reference loop below is the textbook one written out; fit must take exactly
the same steps (bit-identical losses and weights on the CPU), in closure mode too
(with L-BFGS, against a loop calling ``step(closure)`` by hand). The resume test
compares a run of 4 epochs with 2 epochs + save + fresh objects + load + 2 epochs.
The gradient budget and the step hooks are checked against step counts and
losses computed from the batch sizes and the reference loop.
"""

from __future__ import annotations

import copy
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import coursekit
from coursekit import data, models, train


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0)


def _reference_loop(model, optimizer, x, y, batch_size, seed, epochs, max_steps=None,
                    closure=False):
    """zero_grad, forward, loss, backward, step over Batches.order(epoch); the losses.

    With ``closure``: ``optimizer.step(closure)``, and the loss of the closure's
    first call in each step.
    """
    losses = []
    for epoch in range(epochs):
        order = data.Batches(x, y, batch_size, seed=seed).order(epoch)
        model.train()
        for start in range(0, len(y), batch_size):
            if max_steps is not None and len(losses) == max_steps:
                return losses
            index = order[start:start + batch_size]
            if closure:
                values = []

                def evaluate_batch(index=index, values=values):
                    optimizer.zero_grad()
                    loss = F.cross_entropy(model(x[index]), y[index])
                    loss.backward()
                    values.append(loss.item())
                    return loss

                optimizer.step(evaluate_batch)
                losses.append(values[0])
                continue
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def test_mlp_on_digits_reaches_95_percent_test_accuracy(digits):
    coursekit.seed(0)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=128)
    optimizer = coursekit.optim.Adam(model.parameters(), lr=1e-3)
    history = train.fit(model, optimizer, digits.train, epochs=20, valid=digits.valid,
                        batch_size=64, progress=False)
    assert history.status == "completed" and history.epochs == 20
    assert train.evaluate(model, digits.test)["accuracy"] >= 0.95


def test_fit_takes_exactly_the_steps_of_the_reference_loop(digits):
    coursekit.seed(1)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=32, activation="tanh")
    twin = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)

    history = train.fit(model, optimizer, digits.train, epochs=3, batch_size=50, seed=4,
                        progress=False)
    expected = _reference_loop(twin, twin_optimizer, digits.train.x, digits.train.y, 50, 4, 3)

    assert history.batch_loss == expected
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    sizes = [50] * (len(digits.train) // 50) + [len(digits.train) % 50]
    steps_per_epoch = len(sizes)
    for epoch in range(3):
        losses = expected[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        mean = sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)
        assert history.train_loss[epoch] == pytest.approx(mean, rel=1e-12)
    assert history.lr == [0.05] * len(expected)
    assert math.isnan(history.valid_loss[0]) and len(history.wall_time) == 3


def test_evaluate_matches_one_full_batch_in_eval_mode(digits):
    coursekit.seed(2)
    model = models.BatchNormMLP(digits.input_shape, digits.num_classes).double()
    model.train()
    split = data.Split(digits.valid.x.double(), digits.valid.y, "digits", "valid", digits.classes)
    metrics = train.evaluate(model, split, batch_size=32)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        logits = model(split.x)
    assert metrics["loss"] == pytest.approx(F.cross_entropy(logits, split.y).item(), rel=1e-12)
    assert metrics["accuracy"] == (logits.argmax(1) == split.y).double().mean().item()


def test_empty_or_wrong_data_is_named(digits):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    empty = (digits.train.x[:0], digits.train.y[:0])
    with pytest.raises(ValueError, match=r"^data must be a non-empty dataset"):
        train.evaluate(model, empty)
    with pytest.raises(ValueError, match=r"^train must be a training set that yields at least"):
        train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), empty, 1, progress=False)
    with pytest.raises(TypeError, match=r"^train must be a coursekit.data.Split .*got 'digits'"):
        train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), "digits", 1)


def test_valid_metrics_are_recorded_every_epoch(digits):
    coursekit.seed(3)
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train.fit(model, optimizer, digits.train, epochs=2, valid=digits.valid,
                        progress=False)
    final = train.evaluate(model, digits.valid)
    assert history.valid_loss[-1] == final["loss"]
    assert history.valid_acc[-1] == final["accuracy"]
    assert 0 < history.train_acc[-1] <= 1


def test_nan_loss_stops_training_before_stepping_on_it(digits):
    coursekit.seed(4)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=16)
    twin = copy.deepcopy(model)
    calls = []

    def nan_on_third_batch(outputs, targets):
        calls.append(1)
        loss = F.cross_entropy(outputs, targets)
        return loss * math.nan if len(calls) == 3 else loss

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(RuntimeWarning, match=r"diverged: the loss became nan at epoch 1, batch 3"):
        history = train.fit(model, optimizer, digits.train, epochs=100, loss=nan_on_third_batch,
                            batch_size=64, progress=False)
    _reference_loop(twin, torch.optim.SGD(twin.parameters(), lr=0.1), digits.train.x,
                    digits.train.y, 64, 0, 1, max_steps=2)

    assert history.status == "diverged" and history.diverged
    assert "learning rate 0.1" in history.stopped_reason
    assert history.steps == 3 and math.isnan(history.batch_loss[-1]) and history.epochs == 0
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_a_huge_learning_rate_diverges_within_one_epoch(digits):
    coursekit.seed(5)
    model = models.MLP(digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.warns(RuntimeWarning, match="learning rate 1e\\+06"):
        history = train.fit(model, optimizer, digits.train, epochs=100, progress=False)
    assert history.diverged and history.epochs <= 1
    assert not math.isfinite(history.batch_loss[-1])
    assert all(math.isfinite(loss) for loss in history.batch_loss[:-1])
    with pytest.raises(ValueError, match=r"^history must be a run that did not diverge"):
        train.fit(model, optimizer, digits.train, epochs=1, history=history)


def test_scheduler_on_batch_steps_after_every_update(digits):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)
    history = train.fit(model, optimizer, digits.train, epochs=2, scheduler=scheduler,
                        scheduler_on="batch", batch_size=256, progress=False)
    expected = [0.1 * 0.9**k for k in range(history.steps)]
    assert history.lr == pytest.approx(expected, rel=1e-12)


def test_scheduler_on_epoch_keeps_the_rate_within_an_epoch(digits):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train.fit(model, optimizer, digits.train, epochs=3, scheduler=scheduler,
                        batch_size=256, progress=False)
    per_epoch = math.ceil(len(digits.train) / 256)
    expected = [0.1 * 0.5**epoch for epoch in range(3) for _ in range(per_epoch)]
    assert history.lr == pytest.approx(expected, rel=1e-12)


class _RecordingScheduler:
    """Stands in for ReduceLROnPlateau and remembers the metrics it was given."""

    mode = "max"

    def __init__(self):
        self.metrics = []

    def step(self, metric):
        self.metrics.append(metric)


@pytest.mark.parametrize(("scheduler_on", "field"), [("valid_acc", "valid_acc"),
                                                      ("valid_loss", "valid_loss")])
def test_scheduler_on_valid_metric_receives_it_each_epoch(digits, scheduler_on, field):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    scheduler = _RecordingScheduler()
    history = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train,
                        epochs=3, valid=digits.valid, scheduler=scheduler,
                        scheduler_on=scheduler_on, progress=False)
    assert scheduler.metrics == getattr(history, field)


def test_reduce_on_plateau_for_accuracy_must_maximise(digits):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min")
    with pytest.raises(ValueError, match=r"^scheduler\.mode must be 'max' .*got 'min'"):
        train.fit(model, optimizer, digits.train, 1, valid=digits.valid, scheduler=plateau,
                  scheduler_on="valid_acc")
    with pytest.raises(ValueError, match=r"^valid must be a validation set .*got None"):
        train.fit(model, optimizer, digits.train, 1, scheduler=plateau,
                  scheduler_on="valid_loss")


def _resume_setup(digits):
    model = models.BatchNormMLP(digits.input_shape, digits.num_classes, hidden=(32, 32))
    optimizer = coursekit.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return model, optimizer, scheduler


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(digits, tmp_path):
    options = dict(valid=digits.valid, batch_size=64, seed=11, progress=False)
    coursekit.seed(0)
    model, optimizer, scheduler = _resume_setup(digits)
    straight = train.fit(model, optimizer, digits.train, 4, scheduler=scheduler, **options)

    coursekit.seed(0)
    first, first_optimizer, first_scheduler = _resume_setup(digits)
    history = train.fit(first, first_optimizer, digits.train, 2, scheduler=first_scheduler,
                        **options)
    train.save_checkpoint(tmp_path / "run.pt", first, first_optimizer, first_scheduler, history)
    coursekit.seed(12345)  # the fresh objects start elsewhere, and so do the RNGs
    fresh, fresh_optimizer, fresh_scheduler = _resume_setup(digits)
    restored = train.load_checkpoint(tmp_path / "run.pt", fresh, fresh_optimizer, fresh_scheduler)
    resumed = train.fit(fresh, fresh_optimizer, digits.train, 2, scheduler=fresh_scheduler,
                        history=restored, **options)

    for ours, theirs in zip(fresh.state_dict().values(), model.state_dict().values(),
                            strict=True):
        assert torch.equal(ours, theirs)
    for name in ("batch_loss", "lr", "train_loss", "train_acc", "valid_loss", "valid_acc"):
        assert getattr(resumed, name) == getattr(straight, name), name
    assert resumed.epochs == 4 and resumed.status == "completed"
    assert fresh_scheduler.state_dict() == scheduler.state_dict()


def test_checkpoint_restores_every_random_number_generator(tmp_path):
    model = models.LogisticRegression((2,), 2)
    coursekit.seed(7)
    train.save_checkpoint(tmp_path / "rng.pt", model)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    coursekit.seed(8)
    assert train.load_checkpoint(tmp_path / "rng.pt", model) is None
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected  # noqa: NPY002


def test_load_checkpoint_rejects_other_files_and_missing_parts(tmp_path):
    model = models.LogisticRegression((2,), 2)
    torch.save({"weights": model.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"^path must be a coursekit checkpoint"):
        train.load_checkpoint(tmp_path / "other.pt", model)
    train.save_checkpoint(tmp_path / "model_only.pt", model)
    with pytest.raises(ValueError, match=r"^path must be a checkpoint with optimizer state"):
        train.load_checkpoint(tmp_path / "model_only.pt", model,
                              torch.optim.SGD(model.parameters(), lr=0.1))


def test_a_dataloader_gives_the_same_steps_as_batches(digits):
    coursekit.seed(9)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=16)
    twin = copy.deepcopy(model)
    x, y = digits.train.x, digits.train.y
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=100)
    ours = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1),
                     data.Batches(x, y, 100, shuffle=False), 2, progress=False)
    theirs = train.fit(twin, torch.optim.SGD(twin.parameters(), lr=0.1), loader, 2,
                       progress=False)
    assert ours.batch_loss == theirs.batch_loss


def test_resuming_with_another_seed_is_refused(digits):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train.fit(model, optimizer, (digits.train.x, digits.train.y), 1, seed=1,
                        progress=False)
    with pytest.raises(ValueError, match=r"^seed must be None or the resumed history's seed 1, "
                                          r"got 2"):
        train.fit(model, optimizer, digits.train, 1, seed=2, history=history)


def test_progress_bar_is_off_in_ci_and_on_when_asked(monkeypatch, capsys, digits):
    monkeypatch.setenv("CI", "true")
    assert train._show_progress(None) is False
    assert train._show_progress(True) is True
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, 1,
              progress=True)
    assert "training" in capsys.readouterr().err
    train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, 1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": -1}, "^epochs must be"),
    ({"epochs": 1, "scheduler_on": "step"}, "^scheduler_on must be"),
    ({"epochs": 1, "seed": -3}, "^seed must be"),
    ({"epochs": 1, "valid": "digits"}, "^valid must be a coursekit.data.Split"),
    ({"epochs": 1, "max_examples": 0}, "^max_examples must be"),
    ({"epochs": 1, "on_step": 3}, "^on_step must be"),
    ({"epochs": 1, "on_step": [print, "hook"]}, "^on_step must be"),
])
def test_bad_arguments_are_named(digits, kwargs, match):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    with pytest.raises((ValueError, TypeError), match=match):
        train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train,
                  progress=False, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_matches_the_cpu_run_closely(digits):
    coursekit.seed(10)
    model = models.MLP(digits.input_shape, digits.num_classes)
    twin = copy.deepcopy(model)
    on_cpu = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, 2,
                       progress=False)
    on_gpu = train.fit(twin, torch.optim.SGD(twin.parameters(), lr=0.1), digits.train, 2,
                       device="cuda", progress=False)
    assert next(twin.parameters()).is_cuda
    np.testing.assert_allclose(on_gpu.batch_loss, on_cpu.batch_loss, rtol=1e-3)


# ----------------------------------------------------------------------- closure, budget, hooks


def _lbfgs(params):
    return torch.optim.LBFGS(params, lr=1, max_iter=3, history_size=5,
                             line_search_fn="strong_wolfe")


def test_closure_mode_with_lbfgs_takes_the_steps_of_a_hand_written_closure_loop(digits):
    coursekit.seed(12)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=16).double()
    twin = copy.deepcopy(model)
    x64 = digits.train.x.double()
    optimizer = _lbfgs(model.parameters())
    evaluations = []
    history = train.fit(model, optimizer, (x64, digits.train.y), 2, batch_size=300, seed=2,
                        closure=True, progress=False,
                        on_step=lambda info: evaluations.append(info.evaluations))
    expected = _reference_loop(twin, _lbfgs(twin.parameters()), x64, digits.train.y, 300, 2, 2,
                               closure=True)

    assert history.batch_loss == expected
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    # Every closure call is charged: L-BFGS's own count of function evaluations.
    func_evals = optimizer.state[next(iter(model.parameters()))]["func_evals"]
    assert sum(evaluations) == func_evals > history.steps
    sizes = [300] * 4 + [len(digits.train) - 1200]
    assert history.examples == sum(evaluations[k] * sizes[k % 5] for k in range(10))


def test_closure_mode_with_sgd_equals_the_plain_loop(digits):
    coursekit.seed(13)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=16)
    twin = copy.deepcopy(model)
    options = dict(batch_size=64, seed=3, progress=False)
    plain = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                      digits.train, 2, **options)
    closed = train.fit(twin, torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9),
                       digits.train, 2, closure=True, **options)
    for name in ("batch_loss", "lr", "train_loss", "train_acc"):
        assert getattr(closed, name) == getattr(plain, name), name
    assert closed.examples == plain.examples == 2 * len(digits.train)
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("closure", [False, True])
def test_a_nan_loss_in_closure_mode_stops_before_any_update(digits, closure):
    coursekit.seed(4)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=16)
    twin = copy.deepcopy(model)
    calls = []

    def nan_on_third_batch(outputs, targets):
        calls.append(1)
        loss = F.cross_entropy(outputs, targets)
        return loss * math.nan if len(calls) == 3 else loss

    with pytest.warns(RuntimeWarning, match="the loss became nan at epoch 1, batch 3"):
        history = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                            digits.train, 5, loss=nan_on_third_batch, batch_size=64,
                            closure=closure, progress=False)
    _reference_loop(twin, torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9),
                    digits.train.x, digits.train.y, 64, 0, 1, max_steps=2)
    assert history.diverged and history.steps == 3 and math.isnan(history.batch_loss[-1])
    assert history.examples == 2 * 64  # the diverged batch was never backpropagated
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs)


class _IgnoresClosure(torch.optim.SGD):
    def step(self, closure=None):
        return super().step()


def test_an_optimizer_that_never_calls_the_closure_is_named(digits):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    with pytest.raises(TypeError, match=r"^optimizer must be one whose step\(closure\) calls "
                                        r"the closure.*_IgnoresClosure"):
        train.fit(model, _IgnoresClosure(model.parameters(), lr=0.1), digits.train, 1,
                  closure=True, progress=False)


def _steps_to_reach(budget, sizes_per_epoch):
    """The number of steps after which the examples charged first reach ``budget``."""
    used, steps = 0, 0
    while used < budget:
        used += sizes_per_epoch[steps % len(sizes_per_epoch)]
        steps += 1
    return steps, used


def test_the_gradient_budget_stops_after_the_step_that_reaches_it_mid_epoch(digits):
    n = len(digits.train)
    sizes = [50] * (n // 50) + [n % 50]
    budget = 2 * n + 101  # two epochs, then three batches of the third (50 + 50 + 1 <= 150)
    steps, used = _steps_to_reach(budget, sizes)
    coursekit.seed(14)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=16)
    twin = copy.deepcopy(model)
    history = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.05), digits.train, 10,
                        valid=digits.valid, batch_size=50, seed=6, max_examples=budget,
                        progress=False)
    expected = _reference_loop(twin, torch.optim.SGD(twin.parameters(), lr=0.05),
                               digits.train.x, digits.train.y, 50, 6, 3, max_steps=steps)

    assert steps == 2 * len(sizes) + 3 and used == 2 * n + 150
    assert history.status == "stopped" and "budget" in history.stopped_reason
    assert history.steps == steps and history.examples == used
    assert history.batch_loss == expected
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    # The partial third epoch is recorded: its three batches, the weights it stopped at.
    assert history.partial_epoch and history.epochs == 3 and len(history.wall_time) == 3
    assert history.train_loss[-1] == pytest.approx(sum(expected[-3:]) / 3, rel=1e-12)
    assert history.valid_loss[-1] == train.evaluate(model, digits.valid)["loss"]
    with pytest.raises(ValueError, match=r"^history must be a run that stopped at the end of an "
                                          r"epoch"):
        train.fit(model, torch.optim.SGD(model.parameters(), lr=0.05), digits.train, 1,
                  history=history)


def test_a_budget_met_at_an_epoch_end_resumes_like_an_uninterrupted_run(digits):
    options = dict(batch_size=100, seed=8, progress=False)
    coursekit.seed(15)
    model = models.MLP(digits.input_shape, digits.num_classes, hidden=16)
    twin = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    straight = train.fit(twin, torch.optim.Adam(twin.parameters(), lr=1e-3), digits.train, 3,
                         **options)
    stopped = train.fit(model, optimizer, digits.train, 3, max_examples=len(digits.train),
                        **options)
    assert stopped.status == "stopped" and not stopped.partial_epoch and stopped.epochs == 1
    resumed = train.fit(model, optimizer, digits.train, 2, history=stopped, **options)
    assert resumed.status == "completed" and resumed.stopped_reason is None
    assert resumed.batch_loss == straight.batch_loss
    assert resumed.examples == straight.examples == 3 * len(digits.train)


def test_hooks_see_every_step_and_one_can_stop_training(digits):
    seen, others = [], []

    def stop_at_seven(info):
        seen.append(info)
        return "seven is enough" if info.step == 7 else None

    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train.fit(model, optimizer, digits.train, 5, batch_size=256, scheduler=scheduler,
                        progress=False, on_step=[stop_at_seven, others.append])
    per_epoch = math.ceil(len(digits.train) / 256)  # 6
    assert [info.step for info in seen] == list(range(1, 8)) == [i.step for i in others]
    assert [(info.epoch, info.batch) for info in seen] == [
        (k // per_epoch, k % per_epoch) for k in range(7)]
    assert [info.loss for info in seen] == history.batch_loss
    assert [info.lr for info in seen] == history.lr == [0.1] * 6 + [0.05]
    assert [info.examples for info in seen] == [
        min(256 * k, len(digits.train)) if k <= per_epoch
        else len(digits.train) + 256 * (k - per_epoch) for k in range(1, 8)]
    assert all(info.model is model and info.optimizer is optimizer and info.evaluations == 1
               and info.history is history for info in seen)
    assert history.status == "stopped" and history.steps == 7
    assert history.stopped_reason.startswith("seven is enough (step 7, epoch 2, batch 1)")
    assert history.partial_epoch and history.epochs == 2
    assert scheduler.last_epoch == 1  # stepped after epoch 1, not after the partial epoch 2


def test_a_hook_returning_true_stops_with_a_generic_reason(digits):
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    history = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, 3,
                        progress=False, on_step=lambda info: info.step == 2)
    assert history.steps == 2 and "a hook asked to stop" in history.stopped_reason


class _NoGroups:
    """A bare optimizer: plain gradient descent with a fixed step, no param_groups."""

    def __init__(self, params, step_size):
        self.params, self.step_size = list(params), step_size

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        for p in self.params:
            p -= self.step_size * p.grad


def test_learning_rate_is_nan_for_an_optimizer_without_param_groups(digits):
    coursekit.seed(16)
    model = models.LogisticRegression(digits.input_shape, digits.num_classes)
    twin = copy.deepcopy(model)
    history = train.fit(model, _NoGroups(model.parameters(), 0.1), digits.train, 1,
                        batch_size=128, progress=False)
    expected = _reference_loop(twin, torch.optim.SGD(twin.parameters(), lr=0.1),
                               digits.train.x, digits.train.y, 128, 0, 1)
    assert history.batch_loss == pytest.approx(expected, rel=1e-6)
    assert all(math.isnan(lr) for lr in history.lr)
