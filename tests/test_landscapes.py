"""Tests for coursekit.landscapes: gradients against autograd, documented critical points,
the noisy-gradient wrapper's statistics, and the optimizer runner."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import coursekit
from coursekit.landscapes import (
    Beale,
    Himmelblau,
    Landscape,
    MonkeySaddle,
    NoisyGradient,
    Quadratic,
    Rastrigin,
    Rosenbrock,
    Saddle,
    grid,
    learning_rate,
    run,
)

LANDSCAPES = [
    Quadratic(),
    Quadratic(condition_number=50.0, angle=0.7, mu=0.3),
    Rosenbrock(),
    Rosenbrock(a=-0.5, b=3.0),
    Beale(),
    Himmelblau(),
    Rastrigin(),
    Rastrigin(amplitude=2.5),
    Saddle(),
    MonkeySaddle(),
    NoisyGradient(Himmelblau(), sigma=0.5, seed=3),
]
WITH_MINIMA = [fn for fn in LANDSCAPES if fn.minima]


def _ids(fns):
    return [fn.name for fn in fns]


def _random_points(fn: Landscape, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = fn.domain
    return torch.from_numpy(np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]))


def _autograd_grad(fn: Landscape, xy: torch.Tensor) -> torch.Tensor:
    xy = xy.clone().requires_grad_(True)
    fn(xy).sum().backward()
    return xy.grad


def _hessian(fn: Landscape, point) -> np.ndarray:
    p = torch.tensor(point, dtype=torch.float64)
    return torch.autograd.functional.hessian(lambda q: fn(q), p).numpy()


@pytest.mark.parametrize("fn", LANDSCAPES, ids=_ids(LANDSCAPES))
def test_analytic_gradient_matches_autograd_at_random_points(fn):
    xy = _random_points(fn, 500, seed=0)
    expected = _autograd_grad(fn, xy)
    scale = float(expected.abs().max())
    torch.testing.assert_close(fn.grad(xy), expected, rtol=1e-12, atol=1e-13 * scale)


@pytest.mark.parametrize("fn", LANDSCAPES, ids=_ids(LANDSCAPES))
def test_pair_and_stacked_calling_forms_agree(fn):
    xy = _random_points(fn, 12, seed=1).reshape(3, 4, 2)
    x, y = xy[..., 0], xy[..., 1]
    assert fn(xy).shape == (3, 4)
    torch.testing.assert_close(fn(x, y), fn(xy), rtol=0, atol=0)
    torch.testing.assert_close(fn.grad(x, y), fn.grad(xy), rtol=0, atol=0)
    assert fn.grad(xy).shape == (3, 4, 2)


def test_values_match_the_published_formulas_written_out():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-3, 3, 50), rng.uniform(-3, 3, 50)
    a, b, A = 0.7, 20.0, 4.0
    formulas = [
        (Rosenbrock(a, b), (a - x) ** 2 + b * (y - x**2) ** 2),
        (Beale(), (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2
         + (2.625 - x + x * y**3) ** 2),
        (Himmelblau(), (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2),
        (Rastrigin(A), A * 2 + x**2 - A * np.cos(2 * np.pi * x) + y**2 - A * np.cos(2 * np.pi * y)),
        (Saddle(), x**2 - y**2),
        (MonkeySaddle(), x**3 - 3 * x * y**2),
    ]
    for fn, expected in formulas:
        np.testing.assert_allclose(fn(x, y).numpy(), expected, rtol=1e-12, atol=1e-12,
                                   err_msg=fn.name)


@pytest.mark.parametrize("fn", WITH_MINIMA, ids=_ids(WITH_MINIMA))
def test_minima_have_zero_gradient_documented_value_and_positive_curvature(fn):
    assert fn.minima, fn.name
    for point in fn.minima:
        p = torch.tensor(point, dtype=torch.float64)
        assert float(fn.grad(p).norm()) < 1e-10
        assert float(fn(p)) == pytest.approx(fn.min_value, abs=1e-20)
        assert np.all(np.linalg.eigvalsh(_hessian(fn, point)) > 0)


@pytest.mark.parametrize("fn", WITH_MINIMA, ids=_ids(WITH_MINIMA))
def test_grid_minimum_lies_next_to_a_documented_minimum(fn):
    X, Y, Z = grid(fn, resolution=401)
    i, j = np.unravel_index(np.argmin(Z), Z.shape)
    assert Z.min() >= fn.min_value - 1e-12
    cell = max(X[0, 1] - X[0, 0], Y[1, 0] - Y[0, 0])
    nearest = fn.nearest_minimum((X[i, j], Y[i, j]))
    assert math.hypot(X[i, j] - nearest[0], Y[i, j] - nearest[1]) <= 2 * cell


@pytest.mark.parametrize("fn", [Beale(), Himmelblau(), Saddle()], ids=["beale", "himmelblau",
                                                                      "saddle"])
def test_saddles_are_critical_points_with_indefinite_hessian(fn):
    for point in fn.saddles:
        assert float(fn.grad(torch.tensor(point, dtype=torch.float64)).norm()) < 1e-10
        low, high = np.linalg.eigvalsh(_hessian(fn, point))
        assert low < 0 < high


def test_himmelblau_maximum_is_a_critical_point_with_negative_curvature():
    fn = Himmelblau()
    (point,) = fn.maxima
    assert float(fn.grad(torch.tensor(point, dtype=torch.float64)).norm()) < 1e-10
    assert np.all(np.linalg.eigvalsh(_hessian(fn, point)) < 0)


def test_monkey_saddle_origin_is_flat_yet_neither_minimum_nor_maximum():
    fn = MonkeySaddle()
    np.testing.assert_array_equal(_hessian(fn, (0.0, 0.0)), np.zeros((2, 2)))
    assert float(fn.grad(torch.tensor([0.0, 0.0])).norm()) == 0.0
    eps = 1e-3
    assert float(fn(torch.tensor([eps, 0.0]))) > 0 > float(fn(torch.tensor([-eps, 0.0])))


@pytest.mark.parametrize("kappa", [1.0, 10.0, 1000.0])
@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2])
def test_quadratic_condition_number_is_ratio_of_hessian_eigenvalues(kappa, angle):
    fn = Quadratic(condition_number=kappa, angle=angle, mu=0.5)
    H = _hessian(fn, (0.37, -1.1))
    eigenvalues, eigenvectors = np.linalg.eigh(H)
    assert eigenvalues[1] / eigenvalues[0] == pytest.approx(kappa, rel=1e-10)
    np.testing.assert_allclose(eigenvalues, [0.5, 0.5 * kappa], rtol=1e-12)
    np.testing.assert_allclose(fn.hessian.numpy(), H, rtol=1e-12, atol=1e-12)
    if kappa > 1:  # the flat direction is (cos angle, sin angle), up to sign
        flat = eigenvectors[:, 0]
        assert abs(flat @ [math.cos(angle), math.sin(angle)]) == pytest.approx(1.0, abs=1e-12)


def test_quadratic_value_is_half_p_A_p_with_A_built_from_a_rotation():
    kappa, angle, mu = 8.0, 0.9, 2.0
    R = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    A = R @ np.diag([mu, kappa * mu]) @ R.T
    p = _random_points(Quadratic(), 30, seed=4).numpy()
    expected = 0.5 * np.einsum("ni,ij,nj->n", p, A, p)
    np.testing.assert_allclose(Quadratic(kappa, angle, mu)(p).numpy(), expected, rtol=1e-12)


def test_noisy_gradient_has_zero_mean_and_requested_variance():
    sigma, n = 0.7, 40_000
    fn = NoisyGradient(Rosenbrock(), sigma=sigma, seed=11)
    xy = torch.tensor([-0.5, 1.5], dtype=torch.float64).expand(n, 2)
    noise = (fn.sample_grad(xy) - fn.grad(xy)).numpy()
    mean, var = noise.mean(axis=0), noise.var(axis=0, ddof=1)
    assert np.all(np.abs(mean) < 5 * sigma / math.sqrt(n))
    # Var of the sample variance of a Gaussian is 2 sigma^4 / (n - 1).
    assert np.all(np.abs(var - sigma**2) < 5 * sigma**2 * math.sqrt(2 / (n - 1)))
    assert abs(np.corrcoef(noise.T)[0, 1]) < 5 / math.sqrt(n)
    assert fn.variance == pytest.approx(sigma**2)


def test_run_shows_the_optimizer_the_noisy_gradient():
    sigma, lr, steps = 0.3, 1.0, 3000
    fn = NoisyGradient(Quadratic(condition_number=1.0, mu=0.5), sigma=sigma, seed=5)
    traj = run(lambda p: torch.optim.SGD(p, lr=lr), fn, start=(1.0, -1.0), steps=steps)
    exact = fn.grad(torch.from_numpy(traj.points[:-1])).numpy()
    noise = -np.diff(traj.points, axis=0) / lr - exact  # x_{k+1} = x_k - lr (g + noise)
    assert np.all(np.abs(noise.mean(axis=0)) < 5 * sigma / math.sqrt(steps))
    assert np.all(np.abs(noise.var(axis=0) - sigma**2) < 5 * sigma**2 * math.sqrt(2 / steps))


def test_noisy_runs_repeat_after_reset_and_differ_between_seeds():
    def adam(p):
        return torch.optim.Adam(p, lr=0.05)

    fn = NoisyGradient(Himmelblau(), sigma=1.0, seed=0)
    first, second = run(adam, fn, steps=50), run(adam, fn, steps=50)
    other = run(adam, NoisyGradient(Himmelblau(), sigma=1.0, seed=1), steps=50)
    np.testing.assert_array_equal(first.points, second.points)
    assert not np.allclose(first.points, other.points)
    exact = run(adam, NoisyGradient(Himmelblau(), sigma=0.0), steps=50)
    np.testing.assert_array_equal(exact.points, run(adam, Himmelblau(), steps=50).points)


def test_run_with_torch_sgd_reproduces_a_hand_written_gradient_descent_loop_exactly():
    fn, lr, steps = Rosenbrock(), 1e-3, 300
    traj = run(lambda p: torch.optim.SGD(p, lr=lr), fn, start=(-1.2, 1.0), steps=steps)
    theta = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    points = [theta]
    for _ in range(steps):
        # theta - lr * g, rounded once as torch's fused add(alpha=...) kernel does
        theta = theta.add(fn.grad(theta), alpha=-lr)
        points.append(theta)
    np.testing.assert_array_equal(traj.points, torch.stack(points).numpy())
    np.testing.assert_array_equal(traj.values, fn(torch.stack(points)).numpy())
    np.testing.assert_array_equal(traj.lrs, np.full(steps, lr))
    assert traj.steps == steps and not traj.diverged


def test_run_matches_gradient_descent_with_the_gradient_written_out_by_hand():
    a, b, lr, steps = 1.0, 100.0, 1e-3, 300
    x, y = -1.2, 1.0
    points = [(x, y)]
    for _ in range(steps):
        gx, gy = -2 * (a - x) - 4 * b * x * (y - x * x), 2 * b * (y - x * x)
        x, y = x - lr * gx, y - lr * gy
        points.append((x, y))
    traj = run(lambda p: torch.optim.SGD(p, lr=lr), Rosenbrock(a, b), (-1.2, 1.0), steps)
    np.testing.assert_allclose(traj.points, np.array(points), rtol=1e-12, atol=1e-12)


def test_run_steps_the_scheduler_after_the_optimizer_and_records_the_lr_used():
    fn, lr0, gamma, period, steps = Quadratic(condition_number=4.0, angle=0.4), 0.2, 0.5, 7, 40
    traj = run(lambda p: torch.optim.SGD(p, lr=lr0), fn, (1.5, -1.0), steps,
               scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, period, gamma))
    lrs = [lr0 * gamma ** (k // period) for k in range(steps)]
    theta = torch.tensor([1.5, -1.0], dtype=torch.float64)
    points = [theta]
    for lr in lrs:
        theta = theta.add(fn.grad(theta), alpha=-lr)
        points.append(theta)
    np.testing.assert_allclose(traj.lrs, lrs, rtol=1e-15)
    np.testing.assert_array_equal(traj.points, torch.stack(points).numpy())


class _SignDescent(torch.optim.Optimizer):
    """Steps of a fixed size along -sign(g): its parameter group has no "lr"."""

    def __init__(self, params, size):
        super().__init__(params, {"size": size})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["size"] * p.grad.sign())


def test_learning_rate_reads_the_first_group_and_is_nan_without_an_lr():
    theta = torch.zeros(2, requires_grad=True)
    assert learning_rate(torch.optim.Adam([theta], lr=3e-4)) == 3e-4
    assert math.isnan(learning_rate(_SignDescent([theta], 0.1)))
    assert math.isnan(learning_rate(object()))  # no param_groups at all
    fn, size, steps = Quadratic(condition_number=4.0, angle=0.4), 0.01, 5
    traj = run(lambda p: _SignDescent(p, size), fn, (1.0, -1.0), steps)
    point = torch.tensor([1.0, -1.0], dtype=torch.float64)
    points = [point]
    for _ in range(steps):
        point = point - size * fn.grad(point).sign()
        points.append(point)
    np.testing.assert_allclose(traj.points, torch.stack(points).numpy(), rtol=1e-15)
    assert len(traj.lrs) == steps and np.isnan(traj.lrs).all()


def test_run_drives_coursekit_and_torch_adam_to_the_same_trajectory():
    fn = Beale()
    ours = run(lambda p: coursekit.optim.Adam(p, lr=0.05), fn, steps=200)
    theirs = run(lambda p: torch.optim.Adam(p, lr=0.05), fn, steps=200)
    assert ours.label == "Adam" and theirs.label == "Adam"
    np.testing.assert_allclose(ours.points, theirs.points, rtol=1e-12, atol=1e-14)


def test_run_records_exact_gradient_norms_and_helpers():
    fn = Himmelblau()
    traj = run(lambda p: torch.optim.SGD(p, lr=0.01), fn, start=(-1.0, -1.0), steps=100,
               label="GD")
    expected_norms = np.linalg.norm(fn.grad(torch.from_numpy(traj.points)).numpy(), axis=1)
    np.testing.assert_allclose(traj.grad_norms, expected_norms, rtol=1e-14)
    minima = np.array(fn.minima)
    brute = [min(np.linalg.norm(p - m) for m in minima) for p in traj.points]
    np.testing.assert_allclose(traj.distances_to_minimum(), brute, rtol=1e-14)
    assert traj.distance_to_minimum == pytest.approx(brute[-1])
    np.testing.assert_array_equal(traj.final, traj.points[-1])
    assert traj.final_value == traj.values[-1]
    assert traj.label == "GD" and traj.points.shape == (101, 2) and traj.lrs.shape == (100,)
    with pytest.raises(ValueError, match="no minimum"):
        run(lambda p: torch.optim.SGD(p, lr=0.01), Saddle(), steps=3).distances_to_minimum()


def _gradient_descent_until_non_finite(fn, lr: float, steps: int):
    """Plain gradient descent from fn.start; the points, and the first non-finite step."""
    theta = torch.tensor(fn.start, dtype=torch.float64)
    points = [theta]
    for k in range(1, steps + 1):
        theta = theta.add(fn.grad(theta), alpha=-lr)
        if not all(torch.isfinite(t).all() for t in (theta, fn(theta), fn.grad(theta))):
            return torch.stack(points).numpy(), k
        points.append(theta)
    return torch.stack(points).numpy(), None


@pytest.mark.parametrize(("fn", "lr"), [
    (Quadratic(condition_number=10.0, angle=0.3), 0.5),  # lr > 2 / L = 0.2
    (Rosenbrock(), 0.01),
])
def test_divergence_stops_the_run_at_the_first_non_finite_step(fn, lr):
    steps = 1000
    points, expected = _gradient_descent_until_non_finite(fn, lr, steps)
    assert expected is not None
    traj = run(lambda p: torch.optim.SGD(p, lr=lr), fn, steps=steps)
    assert traj.diverged and traj.diverged_at == expected
    np.testing.assert_array_equal(traj.points, points)
    assert traj.steps + 1 == len(traj.points) == expected
    assert len(traj.lrs) == traj.steps and len(traj.values) == len(traj.points)
    assert np.all(np.isfinite(traj.points)) and np.all(np.isfinite(traj.values))
    assert "diverged" in repr(traj)


def test_stable_step_size_does_not_diverge():
    fn, steps = Quadratic(condition_number=10.0, angle=0.3), 1000
    assert _gradient_descent_until_non_finite(fn, 0.19, steps)[1] is None
    traj = run(lambda p: torch.optim.SGD(p, lr=0.19), fn, steps=steps)
    assert not traj.diverged and traj.diverged_at is None and traj.steps == steps
    assert traj.distance_to_minimum < 1e-10


def test_run_in_float32_follows_the_float64_path():
    fn = Rosenbrock()
    single = run(lambda p: torch.optim.SGD(p, lr=1e-3), fn, steps=50, dtype=torch.float32)
    double = run(lambda p: torch.optim.SGD(p, lr=1e-3), fn, steps=50)
    assert single.points.dtype == np.float64
    np.testing.assert_allclose(single.points, double.points, rtol=1e-4, atol=1e-5)


def test_grid_matches_pointwise_evaluation():
    fn = Himmelblau()
    X, Y, Z = grid(fn, resolution=31, domain=((-1.0, 2.0), (0.0, 4.0)))
    assert X.shape == Y.shape == Z.shape == (31, 31)
    np.testing.assert_allclose(X[0], np.linspace(-1.0, 2.0, 31), atol=1e-15)
    np.testing.assert_allclose(Y[:, 0], np.linspace(0.0, 4.0, 31), atol=1e-15)
    assert np.all(X == X[0]) and np.all(Y.T == Y[:, 0])
    for i, j in [(0, 0), (3, 17), (30, 30), (12, 5)]:
        assert Z[i, j] == float(fn(torch.tensor([X[i, j], Y[i, j]])))


@pytest.mark.parametrize(("make", "name"), [
    (lambda: Quadratic(condition_number=0.5), "condition_number"),
    (lambda: Quadratic(mu=0.0), "mu"),
    (lambda: Quadratic(angle=float("nan")), "angle"),
    (lambda: Rosenbrock(b=-1.0), "b"),
    (lambda: Rosenbrock(a="1"), "a"),
    (lambda: Rastrigin(amplitude=-1.0), "amplitude"),
    (lambda: NoisyGradient(Beale(), sigma=-0.1), "sigma"),
    (lambda: NoisyGradient(Beale(), sigma=0.1, seed=-3), "seed"),
    (lambda: Beale()(torch.zeros(5, 3)), "xy"),
    (lambda: grid(Beale(), resolution=1), "resolution"),
    (lambda: grid(Beale(), domain=((1.0, 0.0), (0.0, 1.0))), "domain"),
    (lambda: run(lambda p: torch.optim.SGD(p, lr=0.1), Beale(), steps=-1), "steps"),
    (lambda: run(lambda p: torch.optim.SGD(p, lr=0.1), Beale(), start=(1.0, 2.0, 3.0)), "start"),
    (lambda: run(lambda p: torch.optim.SGD(p, lr=0.1), Beale(), start=(1.0, math.inf)), "start"),
])
def test_bad_arguments_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        make()


def test_run_rejects_non_callable_scheduler_and_non_optimizer_factory():
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match=r"^scheduler must be"):
        run(lambda p: torch.optim.SGD(p, lr=0.1), Beale(), steps=2,
            scheduler=torch.optim.lr_scheduler.StepLR(opt, 1))
    with pytest.raises(TypeError, match=r"^optimizer_factory\(params\) must be"):
        run(lambda p: p, Beale(), steps=2)
    with pytest.raises(TypeError, match=r"^fn must be"):
        run(lambda p: torch.optim.SGD(p, lr=0.1), lambda xy: xy.sum(), steps=2)
