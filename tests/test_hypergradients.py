"""coursekit.analysis.hypergradients: SGD's hypergradient on a quadratic in closed form;
train_stack (which trains through coursekit.train.fit) against the loop it had before, written
out here; sweep_top_level against single runs."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit
from coursekit import data, models
from coursekit.analysis import hypergradients
from coursekit.optim import clip, hyper


def test_sgd_hypergradient_four_ways_equal_the_closed_form_on_a_quadratic():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(5, 5, generator=g, dtype=torch.float64)
    A = M @ M.T + torch.eye(5, dtype=torch.float64)
    w = torch.randn(5, generator=g, dtype=torch.float64)
    alpha = 0.05
    # w_t = w - alpha A w, so d f(w_t)/d alpha = -(A w_t) . (A w).
    expected = -float((A @ (w - alpha * A @ w)) @ (A @ w))
    values = hypergradients.sgd_hypergradient(lambda v: 0.5 * v @ A @ v, w, alpha)
    assert values["formula"] == pytest.approx(expected, rel=1e-12)
    assert values["autograd"] == pytest.approx(expected, rel=1e-12)
    assert values["central difference"] == pytest.approx(expected, rel=1e-6)
    assert values["coursekit.optim.hyper"] == pytest.approx(expected, rel=1e-9)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", valid_fraction=0.0)


def _model(d):
    return lambda: models.MLP(d.input_shape, d.num_classes, hidden=16, activation="tanh")


def _wrapped(build):
    """``make(params)`` from a function that builds a fresh stack."""
    return lambda params: hyper.ModuleWrapper(params, build())


def _loop_before_fit(build, d, model_fn, epochs, batch_size, seed, loss=F.cross_entropy):
    """train_stack's own loop before it trained through fit (commit 3b03e84), written out:
    the loss checked once per epoch, every step of that epoch taken, and the test error
    counting a row of non-finite outputs as wrong. Returns the misclassified count, not
    the share (the old code took that mean in float32)."""
    coursekit.seed(seed)
    model = model_fn()
    stack = build()
    wrapper = hyper.ModuleWrapper(model, stack)
    batches = d.train.batches(batch_size, seed=seed)
    losses, diverged = [], False
    for _ in range(epochs):
        for x, y in batches:
            wrapper.zero_grad()
            value = loss(model(x), y)
            value.backward()
            wrapper.step()
            losses.append(value.detach())
        if not torch.isfinite(losses[-1]):
            diverged = True
            break
    with torch.no_grad():
        logits = model(d.test.x)
        wrong = (logits.argmax(dim=1) != d.test.y) | ~torch.isfinite(logits).all(dim=1)
    return {"losses": torch.stack(losses).double().numpy(),
            "hyperparameters": [level.history for level in stack.levels()],
            "final": stack.hyperparameters(), "wrong": int(wrong.sum()), "diverged": diverged}


UNCHANGED_RUNS = {
    "SGD": (lambda: hyper.SGD(0.1), 3, 0),
    "SGD / SGD, both clipped": (
        lambda: hyper.SGD(0.01, optimizer=hyper.SGD(0.01, clip=clip.RunningMeanClip()),
                          clip=clip.RunningMeanClip()), 3, 1),
    "Adam / SGD": (lambda: hyper.Adam(1e-3, optimizer=hyper.SGD(1e-4)), 2, 2),
    "SGD / SGD / SGD": (
        lambda: hyper.SGD(0.01, optimizer=hyper.SGD(0.01, optimizer=hyper.SGD(1e-4))), 2, 3),
}


@pytest.mark.parametrize("name", sorted(UNCHANGED_RUNS))
def test_train_stack_through_fit_repeats_the_loop_it_had_before(digits, name):
    build, epochs, seed = UNCHANGED_RUNS[name]
    before = _loop_before_fit(build, digits, _model(digits), epochs, 128, seed)
    run = hypergradients.train_stack(_wrapped(build), digits, _model(digits), epochs,
                                     batch_size=128, seed=seed)
    assert not before["diverged"] and not run.diverged
    np.testing.assert_allclose(run.losses, before["losses"], rtol=1e-12, atol=0)
    assert len(run.hyperparameters) == len(before["hyperparameters"])
    for ours, theirs in zip(run.hyperparameters, before["hyperparameters"], strict=True):
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, atol=0)
    assert run.final == pytest.approx(before["final"], rel=1e-12)
    n = len(digits.test)
    assert run.test_error == pytest.approx(before["wrong"] / n, rel=0, abs=1e-12)
    assert run.alpha[0] == pytest.approx(build().initial["alpha"])
    assert "/" not in name or run.alpha[-1] != pytest.approx(run.alpha[0])  # alpha was learned


def test_fit_sees_the_batches_of_the_loop_before_fit(digits):
    seen = []

    class Recording(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = _model(digits)()

        def forward(self, x):
            if self.training:  # evaluate() runs in eval mode
                seen.append(x.clone())
            return self.inner(x)

    hypergradients.train_stack(_wrapped(lambda: hyper.SGD(0.1)), digits, Recording, 3,
                               batch_size=128, seed=5)
    batches = digits.train.batches(128, seed=5)
    expected = [x for _ in range(3) for x, _ in batches]
    assert len(seen) == len(expected) == 3 * math.ceil(len(digits.train) / 128)
    assert all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))


def test_train_stack_with_a_plain_sgd_level_equals_torch_sgd(digits):
    run = hypergradients.train_stack(_wrapped(lambda: hyper.SGD(0.1)), digits, _model(digits),
                                     epochs=2, batch_size=128, seed=4)
    coursekit.seed(4)
    model = _model(digits)()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses, batches = [], digits.train.batches(128, seed=4)
    for _ in range(2):
        for x, y in batches:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    with torch.no_grad():
        error = (model(digits.test.x).argmax(1) != digits.test.y).double().mean().item()
    assert run.losses.tolist() == pytest.approx(losses, rel=1e-5)
    assert run.test_error == pytest.approx(error, abs=1e-12)
    assert run.alpha.tolist() == pytest.approx([0.1] * len(losses))
    assert not run.diverged


def test_train_stack_records_learned_alpha_and_clipping(digits):
    clipper = clip.RunningMeanClip()
    run = hypergradients.train_stack(
        _wrapped(lambda: hyper.SGD(0.01, optimizer=hyper.SGD(0.01), clip=clipper)), digits,
        _model(digits), epochs=2, batch_size=128)
    steps = len(run.losses)
    assert len(run.hyperparameters) == 2 and len(run.alpha) == steps
    assert run.alpha[0] == pytest.approx(0.01) and run.alpha[-1] != pytest.approx(0.01)
    assert run.final["alpha"] == pytest.approx(run.alpha[-1])
    assert len(clipper.history["norm"]) == steps
    assert run.record()["test error %"] == pytest.approx(100 * run.test_error)


def test_a_diverging_stack_stops_at_its_first_non_finite_loss(digits):
    def square(out, y):
        return out.pow(2).mean()

    build = functools.partial(hyper.SGD, 1e6)
    run = hypergradients.train_stack(_wrapped(build), digits, _model(digits), epochs=3,
                                     loss=square)
    before = _loop_before_fit(build, digits, _model(digits), 3, 256, 0, loss=square)
    assert run.diverged and before["diverged"]
    # fit stops at the first non-finite loss, without stepping on it; the old loop kept
    # stepping to the end of the epoch. Up to there both took the same steps.
    assert np.all(np.isfinite(run.losses[:-1])) and not np.isfinite(run.losses[-1])
    k = len(run.losses)
    assert k < len(before["losses"])
    np.testing.assert_array_equal(run.losses[:-1], before["losses"][:k - 1])
    assert not np.isfinite(before["losses"][k - 1])
    assert len(run.alpha) == k - 1
    assert 0.0 <= run.test_error <= 1.0


def test_sweep_records_match_single_runs_and_place_the_clipper(digits):
    placed = []

    def make(params, kappa, clipping):
        placed.append(clipping)
        bottom_clip = clip.RunningMeanClip() if clipping == "parameters" else None
        top_clip = clip.RunningMeanClip() if clipping == "hypergradients" else None
        return hyper.ModuleWrapper(params, hyper.SGD(0.01, optimizer=hyper.SGD(kappa,
                                                                               clip=top_clip),
                                                     clip=bottom_clip))

    table = hypergradients.sweep_top_level(make, [0.01, 1.0], digits, _model(digits), 1,
                                           seeds=[0, 1], batch_size=128)
    records = table.to_dict("records")
    assert [(r["kappa"], r["clipping"]) for r in records] == [
        (k, w) for k in (0.01, 1.0) for w in hypergradients.CLIPPING]
    assert placed == [w for _ in range(2) for w in hypergradients.CLIPPING for _ in range(2)]
    single = [hypergradients.train_stack(
        functools.partial(make, kappa=1.0, clipping="hypergradients"), digits, _model(digits),
        1, batch_size=128, seed=s) for s in (0, 1)]
    errors = [100 * run.test_error for run in single]
    assert records[-1]["test error %"] == pytest.approx(sum(errors) / 2)
    assert records[-1]["sem"] == pytest.approx(np.std(errors, ddof=1) / np.sqrt(2))
    assert records[-1]["seeds"] == 2
    assert records[-1]["diverged"] == sum(run.diverged for run in single)
    assert records[-1]["final alpha"] == pytest.approx(
        (single[0].final["alpha"] + single[1].final["alpha"]) / 2)


def test_a_failing_run_of_the_sweep_raises(digits):
    def make(params, kappa, clipping):
        raise ZeroDivisionError("no stack today")

    with pytest.raises(RuntimeError, match="no stack today"):
        hypergradients.sweep_top_level(make, [1.0], digits, _model(digits), 1,
                                       clipping=["none"])


def test_bad_arguments_raise_clear_errors(digits):
    with pytest.raises(ValueError, match=r"^epochs must be"):
        hypergradients.train_stack(_wrapped(lambda: hyper.SGD(0.1)), digits, _model(digits),
                                   epochs=0)
    with pytest.raises(TypeError, match=r"^make\(params\) must be"):
        hypergradients.train_stack(lambda params: "sgd", digits, _model(digits), epochs=1)
    with pytest.raises(ValueError, match=r"^w must be"):
        hypergradients.sgd_hypergradient(lambda v: v.sum(), torch.zeros(2, 2), 0.1)
    with pytest.raises(ValueError, match=r"^clipping must be"):
        hypergradients.sweep_top_level(lambda params, kappa, clipping: None, [1.0], digits,
                                       _model(digits), 1, clipping=["both"])
    with pytest.raises(ValueError, match=r"^seeds must be"):
        hypergradients.sweep_top_level(lambda params, kappa, clipping: None, [1.0], digits,
                                       _model(digits), 1, seeds=[])
