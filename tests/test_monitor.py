"""analysis.monitor.LayerMonitor, checked against norms computed by hand.

A second hook, written here, copies every parameter and gradient after each step;
the monitor's numbers must equal the norms of those copies, and its measured update
must equal what the optimizer's rule says the step was: lr * g for plain SGD,
lr * v with v = mu v + g for momentum, lr * g / (|g| + eps) for Adam's first step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coursekit import models, optim, schedules, train
from coursekit.analysis.monitor import COLUMNS, LayerMonitor


def _problem(seed: int = 0):
    """A small float64 MLP and 40 random examples of 8 features in 3 classes."""
    torch.manual_seed(seed)
    model = models.MLP(input_shape=(8,), num_classes=3, hidden=(6, 5)).double()
    x = torch.randn(40, 8, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    return model, (x, y)


class _Copies:
    """Parameters and gradients after every step, and the parameters at the start."""

    def __init__(self, model):
        self.names = [name for name, _ in model.named_parameters()]
        self.params = [{n: p.detach().clone() for n, p in model.named_parameters()}]
        self.grads = []

    def __call__(self, info):
        self.params.append({n: p.detach().clone() for n, p in info.model.named_parameters()})
        self.grads.append({n: p.grad.detach().clone()
                           for n, p in info.model.named_parameters()})


def _run(make_optimizer, *, epochs=2, weights_only=True, every=1, scheduler=None):
    model, data = _problem()
    monitor = LayerMonitor(model, every=every, weights_only=weights_only)
    copies = _Copies(model)
    optimizer = make_optimizer(model.parameters())
    history = train.fit(model, optimizer, data, epochs=epochs, batch_size=10, progress=False,
                        scheduler=scheduler(optimizer) if scheduler else None,
                        scheduler_on="batch", on_step=[monitor, copies])
    return monitor, copies, history


def _rows(table, name):
    return table[table["parameter"] == name].set_index("step")


def test_sgd_update_is_lr_times_the_gradient_and_norms_match_the_snapshots():
    lr = 0.3
    monitor, copies, history = _run(lambda p: optim.SGD(p, lr=lr))
    table = monitor.table()
    assert list(table.columns) == list(COLUMNS)
    weights = [n for n in copies.names if n.endswith("weight")]
    assert monitor.parameters == tuple(weights)
    assert len(table) == history.steps * len(weights)
    for name in weights:
        rows = _rows(table, name)
        assert list(rows.index) == list(range(1, history.steps + 1))
        grad = np.array([torch.linalg.norm(g[name]).item() for g in copies.grads])
        before = np.array([torch.linalg.norm(p[name]).item() for p in copies.params[:-1]])
        np.testing.assert_allclose(rows["grad_norm"], grad, rtol=1e-12)
        np.testing.assert_allclose(rows["weight_norm"], before, rtol=1e-12)
        # plain SGD: the step is exactly lr * g
        np.testing.assert_allclose(rows["update_norm"], lr * grad, rtol=1e-9)
        np.testing.assert_allclose(rows["update_ratio"], lr * grad / before, rtol=1e-9)
    np.testing.assert_array_equal(_rows(table, weights[0])["lr"], history.lr)
    assert set(table["epoch"]) == {0, 1}


def test_momentum_update_is_lr_times_the_velocity_built_from_the_gradients():
    lr, mu = 0.05, 0.9
    monitor, copies, _ = _run(lambda p: optim.SGD(p, lr=lr, momentum=mu))
    table = monitor.table()
    for name in monitor.parameters:
        velocity = torch.zeros_like(copies.grads[0][name])
        expected = []
        for grads in copies.grads:
            velocity = mu * velocity + grads[name]
            expected.append(lr * torch.linalg.norm(velocity).item())
        np.testing.assert_allclose(_rows(table, name)["update_norm"], expected, rtol=1e-9)
        # the update is not the gradient step once the velocity has built up
        assert not np.allclose(_rows(table, name)["update_norm"],
                               lr * _rows(table, name)["grad_norm"], rtol=1e-3)


def test_adam_first_update_is_lr_times_the_gradient_over_its_magnitude():
    lr, eps = 1e-2, 1e-8
    monitor, copies, _ = _run(lambda p: optim.Adam(p, lr=lr, eps=eps), epochs=1)
    first = monitor.table().query("step == 1").set_index("parameter")
    for name in monitor.parameters:
        g = copies.grads[0][name]
        step = lr * g / (g.abs() + eps)            # bias-corrected m / sqrt(v) at step 1
        assert first.loc[name, "update_norm"] == pytest.approx(
            torch.linalg.norm(step).item(), rel=1e-6)


def test_every_k_records_the_same_numbers_at_every_kth_step():
    def make(params):
        return optim.SGD(params, lr=0.1, momentum=0.5)

    dense, _, history = _run(make, epochs=3)
    sparse, _, _ = _run(make, epochs=3, every=4)
    table = sparse.table()
    assert sorted(set(table["step"])) == list(range(4, history.steps + 1, 4))
    expected = dense.table().query("step % 4 == 0").reset_index(drop=True)
    numbers = ["grad_norm", "weight_norm", "update_norm", "update_ratio"]
    np.testing.assert_allclose(table[numbers], expected[numbers], rtol=1e-12)
    assert repr(sparse).startswith(f"LayerMonitor(3 parameters, every 4 steps, "
                                   f"{history.steps // 4} steps")


def test_lr_column_follows_a_scheduler_stepped_every_batch():
    monitor, _, history = _run(lambda p: optim.SGD(p, lr=0.2),
                               scheduler=lambda opt: schedules.CosineAnnealingLR(opt, T_max=8))
    rates = _rows(monitor.table(), monitor.parameters[0])["lr"].to_numpy()
    np.testing.assert_array_equal(rates, history.lr)
    assert len(set(rates)) > 1


def test_weights_only_false_records_every_parameter_biases_included():
    monitor, copies, history = _run(lambda p: optim.SGD(p, lr=0.1), weights_only=False)
    assert monitor.parameters == tuple(copies.names)
    assert len(monitor.table()) == history.steps * len(copies.names)


def test_a_tensor_at_zero_gives_an_infinite_or_undefined_ratio():
    model, data = _problem()
    with torch.no_grad():
        model.layers[1].weight.zero_()                 # first layer: starts at zero
    monitor = LayerMonitor(model)
    train.fit(model, optim.SGD(model.parameters(), lr=0.1), data, epochs=1, batch_size=40,
              progress=False, on_step=monitor)
    first = monitor.table().set_index("parameter")
    # with W1 = 0 the hidden layer outputs only its biases, so W1 still gets a gradient
    assert first.loc["layers.1.weight", "weight_norm"] == 0.0
    assert first.loc["layers.1.weight", "update_ratio"] == math.inf


def test_arguments_are_checked():
    model, data = _problem()
    with pytest.raises(ValueError, match="every must be an integer >= 1, got 0"):
        LayerMonitor(model, every=0)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        LayerMonitor("not a model")
    with pytest.raises(ValueError, match="trainable weight matrices"):
        LayerMonitor(torch.nn.Linear(3, 2).requires_grad_(False))
    other, _ = _problem(seed=1)
    with pytest.raises(ValueError, match="watches another model"):
        train.fit(model, optim.SGD(model.parameters(), lr=0.1), data, epochs=1,
                  batch_size=10, progress=False, on_step=LayerMonitor(other))
