"""Hyper-optimizer stacks (coursekit.optim.hyper), each checked by an independent computation.

- SGD / SGD and SGD / SGD / SGD on a quadratic follow the hypergradients derived
  by hand (d f(w_t) / d alpha = -g_t . g_{t-1}, and its chain one level up).
- Adam / SGD, RMSProp / SGD, AdaGrad / SGD and SGD(momentum) / SGD: every
  hypergradient equals a central difference of the one-step-ahead loss, with the
  step taken by torch.optim itself.
- With the top step size 0 every stack is its base torch.optim optimizer.
- On sklearn's digits, SGD / SGD rescues a poor learning rate.
- The wrapper is a torch.optim.Optimizer: a closure step is the plain loop's step,
  coursekit.train.fit drives it like that loop, a scheduler drives a fixed alpha
  as it drives torch.optim.SGD, and a stack saved mid-training (state_dict, or a
  fit checkpoint) and loaded into fresh objects continues exactly like a run that
  never stopped.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from coursekit.optim import clip, hyper


def _tiny_mlp(dtype: torch.dtype = torch.float64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).to(dtype)


def _batches(steps: int, dtype: torch.dtype = torch.float64) -> list[tuple[torch.Tensor, ...]]:
    """A different minibatch per step; input feature 0 is always 0, so the first column of
    the first weight matrix gets exactly zero gradients (Adam's and RMSProp's v stay 0 there)."""
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(steps):
        x = torch.randn(8, 4, generator=g, dtype=torch.float64)
        x[:, 0] = 0.0
        batches.append((x.to(dtype), torch.randn(8, 3, generator=g, dtype=torch.float64).to(dtype)))
    return batches


def _loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def _train(model: nn.Module, opt, batches) -> list[list[torch.Tensor]]:
    """Run the standard loop; return the parameters after every step."""
    trajectory = []
    for batch in batches:
        opt.zero_grad()
        _loss(model, batch).backward()
        opt.step()
        trajectory.append([p.detach().clone() for p in model.parameters()])
    return trajectory


def _assert_same_trajectory(ours, reference, rtol=1e-10, atol=1e-13):
    for step, (a, b) in enumerate(zip(ours, reference, strict=True)):
        for p, q in zip(a, b, strict=True):
            torch.testing.assert_close(p, q, rtol=rtol, atol=atol, msg=f"differs at step {step}")


# ---------------------------------------------------------------------------
# SGD / SGD (/ SGD) on a quadratic: the hand-derived hypergradients
# ---------------------------------------------------------------------------

def _quadratic(seed: int = 0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((5, 5))
    a = q @ q.T / 5 + 0.2 * np.eye(5)
    b = rng.standard_normal(5)
    w0 = rng.standard_normal(5)
    return a, b, w0


class _QuadraticModel(nn.Module):
    def __init__(self, a, b, w0):
        super().__init__()
        self.a, self.b = torch.tensor(a), torch.tensor(b)
        self.w = nn.Parameter(torch.tensor(w0))

    def forward(self) -> torch.Tensor:
        return 0.5 * self.w @ self.a @ self.w - self.b @ self.w


def _train_quadratic(model: _QuadraticModel, opt, steps: int) -> list[np.ndarray]:
    ws = []
    for _ in range(steps):
        opt.zero_grad()
        model().backward()
        opt.step()
        ws.append(model.w.detach().numpy().copy())
    return ws


def test_sgd_sgd_learning_rate_follows_analytic_hypergradient_on_quadratic():
    a, b, w0 = _quadratic()
    alpha0, kappa, steps = 0.05, 0.02, 40
    model = _QuadraticModel(a, b, w0)
    stack = hyper.SGD(alpha0, optimizer=hyper.SGD(kappa))
    ws = _train_quadratic(model, hyper.ModuleWrapper(model, stack), steps)

    # alpha_t = alpha_{t-1} - kappa * dL_t/d alpha, with dL_t/d alpha = -g_t . g_{t-1}
    w, alpha, g_prev, alphas, expected_ws = w0.copy(), alpha0, None, [], []
    for _ in range(steps):
        g = a @ w - b
        if g_prev is not None:
            alpha = alpha - kappa * (-g @ g_prev)
        alphas.append(alpha)
        w = w - alpha * g
        expected_ws.append(w)
        g_prev = g

    np.testing.assert_allclose(stack.history["alpha"], alphas, rtol=1e-12)
    np.testing.assert_allclose(ws, expected_ws, rtol=1e-11, atol=1e-13)
    assert alphas[-1] > 2 * alpha0  # the step size was really learned
    assert stack.optimizer.history["alpha"] == [kappa] * steps  # a fixed top level


def test_sgd_sgd_sgd_hyper_step_size_follows_chain_rule_one_level_up():
    a, b, w0 = _quadratic(seed=3)
    alpha0, kappa0, kappa_top, steps = 0.05, 0.01, 1e-3, 30
    model = _QuadraticModel(a, b, w0)
    stack = hyper.SGD(alpha0, optimizer=hyper.SGD(kappa0, optimizer=hyper.SGD(kappa_top)))
    ws = _train_quadratic(model, hyper.ModuleWrapper(model, stack), steps)

    # w_t = w_{t-1} - alpha g_{t-1} and alpha = alpha' + kappa (g_{t-1} . g_{t-2}), so
    # dL_t/d kappa = -(g_t . g_{t-1}) (g_{t-1} . g_{t-2}) once kappa produced that alpha.
    w, alpha, kappa, gs = w0.copy(), alpha0, kappa0, []
    alphas, kappas, expected_ws = [], [], []
    for t in range(steps):
        gs.append(a @ w - b)
        if t >= 2:
            kappa = kappa + kappa_top * (gs[-1] @ gs[-2]) * (gs[-2] @ gs[-3])
        if t >= 1:
            alpha = alpha + kappa * (gs[-1] @ gs[-2])
        alphas.append(alpha)
        kappas.append(kappa)
        w = w - alpha * gs[-1]
        expected_ws.append(w)

    # kappa crosses zero: compare relative to its scale
    np.testing.assert_allclose(stack.optimizer.history["alpha"], kappas, rtol=0,
                               atol=1e-12 * kappa0)
    np.testing.assert_allclose(stack.history["alpha"], alphas, rtol=1e-12)
    np.testing.assert_allclose(ws, expected_ws, rtol=1e-11, atol=1e-13)
    assert abs(kappas[-1] - kappa0) > 0.05 * kappa0


# ---------------------------------------------------------------------------
# Adam / SGD and RMSProp / SGD: hypergradients against central differences
# ---------------------------------------------------------------------------

def _to_stored(name: str, value: float, kind: str) -> float:
    """The documented reparameterisations, written out independently of the library."""
    if name in ("beta1", "beta2", "gamma", "mu"):
        return math.atanh(2 * value - 1)      # value = (1 + tanh x) / 2
    if kind == "rmsprop" and name == "alpha":
        return math.sqrt(value)               # alpha = a^2
    return value


def _dnatural_dstored(name: str, value: float, kind: str) -> float:
    if name in ("beta1", "beta2", "gamma", "mu"):
        return 2 * value * (1 - value)
    if kind == "rmsprop" and name == "alpha":
        return 2 * math.sqrt(value)
    return 1.0


def _set_torch_hyperparameters(opt: torch.optim.Optimizer, kind: str, h: dict) -> None:
    """Our names to torch's: alpha -> lr, mu -> momentum, (beta1, beta2) -> betas, and
    RMSProp's gamma -> torch's alpha."""
    group = opt.param_groups[0]
    group["lr"] = h["alpha"]
    if kind == "adam":
        group["betas"] = (h["beta1"], h["beta2"])
    elif kind == "rmsprop":
        group["alpha"] = h["gamma"]
    elif kind == "sgd_momentum":
        group["momentum"] = h["mu"]


HYPERGRADIENT_CASES = {
    "adam": (lambda kappa: hyper.Adam(0.02, 0.8, 0.95, optimizer=hyper.SGD(kappa)),
             lambda params: torch.optim.Adam(params)),
    "rmsprop": (lambda kappa: hyper.RMSProp(0.01, 0.9, optimizer=hyper.SGD(kappa)),
                lambda params: torch.optim.RMSprop(params)),
    "adagrad": (lambda kappa: hyper.AdaGrad(0.05, optimizer=hyper.SGD(kappa)),
                lambda params: torch.optim.Adagrad(params)),
    "sgd_momentum": (lambda kappa: hyper.SGD(0.05, 0.5, optimizer=hyper.SGD(kappa)),
                     lambda params: torch.optim.SGD(params, momentum=0.5)),
}


@pytest.mark.parametrize("kind", sorted(HYPERGRADIENT_CASES))
def test_hypergradients_match_central_differences_of_one_step_ahead_loss(kind):
    make_stack, make_torch = HYPERGRADIENT_CASES[kind]
    kappa, steps, probes = 1e-2, 12, (1, 5, 10)
    batches = _batches(steps + 1)
    model = _tiny_mlp()
    stack = make_stack(kappa)
    wrapper = hyper.ModuleWrapper(model, stack)
    for batch in batches[:steps]:
        wrapper.zero_grad()
        _loss(model, batch).backward()
        wrapper.step()
    history = stack.history
    names = list(history)

    # torch.optim driven by the recorded hyperparameters retraces the stack; at a
    # probe step s it also gives the one-step-ahead loss L_{s+1}(h) for any h.
    reference = _tiny_mlp()
    ref_opt = make_torch(reference.parameters())
    checked = 0
    for s in range(steps - 1):
        h = {name: history[name][s] for name in names}
        if s in probes:
            for name in names:
                fd = _central_difference(reference, ref_opt, kind, h, name, batches[s],
                                         batches[s + 1])
                # the level above did: stored_{s+1} = stored_s - kappa * dL_{s+1}/d stored_s
                stored_before = _to_stored(name, history[name][s], kind)
                stored_after = _to_stored(name, history[name][s + 1], kind)
                hypergradient = (stored_before - stored_after) / kappa
                expected = fd * _dnatural_dstored(name, h[name], kind)
                assert abs(expected) > 1e-7, f"{name}: a vanishing derivative tests nothing"
                assert hypergradient == pytest.approx(expected, rel=1e-5), (kind, name, s)
                checked += 1
        _set_torch_hyperparameters(ref_opt, kind, h)
        ref_opt.zero_grad()
        _loss(reference, batches[s]).backward()
        ref_opt.step()
    assert checked == len(probes) * len(names)


def _central_difference(model, opt, kind, h, name, batch, next_batch, eps=1e-6) -> float:
    losses = []
    for sign in (1, -1):
        m = copy.deepcopy(model)
        o = type(opt)(m.parameters())
        o.load_state_dict(copy.deepcopy(opt.state_dict()))  # torch shares the step tensors
        _set_torch_hyperparameters(o, kind, {**h, name: h[name] + sign * eps})
        o.zero_grad()
        _loss(m, batch).backward()
        o.step()
        with torch.no_grad():
            losses.append(_loss(m, next_batch).item())
    return (losses[0] - losses[1]) / (2 * eps)


@pytest.mark.parametrize("kind", sorted(HYPERGRADIENT_CASES))
def test_stack_retraces_torch_optimizer_driven_by_its_recorded_hyperparameters(kind):
    make_stack, make_torch = HYPERGRADIENT_CASES[kind]
    batches = _batches(15)
    model, reference = _tiny_mlp(), _tiny_mlp()
    stack = make_stack(1e-2)
    ours = _train(model, hyper.ModuleWrapper(model, stack), batches)
    ref_opt = make_torch(reference.parameters())
    history = stack.history
    trajectory = []
    for s, batch in enumerate(batches):
        _set_torch_hyperparameters(ref_opt, kind, {name: history[name][s] for name in history})
        ref_opt.zero_grad()
        _loss(reference, batch).backward()
        ref_opt.step()
        trajectory.append([p.detach().clone() for p in reference.parameters()])
    _assert_same_trajectory(ours, trajectory)
    assert all(len(set(values)) > 5 for values in history.values())  # all of them moved


# ---------------------------------------------------------------------------
# Top step size 0: every stack is its base optimizer
# ---------------------------------------------------------------------------

REDUCTIONS = {
    "SGD": (lambda: hyper.SGD(0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    "SGD/SGD(0)": (lambda: hyper.SGD(0.05, optimizer=hyper.SGD(0.0)),
                   lambda p: torch.optim.SGD(p, lr=0.05)),
    "SGD(mu)/SGD(0)": (lambda: hyper.SGD(0.05, 0.9, optimizer=hyper.SGD(0.0)),
                       lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "Adam/SGD(0)": (lambda: hyper.Adam(0.01, 0.8, 0.99, optimizer=hyper.SGD(0.0)),
                    lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99))),
    "Adam/Adam(0)": (lambda: hyper.Adam(0.01, optimizer=hyper.Adam(0.0)),
                     lambda p: torch.optim.Adam(p, lr=0.01)),
    "AdamAlpha/SGD(0)": (lambda: hyper.AdamAlpha(0.01, optimizer=hyper.SGD(0.0)),
                         lambda p: torch.optim.Adam(p, lr=0.01)),
    "AdaGrad/SGD(0)": (lambda: hyper.AdaGrad(0.1, optimizer=hyper.SGD(0.0)),
                       lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "AdaGrad/AdaGrad(0)": (lambda: hyper.AdaGrad(0.1, optimizer=hyper.AdaGrad(0.0)),
                           lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "RMSProp/SGD(0)": (lambda: hyper.RMSProp(0.01, 0.9, optimizer=hyper.SGD(0.0)),
                       lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9)),
    "RMSPropAlpha/RMSProp(0)": (lambda: hyper.RMSPropAlpha(0.01, optimizer=hyper.RMSProp(0.0)),
                                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99)),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_stack_with_zero_top_step_size_matches_torch_base_optimizer(name):
    make_stack, make_torch = REDUCTIONS[name]
    batches = _batches(25)
    model, reference = _tiny_mlp(), _tiny_mlp()
    ours = _train(model, hyper.ModuleWrapper(model, make_stack()), batches)
    theirs = _train(reference, make_torch(reference.parameters()), batches)
    _assert_same_trajectory(ours, theirs)


def test_float32_stack_with_zero_top_step_size_matches_torch_adam():
    batches = _batches(25, torch.float32)
    model, reference = _tiny_mlp(torch.float32), _tiny_mlp(torch.float32)
    ours = _train(model, hyper.ModuleWrapper(model, hyper.Adam(0.01, optimizer=hyper.SGD(0.0))),
                  batches)
    theirs = _train(reference, torch.optim.Adam(reference.parameters(), lr=0.01), batches)
    _assert_same_trajectory(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("base", ["SGD", "Adam"])
def test_three_level_stack_with_zero_top_step_size_is_the_two_level_stack(base):
    def bottom(optimizer):
        if base == "SGD":
            return hyper.SGD(0.05, optimizer=optimizer)
        return hyper.Adam(0.01, optimizer=optimizer)

    kappa = 1e-2 if base == "SGD" else 1e-4
    batches = _batches(25)
    model, reference = _tiny_mlp(), _tiny_mlp()
    three = bottom(hyper.SGD(kappa, optimizer=hyper.SGD(0.0)))
    two = bottom(hyper.SGD(kappa))
    ours = _train(model, hyper.ModuleWrapper(model, three), batches)
    theirs = _train(reference, hyper.ModuleWrapper(reference, two), batches)
    _assert_same_trajectory(ours, theirs)
    np.testing.assert_allclose(three.history["alpha"], two.history["alpha"], rtol=1e-12)
    assert three.history["alpha"][-1] != three.history["alpha"][0]


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_with_create_graph_gives_the_same_stack_as_plain_backward():
    batches = _batches(15)
    runs = []
    for create_graph in (False, True):
        model = _tiny_mlp()
        stack = hyper.Adam(0.02, optimizer=hyper.SGD(1e-2))
        wrapper = hyper.ModuleWrapper(model, stack)
        for batch in batches:
            wrapper.zero_grad()
            _loss(model, batch).backward(create_graph=create_graph)
            wrapper.step()
        runs.append((stack.history, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for p, q in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.equal(p, q)


# ---------------------------------------------------------------------------
# The paper's point, small: SGD / SGD rescues a poor learning rate on digits
# ---------------------------------------------------------------------------

def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    return x, torch.tensor(y)


def _digits_run(opt_factory, x, y, epochs: int = 15):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = opt_factory(model)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=order).split(256):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        return nn.functional.cross_entropy(model(x), y).item()


def test_sgd_sgd_started_from_a_poor_learning_rate_beats_plain_sgd_on_digits():
    x, y = _digits()
    poor_lr = 1e-3
    plain = _digits_run(lambda m: torch.optim.SGD(m.parameters(), lr=poor_lr), x, y)
    stack = hyper.SGD(poor_lr, optimizer=hyper.SGD(0.1))
    learned = _digits_run(lambda m: hyper.ModuleWrapper(m, stack), x, y)
    assert learned < 0.5 * plain
    assert stack.history["alpha"][-1] > 10 * poor_lr


# ---------------------------------------------------------------------------
# Interface: records, errors
# ---------------------------------------------------------------------------

def test_history_has_one_entry_per_step_for_every_level_and_hyperparameter():
    model = _tiny_mlp()
    stack = hyper.RMSProp(0.01, optimizer=hyper.Adam(1e-3, optimizer=hyper.SGD(1e-4)))
    _train(model, hyper.ModuleWrapper(model, stack), _batches(7))
    histories = [level.history for level in stack.levels()]
    assert [sorted(h) for h in histories] == [["alpha", "gamma"], ["alpha", "beta1", "beta2"],
                                              ["alpha"]]
    assert all(len(values) == 7 for h in histories for values in h.values())
    # No hypergradient at step 1; the bottom's hyperparameters first move at step 2, the
    # middle level's at step 3 (its first hypergradient is non-zero once a graph runs through it).
    bottom, middle, top = histories
    assert bottom["alpha"][0] == pytest.approx(0.01, rel=1e-12) != bottom["alpha"][1]
    assert middle["alpha"][:2] == pytest.approx([1e-3, 1e-3], rel=1e-12)
    assert middle["alpha"][2] != pytest.approx(1e-3, rel=1e-12)
    assert top["alpha"] == [1e-4] * 7
    assert stack.hyperparameters()["alpha"] == pytest.approx(histories[0]["alpha"][-1])
    assert repr(stack) == ("RMSProp(alpha=0.01, gamma=0.99) / Adam(alpha=0.001, beta1=0.9, "
                           "beta2=0.999) / SGD(alpha=0.0001)")


def test_learn_selects_which_hyperparameters_move():
    model = _tiny_mlp()
    stack = hyper.Adam(0.02, optimizer=hyper.SGD(1e-2), learn=("beta1",))
    _train(model, hyper.ModuleWrapper(model, stack), _batches(10))
    history = stack.history
    assert len(set(history["beta1"])) > 5
    assert set(history["alpha"]) == {0.02}
    assert len(set(history["beta2"])) == 1
    alpha_only = hyper.AdamAlpha(0.02, optimizer=hyper.SGD(1e-2))
    assert alpha_only.learn == ("alpha",)
    assert hyper.RMSPropAlpha(optimizer=hyper.SGD(1e-4)).learn == ("alpha",)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: hyper.SGD(-0.1), "^alpha must be"),
    (lambda: hyper.SGD(0.1, mu=1.0), "^mu must be"),
    (lambda: hyper.Adam(beta1=1.0), "^beta1 must be"),
    (lambda: hyper.Adam(beta2=0.0, optimizer=hyper.SGD(1e-5)), "^beta2 must be"),
    (lambda: hyper.RMSProp(gamma=-0.5), "^gamma must be"),
    (lambda: hyper.AdaGrad(eps=-1.0), "^eps must be"),
    (lambda: hyper.Adam(optimizer=1e-5), "^optimizer must be"),
    (lambda: hyper.Adam(optimizer=hyper.SGD(1e-5), learn=("lr",)), "^learn must be"),
    (lambda: hyper.Adam(learn=("alpha",)), "^learn must be"),
    (lambda: hyper.SGD(0.1, optimizer=hyper.SGD(0.1), clip=0.5), "^clip must be"),
])
def test_bad_arguments_raise_errors_naming_them(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_a_level_cannot_drive_two_models():
    top = hyper.SGD(1e-5)
    hyper.ModuleWrapper(_tiny_mlp(), hyper.Adam(optimizer=top))
    with pytest.raises(RuntimeError, match="already drives a model"):
        hyper.ModuleWrapper(_tiny_mlp(seed=1), hyper.RMSProp(optimizer=top))


def test_wrapper_rejects_mixed_dtypes_non_stacks_and_a_second_group():
    mixed = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double())
    with pytest.raises(ValueError, match=r"^params must be .*one dtype and device"):
        hyper.ModuleWrapper(mixed, hyper.SGD(0.1))
    with pytest.raises(TypeError, match=r"^stack must be"):
        hyper.ModuleWrapper(_tiny_mlp(), torch.optim.SGD)
    with pytest.raises(TypeError, match=r"^params must be"):
        hyper.ModuleWrapper([{"params": list(_tiny_mlp().parameters())}], hyper.SGD(0.1))
    opt = hyper.ModuleWrapper(_tiny_mlp(), hyper.SGD(0.1))
    with pytest.raises(ValueError, match=r"^param_groups must be one group"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)]})


# ---------------------------------------------------------------------------
# The wrapper is a torch.optim.Optimizer: param_groups, closures, fit, schedulers, state_dict
# ---------------------------------------------------------------------------

def test_wrapper_is_a_torch_optimizer_whose_lr_is_the_alpha_each_step_used():
    model = _tiny_mlp()
    stack = hyper.SGD(0.05, optimizer=hyper.SGD(1e-2))
    opt = hyper.ModuleWrapper(model, stack)
    assert isinstance(opt, torch.optim.Optimizer) and len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    lrs = [group["lr"]]
    for batch in _batches(6):
        opt.zero_grad()
        _loss(model, batch).backward()
        opt.step()
        lrs.append(group["lr"])
    assert lrs[0] == 0.05
    assert lrs[1:] == stack.history["alpha"] and len(set(lrs)) == 6


def test_step_with_a_closure_returns_its_loss_and_takes_the_plain_loops_step():
    batches = _batches(8)
    model, reference = _tiny_mlp(), _tiny_mlp()
    stack = hyper.Adam(0.02, optimizer=hyper.SGD(1e-2))
    opt = hyper.ModuleWrapper(model, stack)
    returned = []
    for batch in batches:
        def closure(batch=batch):
            opt.zero_grad()
            loss = _loss(model, batch)
            loss.backward()
            return loss

        with torch.no_grad():  # torch's contract: the closure runs with grad enabled anyway
            returned.append(opt.step(closure).item())
    reference_stack = hyper.Adam(0.02, optimizer=hyper.SGD(1e-2))
    reference_opt = hyper.ModuleWrapper(reference, reference_stack)
    losses = []
    for batch in batches:
        reference_opt.zero_grad()
        loss = _loss(reference, batch)
        loss.backward()
        assert reference_opt.step() is None
        losses.append(loss.item())
    assert returned == losses
    assert stack.history == reference_stack.history
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters(),
                                                 strict=True))


def test_fit_drives_a_stack_and_records_the_alpha_of_the_step_before():
    from coursekit import data, train

    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 4, generator=g, dtype=torch.float64)
    y = torch.randn(40, 3, generator=g, dtype=torch.float64)
    model, reference = _tiny_mlp(), _tiny_mlp()
    stack = hyper.Adam(0.02, optimizer=hyper.SGD(1e-2))
    history = train.fit(model, hyper.ModuleWrapper(model, stack), (x, y), 3,
                        loss=nn.functional.mse_loss, batch_size=8, progress=False, seed=3)
    reference_stack = hyper.Adam(0.02, optimizer=hyper.SGD(1e-2))
    reference_opt = hyper.ModuleWrapper(reference, reference_stack)
    batches = data.Batches(x, y, 8, seed=3)
    for _ in range(3):
        for xb, yb in batches:
            reference_opt.zero_grad()
            nn.functional.mse_loss(reference(xb), yb).backward()
            reference_opt.step()
    assert history.steps == 15 and stack.history == reference_stack.history
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters(),
                                                 strict=True))
    # fit reads lr before each step: the alpha of the step before (the initial one first)
    assert history.lr == [0.02, *stack.history["alpha"][:-1]]


def test_a_scheduler_drives_a_fixed_alpha_as_it_drives_torch_sgd():
    batches = _batches(12)
    model, reference = _tiny_mlp(), _tiny_mlp()
    stack = hyper.SGD(0.1, 0.9)
    ours = hyper.ModuleWrapper(model, stack)
    theirs = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    schedulers = [torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
                  for opt in (ours, theirs)]
    trajectories = []
    for net, opt, scheduler in zip((model, reference), (ours, theirs), schedulers, strict=True):
        trajectory = []
        for batch in batches:
            opt.zero_grad()
            _loss(net, batch).backward()
            opt.step()
            scheduler.step()
            trajectory.append([p.detach().clone() for p in net.parameters()])
        trajectories.append(trajectory)
    _assert_same_trajectory(*trajectories)
    assert stack.history["alpha"] == [0.1] * 4 + [0.05] * 4 + [0.025] * 4


def test_a_scheduler_cannot_set_a_learned_alpha():
    model = _tiny_mlp()
    opt = hyper.ModuleWrapper(model, hyper.SGD(0.1, optimizer=hyper.SGD(1e-2)))
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    batch = _batches(1)[0]
    opt.zero_grad()
    _loss(model, batch).backward()
    opt.step()
    scheduler.step()
    with pytest.raises(RuntimeError, match="lr"):
        opt.step()


RESUMED_STACKS = {
    "SGD / SGD / SGD": lambda: hyper.SGD(0.05, optimizer=hyper.SGD(1e-2,
                                                                   optimizer=hyper.SGD(1e-3))),
    "SGD(mu) / SGD": lambda: hyper.SGD(0.05, 0.5, optimizer=hyper.SGD(1e-2)),
    "Adam / SGD, both clipped": lambda: hyper.Adam(
        0.02, optimizer=hyper.SGD(1e-2, clip=clip.RunningMeanClip()),
        clip=clip.RunningMeanClip()),
    "RMSProp / Adam / SGD": lambda: hyper.RMSProp(
        0.01, optimizer=hyper.Adam(1e-3, optimizer=hyper.SGD(1e-4))),
    "AdamAlpha / SGD": lambda: hyper.AdamAlpha(0.02, optimizer=hyper.SGD(1e-2)),
    "AdaGrad": lambda: hyper.AdaGrad(0.1),
}


def _clip_histories(stack):
    return [level.clip.history for level in stack.levels() if level.clip is not None]


@pytest.mark.parametrize("stop", [0, 1, 2, 7])
@pytest.mark.parametrize("name", sorted(RESUMED_STACKS))
def test_a_stack_saved_mid_training_and_loaded_continues_exactly(name, stop):
    build = RESUMED_STACKS[name]
    batches = _batches(12)
    model, stack = _tiny_mlp(), build()
    _train(model, hyper.ModuleWrapper(model, stack), batches)

    first, first_stack = _tiny_mlp(), build()
    first_opt = hyper.ModuleWrapper(first, first_stack)
    _train(first, first_opt, batches[:stop])
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "optimizer": first_opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed, resumed_stack = _tiny_mlp(seed=1), build()
    resumed_opt = hyper.ModuleWrapper(resumed, resumed_stack)
    resumed.load_state_dict(saved["model"])
    resumed_opt.load_state_dict(saved["optimizer"])
    _train(resumed, resumed_opt, batches[stop:])

    assert [level.history for level in resumed_stack.levels()] == [
        level.history for level in stack.levels()]
    assert _clip_histories(resumed_stack) == _clip_histories(stack)
    assert all(torch.equal(p, q) for p, q in zip(resumed.parameters(), model.parameters(),
                                                 strict=True))
    assert resumed_opt.param_groups[0]["lr"] == stack.history["alpha"][-1]


def test_fit_checkpoints_of_a_stack_resume_exactly(tmp_path):
    from coursekit import train

    g = torch.Generator().manual_seed(4)
    x = torch.randn(48, 4, generator=g, dtype=torch.float64)
    y = torch.randn(48, 3, generator=g, dtype=torch.float64)

    def build():
        return hyper.Adam(0.02, optimizer=hyper.SGD(1e-2, clip=clip.RunningMeanClip()))

    def fit(model, opt, epochs, history=None):
        return train.fit(model, opt, (x, y), epochs, loss=nn.functional.mse_loss, batch_size=16,
                         progress=False, history=history)

    model, stack = _tiny_mlp(), build()
    whole = fit(model, hyper.ModuleWrapper(model, stack), 4)
    first = _tiny_mlp()
    first_opt = hyper.ModuleWrapper(first, build())
    train.save_checkpoint(tmp_path / "run.pt", first, first_opt, history=fit(first, first_opt, 2))
    resumed, resumed_stack = _tiny_mlp(seed=1), build()
    resumed_opt = hyper.ModuleWrapper(resumed, resumed_stack)
    history = train.load_checkpoint(tmp_path / "run.pt", resumed, resumed_opt)
    fit(resumed, resumed_opt, 2, history=history)
    assert history.batch_loss == whole.batch_loss and history.lr == whole.lr
    assert resumed_stack.history == stack.history
    assert all(torch.equal(p, q) for p, q in zip(resumed.parameters(), model.parameters(),
                                                 strict=True))


def test_loading_the_state_of_another_stack_raises():
    model = _tiny_mlp()
    opt = hyper.ModuleWrapper(model, hyper.Adam(0.02, optimizer=hyper.SGD(1e-2)))
    _train(model, opt, _batches(3))
    other = hyper.ModuleWrapper(_tiny_mlp(), hyper.AdamAlpha(0.02, optimizer=hyper.SGD(1e-2)))
    with pytest.raises(ValueError, match=r"^state_dict must be the state of a stack like"):
        other.load_state_dict(opt.state_dict())
