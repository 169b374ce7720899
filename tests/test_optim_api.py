"""What a PyTorch user expects of an optimizer, for every coursekit optimizer.

Every registered name runs every test here, built by :func:`_build`, which drives each
optimizer as its docstring tells users to: Muon gets the model's matrices only (its
users give the vectors to AdamW, in a second optimizer, whose behaviour the ``adamw``
cases check), so its model's never-used parameter is a matrix too (:func:`_model`); a
Schedule-Free optimizer is put in train mode after it is built.
"""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

import coursekit.optim as ck
from tests._optim_helpers import TinyMLP

# name -> keyword arguments that exercise the optimizer's state (momentum, amsgrad...)
CONFIGS = {
    "sgd": dict(lr=0.05, momentum=0.9, nesterov=True),
    "sgd_plus": dict(lr=0.05, momentum=0.9),
    "qian_momentum": dict(lr=0.05, momentum=0.9),
    "adagrad": dict(lr=0.05, lr_decay=0.01),
    "rmsprop": dict(lr=0.01, momentum=0.5, centered=True),
    "adam": dict(lr=0.01, amsgrad=True),
    "adamw": dict(lr=0.01),
    "nadam": dict(lr=0.01),
    "radam": dict(lr=0.01),
    "adamax": dict(lr=0.01),
    "adabelief": dict(lr=0.01),
    "adadelta": dict(lr=1.0, rho=0.95, weight_decay=0.01),
    "lookahead": dict(inner="adam", lr=0.01, k=3, alpha=0.5),
    "muon": dict(lr=0.02, weight_decay=0.01, nesterov=True, adjust_lr_fn="match_rms_adamw"),
    "adafactor": dict(lr=0.01, weight_decay=0.01),
    "lion": dict(lr=0.001, weight_decay=0.1),
    "schedule_free_sgd": dict(lr=0.05, momentum=0.9, warmup_steps=3, weight_decay=0.01),
    "schedule_free_adamw": dict(lr=0.01, warmup_steps=3, weight_decay=0.01),
    "lars": dict(lr=0.5, momentum=0.9, weight_decay=0.01, exclude="none"),
    "lamb": dict(lr=0.01, weight_decay=0.01, exclude="vectors"),
    "shampoo": dict(lr=0.05, momentum=0.5, precondition_frequency=2),
    "soap": dict(lr=0.01, precondition_frequency=2, precondition_1d=True),
}
MATRICES_ONLY = {"muon"}


def _model(name: str, seed: int = 0) -> TinyMLP:
    """The tiny MLP; for Muon, its never-used parameter is a (1, 2) matrix Muon accepts."""
    model = TinyMLP(torch.float64, seed=seed)
    if name in MATRICES_ONLY:
        model.unused = torch.nn.Parameter(model.unused.detach().reshape(1, 2))
    return model


def _build(name: str, params, **overrides) -> torch.optim.Optimizer:
    """``ck.create(name, params, **CONFIGS[name])`` as a user of that optimizer calls it."""
    params = list(params)
    if name in MATRICES_ONLY:
        if isinstance(params[0], dict):
            params = [{**g, "params": [p for p in g["params"] if p.ndim == 2]} for g in params]
        else:
            params = [p for p in params if p.ndim == 2]
    opt = ck.create(name, params, **{**CONFIGS[name], **overrides})
    if callable(getattr(opt, "train", None)):
        opt.train()                                 # Schedule-Free starts in eval mode
    return opt


def _optimized(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def test_configs_cover_the_registry():
    assert sorted(CONFIGS) == ck.available()


def test_muon_cases_give_muon_the_matrices_only():
    model = _model("muon")
    opt = _build("muon", model.groups(lr=0.003))
    assert _optimized(opt) == [model.w1, model.unused, model.w2]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_round_trip_continues_bit_identically(name):
    uninterrupted = _model(name)
    opt = _build(name, uninterrupted.groups(lr=0.003))
    uninterrupted.train(opt, 20)

    # Snapshot at step 20 through torch.save, as a checkpoint on disk would be.
    buffer = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in uninterrupted.parameters()],
                "optimizer": opt.state_dict()}, buffer)
    expected_losses = uninterrupted.train(opt, 15)

    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=False)
    resumed = _model(name, seed=1)                      # different initial values
    with torch.no_grad():
        for p, saved in zip(resumed.parameters(), checkpoint["params"], strict=True):
            p.copy_(saved)
    opt2 = _build(name, resumed.groups(lr=0.003))
    opt2.load_state_dict(checkpoint["optimizer"])
    losses = resumed.train(opt2, 15)

    assert losses == expected_losses
    for p, q in zip(resumed.parameters(), uninterrupted.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_step_with_closure_returns_its_loss_and_uses_its_gradients(name):
    with_closure, without = _model(name), _model(name)
    opt_a = _build(name, with_closure.parameters())
    opt_b = _build(name, without.parameters())

    def closure():
        opt_a.zero_grad()
        loss = with_closure.loss()
        loss.backward()
        return loss

    with torch.no_grad():            # step() must enable grad for the closure itself
        returned = opt_a.step(closure)
    expected = without.train(opt_b, 1)[0]
    assert returned.item() == expected
    for p, q in zip(with_closure.parameters(), without.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parameters_without_grad_are_skipped(name):
    model = _model(name)
    before = model.unused.detach().clone()
    opt = _build(name, model.parameters())
    assert any(p is model.unused for p in _optimized(opt))
    model.train(opt, 3)
    assert model.unused.grad is None
    assert torch.equal(model.unused, before)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_zero_grad_sets_grads_to_none(name):
    model = _model(name)
    opt = _build(name, model.parameters())
    model.loss().backward()
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in _optimized(opt))
    model.loss().backward()
    opt.zero_grad(set_to_none=False)
    zeroed = [p.grad for p in _optimized(opt) if p.grad is not None]
    assert zeroed and all(torch.count_nonzero(grad) == 0 for grad in zeroed)


@pytest.mark.parametrize(("ours_name", "torch_cls", "kwargs"), [
    ("sgd", torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("adam", torch.optim.Adam, dict(lr=0.01)),
    ("rmsprop", torch.optim.RMSprop, dict(lr=0.01)),
])
def test_torch_lr_schedulers_drive_our_optimizers(ours_name, torch_cls, kwargs):
    ours_model, ref_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    ours = ck.create(ours_name, ours_model.parameters(), **kwargs)
    ref = torch_cls(ref_model.parameters(), **kwargs)
    scheds = [torch.optim.lr_scheduler.OneCycleLR(o, max_lr=kwargs["lr"], total_steps=30)
              for o in (ours, ref)]
    for _ in range(30):
        ours_model.train(ours, 1)
        ref_model.train(ref, 1)
        for s in scheds:
            s.step()
        assert scheds[0].get_last_lr() == scheds[1].get_last_lr()
    for p, q in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_per_group_options_are_used():
    model = TinyMLP(torch.float64)
    opt = ck.Adam(model.groups(lr=0.0, betas=(0.5, 0.6)), lr=0.01)
    frozen = [model.w2.detach().clone(), model.b2.detach().clone()]
    model.train(opt, 5)
    assert opt.param_groups[1]["betas"] == (0.5, 0.6)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert torch.equal(model.w2, frozen[0]) and torch.equal(model.b2, frozen[1])  # lr 0
    assert opt.state[model.w2]["step"] == 5


INVALID = [
    (ck.SGD, dict(lr=-0.1), "lr", "-0.1"),
    (ck.SGD, dict(lr=float("nan")), "lr", "nan"),
    (ck.SGD, dict(lr=0.1, momentum=-0.5), "momentum", "-0.5"),
    (ck.SGD, dict(lr=0.1, nesterov=True), "nesterov", "momentum=0"),
    (ck.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov", "dampening"),
    (ck.SGD, dict(lr=0.1, weight_decay=-1), "weight_decay", "-1"),
    (ck.SGD, dict(lr="0.1"), "lr", "'0.1'"),
    (ck.Adam, dict(betas=(1.0, 0.999)), "betas[0]", "1.0"),
    (ck.Adam, dict(betas=(0.9, -0.1)), "betas[1]", "-0.1"),
    (ck.Adam, dict(betas=0.9), "betas", "0.9"),
    (ck.Adam, dict(eps=-1e-8), "eps", "-1e-08"),
    (ck.AdamW, dict(weight_decay=-0.01), "weight_decay", "-0.01"),
    (ck.NAdam, dict(momentum_decay=-1.0), "momentum_decay", "-1.0"),
    (ck.RAdam, dict(lr=-1.0), "lr", "-1.0"),
    (ck.Adamax, dict(betas=(0.9, 1.5)), "betas[1]", "1.5"),
    (ck.Adagrad, dict(lr_decay=-0.1), "lr_decay", "-0.1"),
    (ck.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value", "-1.0"),
    (ck.RMSprop, dict(alpha=1.0), "alpha", "1.0"),
    (ck.RMSprop, dict(momentum=-0.9), "momentum", "-0.9"),
    (ck.AdaBelief, dict(eps=-1.0), "eps", "-1.0"),
    (ck.Adadelta, dict(lr=-1.0), "lr", "-1.0"),
    (ck.Adadelta, dict(rho=1.5), "rho", "1.5"),
    (ck.Adadelta, dict(rho=-0.1), "rho", "-0.1"),
    (ck.Adadelta, dict(eps=-1e-6), "eps", "-1e-06"),
    (ck.Adadelta, dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    (ck.Adadelta, dict(foreach="yes"), "foreach", "'yes'"),
    (ck.SGDPlus, dict(momentum=1.0), "momentum", "1.0"),
    (ck.QianMomentum, dict(lr=-0.01), "lr", "-0.01"),
]


@pytest.mark.parametrize(("cls", "kwargs", "argument", "value"), INVALID,
                         ids=[f"{c.__name__}-{a}" for c, _, a, _ in INVALID])
def test_bad_hyperparameters_name_the_argument_and_value(cls, kwargs, argument, value):
    with pytest.raises(ValueError) as excinfo:
        cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    message = str(excinfo.value)
    assert message.startswith(f"{argument} must be ") and value in message


@pytest.mark.parametrize(("kwargs", "argument"), [(dict(k=0), "k"), (dict(alpha=1.5), "alpha")])
def test_lookahead_rejects_bad_arguments(kwargs, argument):
    inner = ck.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match=f"^{argument} must be "):
        ck.Lookahead(inner, **kwargs)


def test_lookahead_refuses_an_optimizer_with_train_and_eval_modes():
    """Schedule-Free rebuilds its average x from the weights it trains at, y: overwriting y
    between steps, as Lookahead's pull-back does, moves the average the optimizer reports."""
    point = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    inner = ck.ScheduleFreeSGD([point], lr=0.1)
    with pytest.raises(ValueError, match=r"^optimizer must be an optimizer without train\(\) "
                                         r"and eval\(\) modes.*got 'ScheduleFreeSGD'"):
        ck.Lookahead(inner)

    def averaged(pull_back):
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
        opt = ck.ScheduleFreeSGD([p], lr=0.1)
        opt.train()
        for _ in range(3):
            p.grad = 2 * p.detach()
            opt.step()
        if pull_back:
            with torch.no_grad():
                p.mul_(0.5)
        opt.eval()
        return p.detach().clone()

    assert not torch.allclose(averaged(False), averaged(True))


def test_registry_creates_each_optimizer_and_rejects_unknown_names():
    for name in ck.available():
        opt = ck.create(name, [torch.nn.Parameter(torch.zeros(2, 3))])   # Muon takes matrices
        assert isinstance(opt, torch.optim.Optimizer)
    assert isinstance(ck.create("Adam", [torch.nn.Parameter(torch.zeros(1))]), ck.Adam)
    with pytest.raises(ValueError, match=r"name must be one of .*'adam'.*, got 'adamm'"):
        ck.create("adamm", [torch.nn.Parameter(torch.zeros(1))])


def test_state_dict_shares_live_state_and_a_deepcopy_is_a_snapshot():
    a = TinyMLP(torch.float64)
    opt = ck.Adam(a.parameters(), lr=0.01)
    a.train(opt, 3)
    live = opt.state_dict()
    snapshot_state = copy.deepcopy(live)
    moment_at_3 = snapshot_state["state"][0]["exp_avg"].clone()
    a.train(opt, 2)
    assert snapshot_state["state"][0]["step"] == 3
    assert opt.state_dict()["state"][0]["step"] == 5
    assert torch.equal(snapshot_state["state"][0]["exp_avg"], moment_at_3)
    assert not torch.equal(live["state"][0]["exp_avg"], moment_at_3)  # torch's contract too
    assert math.isfinite(a.loss().item())
