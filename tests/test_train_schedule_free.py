"""train.fit with a Schedule-Free optimizer: it trains at y and evaluates the average x.

Schedule-Free keeps the gradient point ``y`` in the parameters while training and
switches them to the averaged weights ``x`` in eval mode. ``fit`` must call
``optimizer.train()`` before each epoch's steps and ``optimizer.eval()`` before each
validation, and leave the averaged weights in the model at the end.

The reference is a hand-written loop that never leaves train mode and computes the
average explicitly: with no warmup and ``r = 0`` at a constant rate, every step has the
same weight, so after ``T`` steps ``x = mean(z_2, ..., z_{T+1})``, the plain mean of the
``z`` iterates the optimizer stores after each step (``z_1 = theta_0`` is not in it).
The losses of that loop and the validation losses at its explicit means must equal
fit's to 1e-10 in float64 (not bit for bit: fit's switches y -> x -> y round).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import data, train
from coursekit.optim import AdamW, ScheduleFreeAdamW, ScheduleFreeSGD

BATCH, EPOCHS, SEED = 16, 3, 5
TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(56, 5, generator=g, dtype=torch.float64)       # 4 batches per epoch
    y = torch.randint(0, 3, (56,), generator=g)
    valid = (torch.randn(40, 5, generator=g, dtype=torch.float64),
             torch.randint(0, 3, (40,), generator=g))
    return (x, y), valid


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def _make(cls, params):
    if cls is ScheduleFreeAdamW:
        return cls(params, lr=0.05, betas=(0.8, 0.99), weight_decay=0.01)
    return cls(params, lr=0.2, momentum=0.8, weight_decay=0.01)


@torch.no_grad()
def _loss_at(model, weights, split):
    outputs = torch.func.functional_call(model, weights, (split[0],))
    return F.cross_entropy(outputs, split[1]).item()


def _reference(cls, train_split, valid):
    """The textbook loop in train mode throughout, and the explicit average of the z's."""
    model = _model()
    optimizer = _make(cls, model.parameters())
    optimizer.train()
    names = [name for name, _ in model.named_parameters()]
    z_sum = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    steps, batch_losses, valid_losses, averages = 0, [], [], []
    for epoch in range(EPOCHS):
        batches = data.Batches(*train_split, BATCH, seed=SEED)
        batches.set_epoch(epoch)
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
            steps += 1
            for name, p in zip(names, model.parameters(), strict=True):
                z_sum[name] += optimizer.state[p]["z"]
        average = {name: z_sum[name] / steps for name in names}
        averages.append(average)
        valid_losses.append(_loss_at(model, average, valid))
    return model, batch_losses, valid_losses, averages


@pytest.mark.parametrize("cls", [ScheduleFreeAdamW, ScheduleFreeSGD])
def test_fit_trains_at_y_and_evaluates_the_explicit_average(cls):
    train_split, valid = _problem()
    ref_model, ref_losses, ref_valid, averages = _reference(cls, train_split, valid)

    model = _model()
    optimizer = _make(cls, model.parameters())          # built in eval mode, as the package's
    history = train.fit(model, optimizer, train_split, EPOCHS, valid=valid,
                        batch_size=BATCH, seed=SEED, progress=False)

    assert history.status == "completed" and history.steps == EPOCHS * 4
    torch.testing.assert_close(torch.tensor(history.batch_loss), torch.tensor(ref_losses),
                               **TOLERANCE)
    torch.testing.assert_close(torch.tensor(history.valid_loss), torch.tensor(ref_valid),
                               **TOLERANCE)
    # The model fit returns holds the average, and the optimizer is left in eval mode.
    assert not any(group["train_mode"] for group in optimizer.param_groups)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), averages[-1][name], **TOLERANCE)
    assert train.evaluate(model, valid)["loss"] == pytest.approx(ref_valid[-1], rel=1e-10)
    # ... which is not the gradient point y: the test would see a missing eval().
    y_loss = _loss_at(ref_model, dict(ref_model.named_parameters()), valid)
    assert abs(y_loss - ref_valid[-1]) > 1e-3


@pytest.mark.parametrize("cls", [ScheduleFreeAdamW, ScheduleFreeSGD])
def test_fit_continues_schedule_free_training_across_calls(cls):
    train_split, valid = _problem()
    _, ref_losses, ref_valid, averages = _reference(cls, train_split, valid)

    model = _model()
    optimizer = _make(cls, model.parameters())
    history = None
    for _ in range(EPOCHS):        # one epoch per call: each ends in eval mode, the next resumes
        history = train.fit(model, optimizer, train_split, 1, valid=valid, batch_size=BATCH,
                            seed=SEED, progress=False, history=history)
        assert not any(group["train_mode"] for group in optimizer.param_groups)

    torch.testing.assert_close(torch.tensor(history.batch_loss), torch.tensor(ref_losses),
                               **TOLERANCE)
    torch.testing.assert_close(torch.tensor(history.valid_loss), torch.tensor(ref_valid),
                               **TOLERANCE)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), averages[-1][name], **TOLERANCE)


def test_fit_resumes_schedule_free_from_a_checkpoint_taken_in_eval_mode(tmp_path):
    train_split, valid = _problem()
    _, ref_losses, ref_valid, _ = _reference(ScheduleFreeAdamW, train_split, valid)

    model = _model()
    optimizer = _make(ScheduleFreeAdamW, model.parameters())
    history = train.fit(model, optimizer, train_split, 2, valid=valid, batch_size=BATCH,
                        seed=SEED, progress=False)
    train.save_checkpoint(tmp_path / "run.pt", model, optimizer, history=history)

    fresh = _model()
    fresh_optimizer = _make(ScheduleFreeAdamW, fresh.parameters())
    resumed = train.load_checkpoint(tmp_path / "run.pt", fresh, fresh_optimizer)
    train.fit(fresh, fresh_optimizer, train_split, EPOCHS - 2, valid=valid, batch_size=BATCH,
              progress=False, history=resumed)

    torch.testing.assert_close(torch.tensor(resumed.batch_loss), torch.tensor(ref_losses),
                               **TOLERANCE)
    torch.testing.assert_close(torch.tensor(resumed.valid_loss), torch.tensor(ref_valid),
                               **TOLERANCE)


def test_fit_leaves_optimizers_without_a_mode_switch_alone():
    """An optimizer with only one of train/eval (or neither, as torch.optim) is not switched."""

    class OnlyTrain(AdamW):
        calls = 0

        def train(self):
            OnlyTrain.calls += 1

    train_split, valid = _problem()
    model = _model()
    history = train.fit(model, OnlyTrain(model.parameters(), lr=0.01), train_split, 1,
                        valid=valid, batch_size=BATCH, progress=False)
    assert history.status == "completed" and OnlyTrain.calls == 0
