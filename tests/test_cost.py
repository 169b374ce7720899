"""coursekit.analysis.cost: optimizer state counted from what the optimizer really stores.

Expected byte counts are computed by hand from the parameter shapes and the
state each algorithm is documented to keep (Adam: m and v of the parameter's
shape plus a step counter), never read back from the function under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import coursekit.optim as ck
from coursekit.analysis import cost
from coursekit.optim import hyper

SHAPES = [(5, 4), (5,), (3, 5), (3,)]
NUMEL = [math.prod(s) for s in SHAPES]


def _model(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).to(dtype)


def _step(model: nn.Module, optimizer, steps: int = 1) -> None:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1)).to(
        next(model.parameters()).dtype)
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()


def test_model_shapes_are_the_ones_the_hand_counts_assume():
    assert [tuple(p.shape) for p in _model().parameters()] == SHAPES


@pytest.mark.parametrize("dtype, size", [(torch.float32, 4), (torch.float64, 8)])
def test_adam_state_is_two_moments_and_a_python_step_per_tensor(dtype, size):
    model = _model(dtype)
    opt = ck.Adam(model.parameters())
    _step(model, opt)
    expected = sum(2 * n * size + cost.PYTHON_NUMBER_BYTES for n in NUMEL)
    assert cost.optimizer_state_bytes(opt) == expected


def test_torch_adam_counts_its_float32_step_tensor():
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    _step(model, opt)
    step = opt.state[next(model.parameters())]["step"]
    assert step.dtype == torch.float32 and step.numel() == 1
    assert cost.optimizer_state_bytes(opt) == sum(2 * n * 4 + 4 for n in NUMEL)


def test_amsgrad_keeps_a_third_buffer():
    model = _model()
    opt = ck.Adam(model.parameters(), amsgrad=True)
    _step(model, opt)
    assert cost.optimizer_state_bytes(opt) == sum(3 * n * 4 + 8 for n in NUMEL)


def test_plain_sgd_keeps_nothing_and_momentum_one_buffer():
    model = _model()
    plain = ck.SGD(model.parameters(), lr=0.1)
    _step(model, plain)
    assert cost.optimizer_state_bytes(plain) == 0
    momentum = ck.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _step(model, momentum)
    assert cost.optimizer_state_bytes(momentum) == 4 * sum(NUMEL)


def test_lookahead_adds_slow_weights_to_the_inner_state():
    model = _model()
    opt = ck.Lookahead(ck.Adam(model.parameters()), k=2)
    _step(model, opt, steps=3)
    assert cost.optimizer_state_bytes(opt) == sum(3 * n * 4 + 8 for n in NUMEL)


def test_hyper_stack_counts_every_level():
    model = _model()
    wrapper = hyper.ModuleWrapper(model, hyper.Adam(1e-3, optimizer=hyper.SGD(1e-5)))
    _step(model, wrapper, steps=2)
    # Adam level: m, v and a step per tensor; hyperparameters alpha, beta1, beta2 (3 numbers);
    # top SGD level: no state, one hyperparameter.
    expected = sum(2 * n * 4 + 8 for n in NUMEL) + 3 * 8 + 1 * 8
    assert cost.optimizer_state_bytes(wrapper) == expected


STACKS = {
    "SGD": lambda: hyper.SGD(0.1),
    "SGD(mu) / SGD": lambda: hyper.SGD(0.1, 0.9, optimizer=hyper.SGD(1e-3)),
    "RMSProp / Adam / SGD": lambda: hyper.RMSProp(
        0.01, optimizer=hyper.Adam(1e-3, optimizer=hyper.SGD(1e-4))),
    "AdaGrad / AdaGrad": lambda: hyper.AdaGrad(0.1, optimizer=hyper.AdaGrad(1e-2)),
}


@pytest.mark.parametrize("steps", [0, 1, 3])
@pytest.mark.parametrize("name", sorted(STACKS))
def test_hyper_stack_counts_what_the_former_special_case_counted(name, steps):
    model = _model()
    stack = STACKS[name]()
    wrapper = hyper.ModuleWrapper(model, stack)
    _step(model, wrapper, steps=steps)
    # Before the wrapper was a torch.optim.Optimizer, optimizer_state_bytes had a rule for
    # it: every level's state, and its hyperparameters as Python numbers.
    seen: set = set()
    special_case = sum(cost.state_bytes(level.state, seen)
                       + cost.state_bytes(level.hyperparameters(), seen)
                       for level in stack.levels())
    assert cost.optimizer_state_bytes(wrapper) == special_case
    assert special_case >= 8 * sum(len(level.initial) for level in stack.levels())


def test_state_bytes_counts_a_shared_tensor_once_and_walks_containers():
    t = torch.zeros(10, dtype=torch.float64)
    assert cost.state_bytes({"a": t, "b": [t, (t,)], "n": 3, "none": None}) == 80 + 8
    assert cost.state_bytes([torch.zeros(3), torch.zeros(3)]) == 24


def test_parameter_bytes_equals_storage_of_the_parameters():
    model = _model(torch.float64)
    assert cost.parameter_bytes(model) == sum(p.nbytes for p in model.parameters())


def test_memory_table_ratio_for_adam_is_two_plus_the_step_counters():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    rows = cost.memory_table({"SGD": lambda p: ck.SGD(p, lr=0.1),
                                "Adam": lambda p: ck.Adam(p),
                                "LBFGS": lambda p: torch.optim.LBFGS(p, max_iter=2)},
                               _model, x, y)
    by_name = {r["optimizer"]: r for r in rows}
    params = 4 * sum(NUMEL)
    assert by_name["SGD"]["state bytes"] == 0
    assert by_name["Adam"]["state / parameters"] == pytest.approx(
        (2 * params + 8 * len(NUMEL)) / params, rel=1e-12)
    assert by_name["Adam"]["bytes per parameter"] == pytest.approx(
        (2 * params + 8 * len(NUMEL)) / sum(NUMEL), rel=1e-12)
    # L-BFGS keeps at least its direction and previous gradient (two flat vectors).
    assert by_name["LBFGS"]["state bytes"] >= 2 * params


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (3.7e10, "37.0 GB"),
                                     (1_500, "1.5 kB"), (999_999, "1.0 MB"),
                                     (2.5e15, "2.5 PB")])
def test_format_bytes_uses_decimal_units(n, text):
    assert cost.format_bytes(n) == text


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match=r"^optimizer must be"):
        cost.optimizer_state_bytes("adam")
    with pytest.raises(ValueError, match=r"^n must be >= 0"):
        cost.format_bytes(-1)
    with pytest.raises(ValueError, match=r"^n must be"):
        cost.format_bytes(math.nan)
    with pytest.raises(TypeError, match=r"^value must be a tensor.*got <object object"):
        cost.state_bytes(object())
    with pytest.raises(TypeError, match=r"^value must be"):
        cost.state_bytes({"step": 1, "buffer": [object()]})
    with pytest.raises(ValueError, match=r"^steps must be an integer >= 1"):
        cost.memory_table({}, _model, torch.zeros(1, 4), torch.zeros(1), steps=0)
