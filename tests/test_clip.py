"""Gradient clipping (coursekit.optim.clip).

Global-norm clipping is compared with torch.nn.utils.clip_grad_norm_; the running-mean
rule of a student presentation of Chandra et al. (2022) with its equations worked by
hand and written out step by step over a scripted sequence of gradient norms, alone
and inside hyper-optimizer stacks (parameter level and hyperparameter level).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from coursekit.optim import clip, hyper


def _grads(seed: int, dtype=torch.float64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 4, generator=g, dtype=torch.float64).to(dtype),
            torch.randn(5, generator=g, dtype=torch.float64).to(dtype)]


def _params_with_grads(grads: list[torch.Tensor]) -> list[nn.Parameter]:
    params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return [*params, nn.Parameter(torch.zeros(2, dtype=grads[0].dtype))]  # last: grad None


# ---------------------------------------------------------------------------
# Global-norm clipping = torch.nn.utils.clip_grad_norm_
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.0, 0.5, 2.0, 1e3])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    grads = _grads(0, dtype)
    ours, theirs = _params_with_grads(grads), _params_with_grads(grads)
    total = clip.clip_grad_norm_(ours, max_norm, norm_type)
    expected_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(total, expected_total, rtol=rtol, atol=0)
    for p, q in zip(ours, theirs, strict=True):
        if q.grad is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, q.grad, rtol=rtol, atol=0)


def test_clip_by_global_norm_returns_new_tensors_and_keeps_the_direction():
    grads = _grads(1)
    before = [g.clone() for g in grads]
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    clipped = clip.clip_by_global_norm(grads, 0.25 * total.item())
    for g, b in zip(grads, before, strict=True):
        assert torch.equal(g, b)
    ratios = [c / g for c, g in zip(clipped, grads, strict=True)]
    expected_ratio = 0.25 * total / (total + 1e-6)
    for r in ratios:
        torch.testing.assert_close(r, torch.full_like(r, expected_ratio.item()), rtol=1e-12, atol=0)
    assert clip.GlobalNormClip(0.25 * total.item())(grads)[0].equal(clipped[0])


def test_clip_grad_norm_raises_on_nonfinite_norm_when_asked():
    grads = _grads(2)
    grads[0][0, 0] = math.inf
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        clip.clip_grad_norm_(_params_with_grads(grads), 1.0, error_if_nonfinite=True)


# ---------------------------------------------------------------------------
# The presentation's running-mean rule, by hand
# ---------------------------------------------------------------------------

def _scripted(norms: list[float], seed: int = 3) -> list[list[torch.Tensor]]:
    """Gradients (two tensors each) in random directions with the given global 2-norms."""
    steps = []
    for t, n in enumerate(norms):
        grads = _grads(seed + t)
        length = torch.sqrt(sum((g**2).sum() for g in grads))
        steps.append([g * (n / length) for g in grads])
    return steps


def _seed_rule(norms: list[float]) -> tuple[list[float], list[float]]:
    """The presentation's equations, one line each: thresholds theta_t and scales per step."""
    thresholds, scales, theta_prime = [], [], 0.0
    for t, n in enumerate(norms, start=1):
        theta = n if t == 1 else (theta_prime * (t - 1) + n) / t
        scale = min(1.0, theta / n) if n > 0 else 1.0
        clipped_norm = n * scale
        theta_prime = clipped_norm if t == 1 else (theta_prime * (t - 1) + clipped_norm) / t
        thresholds.append(theta)
        scales.append(scale)
    return thresholds, scales


def test_running_mean_clip_first_steps_match_hand_worked_fractions():
    # norms 3, 1, 4: theta_1 = 3 (no clip); theta_2 = (3 + 1)/2 = 2 >= 1 (no clip), mean 2;
    # theta_3 = (2*2 + 4)/3 = 8/3 < 4, so g_3 is scaled by (8/3)/4 = 2/3, and the mean
    # becomes (2*2 + 8/3)/3 = 20/9; theta_4 = (3 * 20/9 + 9)/4 = 47/12 < 9: scaled by 47/108.
    norms = [3.0, 1.0, 4.0, 9.0]
    clipper = clip.RunningMeanClip()
    outputs = [clipper(g) for g in _scripted(norms)]
    thresholds = [Fraction(3), Fraction(2), Fraction(8, 3), Fraction(47, 12)]
    scales = [Fraction(1), Fraction(1), Fraction(2, 3), Fraction(47, 108)]
    np.testing.assert_allclose(clipper.history["threshold"], [float(f) for f in thresholds],
                               rtol=1e-14)
    np.testing.assert_allclose(clipper.history["scale"], [float(f) for f in scales], rtol=1e-14)
    np.testing.assert_allclose(clipper.history["norm"], norms, rtol=1e-14)
    assert clipper.theta.item() == pytest.approx((3 * 20 / 9 + 47 / 12) / 4, rel=1e-14)
    out_norms = [torch.sqrt(sum((g**2).sum() for g in out)).item() for out in outputs]
    np.testing.assert_allclose(out_norms, [3.0, 1.0, 8 / 3, 47 / 12], rtol=1e-13)


def test_running_mean_clip_matches_seed_equations_over_scripted_norms():
    norms = [2.0, 0.5, 7.0, 1.0, 1.0, 30.0, 0.0, 4.0, 100.0, 0.2, 3.0, 3.0, 12.0]
    steps = _scripted(norms)
    clipper = clip.RunningMeanClip()
    thresholds, scales = _seed_rule(norms)
    for grads, scale in zip(steps, scales, strict=True):
        out = clipper(grads)
        for o, g in zip(out, grads, strict=True):
            torch.testing.assert_close(o, g * scale, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(clipper.history["threshold"], thresholds, rtol=1e-13)
    np.testing.assert_allclose(clipper.history["scale"], scales, rtol=1e-13)
    assert sum(s < 1 for s in scales) >= 4  # the sequence does exercise clipping


def test_running_mean_clip_in_place_on_parameters_equals_the_functional_call():
    steps = _scripted([1.0, 5.0, 2.0, 8.0])
    functional, in_place = clip.RunningMeanClip(), clip.RunningMeanClip()
    for grads in steps:
        params = _params_with_grads(grads)
        expected = functional(grads)
        norm = in_place.clip_grad_norm_(params)
        assert norm.item() == pytest.approx(torch.sqrt(sum((g**2).sum() for g in grads)).item())
        for p, e in zip(params[:-1], expected, strict=True):
            torch.testing.assert_close(p.grad, e, rtol=0, atol=0)
        assert params[-1].grad is None


@pytest.mark.parametrize("make", [lambda: clip.GlobalNormClip(-1.0),
                                  lambda: clip.RunningMeanClip(norm_type=0),
                                  lambda: clip.GlobalNormClip(1.0, norm_type=float("nan"))])
def test_bad_clip_arguments_raise_errors_naming_them(make):
    with pytest.raises(ValueError, match=r"max_norm|norm_type"):
        make()


# ---------------------------------------------------------------------------
# Inside a stack: SGD / SGD on a quadratic, clipped at either level
# ---------------------------------------------------------------------------

class _NoisyQuadratic(nn.Module):
    """f_t(w) = w.A.w / 2 - b_t.w with a scripted b_t per step: stochastic gradients whose
    norms go up and down, so the running-mean rule has something to clip."""

    def __init__(self, steps: int, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        q = rng.standard_normal((4, 4))
        self.a_np = q @ q.T / 4 + 0.3 * np.eye(4)
        self.b_np = rng.standard_normal(4) + rng.standard_normal((steps, 4))
        self.w0 = rng.standard_normal(4)
        self.a, self.b = torch.tensor(self.a_np), torch.tensor(self.b_np)
        self.w = nn.Parameter(torch.tensor(self.w0))

    def forward(self, t: int) -> torch.Tensor:
        return 0.5 * self.w @ self.a @ self.w - self.b[t] @ self.w


def _seed_rule_clipper():
    """A running-mean clipper on plain NumPy vectors, following the presentation's equations."""
    state = {"t": 0, "theta_prime": 0.0, "scales": []}

    def apply(v):
        state["t"] += 1
        t, n = state["t"], float(np.linalg.norm(v))
        theta = n if t == 1 else (state["theta_prime"] * (t - 1) + n) / t
        scale = min(1.0, theta / n) if n > 0 else 1.0
        state["theta_prime"] = n * scale if t == 1 else (state["theta_prime"] * (t - 1)
                                                         + n * scale) / t
        state["scales"].append(scale)
        return v * scale

    return apply, state


@pytest.mark.parametrize("level", ["parameters", "hyperparameters"])
def test_running_mean_clip_works_at_either_level_of_an_sgd_sgd_stack(level):
    alpha0, kappa, steps = 0.05, 0.01, 30
    model = _NoisyQuadratic(steps)
    clipper = clip.RunningMeanClip()
    if level == "parameters":
        stack = hyper.SGD(alpha0, optimizer=hyper.SGD(kappa), clip=clipper)
    else:
        stack = hyper.SGD(alpha0, optimizer=hyper.SGD(kappa, clip=clipper))
    wrapper = hyper.ModuleWrapper(model, stack)
    ws = []
    for t in range(steps):
        wrapper.zero_grad()
        model(t).backward()
        wrapper.step()
        ws.append(model.w.detach().numpy().copy())

    # The recursion by hand: w_{t+1} = w_t - alpha_t c_P(g_t), and the hypergradient
    # d f(w_t)/d alpha = -g_t . c_P(g_{t-1}) (raw g_t: it is a derivative of the loss),
    # then alpha_t = alpha_{t-1} - kappa c_H(hypergradient); c_P, c_H = clip or identity.
    apply, state = _seed_rule_clipper()
    clip_params = apply if level == "parameters" else (lambda v: v)
    clip_hyper = apply if level == "hyperparameters" else (lambda v: v)
    w, alpha, used_prev = model.w0.copy(), alpha0, None
    alphas, expected_ws = [], []
    for t in range(steps):
        g = model.a_np @ w - model.b_np[t]
        if used_prev is not None:
            alpha = alpha - kappa * clip_hyper(np.array([-g @ used_prev]))[0]
        alphas.append(alpha)
        used_prev = clip_params(g)
        w = w - alpha * used_prev
        expected_ws.append(w)

    np.testing.assert_allclose(stack.history["alpha"], alphas, rtol=1e-11)
    np.testing.assert_allclose(ws, expected_ws, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(clipper.history["scale"], state["scales"], rtol=1e-11)
    assert min(state["scales"]) < 0.9  # clipping happened
    expected_calls = steps if level == "parameters" else steps - 1  # no hypergradient at step 1
    assert len(clipper.history["norm"]) == expected_calls
