"""coursekit.analysis.hypergradients: SGD's hypergradient on a quadratic in closed form; train_stack
against a hand-written loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

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


def test_train_stack_with_a_plain_sgd_level_equals_torch_sgd(digits):
    run = hypergradients.train_stack(lambda: hyper.SGD(0.1), digits, _model(digits), epochs=2,
                                     batch_size=128, seed=4)
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
        error = (model(digits.test.x).argmax(1) != digits.test.y).float().mean().item()
    assert run.losses.tolist() == pytest.approx(losses, rel=1e-5)
    assert run.test_error == pytest.approx(error, abs=1e-12)
    assert run.alpha.tolist() == pytest.approx([0.1] * len(losses))
    assert not run.diverged


def test_train_stack_records_learned_alpha_and_clipping(digits):
    clipper = clip.RunningMeanClip()
    run = hypergradients.train_stack(
        lambda: hyper.SGD(0.01, optimizer=hyper.SGD(0.01), clip=clipper), digits,
        _model(digits), epochs=2, batch_size=128)
    steps = len(run.losses)
    assert len(run.hyperparameters) == 2 and len(run.alpha) == steps
    assert run.alpha[0] == pytest.approx(0.01) and run.alpha[-1] != pytest.approx(0.01)
    assert run.final["alpha"] == pytest.approx(run.alpha[-1])
    assert len(clipper.history["norm"]) == steps
    assert run.record()["test error %"] == pytest.approx(100 * run.test_error)


def test_a_diverging_stack_is_reported(digits):
    run = hypergradients.train_stack(lambda: hyper.SGD(1e6), digits, _model(digits), epochs=3,
                                     loss=lambda out, y: out.pow(2).mean())
    assert run.diverged and len(run.losses) < 3 * 12
    assert 0.0 <= run.test_error <= 1.0


def test_sweep_records_match_single_runs_and_place_the_clipper(digits):
    placed = []

    def make(kappa, where):
        placed.append(where)
        bottom_clip = clip.RunningMeanClip() if where == "parameters" else None
        top_clip = clip.RunningMeanClip() if where == "hypergradients" else None
        return hyper.SGD(0.01, optimizer=hyper.SGD(kappa, clip=top_clip), clip=bottom_clip)

    records = hypergradients.sweep_top_level(make, [0.01, 1.0], digits, _model(digits), 1,
                                             seeds=[0, 1], batch_size=128)
    assert [(r["kappa"], r["clipping"]) for r in records] == [
        (k, w) for k in (0.01, 1.0) for w in hypergradients.CLIPPING]
    assert placed == [w for _ in range(2) for w in hypergradients.CLIPPING for _ in range(2)]
    single = [hypergradients.train_stack(lambda: make(1.0, "hypergradients"), digits,
                                         _model(digits), 1, batch_size=128, seed=s)
              for s in (0, 1)]
    errors = [100 * run.test_error for run in single]
    assert records[-1]["test error %"] == pytest.approx(sum(errors) / 2)
    assert records[-1]["final alpha"] == pytest.approx(
        (single[0].final["alpha"] + single[1].final["alpha"]) / 2)


def test_bad_arguments_raise_clear_errors(digits):
    with pytest.raises(ValueError, match="epochs"):
        hypergradients.train_stack(lambda: hyper.SGD(0.1), digits, _model(digits), epochs=0)
    with pytest.raises(TypeError, match="hyper-optimizer"):
        hypergradients.train_stack(lambda: "sgd", digits, _model(digits), epochs=1)
    with pytest.raises(ValueError, match="w"):
        hypergradients.sgd_hypergradient(lambda v: v.sum(), torch.zeros(2, 2), 0.1)
    with pytest.raises(ValueError, match="clipping"):
        hypergradients.sweep_top_level(lambda k, w: hyper.SGD(0.1), [1.0], digits,
                                       _model(digits), 1, clipping=["both"])
