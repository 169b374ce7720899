"""coursekit.optim.combined.Combined: several optimizers stepped as one torch optimizer.

The reference for every check is the inner optimizers themselves, built on a twin model
and stepped one after the other by hand: Combined must take exactly their steps (bit for
bit, float64), save and restore their states, clear every gradient, refuse a parameter
that two of them own, and expose their own parameter groups, so that a scheduler scales
each of them.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.optim import SGD, Adam, AdamW, Muon
from coursekit.optim.combined import Combined

STEPS = 4


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh(),
                         nn.Linear(6, 3)).double()


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return (torch.randn(16, 5, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (16,), generator=g))


def _split(model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Hidden matrices for Muon, the rest (output layer, biases) for AdamW."""
    params = list(model.parameters())
    matrices = [p for p in params if p.ndim == 2][:-1]
    return matrices, [p for p in params if all(p is not q for q in matrices)]


PAIRS = {
    "Muon + AdamW": lambda a, b: (Muon(a, lr=0.02, weight_decay=0.01, ns_dtype=None),
                                  AdamW(b, lr=3e-3, weight_decay=0.01)),
    "SGD momentum + Adam": lambda a, b: (SGD(a, lr=0.1, momentum=0.9, nesterov=True),
                                         Adam(b, lr=1e-2)),
}


def _parts(pair: str, model: nn.Module) -> tuple[torch.optim.Optimizer, ...]:
    return PAIRS[pair](*_split(model))


def _train(model: nn.Module, step_fn, zero_fn, steps: range) -> list[float]:
    losses = []
    for t in steps:
        x, y = _batch(t)
        zero_fn()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        step_fn()
        losses.append(loss.item())
    return losses


def _stepped_by_hand(pair: str, steps: range) -> nn.Module:
    model = _model()
    parts = _parts(pair, model)

    def step():
        for part in parts:
            part.step()

    _train(model, step, lambda: [part.zero_grad() for part in parts], steps)
    return model


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), f"{name} differs by {(p - q).abs().max().item():.3e}"


@pytest.mark.parametrize("pair", PAIRS)
def test_combined_step_equals_stepping_its_parts(pair):
    model = _model()
    combined = Combined(*_parts(pair, model))
    _train(model, combined.step, combined.zero_grad, range(STEPS))
    reference = _stepped_by_hand(pair, range(STEPS))
    _assert_same_weights(model, reference)
    assert not torch.equal(next(model.parameters()), next(_model().parameters())), "it moved"


def test_step_with_a_closure_evaluates_it_once_and_returns_its_loss():
    model = _model()
    combined = Combined(*_parts("SGD momentum + Adam", model))
    calls = []
    x, y = _batch(0)

    def closure():
        calls.append(1)
        combined.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = combined.step(closure)
    assert len(calls) == 1
    assert loss.item() == pytest.approx(F.cross_entropy(_model()(x), y).item(), rel=1e-15)
    _assert_same_weights(model, _stepped_by_hand("SGD momentum + Adam", range(1)))


@pytest.mark.parametrize("pair", PAIRS)
def test_state_dict_round_trip_continues_bit_identically(pair):
    model = _model()
    combined = Combined(*_parts(pair, model))
    _train(model, combined.step, combined.zero_grad, range(STEPS))
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": combined.state_dict()}, buffer)
    _train(model, combined.step, combined.zero_grad, range(STEPS, 2 * STEPS))   # uninterrupted

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    fresh = _model(seed=1)                          # other weights, other (empty) state
    fresh.load_state_dict(saved["model"])
    restored = Combined(*_parts(pair, fresh))
    restored.load_state_dict(saved["optimizer"])
    _train(fresh, restored.step, restored.zero_grad, range(STEPS, 2 * STEPS))
    _assert_same_weights(fresh, model)


def test_state_dict_holds_one_entry_per_inner_optimizer():
    model = _model()
    parts = _parts("Muon + AdamW", model)
    combined = Combined(*parts)
    _train(model, combined.step, combined.zero_grad, range(2))
    saved = combined.state_dict()
    assert list(saved) == ["optimizers"] and len(saved["optimizers"]) == len(parts)
    for inner, part in zip(saved["optimizers"], parts, strict=True):
        expected = part.state_dict()
        assert inner["param_groups"] == expected["param_groups"]
        assert inner["state"].keys() == expected["state"].keys()


def test_load_state_dict_refuses_another_number_of_optimizers():
    model = _model()
    combined = Combined(*_parts("SGD momentum + Adam", model))
    single = Combined(SGD(model.parameters(), lr=0.1)).state_dict()
    with pytest.raises(ValueError, match="state_dict must be a Combined state_dict of 2"):
        combined.load_state_dict(single)
    with pytest.raises(ValueError, match="state_dict must be"):
        combined.load_state_dict(combined.optimizers[0].state_dict())   # an inner one


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_clears_the_gradients_of_every_part(set_to_none):
    model = _model()
    combined = Combined(*_parts("Muon + AdamW", model))
    x, y = _batch(0)
    F.cross_entropy(model(x), y).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    combined.zero_grad(set_to_none=set_to_none)
    for name, p in model.named_parameters():
        if set_to_none:
            assert p.grad is None, name
        else:
            assert p.grad is not None and not p.grad.any(), name


def test_overlapping_parameters_are_refused_with_a_clear_error():
    model = _model()
    first, last = model[0].weight, model[4].bias
    with pytest.raises(ValueError, match=r"disjoint parameters.*shape \(3,\)"):
        Combined(SGD([first, last], lr=0.1), Adam([last], lr=1e-3))
    same = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="disjoint"):
        Combined(same, same)


def test_construction_refuses_no_optimizer_and_non_optimizers():
    with pytest.raises(ValueError, match=r"at least one torch\.optim\.Optimizer"):
        Combined()
    with pytest.raises(TypeError, match=r"optimizers\[1\]"):
        Combined(SGD(_model().parameters(), lr=0.1), "adam")


def test_param_groups_are_the_union_of_the_inner_groups():
    model = _model()
    muon, adamw = _parts("Muon + AdamW", model)
    adamw.add_param_group({"params": [], "lr": 1e-4})          # a second AdamW group
    combined = Combined(muon, adamw)
    inner = [*muon.param_groups, *adamw.param_groups]
    assert len(combined.param_groups) == 3
    assert all(a is b for a, b in zip(combined.param_groups, inner, strict=True))
    owned = [id(p) for g in combined.param_groups for p in g["params"]]
    assert sorted(owned) == sorted(id(p) for p in model.parameters())


def test_param_groups_stay_the_inner_groups_after_load_state_dict():
    model = _model()
    combined = Combined(*_parts("Muon + AdamW", model))
    _train(model, combined.step, combined.zero_grad, range(2))
    combined.load_state_dict(copy.deepcopy(combined.state_dict()))
    inner = [g for o in combined.optimizers for g in o.param_groups]
    assert all(a is b for a, b in zip(combined.param_groups, inner, strict=True))


def test_a_scheduler_on_combined_scales_every_inner_rate():
    model = _model()
    muon, adamw = _parts("Muon + AdamW", model)
    combined = Combined(muon, adamw)
    scheduler = torch.optim.lr_scheduler.LambdaLR(combined, lambda t: 0.5**t)
    rates = []
    for t in range(3):
        _train(model, combined.step, combined.zero_grad, range(t, t + 1))
        scheduler.step()
        rates.append((muon.param_groups[0]["lr"], adamw.param_groups[0]["lr"]))
    assert rates == [(0.02 * 0.5**k, 3e-3 * 0.5**k) for k in (1, 2, 3)]


def test_state_is_the_union_of_the_inner_states():
    model = _model()
    parts = _parts("Muon + AdamW", model)
    combined = Combined(*parts)
    _train(model, combined.step, combined.zero_grad, range(1))
    state = combined.state
    assert {id(p) for p in state} == {id(p) for p in model.parameters()}
    for part in parts:
        for p, s in part.state.items():
            assert state[p] is s


def test_a_group_added_later_is_stepped_or_refused():
    model = _model()
    combined = Combined(*_parts("SGD momentum + Adam", model))
    extra = nn.Parameter(torch.ones(3, dtype=torch.float64))
    try:
        combined.add_param_group({"params": [extra], "lr": 0.5})
    except (TypeError, ValueError, NotImplementedError) as error:
        assert "add it to one of its optimizers" in str(error)
        assert len(combined.param_groups) == sum(len(o.param_groups)
                                                 for o in combined.optimizers)
        return                                      # refused, with an error: acceptable
    extra.grad = torch.ones_like(extra)
    combined.step()
    assert not torch.equal(extra, torch.ones_like(extra)), "a group that is never stepped"


def test_train_and_eval_reach_the_inner_optimizers_that_have_them():
    """fit switches an optimizer with train()/eval() (Schedule-Free): a Combined passes the
    switch to the inner optimizers that have one, and leaves the others alone."""
    from coursekit.optim.schedule_free import ScheduleFreeAdamW

    model = _model()
    params = list(model.parameters())
    free = ScheduleFreeAdamW(params[:1], lr=0.01)
    combined = Combined(free, torch.optim.SGD(params[1:], lr=0.1))
    trained = combined.train()
    assert trained is combined and free.param_groups[0]["train_mode"]
    combined.eval()
    assert not free.param_groups[0]["train_mode"]
