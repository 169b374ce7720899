"""Tests for coursekit.analysis.stochastic: per-example gradients against a loop of backward calls,
the measured mini-batch variance against sigma^2 / B computed from those gradients, the
noisy-landscape SGD runner against landscapes.run and a hand-written loop, and the noise
floor against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import landscapes
from coursekit.analysis import stochastic


def _tiny_classifier(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4)).double()


def _tiny_data(n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, generator=g, dtype=torch.float64),
            torch.randint(4, (n,), generator=g))


def _loop_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One backward call per example: the definition of the per-example gradient."""
    params = list(model.parameters())
    rows = []
    for xi, yi in zip(x, y, strict=True):
        grads = torch.autograd.grad(F.cross_entropy(model(xi[None]), yi[None]), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def test_per_sample_gradients_match_a_loop_of_backward_calls():
    model = _tiny_classifier()
    x, y = _tiny_data(11)
    expected = _loop_gradients(model, x, y)
    got = stochastic.per_sample_gradients(model, x, y, chunk_size=4)  # chunks of 4, 4, 3
    assert got.shape == (11, sum(p.numel() for p in model.parameters()))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_per_sample_variance_equals_the_spread_of_loop_gradients():
    model = _tiny_classifier()
    x, y = _tiny_data(30)
    G = _loop_gradients(model, x, y)
    deviations = ((G - G.mean(dim=0)) ** 2).sum(dim=1)
    result = stochastic.gradient_variance(model, x, y, [1], repeats=2, chunk_size=7)
    np.testing.assert_allclose(result.deviations, deviations.numpy(), rtol=1e-10)
    assert result.per_sample_variance == pytest.approx(float(deviations.mean()), rel=1e-10)
    assert result.full_gradient_norm2 == pytest.approx(float((G.mean(dim=0) ** 2).sum()),
                                                       rel=1e-10)


@pytest.mark.parametrize("replace", [True, False])
def test_minibatch_variance_follows_sigma2_over_batch_size(replace):
    model = _tiny_classifier()
    n = 40
    x, y = _tiny_data(n)
    G = _loop_gradients(model, x, y)
    sigma2 = float(((G - G.mean(dim=0)) ** 2).sum(dim=1).mean())
    sizes = np.array([1, 5, 20])
    result = stochastic.gradient_variance(model, x, y, sizes, repeats=600, replace=replace,
                                          seed=2)
    law = sigma2 / sizes * (1.0 if replace else (n - sizes) / (n - 1))
    np.testing.assert_allclose(result.predicted(), law, rtol=1e-10)
    assert np.all(np.abs(result.variance - law) < 5 * result.stderr), (result.variance, law)
    # The finite-population correction at B = n/2 halves the variance: measurably.
    other = sigma2 / 20 * ((n - 20) / (n - 1) if replace else 1.0)
    assert abs(result.variance[-1] - other) > 5 * result.stderr[-1]


def test_full_batch_without_replacement_has_no_variance_but_with_replacement_does():
    model = _tiny_classifier()
    x, y = _tiny_data(25)
    exact = stochastic.gradient_variance(model, x, y, [25], repeats=20, replace=False)
    iid = stochastic.gradient_variance(model, x, y, [25], repeats=200, replace=True)
    assert exact.variance[0] < 1e-24 * exact.per_sample_variance
    assert abs(iid.variance[0] - iid.per_sample_variance / 25) < 5 * iid.stderr[0]


def test_gradient_variance_leaves_the_model_as_it_was():
    model = _tiny_classifier()
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _tiny_data(12)
    stochastic.gradient_variance(model, x, y, [2, 3], repeats=3)
    assert model.training
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(),
                                                          strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_gradient_variance_rejects_bad_arguments():
    model = _tiny_classifier()
    x, y = _tiny_data(10)
    with pytest.raises(ValueError, match=r"^batch_sizes\[1\] must be an integer in \[1, 10\], "
                                         "got 11"):
        stochastic.gradient_variance(model, x, y, [2, 11])
    with pytest.raises(ValueError, match=r"^batch_sizes\[0\] must be an integer >= 1, got 0"):
        stochastic.gradient_variance(model, x, y, [0])
    with pytest.raises(ValueError, match=r"^batch_sizes must be an integer in \[1, 10\], got 0"):
        stochastic.gradient_variance(model, x, y, 0)
    with pytest.raises(ValueError, match=r"^batch_sizes must be a non-empty sequence"):
        stochastic.gradient_variance(model, x, y, [])
    with pytest.raises(ValueError, match=r"^repeats must be an integer >= 1, got 0"):
        stochastic.gradient_variance(model, x, y, [2], repeats=0)
    with pytest.raises(ValueError, match=r"^y must have 10 targets, one per row of x, got 9"):
        stochastic.gradient_variance(model, x, y[:9], [2])
    with pytest.raises(TypeError, match=r"^x must be a Tensor, got \[0\.0\]"):
        stochastic.gradient_variance(model, [0.0], y, [2])


def test_time_epochs_takes_ceil_n_over_b_steps_and_trains_only_copies():
    model = _tiny_classifier()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _tiny_data(10)
    timing = stochastic.time_epochs(model, x, y, [1, 3, 10], lr=0.1, repeats=1)
    np.testing.assert_array_equal(timing.steps, [10, 4, 1])
    assert np.all(np.isfinite(timing.seconds)) and np.all(timing.seconds > 0)
    np.testing.assert_allclose(timing.examples_per_second, 10 / timing.seconds)
    assert [r["steps"] for r in timing.table().to_dict("records")] == [10, 4, 1]
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(),
                                                          strict=True))


def test_run_sgd_with_one_run_follows_landscapes_run_with_torch_sgd():
    fn = landscapes.NoisyGradient(landscapes.Quadratic(5.0, angle=0.3), sigma=0.5, seed=3)
    decay = lambda k: 1.0 / (1.0 + 0.05 * k)  # noqa: E731
    reference = landscapes.run(
        lambda p: torch.optim.SGD(p, lr=0.1), fn, steps=200,
        scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, decay))
    ours = stochastic.run_sgd(fn, lambda k: 0.1 * decay(k), steps=200)
    np.testing.assert_allclose(ours.distances[:, 0], reference.distances_to_minimum(),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.final[0], reference.final, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.lrs, reference.lrs, rtol=1e-15)


def test_run_sgd_matches_a_hand_written_loop_with_growing_batches():
    quadratic = landscapes.Quadratic(8.0, angle=1.1, mu=0.5)
    fn = landscapes.NoisyGradient(quadratic, sigma=2.0, seed=7)
    steps, runs = 60, 5
    lrs = 0.2 / np.sqrt(1.0 + np.arange(steps))
    batch_sizes = np.repeat([1.0, 4.0, 16.0], steps // 3)
    got = stochastic.run_sgd(fn, lrs, steps, batch_size=batch_sizes, runs=runs,
                             start=(1.0, -2.0))

    A = quadratic.hessian
    noise = torch.Generator().manual_seed(7)
    theta = torch.tensor([[1.0, -2.0]] * runs, dtype=torch.float64)
    distances = [theta.norm(dim=1)]
    for k in range(steps):
        xi = torch.randn((runs, 2), generator=noise, dtype=torch.float64)
        theta = theta - lrs[k] * (theta @ A + 2.0 * xi / math.sqrt(batch_sizes[k]))
        distances.append(theta.norm(dim=1))
    np.testing.assert_allclose(got.distances, torch.stack(distances).numpy(), rtol=1e-10,
                               atol=1e-13)
    np.testing.assert_array_equal(got.examples[-1], batch_sizes.sum())


def test_run_sgd_without_noise_is_gradient_descent_in_closed_form():
    fn = landscapes.Quadratic(3.0)  # curvatures 1 (x) and 3 (y)
    lr = 0.1
    got = stochastic.run_sgd(fn, lr, steps=30, runs=2, start=(1.0, 1.0))
    k = np.arange(31)
    expected = np.sqrt((1 - lr) ** (2 * k) + (1 - 3 * lr) ** (2 * k))
    np.testing.assert_allclose(got.distances, np.column_stack([expected, expected]),
                               rtol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_constant_step_sgd_settles_at_the_noise_floor(batch_size):
    fn = landscapes.NoisyGradient(landscapes.Quadratic(4.0, angle=0.4, mu=0.5), sigma=1.0,
                                  seed=batch_size)
    lr = 0.3  # eta * L = 0.6: both directions forget the start within ~100 steps
    runs = stochastic.run_sgd(fn, lr, steps=300, batch_size=batch_size, runs=2000,
                              start=(0.0, 0.0))
    per_run = np.mean(runs.distances[150:] ** 2, axis=0)  # time average, one per run
    stderr = per_run.std(ddof=1) / math.sqrt(len(per_run))
    floor = stochastic.noise_floor(fn, lr, batch_size)
    exact = sum(lr / (batch_size * c * (2 - lr * c)) for c in (0.5, 2.0))
    assert floor == pytest.approx(exact, rel=1e-14)
    assert abs(per_run.mean() - floor) < 5 * stderr


def test_noise_floor_scales_with_lr_over_batch_size_for_small_steps():
    fn = landscapes.NoisyGradient(landscapes.Quadratic(10.0), sigma=0.3)
    small = stochastic.noise_floor(fn, 1e-4, 1)
    assert stochastic.noise_floor(fn, 2e-4, 2) == pytest.approx(small, rel=1e-3)
    assert small == pytest.approx(1e-4 * 0.09 / 2 * (1 + 1 / 10), rel=1e-3)
    assert stochastic.noise_floor(fn, 0.2, 1) == math.inf  # eta * L = 2


def test_run_sgd_and_noise_floor_reject_bad_arguments():
    fn = landscapes.NoisyGradient(landscapes.Quadratic(), sigma=1.0)
    with pytest.raises(ValueError, match=r"^lr must be of shape \(5,\), got shape \(3,\)"):
        stochastic.run_sgd(fn, [0.1, 0.1, 0.1], steps=5)
    with pytest.raises(ValueError, match=r"^lr\[2\] must be >= 0, got -0\.1"):
        stochastic.run_sgd(fn, lambda t: 0.1 if t < 2 else -0.1, steps=5)
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0\.5"):
        stochastic.run_sgd(fn, 0.1, steps=5, batch_size=0.5)
    with pytest.raises(ValueError, match=r"^steps must be an integer >= 1, got 0"):
        stochastic.run_sgd(fn, 0.1, steps=0)
    with pytest.raises(ValueError, match=r"^start must be a sequence of 2 numbers"):
        stochastic.run_sgd(fn, 0.1, steps=5, start=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"^fn must be a landscape with a minimum"):
        stochastic.run_sgd(landscapes.Saddle(), 0.1, steps=5)
    with pytest.raises(TypeError, match=r"^fn must be NoisyGradient\(Quadratic"):
        stochastic.noise_floor(landscapes.Quadratic(), 0.1)
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0"):
        stochastic.noise_floor(fn, 0.1, 0)


def _exact_mean_squared_distance(fn, lrs, batch_size, start) -> np.ndarray:
    """E|theta_k - theta*|^2 of SGD on NoisyGradient(Quadratic): along each eigenvector with
    curvature h, the mean error is multiplied by 1 - lr h and the variance v obeys
    v <- (1 - lr h)^2 v + lr^2 sigma^2 / B (Gaussian noise, independent per step)."""
    quadratic = fn.landscape
    eigenvalues, eigenvectors = np.linalg.eigh(quadratic.hessian.numpy())
    mean = eigenvectors.T @ np.asarray(start, dtype=np.float64)
    var = np.zeros(2)
    out = [np.sum(mean**2)]
    for lr in lrs:
        mean = (1 - lr * eigenvalues) * mean
        var = (1 - lr * eigenvalues) ** 2 * var + lr**2 * fn.sigma**2 / batch_size
        out.append(np.sum(mean**2 + var))
    return np.array(out)


@pytest.mark.parametrize(("kappa", "mu", "sigma", "lr", "batch_size"), [
    (4.0, 0.5, 1.0, 0.4, 1), (4.0, 0.5, 1.0, 0.8, 1), (10.0, 0.1, 0.3, 0.05, 8),
    (1.0, 2.0, 2.0, 0.5, 2), (25.0, 0.04, 0.5, 0.05, 1)])
def test_constant_step_bound_holds_for_the_exact_mean_squared_distance(kappa, mu, sigma, lr,
                                                                       batch_size):
    fn = landscapes.NoisyGradient(landscapes.Quadratic(kappa, angle=0.7, mu=mu), sigma=sigma)
    bound = stochastic.constant_step_bound(fn, lr, 3000, batch_size=batch_size)
    exact = _exact_mean_squared_distance(fn, np.full(3000, lr), batch_size, fn.start)
    assert np.all(exact <= bound * (1 + 1e-12))
    assert exact[-1] == pytest.approx(stochastic.noise_floor(fn, lr, batch_size), rel=1e-4)


def test_constant_step_bound_floor_is_twice_the_exact_floor_for_small_steps():
    # bound floor lr s^2 / m = (lr sigma^2 / B)(1/mu + 1/L); exact (lr sigma^2 / 2B)(1/mu + 1/L)
    fn = landscapes.NoisyGradient(landscapes.Quadratic(5.0, mu=0.2), sigma=0.7)
    for lr, batch_size in ((1e-4, 1), (1e-5, 16)):
        # from the minimum the bound is its floor at every step
        floor = stochastic.constant_step_bound(fn, lr, 0, batch_size=batch_size,
                                               start=(0.0, 0.0))[0]
        assert floor / stochastic.noise_floor(fn, lr, batch_size) == pytest.approx(2, rel=1e-3)


def test_constant_step_bound_holds_for_simulated_runs():
    fn = landscapes.NoisyGradient(landscapes.Quadratic(4.0, angle=0.3, mu=0.5), sigma=1.0, seed=3)
    runs = stochastic.run_sgd(fn, 0.4, 400, runs=2000)
    squared = runs.distances**2
    stderr = squared.std(axis=1, ddof=1) / math.sqrt(runs.runs)
    bound = stochastic.constant_step_bound(fn, 0.4, 400)
    assert np.all(squared.mean(axis=1) - 3 * stderr <= bound)


@pytest.mark.parametrize(("beta", "gamma", "start"), [
    (2.0, 5.0, None), (2.0, 2.5, (0.0, 0.0)), (1.3, 5.0, (2.0, -2.0)), (20.0, 40.0, None)])
def test_decreasing_step_bound_holds_for_the_exact_mean_squared_distance(beta, gamma, start):
    fn = landscapes.NoisyGradient(landscapes.Quadratic(4.0, angle=0.2, mu=0.5), sigma=1.0)
    steps = 5000
    bound = stochastic.decreasing_step_bound(fn, beta, gamma, steps, start=start)
    lrs = beta / (gamma + np.arange(steps))
    exact = _exact_mean_squared_distance(fn, lrs, 1, fn.start if start is None else start)
    assert np.all(exact <= bound * (1 + 1e-12))
    k = np.arange(steps + 1)
    np.testing.assert_allclose(bound * (gamma + k), bound[0] * gamma, rtol=1e-12)  # nu/(gamma+k)


def test_sgd_bounds_reject_steps_outside_the_theorem():
    fn = landscapes.NoisyGradient(landscapes.Quadratic(4.0, mu=0.5), sigma=1.0)  # mu + L = 2.5
    with pytest.raises(ValueError, match=r"^lr must be in \[0, 0\.8\], got 0\.9"):
        stochastic.constant_step_bound(fn, 0.9, 10)
    with pytest.raises(ValueError, match=r"^beta must be > 1\.25, got 1\.25"):  # m = 0.8
        stochastic.decreasing_step_bound(fn, 1.25, 10.0, 10)
    with pytest.raises(ValueError, match=r"^gamma must be >= 2\.5, got 2"):  # beta / gamma <= 0.8
        stochastic.decreasing_step_bound(fn, 2.0, 2.0, 10)
    with pytest.raises(TypeError, match=r"^fn must be NoisyGradient\(Quadratic"):
        stochastic.constant_step_bound(landscapes.Quadratic(), 0.1, 10)


def test_phase_schedule_spends_each_phase_examples_in_its_batch_size():
    lrs, sizes = stochastic.phase_schedule([8, 12, 16], [0.5, 0.5, 0.1], [2, 4, 16])
    np.testing.assert_array_equal(lrs, [0.5] * 4 + [0.5] * 3 + [0.1])
    np.testing.assert_array_equal(sizes, [2] * 4 + [4] * 3 + [16])
    assert sizes.sum() == 36
    with pytest.raises(ValueError, match=r"^examples\[1\] must be a multiple of "
                                         r"batch_sizes\[1\] = 4, got 10"):
        stochastic.phase_schedule([8, 10], [0.1, 0.1], [2, 4])
    with pytest.raises(ValueError, match=r"^lrs\[0\] must be >= 0, got -0\.1"):
        stochastic.phase_schedule([8], [-0.1], [2])
    with pytest.raises(ValueError, match="got lengths 2, 1, 2"):
        stochastic.phase_schedule([8, 8], [0.1], [2, 4])
