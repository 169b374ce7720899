"""The fast paths give the readable path's numbers.

``foreach=True`` must be bit-identical to the readable per-tensor update (same
arithmetic, element for element). ``fused=True`` is compiled by torch.compile,
which may reorder floating-point operations: it must agree to rounding (1e-12
relative in float64 after 30 steps). Compiling takes seconds, so the fused cases
cover each optimizer once with its state-heavy flags.
"""

from __future__ import annotations

import copy

import pytest
import torch

import coursekit.optim as ck
from coursekit.analysis.cost import roofline_table, step_times
from coursekit.optim.fast import roofline_bytes_per_param
from tests._optim_helpers import TinyMLP, rel_error

STEPS = 30

FOREACH_CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, maximize=True, centered=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("Adadelta", dict(lr=1.0)),
    ("Adadelta", dict(lr=1.0, rho=0.5, weight_decay=0.01, maximize=True)),
]
FUSED_CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
]


def _train(name, kwargs, steps=STEPS):
    model = TinyMLP(torch.float64)
    opt = getattr(ck, name)(model.groups(lr=0.003), **kwargs)
    losses = model.train(opt, steps)
    return model, opt, losses


def _ids(cases):
    return [f"{n}-{','.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in cases]


@pytest.mark.parametrize(("name", "kwargs"), FOREACH_CASES, ids=_ids(FOREACH_CASES))
def test_foreach_is_bit_identical_to_the_readable_path(name, kwargs):
    readable, readable_opt, readable_losses = _train(name, kwargs)
    fast, fast_opt, fast_losses = _train(name, dict(kwargs, foreach=True))
    assert fast_losses == readable_losses
    for p, q in zip(fast.parameters(), readable.parameters(), strict=True):
        assert torch.equal(p, q)
        for key, value in readable_opt.state[q].items():
            assert torch.equal(torch.as_tensor(fast_opt.state[p][key]), torch.as_tensor(value))


@pytest.mark.parametrize(("name", "kwargs"), FUSED_CASES, ids=_ids(FUSED_CASES))
def test_fused_matches_the_readable_path_to_rounding(name, kwargs):
    readable, readable_opt, _ = _train(name, kwargs)
    fast, fast_opt, _ = _train(name, dict(kwargs, fused=True))
    for p, q in zip(fast.parameters(), readable.parameters(), strict=True):
        assert rel_error(p, q) <= 1e-12
        for key, value in readable_opt.state[q].items():
            fused_value = torch.as_tensor(fast_opt.state[p][key])
            assert rel_error(fused_value, torch.as_tensor(value)) <= 1e-12


def test_fast_flags_are_validated():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="fused must be False with foreach=True"):
        ck.Adam(params, foreach=True, fused=True)
    with pytest.raises(ValueError, match="fused must be one of None, True, False, got 'yes'"):
        ck.SGD(params, fused="yes")


def test_state_dict_moves_between_the_readable_and_foreach_paths():
    readable, readable_opt, _ = _train("Adam", dict(lr=0.01), steps=10)
    saved = copy.deepcopy(readable_opt.state_dict())  # state_dict() shares live tensors
    readable.train(readable_opt, 10)

    resumed = TinyMLP(torch.float64)
    resumed.copy_from(_train("Adam", dict(lr=0.01), steps=10)[0])
    opt = ck.Adam(resumed.groups(lr=0.003), lr=0.01, foreach=True)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["foreach"] is None      # the saved groups win, as in torch
    for group in opt.param_groups:
        group["foreach"] = True
    resumed.train(opt, 10)
    for p, q in zip(resumed.parameters(), readable.parameters(), strict=True):
        assert torch.equal(p, q)


def test_roofline_counts_bytes_moved_per_parameter():
    # Adam reads param, grad, m, v and writes param, m, v: 7 fp32 tensors.
    assert roofline_bytes_per_param("adam") == 7 * 4
    assert roofline_bytes_per_param("adam", element_size=8) == 7 * 8
    assert roofline_bytes_per_param("sgd_momentum") == 5 * 4
    with pytest.raises(ValueError, match="algorithm must be one of"):
        roofline_bytes_per_param("lion")


def test_step_times_measures_every_optimizer_and_takes_its_steps():
    params = {name: [torch.nn.Parameter(torch.ones(1000))] for name in ("a", "b")}
    for ps in params.values():
        ps[0].grad = torch.ones(1000)
    opts = {name: ck.SGD(ps, lr=0.5) for name, ps in params.items()}
    times = step_times(opts, steps=3, warmup=1)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())
    for ps in params.values():   # 1 - 4 steps * 0.5 * 1
        assert torch.equal(ps[0].detach(), torch.full((1000,), -1.0))


def test_roofline_table_reports_each_optimizer_against_the_memory_bandwidth():
    table = roofline_table({"ours": lambda p: ck.Adam(p), "torch": lambda p: torch.optim.Adam(p)},
                           n_params=10_000, steps=2)
    assert [row["optimizer"] for row in table] == ["ours", "torch"]
    for row in table:
        # the three columns are one measurement seen three ways
        seconds = row["ms per step"] / 1e3
        assert row["GB/s at roofline"] == pytest.approx(28 * 10_000 / seconds / 1e9)
        assert row["of memory bandwidth"] > 0
