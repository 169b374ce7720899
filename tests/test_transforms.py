"""coursekit.optim.transforms: optimizers assembled from pieces equal the real thing.

The chains are run beside torch.optim in float64 on the awkward TinyMLP (a
non-contiguous parameter, one without gradient, two parameter groups for the
scheduler test); the pieces are checked against their closed forms and the
local-gain rule of the STAT 453 slides against a hand-written loop.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coursekit import landscapes
from coursekit.optim import transforms as T
from tests._optim_helpers import TinyMLP, rel_error

STEPS = 30


def _pair(ours, reference, steps=STEPS):
    a, b = TinyMLP(torch.float64), TinyMLP(torch.float64)
    losses_a = a.train(ours(a.parameters()), steps)
    losses_b = b.train(reference(b.parameters()), steps)
    return a, b, losses_a, losses_b


@pytest.mark.parametrize("chain, reference", [
    (lambda p: T.TransformOptimizer(p, T.adam((0.8, 0.99), 1e-8), lr=0.01),
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-8)),
    (lambda p: T.TransformOptimizer(p, T.adamw((0.9, 0.999), 1e-8, weight_decay=0.1), lr=0.01),
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    (lambda p: T.TransformOptimizer(p, T.rmsprop(alpha=0.9, eps=1e-6), lr=0.003),
     lambda p: torch.optim.RMSprop(p, lr=0.003, alpha=0.9, eps=1e-6)),
    (lambda p: T.TransformOptimizer(p, T.sgd_momentum(0.9), lr=0.05),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
], ids=["adam", "adamw", "rmsprop", "sgd_momentum"])
def test_chains_match_torch_optimizers_in_float64(chain, reference):
    a, b, losses_a, losses_b = _pair(chain, reference)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert rel_error(p.detach(), q.detach()) < 1e-12
    assert losses_a == pytest.approx(losses_b, rel=1e-12)
    assert a.unused.grad is None  # the parameter without gradient was skipped


def test_adam_chain_with_a_fixed_scale_equals_adam_with_that_lr():
    lr = 0.01
    fixed = T.chain(T.scale_by_momentum(0.9), T.bias_correction(0.9), T.scale_by_rms(0.999, 1e-8),
                    T.scale(-lr))
    a, b, _, _ = _pair(lambda p: T.TransformOptimizer(p, fixed),
                       lambda p: torch.optim.Adam(p, lr=lr))
    assert rel_error(a.w2.detach(), b.w2.detach()) < 1e-12


def test_first_adam_step_without_bias_correction_has_the_closed_form():
    beta1, beta2, eps, lr, g = 0.9, 0.999, 1e-8, 0.1, 0.5
    uncorrected = T.chain(T.scale_by_momentum(beta1),
                          T.scale_by_rms(beta2, eps, bias_correction=False), T.scale(-lr))
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = T.TransformOptimizer([theta], uncorrected)
    theta.grad = torch.full_like(theta, g)
    opt.step()
    expected = -lr * (1 - beta1) * g / (math.sqrt(1 - beta2) * abs(g) + eps)
    assert theta.item() == pytest.approx(expected, rel=1e-12)


def test_bias_correction_of_a_constant_input_returns_it_exactly():
    beta = 0.9
    average = T.chain(T.scale_by_momentum(beta), T.bias_correction(beta))
    x = torch.tensor([2.0, -3.0], dtype=torch.float64)
    state = average.init(x)
    for t in range(1, 20):
        out = average.apply(x, x, x, state, {})
        raw = state["pieces"][0]["exp_avg"]
        assert torch.allclose(raw, (1 - beta**t) * x, rtol=1e-13)
        assert torch.allclose(out, x, rtol=1e-13)


def test_bias_correction_table_reads_adam_state_matching_closed_forms():
    betas, g, eps = (0.9, 0.999), -2.0, 1e-8
    for row in T.bias_correction_table(steps=8, grad=g, betas=betas, eps=eps):
        t = row["t"]
        assert row["m_t"] == pytest.approx((1 - betas[0] ** t) * g, rel=1e-12)
        assert row["m_hat"] == pytest.approx(g, rel=1e-12)
        assert row["v_hat"] == pytest.approx(g * g, rel=1e-12)
        assert row["step"] == pytest.approx(g / (abs(g) + eps), rel=1e-7)
        assert row["uncorrected step"] == pytest.approx(
            (1 - betas[0] ** t) * g / (math.sqrt(1 - betas[1] ** t) * abs(g) + eps), rel=1e-12)


def test_local_gains_follow_the_seed_rule_written_out():
    beta, lr = 0.1, 0.05
    generator = torch.Generator().manual_seed(0)
    grads = torch.randn(25, 6, generator=generator, dtype=torch.float64)
    grads[3:9, 0] = 1.0  # a run of consistent signs for one weight

    theta = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = T.TransformOptimizer([theta], T.local_gains(beta), lr=lr)
    w, gain, previous = [0.0] * 6, [1.0] * 6, [0.0] * 6
    for g in grads:
        theta.grad = g.clone()
        opt.step()
        for i, gi in enumerate(g.tolist()):
            if gi * previous[i] > 0:
                gain[i] += beta
            elif gi * previous[i] < 0:
                gain[i] *= 1 - beta
            previous[i] = gi
            w[i] -= lr * gain[i] * gi
        assert theta.detach().tolist() == pytest.approx(w, rel=1e-12, abs=1e-15)
    assert opt.state[theta]["pieces"][0]["gain"].tolist() == pytest.approx(gain, rel=1e-12)


def test_max_gain_caps_the_gain():
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = T.TransformOptimizer([theta], T.local_gains(0.5, max_gain=2.0), lr=0.1)
    for _ in range(10):
        theta.grad = torch.ones_like(theta)
        opt.step()
    assert opt.state[theta]["pieces"][0]["gain"].item() == 2.0


def test_scale_by_learning_rate_follows_a_scheduler_like_torch():
    def train(make):
        model = TinyMLP(torch.float64)
        opt = make(model.groups(lr=0.02))
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
        for _ in range(20):
            opt.zero_grad()
            model.loss().backward()
            opt.step()
            sched.step()
        return model

    a = train(lambda groups: T.TransformOptimizer(groups, T.sgd_momentum(0.9), lr=0.05))
    b = train(lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert rel_error(p.detach(), q.detach()) < 1e-12


def test_state_dict_resumes_exactly():
    def make(params):
        return T.TransformOptimizer(params, T.adam(), lr=0.01)

    straight = TinyMLP(torch.float64)
    straight.train(make(straight.parameters()), 10)

    resumed = TinyMLP(torch.float64)
    first = make(resumed.parameters())
    resumed.train(first, 5)
    saved = first.state_dict()
    second = make(resumed.parameters())
    second.load_state_dict(saved)
    resumed.train(second, 5)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_effective_learning_rates_are_lr_for_sgd_and_adagrads_formula():
    fn = landscapes.Quadratic(condition_number=10.0, angle=0.0)
    sgd = landscapes.run(lambda p: torch.optim.SGD(p, lr=0.05), fn, steps=20)
    assert np.allclose(T.effective_learning_rates(sgd), 0.05, rtol=1e-10)

    lr, eps = 0.3, 1e-10
    adagrad = landscapes.run(lambda p: torch.optim.Adagrad(p, lr=lr, eps=eps), fn, steps=20)
    grads = fn.grad(torch.as_tensor(adagrad.points[:-1])).numpy()
    expected = lr / (np.sqrt(np.cumsum(grads**2, axis=0)) + eps)
    assert np.allclose(T.effective_learning_rates(adagrad), expected, rtol=1e-8)


def test_bad_pieces_and_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="factor"):
        T.scale(math.nan)
    with pytest.raises(ValueError, match="beta2"):
        T.scale_by_rms(beta2=1.0)
    with pytest.raises(ValueError, match="max_gain"):
        T.scale_by_local_gains(max_gain=0.5)
    with pytest.raises(TypeError, match="piece"):
        T.chain(T.scale(1.0), "adam")
    with pytest.raises(TypeError, match="transform"):
        T.TransformOptimizer([torch.zeros(1, requires_grad=True)], "adam")
    with pytest.raises(ValueError, match="steps"):
        T.bias_correction_table(steps=0)
    with pytest.raises(TypeError, match="trajectory"):
        T.effective_learning_rates([1, 2])
