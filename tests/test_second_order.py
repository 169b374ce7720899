"""coursekit.analysis.second_order against explicit linear algebra and torch.autograd.functional.

Newton steps are compared with torch.linalg.solve on quadratics whose Hessian
is known in closed form; Hessian-vector products with the explicit Hessian
from torch.autograd.functional.hessian; the power iteration with eigvalsh; the
budget accounting of train_for_passes with L-BFGS's own evaluation counter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import landscapes
from coursekit.analysis import second_order
from coursekit.data import Split


def _spd(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eigenvalues = torch.logspace(0, 2, n, dtype=torch.float64)  # 1 ... 100
    return q @ torch.diag(eigenvalues) @ q.T


def _quadratic(n: int = 6):
    A = _spd(n)
    b = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return A, b, (lambda w: 0.5 * w @ A @ w - b @ w)


def _mlp_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (10,))
    return model, x, y


def test_one_newton_step_solves_a_quadratic_exactly():
    A, b, f = _quadratic()
    w0 = torch.randn(6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    w1 = second_order.newton_step(f, w0)
    assert torch.allclose(w1, torch.linalg.solve(A, b), rtol=1e-10, atol=1e-12)


def test_damped_newton_step_is_the_regularised_solve():
    A, b, f = _quadratic()
    w0 = torch.ones(6, dtype=torch.float64)
    damping, lr = 3.0, 0.5
    expected = w0 - lr * torch.linalg.solve(A + damping * torch.eye(6, dtype=torch.float64),
                                            A @ w0 - b)
    assert torch.allclose(second_order.newton_step(f, w0, damping, lr), expected, rtol=1e-12)


def test_newton_path_reaches_the_quadratic_landscape_minimum_in_one_step():
    fn = landscapes.Quadratic(condition_number=50.0, angle=0.3)
    traj = second_order.newton_path(fn, steps=3)
    assert traj.points.shape == (4, 2)
    assert np.allclose(traj.points[1], fn.minima[0], atol=1e-12)
    assert traj.values[1] == pytest.approx(fn.min_value, abs=1e-20)
    assert not traj.diverged


def test_newton_path_on_rosenbrock_uses_the_exact_hessian():
    fn = landscapes.Rosenbrock()
    traj = second_order.newton_path(fn, start=(-1.2, 1.0), steps=1)
    x, y = -1.2, 1.0
    H = torch.tensor([[2 - 400 * (y - x**2) + 800 * x**2, -400 * x], [-400 * x, 200.0]],
                     dtype=torch.float64)
    g = fn.grad(torch.tensor([x, y], dtype=torch.float64))
    expected = torch.tensor([x, y], dtype=torch.float64) - torch.linalg.solve(H, g)
    assert np.allclose(traj.points[1], expected.numpy(), rtol=1e-12)


def test_pure_newton_is_attracted_to_a_maximum_and_adaptive_damping_is_not():
    fn = landscapes.Himmelblau()
    pure = second_order.newton_path(fn, start=(0.0, 0.0), steps=30)
    assert np.allclose(pure.final, fn.maxima[0], atol=1e-9)
    damped = second_order.newton_path(fn, start=(0.0, 0.0), steps=30, adaptive=True)
    assert np.allclose(damped.final, fn.nearest_minimum(damped.final), atol=1e-9)
    assert np.all(np.diff(damped.values) <= 0)


def test_adaptive_damping_descends_every_step_to_the_rosenbrock_minimum():
    fn = landscapes.Rosenbrock()
    pure = second_order.newton_path(fn, start=(-1.2, 1.0), steps=40)
    damped = second_order.newton_path(fn, start=(-1.2, 1.0), steps=40, adaptive=True)
    assert np.any(np.diff(pure.values) > 0)  # pure Newton climbs on the way
    assert np.all(np.diff(damped.values) <= 0)
    assert np.allclose(damped.final, fn.minima[0], atol=1e-8)


def test_singular_hessian_asks_for_damping():
    def f(w):
        return w[0] ** 2  # flat along w[1]

    with pytest.raises(ValueError, match=r"^damping must be large enough .* got 0.0"):
        second_order.newton_step(f, torch.ones(2, dtype=torch.float64))
    assert torch.allclose(second_order.newton_step(f, torch.ones(2, dtype=torch.float64), 1.0),
                          torch.tensor([1 / 3, 1.0], dtype=torch.float64))


def test_flat_loss_reproduces_the_model_loss_and_gradient():
    model, x, y = _mlp_problem()
    f, w0 = second_order.flat_loss(model, x, y)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert f(w0).item() == pytest.approx(loss.item(), rel=1e-14)
    assert torch.allclose(second_order.gradient(f, w0), grad, rtol=1e-12)


def test_hessian_vector_product_equals_explicit_hessian_times_v():
    model, x, y = _mlp_problem()
    f, w0 = second_order.flat_loss(model, x, y)
    H = torch.autograd.functional.hessian(f, w0)
    for seed in range(3):
        v = torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        assert torch.allclose(second_order.hessian_vector_product(f, w0, v), H @ v,
                              rtol=1e-10, atol=1e-12)


def test_top_eigenvalue_matches_eigvalsh():
    A, _, f = _quadratic(8)
    top = second_order.top_eigenvalue(f, torch.zeros(8, dtype=torch.float64), iters=500,
                                      tol=1e-12)
    assert top == pytest.approx(torch.linalg.eigvalsh(A).max().item(), rel=1e-8)


def test_hessian_cost_matches_the_storage_of_a_real_hessian():
    model, x, y = _mlp_problem()
    f, w0 = second_order.flat_loss(model, x, y)
    n = w0.numel()
    H = torch.autograd.functional.hessian(f, w0)
    cost = second_order.hessian_cost(n)
    assert cost["parameters"] == n
    assert cost["Hessian bytes"] == H.float().nbytes
    assert cost["gradient bytes"] == w0.float().nbytes
    assert cost["solve flops"] == pytest.approx(n**3 / 3)
    assert second_order.hessian_cost(n, 8)["Hessian bytes"] == H.nbytes


def _split(n=40, seed=0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 3, generator=g), torch.randint(0, 2, (n,), generator=g),
                 name="toy", part="train", classes=("a", "b"))


def test_full_batch_sgd_curve_equals_a_hand_written_loop():
    data = _split()
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    twin = nn.Linear(3, 2)
    twin.load_state_dict(model.state_dict())
    curve = second_order.train_for_passes(model, torch.optim.SGD(model.parameters(), lr=0.3),
                                          data, passes=5)
    opt = torch.optim.SGD(twin.parameters(), lr=0.3)
    expected = [F.cross_entropy(twin(data.x), data.y).item()]
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(twin(data.x), data.y).backward()
        opt.step()
        expected.append(F.cross_entropy(twin(data.x), data.y).item())
    assert curve.steps == 5
    assert curve.passes.tolist() == [0, 1, 2, 3, 4, 5]
    assert curve.loss.tolist() == pytest.approx(expected, rel=1e-6)


def test_lbfgs_budget_counts_every_function_evaluation():
    data = _split()
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=4, line_search_fn="strong_wolfe")
    curve = second_order.train_for_passes(model, opt, data, passes=12)
    evaluations = opt.state[next(iter(model.parameters()))]["func_evals"]
    assert curve.passes[-1] == evaluations >= 12
    assert curve.final_loss < curve.loss[0]


def test_mini_batch_passes_count_examples():
    data = _split(n=40)
    model = nn.Linear(3, 2)
    curve = second_order.train_for_passes(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                          data, passes=3, batch_size=16, test=data)
    # 40 examples in batches of 16, 16, 8: three steps per pass.
    assert curve.steps == 9
    assert curve.passes[-1] == pytest.approx(3.0)
    assert 0.0 <= curve.test_accuracy <= 1.0


def test_divergence_stops_the_run():
    data = _split()
    model = nn.Linear(3, 2)
    with pytest.warns(RuntimeWarning, match="diverged"):  # fit's one divergence rule
        curve = second_order.train_for_passes(model, torch.optim.SGD(model.parameters(), lr=1e3),
                                              data, passes=50,
                                              loss=lambda out, y: out.pow(2).mean())
    assert curve.diverged and not math.isfinite(curve.final_loss)
    assert curve.steps < 50


def test_bad_arguments_raise_clear_errors():
    f = _quadratic()[2]
    with pytest.raises(ValueError, match=r"^damping must be >= 0"):
        second_order.newton_step(f, torch.zeros(6, dtype=torch.float64), damping=-1.0)
    with pytest.raises(ValueError, match=r"^w must be"):
        second_order.hessian_vector_product(f, torch.zeros(2, 3), torch.zeros(6))
    with pytest.raises(ValueError, match=r"^v must be"):
        second_order.hessian_vector_product(f, torch.zeros(6, dtype=torch.float64),
                                            torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^n_params must be"):
        second_order.hessian_cost(0)
    with pytest.raises(ValueError, match=r"^passes must be"):
        second_order.train_for_passes(nn.Linear(3, 2), torch.optim.SGD([torch.zeros(1)], lr=0.1),
                                      _split(), passes=0)
    with pytest.raises(ValueError, match=r"^batch_size must be None or an integer >= 1"):
        second_order.train_for_passes(nn.Linear(3, 2), torch.optim.SGD([torch.zeros(1)], lr=0.1),
                                      _split(), passes=1, batch_size=0)
    with pytest.raises(TypeError, match=r"^fn must be"):
        second_order.newton_path("rosenbrock")
