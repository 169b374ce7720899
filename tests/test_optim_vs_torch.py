"""Every optimizer PyTorch also has, run side by side with torch.optim.

Muon and Adafactor, twins of ``torch.optim.Muon`` / ``torch.optim.Adafactor``, are run
beside torch in tests/test_reference_2020s_a.py (``VERIFIED_ELSEWHERE`` below); here
only their defaults are compared.

Ours and torch's start from identical parameters on the same tiny MLP (two
parameter groups, a non-contiguous parameter, one parameter whose grad is None)
and take 50 steps each on their own gradients. After every combination of flags,
parameters and optimizer state must agree to 1e-10 relative in float64 and to
about 1e-6 in float32.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

import coursekit.optim as ck
from tests._optim_helpers import TinyMLP, rel_error

STEPS = 50


def _grid(**axes) -> list[dict]:
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes.values())]


def _sgd_cases():
    cases = []
    for c in _grid(momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                   weight_decay=[0.0, 0.01], maximize=[False, True]):
        if c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0):
            continue
        cases.append(("SGD", dict(lr=0.05, **c), {"lr": 0.02}))
    return cases


CASES = [
    *_sgd_cases(),
    *[("Adagrad", dict(lr=0.05, **c), {"lr": 0.1, "eps": 1e-6})
      for c in _grid(lr_decay=[0.0, 0.01], weight_decay=[0.0, 0.01],
                     initial_accumulator_value=[0.0, 0.1], maximize=[False, True])],
    *[("RMSprop", dict(lr=0.01, **c), {"lr": 0.003, "alpha": 0.9})
      for c in _grid(weight_decay=[0.0, 0.01], momentum=[0.0, 0.9], centered=[False, True],
                     maximize=[False, True])],
    *[("Adam", dict(lr=0.01, **c), {"lr": 0.003, "betas": (0.8, 0.99)})
      for c in _grid(weight_decay=[0.0, 0.05], amsgrad=[False, True], maximize=[False, True],
                     decoupled_weight_decay=[False, True])],
    *[("AdamW", dict(lr=0.01, **c), {"lr": 0.003, "betas": (0.8, 0.99)})
      for c in _grid(weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True])],
    *[("NAdam", dict(lr=0.01, **c), {"lr": 0.003, "betas": (0.8, 0.99)})
      for c in _grid(weight_decay=[0.0, 0.05], decoupled_weight_decay=[False, True],
                     momentum_decay=[4e-3, 2e-2], maximize=[False, True])],
    *[("RAdam", dict(lr=0.01, **c), {"lr": 0.003, "betas": (0.8, 0.99)})
      for c in _grid(weight_decay=[0.0, 0.05], decoupled_weight_decay=[False, True],
                     maximize=[False, True])],
    *[("Adamax", dict(lr=0.01, **c), {"lr": 0.003, "betas": (0.8, 0.99)})
      for c in _grid(weight_decay=[0.0, 0.05], maximize=[False, True])],
    *[("Adadelta", dict(lr=1.0, **c), {"lr": 0.5, "rho": 0.95, "eps": 1e-4})
      for c in _grid(rho=[0.9, 0.5], weight_decay=[0.0, 0.01], maximize=[False, True],
                     foreach=[False, True])],
]


def _case_id(case) -> str:
    name, kwargs, _ = case
    flags = ",".join(f"{k}={v}" for k, v in kwargs.items() if k != "lr")
    return f"{name}[{flags}]"


@pytest.fixture
def float64_default():
    """torch keeps some scalar state (NAdam's mu_product) in the default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _run_pair(name: str, kwargs: dict, group2: dict, dtype: torch.dtype):
    ours_model, torch_model = TinyMLP(dtype), TinyMLP(dtype)
    ours = getattr(ck, name)(ours_model.groups(**group2), **kwargs)
    ref = getattr(torch.optim, name)(torch_model.groups(**group2), **kwargs)
    ours_losses = ours_model.train(ours, STEPS)
    ref_losses = torch_model.train(ref, STEPS)
    return ours_model, ours, ours_losses, torch_model, ref, ref_losses


def _assert_same(ours_model, ours, torch_model, ref, tol):
    for p, q in zip(ours_model.parameters(), torch_model.parameters(), strict=True):
        assert rel_error(p, q) <= tol, f"parameter differs: rel error {rel_error(p, q):.3g}"
    assert ours_model.unused.grad is None
    assert torch.equal(ours_model.unused, TinyMLP(ours_model.unused.dtype).unused)
    for p, q in zip(ours_model.parameters(), torch_model.parameters(), strict=True):
        ours_state, ref_state = ours.state[p], ref.state[q]
        assert set(ours_state) == set(ref_state)
        for key, ref_value in ref_state.items():
            err = rel_error(torch.as_tensor(ours_state[key]), ref_value)
            assert err <= tol, f"state {key!r} differs: rel error {err:.3g}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_torch_in_float64(case, float64_default):
    name, kwargs, group2 = case
    ours_model, ours, ours_losses, torch_model, ref, ref_losses = _run_pair(
        name, kwargs, group2, torch.float64)
    assert rel_error(torch.tensor(ours_losses), torch.tensor(ref_losses)) <= 1e-10
    _assert_same(ours_model, ours, torch_model, ref, tol=1e-10)


@pytest.mark.parametrize("case", CASES[::3], ids=_case_id)
def test_matches_torch_in_float32(case):
    name, kwargs, group2 = case
    ours_model, ours, _, torch_model, ref, _ = _run_pair(name, kwargs, group2, torch.float32)
    _assert_same(ours_model, ours, torch_model, ref, tol=2e-6)


# Twins of torch.optim run beside it in another file, over their own flags: Muon takes
# matrices only and Adafactor factors matrices and 3-D tensors, so each has its own
# models there (100 steps, float64, several parameter groups). name -> (file, test).
VERIFIED_ELSEWHERE = {
    "Muon": ("tests/test_reference_2020s_a.py", "test_muon_matches_torch"),
    "Adafactor": ("tests/test_reference_2020s_a.py", "test_adafactor_matches_torch"),
}


def test_every_torch_twin_is_covered():
    covered = {name for name, _, _ in CASES} | set(VERIFIED_ELSEWHERE)
    twins = {name for name in ck.__all__ if hasattr(torch.optim, name) and name != "Optimizer"}
    assert covered == twins


@pytest.mark.parametrize("name", sorted(VERIFIED_ELSEWHERE))
def test_twins_verified_elsewhere_are_run_beside_torch_there(name):
    """The file named above has the test, and that file builds torch's class beside ours."""
    path, test = VERIFIED_ELSEWHERE[name]
    source = (Path(__file__).resolve().parents[1] / path).read_text(encoding="utf-8")
    assert f"def {test}(" in source
    assert f"torch.optim.{name}(" in source


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam",
                                  "RAdam", "Adamax", "Adadelta", "Muon", "Adafactor"])
def test_defaults_match_torch(name):
    params = [torch.nn.Parameter(torch.zeros(2, 2))]           # a matrix, for Muon
    ours = getattr(ck, name)(params).defaults
    ref = getattr(torch.optim, name)(params).defaults
    beyond_torch = {("RMSprop", "fused"),   # our compiled path; torch's RMSprop has none
                    ("Muon", "ns_dtype")}   # torch's iteration is always bfloat16
    for key, value in ours.items():
        if (name, key) in beyond_torch:
            continue
        assert key in ref, f"{name} has an argument torch lacks: {key}"
        assert ref[key] == value, f"{name} default {key}: ours {value}, torch {ref[key]}"


def test_sgd_plus_is_torch_sgd_without_dampening(float64_default):
    ours_model, torch_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    ours = ck.SGDPlus(ours_model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    ref = torch.optim.SGD(torch_model.parameters(), lr=0.05, momentum=0.9, dampening=0,
                          weight_decay=0.01)
    ours_model.train(ours, STEPS)
    torch_model.train(ref, STEPS)
    for p, q in zip(ours_model.parameters(), torch_model.parameters(), strict=True):
        assert rel_error(p, q) <= 1e-12


def test_adadelta_with_rho_1_is_sgd(float64_default):
    """rho = 1 freezes both averages at 0: Delta_t = sqrt(eps) / sqrt(eps) * g_t = g_t."""
    ours_model, torch_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    ours = ck.Adadelta(ours_model.parameters(), lr=0.05, rho=1.0, weight_decay=0.01)
    ref = torch.optim.SGD(torch_model.parameters(), lr=0.05, weight_decay=0.01)
    ours_model.train(ours, STEPS)
    torch_model.train(ref, STEPS)
    for p, q in zip(ours_model.parameters(), torch_model.parameters(), strict=True):
        assert torch.equal(p, q)
