"""Tests for coursekit.analysis.dynamics: measured rates against closed forms, the theory against
numpy's eigenvalues of the iteration matrices written out here, and the vectorised rate
map against one coursekit.landscapes.run per cell."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from coursekit import optim
from coursekit.analysis import dynamics
from coursekit.landscapes import NoisyGradient, Quadratic, Rosenbrock, Saddle, run
from coursekit.viz import plot

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _heavy_ball_matrix(lr: float, momentum: float, h: float) -> np.ndarray:
    """theta_{k+1} = theta_k - lr h theta_k + momentum (theta_k - theta_{k-1}) on (theta_k,
    theta_{k-1})."""
    return np.array([[1 + momentum - lr * h, -momentum], [1.0, 0.0]])


def _nesterov_matrix(lr: float, momentum: float, h: float) -> np.ndarray:
    """torch.optim.SGD(nesterov=True) on f = h theta^2 / 2, with state (v_k, theta_k):
    v_{k+1} = momentum v_k + h theta_k
    theta_{k+1} = theta_k - lr (h theta_k + momentum v_{k+1})"""
    return np.array([[momentum, h],
                     [-lr * momentum**2, 1 - lr * h * (1 + momentum)]])


def _spectral_radius(matrices: list[np.ndarray]) -> float:
    return max(np.abs(np.linalg.eigvals(m)).max() for m in matrices)


# ----------------------------------------------------------------------------- GD guarantees


def _gradient_descent_gaps(f, grad, x0: np.ndarray, lr: float, steps: int,
                           f_star: float) -> np.ndarray:
    """f(x_k) - f* of x_{k+1} = x_k - lr grad(x_k), k = 0..steps, in float64 numpy."""
    x, gaps = np.array(x0, dtype=np.float64), []
    for _ in range(steps + 1):
        gaps.append(f(x) - f_star)
        x = x - lr * grad(x)
    return np.array(gaps)


def _logistic(n: int, d: int, ridge: float, seed: int):
    """Mean logistic loss of labels y = +-1 (overlapping classes) plus ridge/2 |w|^2: convex,
    L-smooth with L = lambda_max(X^T X) / (4n) + ridge, ridge-strongly convex.
    Returns f, grad, L and f* (found by Newton's method)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-X @ rng.normal(size=d))), 1.0, -1.0)

    def f(w):
        return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + ridge / 2 * w @ w)

    def grad(w):
        s = 1 / (1 + np.exp(y * (X @ w)))
        return -(X.T @ (y * s)) / n + ridge * w

    w = np.zeros(d)
    for _ in range(50):
        p = 1 / (1 + np.exp(-(X @ w)))
        hessian = (X.T * (p * (1 - p))) @ X / n + ridge * np.eye(d)
        w = w - np.linalg.solve(hessian, grad(w))
    L = np.linalg.eigvalsh(X.T @ X / (4 * n)).max() + ridge
    return f, grad, L, f(w), w


@pytest.mark.parametrize("seed", range(4))
def test_strongly_convex_bound_holds_for_gradient_descent_on_regularised_logistic_regression(
        seed):
    ridge = 0.05
    f, grad, L, f_star, _ = _logistic(200, 5, ridge, seed)
    x0 = np.random.default_rng(seed + 10).normal(size=5) * 3
    gaps = _gradient_descent_gaps(f, grad, x0, 1 / L, 300, f_star)
    bound = dynamics.strongly_convex_bound(L, ridge, gaps[0], 300)
    assert np.all(gaps <= bound * (1 + 1e-9) + 1e-13)
    assert gaps[-1] < 1e-3 * gaps[0]  # and the run itself did converge


def test_strongly_convex_bound_on_a_1d_quadratic_is_the_square_root_of_the_exact_gap():
    # f = mu x^2 / 2 with step 1/L: x_k = (1 - mu/L)^k x_0, so the gap falls like
    # (1 - mu/L)^(2k): the bound holds and its square, over gap0, is the measured gap.
    L, mu, x0 = 10.0, 1.0, 3.0
    gaps = _gradient_descent_gaps(lambda x: mu * x @ x / 2, lambda x: mu * x, np.array([x0]),
                                  1 / L, 40, 0.0)
    bound = dynamics.strongly_convex_bound(L, mu, gaps[0], 40)
    np.testing.assert_allclose(gaps, bound**2 / gaps[0], rtol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_convex_bound_holds_on_convex_quadratics_with_flat_directions_and_on_logistic(seed):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    curvatures = np.concatenate([[0.0, 0.0], rng.uniform(1e-4, 1.0, size=3), [1.0]])
    A = Q @ np.diag(curvatures) @ Q.T
    x0 = rng.normal(size=6)
    x_star = Q[:, :2] @ (Q[:, :2].T @ x0)  # the nearest minimiser: GD never moves along the kernel
    gaps = _gradient_descent_gaps(lambda x: x @ A @ x / 2, lambda x: A @ x, x0, 1.0, 2000, 0.0)
    bound = dynamics.convex_bound(1.0, np.linalg.norm(x0 - x_star), 2000)
    assert np.all(gaps[1:] <= bound[1:] * (1 + 1e-9))
    assert bound[0] == math.inf

    f, grad, L, f_star, w_star = _logistic(100, 3, 0.0, seed)  # overlapping classes: a minimiser
    x0 = rng.normal(size=3) * 2
    gaps = _gradient_descent_gaps(f, grad, x0, 1 / L, 500, f_star)
    bound = dynamics.convex_bound(L, np.linalg.norm(x0 - w_star), 500)
    assert np.all(gaps[1:] <= bound[1:] * (1 + 1e-9) + 1e-13)


def test_convex_bound_is_attained_up_to_a_constant_by_a_flat_enough_quadratic():
    # On f = h x^2 / 2 (h <= L), gap_k / bound_k = (k h / L) (1 - h / L)^(2k), which is
    # largest near h = L / (2k + 1), where it tends to 1 / (2e) = 0.18: the 1/k order is real.
    L, k = 1.0, 100
    ratios = []
    for h in np.geomspace(1e-5, 1.0, 200):
        gaps = _gradient_descent_gaps(lambda x, h=h: h * x @ x / 2, lambda x, h=h: h * x,
                                      np.array([1.0]), 1 / L, k, 0.0)
        ratios.append(gaps[k] / dynamics.convex_bound(L, 1.0, k)[k])
    assert max(ratios) <= 1
    assert max(ratios) == pytest.approx(1 / (2 * math.e), rel=0.02)


# ----------------------------------------------------------------------------- measured rates


@pytest.mark.parametrize("lr", [0.05, 0.3, 0.5, 0.8, 0.95, 1.1])
def test_gradient_descent_rate_on_a_1d_quadratic_is_abs_one_minus_lr_h(lr):
    h = 2.0
    fn = Quadratic(condition_number=1.0, mu=h)      # curvature h in every direction
    rate = dynamics.convergence_rate(run(lambda p: optim.SGD(p, lr=lr), fn, steps=60))
    assert rate == pytest.approx(abs(1 - lr * h), rel=1e-12, abs=1e-15)


def test_convergence_rate_of_a_geometric_sequence_after_a_transient():
    k = np.arange(200)
    distances = 0.97**k + 5.0 * 0.5**k       # the fast mode dies out within the first half
    assert dynamics.convergence_rate(distances) == pytest.approx(0.97, rel=1e-12)


def test_convergence_rate_reports_a_blow_up_as_growth():
    fn = Quadratic(condition_number=1.0, mu=1.0)
    traj = run(lambda p: optim.SGD(p, lr=3.0), fn, steps=40)    # |1 - 3| = 2 per step
    assert dynamics.convergence_rate(traj) == pytest.approx(2.0, rel=1e-12)
    assert dynamics.convergence_rate([1.0, math.inf, math.inf]) == math.inf
    assert dynamics.convergence_rate([1.0, 0.0, 0.0]) == 0.0


def test_heavy_ball_rate_at_the_optimum_matches_the_iteration_matrix_eigenvalues():
    fn = Quadratic(condition_number=16.0, angle=0.4, mu=0.5)
    best = dynamics.heavy_ball_optimum(fn.L, fn.mu)
    # the published formulas, written out
    kappa = fn.L / fn.mu
    assert best.lr == pytest.approx((2 / (math.sqrt(fn.L) + math.sqrt(fn.mu))) ** 2, rel=1e-14)
    assert best.momentum == pytest.approx(((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2,
                                          rel=1e-14)
    # numpy's eigenvalues of the 2x2 iteration matrices over the spectrum
    spectrum = np.linspace(fn.mu, fn.L, 9)
    radius = _spectral_radius([_heavy_ball_matrix(best.lr, best.momentum, h) for h in spectrum])
    assert best.rate == pytest.approx(radius, rel=1e-6)
    assert best.rate == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1), rel=1e-14)
    assert dynamics.momentum_rate(best.lr, best.momentum, (fn.mu, fn.L)) == pytest.approx(
        radius, rel=1e-6)
    # and a run of torch-style SGD with those settings converges at that rate (the double
    # root adds a factor k to the distances, hence the looser tolerance)
    traj = run(lambda p: optim.SGD(p, lr=best.lr, momentum=best.momentum), fn, steps=400)
    assert dynamics.convergence_rate(traj) == pytest.approx(radius, rel=1e-2)


def test_heavy_ball_optimum_beats_every_setting_on_a_grid_of_eigenvalue_radii():
    L, mu = 10.0, 1.0
    lrs, momenta = np.meshgrid(np.linspace(0.01, 0.4, 80), np.linspace(0.0, 0.95, 80))
    matrices = np.stack([
        np.stack([np.stack([1 + momenta - lrs * h, -momenta], -1),
                  np.stack([np.ones_like(lrs), np.zeros_like(lrs)], -1)], -2)
        for h in (mu, L)])                                  # (2, 80, 80, 2, 2)
    radii = np.abs(np.linalg.eigvals(matrices)).max(axis=-1).max(axis=0)
    best = dynamics.heavy_ball_optimum(L, mu)
    assert radii.min() >= best.rate - 1e-9
    assert radii.min() == pytest.approx(best.rate, rel=2e-2)
    gd = dynamics.gradient_descent_optimum(L, mu)
    assert radii[0].min() >= gd.rate - 1e-12             # the row momentum = 0 is plain GD
    assert gd.rate == pytest.approx(abs(1 - gd.lr * L)) == pytest.approx(abs(1 - gd.lr * mu))


def test_nesterov_optimum_beats_every_setting_on_a_grid_of_eigenvalue_radii():
    L, mu = 25.0, 1.0
    best = dynamics.nesterov_optimum(L, mu)
    kappa = L / mu
    assert best.lr == pytest.approx(4 / (3 * L + mu), rel=1e-14)
    assert best.rate == pytest.approx(1 - 2 / math.sqrt(3 * kappa + 1), rel=1e-14)
    radius = _spectral_radius([_nesterov_matrix(best.lr, best.momentum, h)
                               for h in np.linspace(mu, L, 9)])
    assert best.rate == pytest.approx(radius, rel=1e-6)
    lrs, momenta = np.meshgrid(np.linspace(0.005, 0.08, 60), np.linspace(0.0, 0.95, 60))
    radii = np.max([np.abs(np.linalg.eigvals(np.stack([
        np.stack([momenta, np.full_like(lrs, h)], -1),
        np.stack([-lrs * momenta**2, 1 - lrs * h * (1 + momenta)], -1)], -2))).max(axis=-1)
        for h in (mu, L)], axis=0)
    assert radii.min() >= best.rate - 1e-9
    assert radii.min() == pytest.approx(best.rate, rel=2e-2)
    assert best.rate > dynamics.heavy_ball_optimum(L, mu).rate


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_rate_is_the_spectral_radius_of_the_iteration(nesterov):
    rng = np.random.default_rng(7)
    lrs, momenta = rng.uniform(0.0, 0.5, 40), rng.uniform(0.0, 0.98, 40)
    curvatures = (0.3, 1.7, 4.0)
    matrix = _nesterov_matrix if nesterov else _heavy_ball_matrix
    expected = [_spectral_radius([matrix(lr, m, h) for h in curvatures])
                for lr, m in zip(lrs, momenta, strict=True)]
    rates = dynamics.momentum_rate(lrs, momenta, curvatures, nesterov=nesterov)
    np.testing.assert_allclose(rates, expected, rtol=1e-7)
    np.testing.assert_allclose(dynamics.momentum_rate(lrs, 0.0, curvatures, nesterov=nesterov),
                               [max(abs(1 - lr * h) for h in curvatures) for lr in lrs],
                               rtol=1e-12)


# ----------------------------------------------------------------------------- rate map


@pytest.mark.parametrize("nesterov", [False, True])
def test_rate_map_equals_looping_run_per_cell(nesterov):
    fn = Quadratic(condition_number=20.0, angle=0.3)
    lrs = np.array([0.005, 0.03, 0.09, 0.11, 0.2])          # the last ones blow up for small mu
    momenta = np.array([0.3, 0.8, 0.95]) if nesterov else np.array([0.0, 0.5, 0.9])
    rates = dynamics.rate_map(fn, lrs, momenta, steps=150, nesterov=nesterov)
    looped = np.array([[dynamics.convergence_rate(run(
        lambda p, lr=lr, m=m: optim.SGD(p, lr=lr, momentum=m, nesterov=nesterov), fn,
        steps=150)) for lr in lrs] for m in momenta])
    assert rates.shape == (len(momenta), len(lrs))
    assert np.any(looped > 1) and np.any(looped < 1)
    np.testing.assert_allclose(rates, looped, rtol=1e-9)


def test_rate_map_on_rosenbrock_equals_looping_run_per_cell():
    fn = Rosenbrock()
    lrs, momenta = np.array([2e-4, 1e-3, 3e-3]), np.array([0.0, 0.9])
    rates = dynamics.rate_map(fn, lrs, momenta, steps=200)
    looped = np.array([[dynamics.convergence_rate(run(
        lambda p, lr=lr, m=m: optim.SGD(p, lr=lr, momentum=m), fn, steps=200))
        for lr in lrs] for m in momenta])
    np.testing.assert_allclose(rates, looped, rtol=1e-9)


def test_rate_map_agrees_with_the_theory_on_a_quadratic():
    fn = Quadratic(condition_number=10.0, angle=0.5)
    lrs, momenta = np.geomspace(0.01, 0.3, 12), np.linspace(0.0, 0.8, 9)
    measured = dynamics.rate_map(fn, lrs, momenta, steps=600)
    theory = dynamics.momentum_rate(lrs[None, :], momenta[:, None], (fn.mu, fn.L))
    converging = theory < 0.97
    relative = np.abs(measured - theory)[converging] / theory[converging]
    assert np.median(relative) < 1e-3 and relative.max() < 3e-2
    assert np.all((measured >= 1) == (theory >= 1))


# ----------------------------------------------------------------------------- windows, saddles


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9, 0.99])
def test_sgd_plus_velocity_on_a_constant_gradient_tends_to_the_averaging_window(momentum):
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = optim.SGDPlus([theta], lr=1.0, momentum=momentum)
    steps = 3000
    for _ in range(steps):
        theta.grad = torch.ones_like(theta)
        opt.step()
    velocity = opt.state[theta]["velocity"].item()
    assert velocity == pytest.approx(dynamics.averaging_window(momentum), rel=1e-9)
    weights = dynamics.momentum_weights(momentum, steps)
    assert weights.sum() == pytest.approx(velocity, rel=1e-12)
    assert weights[0] == 1.0 and np.all(np.diff(weights) <= 0)


def test_escape_step_on_the_saddle_matches_the_closed_form():
    fn, lr, level = Saddle(), 0.05, -1.0
    (x0, y0) = fn.start
    traj = run(lambda p: optim.SGD(p, lr=lr), fn, steps=200)
    # gradient descent on x^2 - y^2: x_k = (1 - 2 lr)^k x0, y_k = (1 + 2 lr)^k y0
    closed_form = next(k for k in range(200)
                       if ((1 - 2 * lr) ** k * x0) ** 2 - ((1 + 2 * lr) ** k * y0) ** 2 < level)
    assert dynamics.escape_step(traj, level) == closed_form
    assert dynamics.escape_step(traj, -1e300) is None


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_escape_factor_from_a_saddle_is_the_rate_for_its_negative_curvature(momentum):
    fn, lr = Saddle(), 0.01                      # curvature -2 along y
    traj = run(lambda p: optim.SGD(p, lr=lr, momentum=momentum), fn, steps=150)
    growth = dynamics.convergence_rate(np.abs(traj.points[:, 1]))
    radius = _spectral_radius([_heavy_ball_matrix(lr, momentum, -2.0)])
    assert dynamics.momentum_rate(lr, momentum, (-2.0,)) == pytest.approx(radius, rel=1e-12)
    assert growth == pytest.approx(radius, rel=1e-3)


# ----------------------------------------------------------------------------- figures


def test_plot_rate_map_draws_the_rates_and_marks_the_optimum():
    fn = Quadratic(condition_number=10.0)
    lrs, momenta = np.geomspace(0.01, 0.3, 6), np.linspace(0.0, 0.9, 4)
    rates = dynamics.momentum_rate(lrs[None, :], momenta[:, None], (fn.mu, fn.L))
    best = dynamics.heavy_ball_optimum(fn.L, fn.mu)
    ax = plot.rate_map(rates, lrs, momenta, optimum=best, marker=(0.1, 0.5),
                                theory=rates)
    drawn = ax.collections[0].get_array().reshape(rates.shape)
    assert np.array_equal(np.ma.getmaskarray(drawn), rates >= 1) and np.any(rates >= 1)
    np.testing.assert_array_equal(drawn.compressed(), rates[rates < 1])
    star = next(line for line in ax.get_lines() if line.get_marker() == "*")
    assert star.get_xdata()[0] == best.lr and star.get_ydata()[0] == best.momentum
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    with pytest.raises(ValueError, match=r"^rates must be of shape \(4, 6\), got shape \(6, 4\)"):
        plot.rate_map(rates.T, lrs, momenta)


def test_plot_distances_draws_one_line_per_run_and_the_reference_rates():
    fn = Quadratic(condition_number=4.0)
    runs = [run(lambda p, lr=lr: optim.SGD(p, lr=lr), fn, steps=30, label=f"lr {lr}")
            for lr in (0.1, 0.3)]
    ax = plot.distances(runs, rates={"theory": 0.9})
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["lr 0.1", "lr 0.3", "theory: r = 0.900"]
    np.testing.assert_allclose(lines[1].get_ydata(), runs[1].distances_to_minimum())
    assert ax.get_yscale() == "log"
    blow_up = run(lambda p: optim.SGD(p, lr=1.0), fn, steps=30, label="too large")
    ax = plot.distances([runs[0], blow_up])
    assert blow_up.distances_to_minimum().max() > 1e10
    top = 1e3 * runs[0].distances_to_minimum()[0]
    assert ax.get_ylim()[1] <= top * (1 + 1e-9)
    drawn = next(line for line in ax.get_lines() if line.get_label() == "too large")
    assert np.nanmax(drawn.get_ydata()) <= top


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("call", "match"), [
    (lambda: dynamics.averaging_window(1.0), r"^momentum must be in \[0, 1\), got 1\.0"),
    (lambda: dynamics.averaging_window([0.5, -0.1]), r"^momentum\[1\] must be .*, got -0\.1"),
    (lambda: dynamics.momentum_weights(0.9, 0), "^steps must be an integer >= 1, got 0"),
    (lambda: dynamics.heavy_ball_optimum(1.0, 2.0), r"^L must be >= mu = 2\.0, got 1\.0"),
    (lambda: dynamics.gradient_descent_optimum(1.0, 0.0), r"^mu must be > 0, got 0\.0"),
    (lambda: dynamics.nesterov_optimum(math.nan, 1.0), "^L must be finite, got nan"),
    (lambda: dynamics.momentum_rate(-0.1, 0.5, (1.0,)), r"^lr must be >= 0, got -0\.1"),
    (lambda: dynamics.momentum_rate(0.1, 0.5, ()), r"^curvatures must be .*, got \(\)"),
    (lambda: dynamics.convergence_rate([1.0]), "^trajectory must be a run of at least one step"),
    (lambda: dynamics.convergence_rate([0.0, 0.0]), "^trajectory must be a run that starts"),
    (lambda: dynamics.convergence_rate([1.0, 0.5], tail=0.0), r"^tail must be in \(0, 1\]"),
    (lambda: dynamics.rate_map(Saddle(), [0.1], [0.5]), "^landscape must be .* with a minimum"),
    (lambda: dynamics.rate_map(NoisyGradient(Quadratic(), 0.1), [0.1], [0.5]),
     "^landscape must be noise-free"),
    (lambda: dynamics.rate_map(Quadratic(), [0.1], [1.0]), r"^momenta\[0\] must be in \[0, 1\)"),
    (lambda: dynamics.rate_map(Quadratic(), [], [0.5]), r"^lrs must be .*, got \[\]"),
    (lambda: dynamics.rate_map(Quadratic(), [0.1], [0.5], steps=0), "^steps must be .*, got 0"),
    (lambda: dynamics.rate_map(Quadratic(), [0.1], [0.5], start=(0.0, math.inf)),
     r"^start\[1\] must be finite, got inf"),
    (lambda: dynamics.escape_step([0.0], -1.0), r"^trajectory must be a Trajectory, got \[0\.0\]"),
    (lambda: dynamics.strongly_convex_bound(1.0, 2.0, 1.0, 5), "^L must be >= mu = 2"),
    (lambda: dynamics.strongly_convex_bound(1.0, 0.5, -1.0, 5), "^gap0 must be >= 0, got -1"),
    (lambda: dynamics.convex_bound(0.0, 1.0, 5), "^L must be > 0, got 0"),
    (lambda: dynamics.convex_bound(1.0, 1.0, -1), "^steps must be an integer >= 0, got -1"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
