"""coursekit.analysis.modern: lecture 8's measurements, checked against their definitions.

Every expected value is computed here from the equation the docstring states (Adafactor's
second moment from its exponential averages, Newton-Schulz on singular values from an SVD,
Adam's update from its moments, the Schedule-Free average from the stored ``z`` iterates,
inverse roots from an eigendecomposition), never from the function under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from coursekit import models, train
from coursekit.analysis import modern
from coursekit.optim import Adam, AdamW, Muon
from coursekit.optim.adafactor import Adafactor
from coursekit.optim.combined import Combined
from coursekit.optim.lion import Lion
from coursekit.optim.muon import newton_schulz
from coursekit.schedules import LambdaLR

F64 = torch.float64


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- Adafactor

def test_factored_second_moment_is_exact_on_a_rank_one_matrix():
    g = _generator()
    a, b = torch.rand(12, generator=g, dtype=F64) + 0.1, torch.rand(7, generator=g, dtype=F64)
    V = torch.outer(a, b)
    torch.testing.assert_close(modern.factored_second_moment(V), V, rtol=1e-14, atol=0)


def test_factored_second_moment_is_not_exact_on_a_rank_two_matrix():
    g = _generator(1)
    V = sum(torch.outer(torch.rand(6, generator=g, dtype=F64), torch.rand(5, generator=g,
                                                                          dtype=F64))
            for _ in range(2))
    assert (modern.factored_second_moment(V) - V).abs().max() > 1e-3


def test_factored_second_moment_keeps_the_row_and_column_means():
    V = torch.rand(9, 4, generator=_generator(2), dtype=F64)
    rebuilt = modern.factored_second_moment(V)
    torch.testing.assert_close(rebuilt.mean(1), V.mean(1), rtol=1e-13, atol=0)
    torch.testing.assert_close(rebuilt.mean(0), V.mean(0), rtol=1e-13, atol=0)


def _i_divergence(V: torch.Tensor, W: torch.Tensor) -> float:
    return float((V * torch.log(V / W) - V + W).sum())


def test_factored_second_moment_is_the_best_rank_one_fit_in_the_i_divergence():
    g = _generator(3)
    V = torch.rand(8, 5, generator=g, dtype=F64) + 0.05
    rebuilt = modern.factored_second_moment(V)
    rows, cols = V.mean(1), V.mean(0) / V.mean()
    best = _i_divergence(V, rebuilt)
    for _ in range(200):       # any other positive rank-1 matrix diverges more
        r = rows * torch.exp(0.05 * torch.randn(8, generator=g, dtype=F64))
        c = cols * torch.exp(0.05 * torch.randn(5, generator=g, dtype=F64))
        assert _i_divergence(V, torch.outer(r, c)) > best


def test_factored_second_moment_equals_adafactors_own_estimate():
    """Adafactor's v_hat, read back from its step, equals the rebuild of the full average
    ``V_t = beta2_t V_{t-1} + (1 - beta2_t) G_t^2`` kept here as Adam would keep it."""
    g = _generator(4)
    W = torch.randn(6, 9, generator=g, dtype=F64, requires_grad=True)
    lr, decay = 1e-2, -0.8
    optimizer = Adafactor([W], lr=lr, beta2_decay=decay, d=1e12)   # d: no update clipping
    V = torch.zeros(6, 9, dtype=F64)
    for t in range(1, 8):
        grad = torch.randn(6, 9, generator=g, dtype=F64) * torch.rand(6, 1, generator=g,
                                                                      dtype=F64)
        beta2 = 1 - t**decay
        V = beta2 * V + (1 - beta2) * grad**2
        before = W.detach().clone()
        W.grad = grad.clone()
        optimizer.step()
        alpha = max(1e-3, float(before.pow(2).mean().sqrt())) * min(lr, 1 / math.sqrt(t))
        v_hat = (alpha * grad / (W.detach() - before)) ** 2      # step = -alpha g / sqrt(v)
        torch.testing.assert_close(modern.factored_second_moment(V), v_hat, rtol=1e-9, atol=0)


def test_factored_second_moment_refuses_a_vector():
    with pytest.raises(ValueError, match="second_moment must be a matrix"):
        modern.factored_second_moment(torch.ones(4))


# --------------------------------------------------------------------------- Newton-Schulz

def _matrix(singular_values: torch.Tensor, m: int, n: int, seed: int = 5) -> torch.Tensor:
    g = _generator(seed)
    U, _ = torch.linalg.qr(torch.randn(m, len(singular_values), generator=g, dtype=F64))
    V, _ = torch.linalg.qr(torch.randn(n, len(singular_values), generator=g, dtype=F64))
    return U @ torch.diag(singular_values) @ V.T


@pytest.mark.parametrize("shape", [(12, 7), (7, 12)])
@pytest.mark.parametrize("coefficients", [(3.4445, -4.7750, 2.0315), (1.5, -0.5, 0.0)])
@pytest.mark.parametrize("steps", [0, 1, 3, 5])
def test_newton_schulz_map_gives_the_singular_values_of_the_iteration(shape, coefficients,
                                                                      steps):
    s = torch.logspace(0, -3, 7, dtype=F64)
    G = _matrix(s, *shape)
    after = torch.linalg.svdvals(newton_schulz(G, steps, coefficients=coefficients,
                                               dtype=None))
    predicted = modern.newton_schulz_map((s / G.norm()).numpy(), steps, coefficients)
    np.testing.assert_allclose(np.sort(after.numpy())[::-1], np.sort(predicted)[::-1],
                               rtol=1e-10, atol=1e-13)


def test_newton_schulz_map_is_the_quintic_iterated():
    s = np.array([0.0, 1e-3, 0.1, 0.5, 1.0])
    a, b, c = 3.4445, -4.7750, 2.0315                  # Jordan et al. (2024)
    expected = s.copy()
    for _ in range(2):
        expected = a * expected + b * expected**3 + c * expected**5
    np.testing.assert_allclose(modern.newton_schulz_map(s, 2), expected, rtol=1e-15)
    np.testing.assert_array_equal(modern.newton_schulz_map(s, 0), s)


def test_five_quintic_steps_put_every_value_above_0_003_in_the_band():
    """The lecture's (and muon.newton_schulz's) reading of the figure."""
    after = modern.newton_schulz_map(np.linspace(0.003, 1, 2000), 5)
    assert after.min() >= 0.68 and after.max() <= 1.21      # the peak is 1.2024


def test_newton_schulz_map_refuses_negative_steps():
    with pytest.raises(ValueError, match="steps"):
        modern.newton_schulz_map(np.ones(3), -1)


# --------------------------------------------------------------------------- update size

def _regression(seed: int = 0):
    g = _generator(seed)
    x = torch.randn(64, 4, generator=g, dtype=F64)
    y = torch.randint(0, 3, (64,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    return model, (x, y)


def test_update_size_is_one_per_coordinate_for_lion_under_a_schedule():
    model, split = _regression()
    hook = modern.UpdateSize(model)
    optimizer = Lion(model.parameters(), lr=1e-3)
    scheduler = LambdaLR(optimizer, lambda t: 1 / (1 + t))     # a new rate every step
    history = train.fit(model, optimizer, split, 2, batch_size=16, scheduler=scheduler,
                        scheduler_on="batch", progress=False, on_step=hook)
    assert len(hook.sizes) == history.steps == 8
    np.testing.assert_allclose(hook.sizes, 1.0, rtol=1e-9)


def test_update_size_is_the_rms_of_adams_update():
    model, split = _regression(1)
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, 1e-2
    moments = {p: (torch.zeros_like(p), torch.zeros_like(p)) for p in model.parameters()}
    expected = []

    def adam_by_hand(info):            # p.grad is this step's gradient
        t = info.step
        updates = []
        for p, (m, v) in moments.items():
            m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            updates.append((m_hat / (v_hat.sqrt() + eps)).flatten())
        expected.append(float(torch.cat(updates).pow(2).mean().sqrt()))

    hook = modern.UpdateSize(model)
    train.fit(model, Adam(model.parameters(), lr=lr, betas=(beta1, beta2), eps=eps), split, 2,
              batch_size=16, progress=False, on_step=[hook, adam_by_hand])
    np.testing.assert_allclose(hook.sizes, expected, rtol=1e-9)
    assert max(hook.sizes) < 1.0


# --------------------------------------------------------------------------- Muon + AdamW

def test_muon_with_adamw_gives_the_hidden_matrices_to_muon_and_the_rest_to_adamw():
    torch.manual_seed(0)
    model = models.MLP((1, 8, 8), 10, hidden=(16, 12))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    combined = modern.muon_with_adamw(model.parameters(), lr=0.05, adamw_lr=2e-3,
                                      weight_decay=0.01)
    assert isinstance(combined, Combined)
    muon, adamw = combined.optimizers
    assert isinstance(muon, Muon) and isinstance(adamw, AdamW)
    muon_params = [p for g in muon.param_groups for p in g["params"]]
    adamw_params = [p for g in adamw.param_groups for p in g["params"]]
    assert [id(p) for p in muon_params] == [id(linears[0].weight), id(linears[1].weight)]
    assert {id(p) for p in adamw_params} == {id(linears[2].weight),
                                            *(id(m.bias) for m in linears)}
    (muon_group,), (adamw_group,) = muon.param_groups, adamw.param_groups
    assert (muon_group["lr"], muon_group["adjust_lr_fn"], muon_group["ns_dtype"]) == (
        0.05, None, None)
    assert muon_group["weight_decay"] == adamw_group["weight_decay"] == 0.01
    assert adamw_group["lr"] == 2e-3


def test_muon_with_adamw_sends_convolution_kernels_to_adamw():
    torch.manual_seed(0)
    model = models.SmallCNN((1, 8, 8), 10, channels=4)
    muon, adamw = modern.muon_with_adamw(model.parameters(), lr=0.02).optimizers
    muon_params = [p for g in muon.param_groups for p in g["params"]]
    assert all(p.ndim == 2 for p in muon_params)
    assert any(p.ndim == 4 for g in adamw.param_groups for p in g["params"])


def test_muon_with_adamw_refuses_a_model_with_one_matrix():
    with pytest.raises(ValueError, match="at least two matrices"):
        modern.muon_with_adamw(nn.Linear(4, 3).parameters(), lr=0.02)


# --------------------------------------------------------------------------- Shampoo

def _inverse_root(A: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(A)
    return vectors @ torch.diag(values**power) @ vectors.T


def test_preconditioners_follow_their_definitions():
    g = _generator(6)
    grads = [torch.randn(3, 4, generator=g, dtype=F64) for _ in range(20)]
    eps = 1e-3
    pre = modern.preconditioners(grads, eps=eps)
    flat = torch.stack([G.flatten() for G in grads])          # row-major vec
    full = eps * torch.eye(12, dtype=F64) + sum(torch.outer(v, v) for v in flat)
    torch.testing.assert_close(pre["full-matrix AdaGrad"], _inverse_root(full, -0.5),
                               rtol=1e-8, atol=1e-10)
    L = eps * torch.eye(3, dtype=F64) + sum(G @ G.T for G in grads)
    R = eps * torch.eye(4, dtype=F64) + sum(G.T @ G for G in grads)
    G = grads[0]
    shampoo_step = _inverse_root(L, -0.25) @ G @ _inverse_root(R, -0.25)
    torch.testing.assert_close(pre["Shampoo"] @ G.flatten(), shampoo_step.flatten(),
                               rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(pre["diagonal AdaGrad"],
                               torch.diag(1 / torch.sqrt(eps + (flat**2).sum(0))),
                               rtol=1e-12, atol=0)


def test_soap_with_a_fixed_basis_is_adam_on_rotated_weights():
    g = _generator(7)
    X = torch.randn(50, 4, generator=g, dtype=F64)
    Y = X @ torch.randn(4, 4, generator=g, dtype=F64)

    def loss(W):
        return 0.5 * ((X @ W.T - Y) ** 2).mean()

    start = torch.randn(4, 4, generator=g, dtype=F64)
    same = modern.soap_versus_rotated_adam(loss, start, steps=30, lr=0.05)
    assert len(same["SOAP"]) == len(same["rotated Adam"]) == 30
    assert same["largest difference"] < 1e-6     # rounding, amplified where v is small
    np.testing.assert_allclose(same["SOAP"], same["rotated Adam"], rtol=1e-9)
    assert same["SOAP"][-1] < loss(start).item()
