"""Optimizers torch.optim lacks, checked against their published algorithms.

AdaBelief and Lookahead are written out again here, independently and in plain
numpy/loops, from the papers (and, for AdaBelief, the authors' reference
implementation's semantics); the two momentum forms are checked against their
recurrences and against each other.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import coursekit.optim as ck
from tests._optim_helpers import TinyMLP, rel_error

STEPS = 50


def _adabelief_reference(theta, grads, lr, beta1, beta2, eps, weight_decay, amsgrad,
                         decoupled, rectify, degenerated_to_sgd):
    """Zhuang et al. 2020, Algorithm 2 plus the reference code's options, in numpy."""
    theta = theta.copy()
    m = np.zeros_like(theta)
    s = np.zeros_like(theta)
    s_max = np.zeros_like(theta)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    for t, g in enumerate(grads, start=1):
        g = g(theta)
        if decoupled:
            theta = theta * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        m = beta1 * m + (1.0 - beta1) * g
        s = beta2 * s + (1.0 - beta2) * (g - m) ** 2 + eps
        s_max = np.maximum(s_max, s)
        if not rectify:
            s_hat = (s_max if amsgrad else s) / (1.0 - beta2**t)
            theta = theta - lr * (m / (1.0 - beta1**t)) / (np.sqrt(s_hat) + eps)
            continue
        rho_t = rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)
        if rho_t >= 5.0:
            r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                            / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            m_hat = m / (1.0 - beta1**t)
            theta = theta - lr * r_t * m_hat * math.sqrt(1.0 - beta2**t) / (np.sqrt(s) + eps)
        elif degenerated_to_sgd:
            theta = theta - lr * m / (1.0 - beta1**t)
    return theta, m, s


ADABELIEF_FLAGS = list(itertools.product([False, True], repeat=4))


@pytest.mark.parametrize(("amsgrad", "decoupled", "rectify", "degenerated_to_sgd"),
                         ADABELIEF_FLAGS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adabelief_matches_the_published_algorithm(amsgrad, decoupled, rectify,
                                                   degenerated_to_sgd, weight_decay):
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=6)
    target = rng.normal(size=6)
    scales = np.array([1.0, 10.0, 0.1, 3.0, 0.5, 2.0])

    def gradient_fn(step_noise):
        return lambda th: scales * (th - target) + step_noise

    noises = rng.normal(scale=0.3, size=(STEPS, 6))
    grads = [gradient_fn(n) for n in noises]
    hp = dict(lr=0.02, beta1=0.8, beta2=0.95, eps=1e-10, weight_decay=weight_decay)
    expected, m_ref, s_ref = _adabelief_reference(
        theta0, grads, amsgrad=amsgrad, decoupled=decoupled, rectify=rectify,
        degenerated_to_sgd=degenerated_to_sgd, **hp)

    theta = torch.nn.Parameter(torch.tensor(theta0))
    opt = ck.AdaBelief([theta], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                       weight_decay=weight_decay, amsgrad=amsgrad,
                       decoupled_weight_decay=decoupled, rectify=rectify,
                       degenerated_to_sgd=degenerated_to_sgd)
    for g in grads:
        theta.grad = torch.tensor(g(theta.detach().numpy()))
        opt.step()
    assert rel_error(theta.detach(), torch.tensor(expected)) <= 1e-12
    assert rel_error(opt.state[theta]["exp_avg"], torch.tensor(m_ref)) <= 1e-12
    assert rel_error(opt.state[theta]["exp_avg_var"], torch.tensor(s_ref)) <= 1e-12


def test_adabelief_rectification_switches_on_at_rho_5():
    # with beta2 = 0.95, rho_t first reaches 5 at t = 6 (computed from the definition)
    rho_inf = 2 / (1 - 0.95) - 1
    first = next(t for t in range(1, 100) if rho_inf - 2 * t * 0.95**t / (1 - 0.95**t) >= 5)
    assert ck.AdaBelief.rectified_step_size(first - 1, 0.9, 0.95) is None
    assert ck.AdaBelief.rectified_step_size(first, 0.9, 0.95) is not None


@pytest.mark.parametrize(("inner", "k", "alpha"), [
    ("sgd", 5, 0.5), ("sgd", 3, 0.8), ("adam", 4, 0.5), ("adam", 1, 0.3),
])
def test_lookahead_matches_the_published_algorithm(inner, k, alpha):
    """Algorithm 1 of Zhang et al. 2019, with torch.optim as the inner optimizer."""
    def make_inner(params):
        if inner == "sgd":
            return torch.optim.SGD(params, lr=0.05, momentum=0.9)
        return torch.optim.Adam(params, lr=0.01)

    ours_model, ref_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    ours = ck.Lookahead(make_inner(ours_model.parameters()), k=k, alpha=alpha)
    ours_model.train(ours, STEPS)

    fast = make_inner(ref_model.parameters())
    slow = [p.detach().clone() for p in ref_model.parameters()]
    for outer in range(STEPS // k + 1):
        for _ in range(min(k, STEPS - outer * k)):
            ref_model.train(fast, 1)
        if (outer + 1) * k <= STEPS:
            with torch.no_grad():
                for phi, theta in zip(slow, ref_model.parameters(), strict=True):
                    phi += alpha * (theta - phi)
                    theta.copy_(phi)
    for p, q in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        assert rel_error(p, q) <= 1e-12


def test_lookahead_with_alpha_one_is_its_inner_optimizer():
    a, b = TinyMLP(torch.float64), TinyMLP(torch.float64)
    a.train(ck.Lookahead(ck.Adam(a.parameters(), lr=0.01), k=3, alpha=1.0), 20)
    b.train(ck.Adam(b.parameters(), lr=0.01), 20)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_lookahead_shares_param_groups_with_torch_schedulers():
    model = TinyMLP(torch.float64)
    inner = ck.SGD(model.parameters(), lr=0.1)
    opt = ck.Lookahead(inner, k=2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    model.train(opt, 1)
    sched.step()
    assert inner.param_groups[0]["lr"] == pytest.approx(0.05)


def _momentum_reference(form: str, theta0, grad_fn, lrs, mu):
    theta, buf = theta0.copy(), np.zeros_like(theta0)
    for lr in lrs:
        g = grad_fn(theta)
        if form == "sgd_plus":          # v = mu v + g;  theta -= lr v
            buf = mu * buf + g
            theta = theta - lr * buf
        else:                           # dw = mu dw + lr g;  theta -= dw
            buf = mu * buf + lr * g
            theta = theta - buf
    return theta


def _run_momentum(cls, theta0, grad_fn, lrs, mu):
    theta = torch.nn.Parameter(torch.tensor(theta0))
    opt = cls([theta], lr=lrs[0], momentum=mu)
    for lr in lrs:
        opt.param_groups[0]["lr"] = lr
        theta.grad = torch.tensor(grad_fn(theta.detach().numpy()))
        opt.step()
    return theta.detach().numpy()


def test_momentum_forms_agree_at_constant_lr_and_differ_when_lr_changes():
    scales = np.array([1.0, 25.0])

    def grad_fn(th):
        return scales * th

    theta0 = np.array([2.0, -1.5])
    constant = [0.02] * 40
    decayed = [0.02] * 20 + [0.002] * 20   # a step schedule: lr drops 10x at step 20

    for lrs in (constant, decayed):
        for cls, form in ((ck.SGDPlus, "sgd_plus"), (ck.QianMomentum, "qian")):
            got = _run_momentum(cls, theta0, grad_fn, lrs, 0.9)
            np.testing.assert_allclose(got, _momentum_reference(form, theta0, grad_fn, lrs, 0.9),
                                       rtol=1e-13, atol=1e-15)

    same_plus = _run_momentum(ck.SGDPlus, theta0, grad_fn, constant, 0.9)
    same_qian = _run_momentum(ck.QianMomentum, theta0, grad_fn, constant, 0.9)
    np.testing.assert_allclose(same_plus, same_qian, rtol=1e-12)

    # After the drop, SGD+ rescales its whole velocity by the new lr (an abrupt 10x
    # shorter step) while Qian's form keeps coasting on steps taken at the old lr.
    plus = _run_momentum(ck.SGDPlus, theta0, grad_fn, decayed, 0.9)
    qian = _run_momentum(ck.QianMomentum, theta0, grad_fn, decayed, 0.9)
    assert np.abs(plus - qian).max() > 1e-3
