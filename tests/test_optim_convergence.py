"""Every optimizer reaches the minimum of three classic functions.

A loss curve that goes down proves little; reaching a known minimum to 1e-3 from a
fixed start does. Each (optimizer, function) pair has a documented learning rate
and step budget below (found by a grid search over lr in [1e-4, 1] and kept with a
margin); the test asserts that the iterate ends within 1e-3 (Euclidean distance)
of the minimum. The functions and their gradients are written out here, and the
gradients come from torch.autograd, independently of coursekit.landscapes.

- quadratic: f = 0.5 ((x - 1)^2 + 10 (y + 2)^2), minimum (1, -2), start (-2, 2)
- Beale: minimum (3, 0.5), start (1, 1)
- Rosenbrock with a = 1, b = 100: minimum (1, 1), start (-1.2, 1)
"""

from __future__ import annotations

import math

import pytest
import torch

import coursekit.optim as ck


def quadratic(x, y):
    return 0.5 * ((x - 1.0) ** 2 + 10.0 * (y + 2.0) ** 2)


def beale(x, y):
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2
            + (2.625 - x + x * y**3) ** 2)


def rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


FUNCTIONS = {
    "quadratic": (quadratic, (-2.0, 2.0), (1.0, -2.0)),
    "beale": (beale, (1.0, 1.0), (3.0, 0.5)),
    "rosenbrock": (rosenbrock, (-1.2, 1.0), (1.0, 1.0)),
}

# optimizer -> extra constructor arguments (beyond lr); momentum methods use mu = 0.9,
# AdamW runs without weight decay (which would move the minimum).
EXTRA = {
    "sgd": dict(momentum=0.9),
    "sgd_plus": dict(momentum=0.9),
    "qian_momentum": dict(momentum=0.9),
    "adamw": dict(weight_decay=0.0),
    "lookahead": dict(inner="adam"),
}

# (optimizer, function) -> (lr, steps)
SCHEDULE = {
    ("adabelief", "beale"): (0.02, 1160),
    ("adabelief", "quadratic"): (0.2, 280),
    ("adabelief", "rosenbrock"): (0.001, 9650),
    ("adadelta", "beale"): (0.03, 9340),
    ("adadelta", "quadratic"): (1.0, 1520),
    ("adadelta", "rosenbrock"): (0.01, 25710),
    ("adagrad", "beale"): (0.5, 550),
    ("adagrad", "quadratic"): (1.0, 110),
    ("adagrad", "rosenbrock"): (0.5, 11210),
    ("adam", "beale"): (0.2, 220),
    ("adam", "quadratic"): (0.2, 240),
    ("adam", "rosenbrock"): (0.002, 11280),
    ("adamax", "beale"): (0.5, 320),
    ("adamax", "quadratic"): (0.2, 240),
    ("adamax", "rosenbrock"): (0.01, 6660),
    ("adamw", "beale"): (0.2, 220),
    ("adamw", "quadratic"): (0.2, 240),
    ("adamw", "rosenbrock"): (0.002, 11280),
    ("lookahead", "beale"): (0.5, 220),
    ("lookahead", "quadratic"): (1.0, 130),
    ("lookahead", "rosenbrock"): (0.002, 17420),
    ("nadam", "beale"): (0.0003, 17050),
    ("nadam", "quadratic"): (1.0, 100),
    ("nadam", "rosenbrock"): (0.001, 16120),
    ("qian_momentum", "beale"): (0.01, 220),
    ("qian_momentum", "quadratic"): (0.01, 250),
    ("qian_momentum", "rosenbrock"): (0.002, 1130),
    ("radam", "beale"): (0.002, 8980),
    ("radam", "quadratic"): (0.1, 340),
    ("radam", "rosenbrock"): (0.002, 17450),
    ("rmsprop", "beale"): (0.001, 3280),
    ("rmsprop", "quadratic"): (1.0, 70),
    ("rmsprop", "rosenbrock"): (0.001, 11880),
    ("sgd", "beale"): (0.01, 220),
    ("sgd", "quadratic"): (0.01, 250),
    ("sgd", "rosenbrock"): (0.002, 1130),
    ("sgd_plus", "beale"): (0.01, 220),
    ("sgd_plus", "quadratic"): (0.01, 250),
    ("sgd_plus", "rosenbrock"): (0.002, 1130),
}


def _run(name: str, fn, start, lr: float, steps: int) -> torch.Tensor:
    xy = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    opt = ck.create(name, [xy], lr=lr, **EXTRA.get(name, {}))

    def closure():
        opt.zero_grad()
        loss = fn(xy[0], xy[1])
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return xy.detach()


def test_schedule_covers_every_optimizer_and_function():
    assert {name for name, _ in SCHEDULE} == set(ck.available())
    assert {fn for _, fn in SCHEDULE} == set(FUNCTIONS)
    assert len(SCHEDULE) == len(ck.available()) * len(FUNCTIONS)


@pytest.mark.parametrize(("name", "function"), sorted(SCHEDULE),
                         ids=[f"{name}-{function}" for name, function in sorted(SCHEDULE)])
def test_optimizer_reaches_the_minimum(name, function):
    fn, start, minimum = FUNCTIONS[function]
    lr, steps = SCHEDULE[name, function]
    final = _run(name, fn, start, lr, steps)
    distance = (final - torch.tensor(minimum, dtype=torch.float64)).norm().item()
    assert math.isfinite(distance) and distance < 1e-3, (
        f"{name} on {function} with lr={lr}: ended at {final.tolist()}, {distance:.2e} away")


def test_minima_are_stationary_points():
    """The documented minima are right: the gradient vanishes and f is at its lower bound."""
    for fn, _, minimum in FUNCTIONS.values():
        xy = torch.tensor(minimum, dtype=torch.float64, requires_grad=True)
        value = fn(xy[0], xy[1])
        value.backward()
        assert value.item() == pytest.approx(0.0, abs=1e-12)
        assert xy.grad.abs().max().item() < 1e-12
