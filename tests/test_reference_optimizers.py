"""coursekit's optimizers beside their authors' own code and cs231n's published checks.

tests/test_optim_beyond_torch.py checks AdaBelief and Lookahead against algorithms written
out in our own tests, so the same people wrote both sides. Here the other side is
independent (issue 17):

- ``adabelief-pytorch``, the AdaBelief authors' package (Zhuang et al., 2020);
- ``pytorch-optimizer`` (AdaBelief, Lookahead) and ``torch-optimizer`` (Lookahead);
- cs231n assignment 2's published checks of ``sgd_momentum``, ``rmsprop`` and ``adam``.

Two runs start from identical float64 weights of the same small MLP (three parameter
groups with their own learning rates, weight decays and betas, a non-contiguous weight,
a parameter without gradients) and see the same mini-batches, each computing its own
gradients. After 100 steps their parameters, and the optimizer state whose names map,
agree to 1e-12 relative. Where a package differs from coursekit on purpose, the test
asserts the difference and the optimizer's docstring says which one coursekit follows.
The packages are in the ``dev`` extra; a test whose package is missing is skipped.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import warnings

import numpy as np
import pytest
import torch

import coursekit.optim as ck
from tests._optim_helpers import TinyMLP, assert_resumes_exactly, rel_error

STEPS = 100
RTOL = 1e-12
# Five of the model's eight samples per step, the same sequence for every run.
_ROWS = torch.Generator().manual_seed(17)
BATCHES = [torch.randperm(8, generator=_ROWS)[:5] for _ in range(STEPS)]
# lr, weight decay and betas of the three groups: (w1, unused), (b1,), (w2, b2).
GROUP_OPTIONS = (
    {"lr": 0.01, "weight_decay": 0.01},
    {"lr": 0.003, "weight_decay": 0.0},
    {"lr": 0.02, "weight_decay": 0.05, "betas": (0.8, 0.99)},
)


def _train(model: TinyMLP, optimizer: torch.optim.Optimizer, start: int, stop: int) -> None:
    model.train_batches(optimizer, BATCHES[start:stop])


def _param_groups(model: TinyMLP, weight_decay_per_lr: bool = False) -> list[dict]:
    """The three groups; ``weight_decay_per_lr`` divides each weight decay by its lr."""
    groups = []
    params = ([model.w1, model.unused], [model.b1], [model.w2, model.b2])
    for ps, options in zip(params, GROUP_OPTIONS, strict=True):
        options = dict(options)
        if weight_decay_per_lr:
            options["weight_decay"] /= options["lr"]
        groups.append({"params": ps, **options})
    return groups


def _quiet(make):
    """Build a package's optimizer without its banner and warnings reaching the test output."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make()


def _assert_same_params(ours: TinyMLP, theirs: TinyMLP, rtol: float = RTOL) -> None:
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert rel_error(p, q) <= rtol


def _max_param_gap(a: TinyMLP, b: TinyMLP) -> float:
    return max(rel_error(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def _assert_trained(model: TinyMLP) -> None:
    """The run moved the weights: agreement is not two copies of the initial point."""
    assert rel_error(model.w2, TinyMLP(torch.float64).w2) > 1e-2


# --- adabelief-pytorch: the authors' package ---------------------------------------------

def _adabelief_cases() -> list[dict]:
    """Every combination of the package's flags (weight decay coupled, decoupled or fixed;
    rectified with or without SGD steps, or not rectified; AMSGrad or not), each with
    both of its recommended eps values across the grid (1e-16 and 1e-8)."""
    cases = []
    for (i, (decouple, fixed)), (j, (rectify, degenerated)), amsgrad in itertools.product(
            enumerate([(True, False), (True, True), (False, False)]),
            enumerate([(True, True), (True, False), (False, True)]), [False, True]):
        eps = 1e-8 if (i + j + amsgrad) % 2 else 1e-16
        cases.append(dict(weight_decouple=decouple, fixed_decay=fixed, rectify=rectify,
                          degenerated_to_sgd=degenerated, amsgrad=amsgrad, eps=eps))
    return cases


def _authors_adabelief(model: TinyMLP, case: dict):
    package = pytest.importorskip("adabelief_pytorch")
    return _quiet(lambda: package.AdaBelief(_param_groups(model), print_change_log=False,
                                            **case))


def _pytorch_optimizer():
    return pytest.importorskip("pytorch_optimizer")


def _our_adabelief(model: TinyMLP, case: dict) -> ck.AdaBelief:
    """The authors' flags in our names; their ``fixed_decay`` (theta *= 1 - wd) is our
    decoupled decay with ``weight_decay = wd / lr`` (theta *= 1 - lr * wd / lr)."""
    return ck.AdaBelief(_param_groups(model, weight_decay_per_lr=case["fixed_decay"]),
                        eps=case["eps"], amsgrad=case["amsgrad"],
                        decoupled_weight_decay=case["weight_decouple"],
                        rectify=case["rectify"], degenerated_to_sgd=case["degenerated_to_sgd"])


def _assert_same_adabelief_state(ours, theirs, ours_model, theirs_model) -> None:
    for p, q in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
        mine, other = ours.state[p], theirs.state[q]
        assert set(mine) == set(other)  # step, exp_avg, exp_avg_var (and max_exp_avg_var)
        for key, value in mine.items():
            if key == "step":
                assert value == other[key]
            else:
                assert rel_error(value, other[key]) <= RTOL


@pytest.mark.parametrize("case", _adabelief_cases(),
                         ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_adabelief_matches_the_authors_package(case):
    ours_model, theirs_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    theirs = _authors_adabelief(theirs_model, case)
    ours = _our_adabelief(ours_model, case)
    _train(theirs_model, theirs, 0, STEPS)
    _train(ours_model, ours, 0, STEPS)
    _assert_trained(ours_model)
    _assert_same_params(ours_model, theirs_model)
    _assert_same_adabelief_state(ours, theirs, ours_model, theirs_model)


def test_adabelief_state_moves_between_coursekit_and_the_authors_package():
    """The per-parameter state has the same names and meaning in both, so a run can be
    saved by one and continued by the other (under the continuing optimizer's own groups)."""
    case = dict(weight_decouple=True, fixed_decay=False, rectify=True, degenerated_to_sgd=True,
                amsgrad=True, eps=1e-16)
    whole = TinyMLP(torch.float64)
    _train(whole, _authors_adabelief(whole, case), 0, STEPS)

    for build_first, build_second in ((_authors_adabelief, _our_adabelief),
                                      (_our_adabelief, _authors_adabelief)):
        first_model, second_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
        first = build_first(first_model, case)
        _train(first_model, first, 0, STEPS // 2)
        saved = copy.deepcopy(first.state_dict())
        second_model.copy_from(first_model)
        second = build_second(second_model, case)
        second.load_state_dict({"state": saved["state"],
                                "param_groups": second.state_dict()["param_groups"]})
        _train(second_model, second, STEPS // 2, STEPS)
        _assert_same_params(second_model, whole)


def test_adabelief_leaves_grad_alone_where_the_packages_add_the_l2_term():
    """With L2 weight decay both packages add ``wd * theta`` into ``p.grad`` in place;
    coursekit keeps ``p.grad`` the gradient of the loss (as torch.optim does)."""
    authors = pytest.importorskip("adabelief_pytorch")
    package = _pytorch_optimizer()
    theta = torch.tensor([1.0, -2.0], dtype=torch.float64)
    gradient = torch.tensor([0.5, 0.25], dtype=torch.float64)
    makers = {
        "coursekit": lambda p: ck.AdaBelief([p], weight_decay=0.1, decoupled_weight_decay=False),
        "adabelief-pytorch": lambda p: _quiet(lambda: authors.AdaBelief(
            [p], weight_decay=0.1, weight_decouple=False, print_change_log=False)),
        "pytorch-optimizer": lambda p: package.AdaBelief([p], weight_decay=0.1,
                                                         weight_decouple=False),
    }
    grads = {}
    for name, make in makers.items():
        p = torch.nn.Parameter(theta.clone())
        p.grad = gradient.clone()
        make(p).step()
        grads[name] = p.grad
    assert torch.equal(grads["coursekit"], gradient)
    for name in ("adabelief-pytorch", "pytorch-optimizer"):
        assert torch.allclose(grads[name], gradient + 0.1 * theta, rtol=0, atol=1e-15)


# --- pytorch-optimizer: AdaBelief -----------------------------------------------------

@pytest.mark.parametrize(("rectify", "degenerated", "amsgrad", "decouple", "fixed", "maximize"), [
    (False, True, False, True, False, False), (False, True, True, False, False, False),
    (True, True, False, True, False, False), (True, False, False, True, True, False),
    (True, True, False, False, False, True), (False, True, True, True, True, True),
])
def test_adabelief_matches_pytorch_optimizer(rectify, degenerated, amsgrad, decouple, fixed,
                                             maximize):
    """Flags map by name (their ``ams_bound`` is our ``amsgrad``; their default is
    ``rectify=False``); amsgrad only without rectification, see the next test."""
    package = _pytorch_optimizer()
    ours_model, theirs_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    theirs = package.AdaBelief(_param_groups(theirs_model), rectify=rectify,
                               degenerated_to_sgd=degenerated, ams_bound=amsgrad,
                               weight_decouple=decouple, fixed_decay=fixed, maximize=maximize,
                               eps=1e-12)
    ours = ck.AdaBelief(_param_groups(ours_model, weight_decay_per_lr=fixed), eps=1e-12,
                        rectify=rectify, degenerated_to_sgd=degenerated, amsgrad=amsgrad,
                        decoupled_weight_decay=decouple, maximize=maximize)
    _train(theirs_model, theirs, 0, STEPS)
    _train(ours_model, ours, 0, STEPS)
    _assert_trained(ours_model)
    _assert_same_params(ours_model, theirs_model)
    for p, q in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_var", "max_exp_avg_var"):
            if key in ours.state[p]:
                assert rel_error(ours.state[p][key], theirs.state[q][key]) <= RTOL


def test_pytorch_optimizer_adabelief_differs_where_coursekit_follows_the_authors():
    """Two documented differences of pytorch-optimizer from the authors' package.

    Its ``ams_bound`` also bounds the rectified step (the authors' rectified step ignores
    the maximum), and it counts steps per group, not per parameter, so a parameter that
    first gets a gradient at step 4 starts with the group's bias correction.
    """
    package = _pytorch_optimizer()
    authors = pytest.importorskip("adabelief_pytorch")

    ours_model, theirs_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    theirs = package.AdaBelief(_param_groups(theirs_model), rectify=True, ams_bound=True)
    ours = ck.AdaBelief(_param_groups(ours_model), amsgrad=True)
    _train(theirs_model, theirs, 0, STEPS)
    _train(ours_model, ours, 0, STEPS)
    assert _max_param_gap(ours_model, theirs_model) > 1e-6

    def late_start(make):
        early = torch.nn.Parameter(torch.tensor([1.0, -1.0], dtype=torch.float64))
        late = torch.nn.Parameter(torch.tensor([2.0, 0.5], dtype=torch.float64))
        optimizer = make([early, late])
        for t in range(10):
            optimizer.zero_grad()
            loss = (early**2).sum() + (0.0 if t < 3 else ((late - 1) ** 4).sum())
            loss.backward()
            optimizer.step()
        return late.detach()

    options = dict(lr=0.1, rectify=False)
    ours_late = late_start(lambda ps: ck.AdaBelief(ps, **options))
    authors_late = late_start(lambda ps: _quiet(
        lambda: authors.AdaBelief(ps, print_change_log=False, **options)))
    theirs_late = late_start(lambda ps: package.AdaBelief(ps, **options))
    assert rel_error(ours_late, authors_late) <= RTOL
    assert rel_error(ours_late, theirs_late) > 1e-3


# --- Lookahead: pytorch-optimizer and torch-optimizer ---------------------------------

def _inner(kind: str, params) -> torch.optim.Optimizer:
    if kind == "sgd":
        return ck.SGD(params, lr=0.05, momentum=0.9)
    return ck.Adam(params, lr=0.01, betas=(0.8, 0.99))


LOOKAHEAD_CASES = [("sgd", 5, 0.5), ("sgd", 3, 0.8), ("adam", 4, 0.5), ("adam", 1, 0.3)]


@pytest.mark.parametrize(("inner", "k", "alpha"), LOOKAHEAD_CASES)
def test_lookahead_matches_pytorch_optimizer(inner, k, alpha):
    """Same k (sync after every k-th inner step), same alpha (the slow weights move a
    fraction alpha toward the fast ones); coursekit is ``pullback_momentum='none'``."""
    package = _pytorch_optimizer()
    ours_model, theirs_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    theirs = package.Lookahead(_inner(inner, _param_groups(theirs_model)), k=k, alpha=alpha)
    ours = ck.Lookahead(_inner(inner, _param_groups(ours_model)), k=k, alpha=alpha)
    _train(theirs_model, theirs, 0, STEPS)
    _train(ours_model, ours, 0, STEPS)
    _assert_trained(ours_model)
    _assert_same_params(ours_model, theirs_model)
    for p, q in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
        assert rel_error(ours.state[p]["slow_param"], theirs.state[q]["slow_params"]) <= RTOL


@pytest.mark.parametrize("pullback", ["reset", "pullback"])
def test_lookahead_keeps_the_inner_state_where_pytorch_optimizer_can_pull_it_back(pullback):
    """pytorch-optimizer can also zero (``reset``) or interpolate (``pullback``) the inner
    momentum at each synchronisation; coursekit keeps it, and the runs part ways."""
    package = _pytorch_optimizer()
    ours_model, theirs_model = TinyMLP(torch.float64), TinyMLP(torch.float64)
    theirs = package.Lookahead(_inner("sgd", _param_groups(theirs_model)), k=5, alpha=0.5,
                               pullback_momentum=pullback)
    ours = ck.Lookahead(_inner("sgd", _param_groups(ours_model)), k=5, alpha=0.5)
    _train(theirs_model, theirs, 0, STEPS)
    _train(ours_model, ours, 0, STEPS)
    assert _max_param_gap(ours_model, theirs_model) > 1e-4


@pytest.mark.parametrize(("inner", "k", "alpha"), LOOKAHEAD_CASES[:3])
def test_lookahead_is_torch_optimizer_after_one_inner_step(inner, k, alpha):
    """torch-optimizer's Lookahead takes its slow weights *after* the first inner step
    (it synchronises at steps 1, k + 1, 2k + 1, ...; the first one is a no-op), so it is
    coursekit's Lookahead wrapped around the inner optimizer after one plain step."""
    package = pytest.importorskip("torch_optimizer")
    theirs_model, ours_model, ours_from_0 = (TinyMLP(torch.float64) for _ in range(3))
    theirs = package.Lookahead(_inner(inner, _param_groups(theirs_model)), k=k, alpha=alpha)
    _train(theirs_model, theirs, 0, STEPS)

    inner_optimizer = _inner(inner, _param_groups(ours_model))
    _train(ours_model, inner_optimizer, 0, 1)
    _train(ours_model, ck.Lookahead(inner_optimizer, k=k, alpha=alpha), 1, STEPS)
    _assert_trained(ours_model)
    _assert_same_params(ours_model, theirs_model)

    from_0 = ck.Lookahead(_inner(inner, _param_groups(ours_from_0)), k=k, alpha=alpha)
    _train(ours_from_0, from_0, 0, STEPS)
    assert _max_param_gap(ours_from_0, theirs_model) > 1e-6


def test_torch_optimizer_lookahead_state_dict_fails_with_torch_2():
    """torch-optimizer 0.3 never calls ``Optimizer.__init__``, so torch 2's ``state_dict``
    misses its hook tables: its Lookahead cannot be saved (coursekit's can, below)."""
    package = pytest.importorskip("torch_optimizer")
    model = TinyMLP(torch.float64)
    optimizer = package.Lookahead(_inner("sgd", model.parameters()))
    _train(model, optimizer, 0, 2)
    with pytest.raises(AttributeError, match="_optimizer_state_dict_pre_hooks"):
        optimizer.state_dict()


# --- state_dict round trips -------------------------------------------------------------

def _round_trip_cases():
    def authors(model):
        package = pytest.importorskip("adabelief_pytorch")
        return _quiet(lambda: package.AdaBelief(_param_groups(model), amsgrad=True,
                                                print_change_log=False))

    def pytorch_optimizer_adabelief(model):
        return _pytorch_optimizer().AdaBelief(_param_groups(model), rectify=True)

    def pytorch_optimizer_lookahead(model):
        return _pytorch_optimizer().Lookahead(_inner("sgd", _param_groups(model)), k=4,
                                              pullback_momentum="pullback")

    def ours_adabelief(model):
        return ck.AdaBelief(_param_groups(model), amsgrad=True)

    def ours_lookahead(model):
        return ck.Lookahead(_inner("sgd", _param_groups(model)), k=4)

    return {"adabelief-pytorch": authors, "pytorch-optimizer-AdaBelief":
            pytorch_optimizer_adabelief, "pytorch-optimizer-Lookahead":
            pytorch_optimizer_lookahead, "coursekit-AdaBelief": ours_adabelief,
            "coursekit-Lookahead": ours_lookahead}


@pytest.mark.parametrize("name", list(_round_trip_cases()))
def test_state_dict_round_trip_continues_the_uninterrupted_run(name):
    """Save mid-run (at step 50, between two Lookahead synchronisations), load into a fresh
    optimizer of the same library on a copy of the weights, and continue: the result is
    the uninterrupted run's, bit for bit. Across libraries only AdaBelief's per-parameter
    state is compatible (tested above); the packages' Lookahead formats differ."""
    assert_resumes_exactly(_round_trip_cases()[name], BATCHES, 50)


# --- cs231n assignment 2 ------------------------------------------------------------------
# The fixed inputs and expected arrays below are cs231n's published values (Stanford CS231n,
# assignment 2, FullyConnectedNets.ipynb, the cells that test ``sgd_momentum``, ``rmsprop``
# and ``adam`` from cs231n/optim.py), transcribed as printed, to 8 significant digits. They
# are the same in the students' copies of the 2017-2022 editions read through the search
# tool; the default hyperparameters (momentum 0.9, decay_rate 0.99, beta1 0.9, beta2 0.999,
# epsilon 1e-8) come from cs231n/optim.py, e.g. AnirudhM1/CS231n-2022-Solutions,
# assignment2/cs231n/optim.py (commit d2d76e34). The notebook asks for relative errors
# "around e-8 or less" (momentum) and "around e-7 or less" (RMSprop, Adam) with its own
# elementwise rel_error; we allow 1e-8 and 2e-7 (Adam's entry 0.01971428, printed to 8
# decimals, alone is 1.1e-7 off in that measure), and require every entry to be within
# half a unit of the 8th decimal, the most that printing to 8 decimals can explain.

N, D = 4, 5
CS231N_W = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
CS231N_DW = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)


def _cs231n_rel_error(x, y) -> float:
    """cs231n's rel_error: the largest elementwise |x - y| / max(1e-8, |x| + |y|)."""
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _assert_cs231n_close(ours: torch.Tensor, expected: np.ndarray, tolerance: float) -> None:
    ours = ours.detach().numpy()
    assert _cs231n_rel_error(ours, expected) <= tolerance
    assert rel_error(torch.from_numpy(ours), torch.from_numpy(expected)) <= tolerance
    assert np.abs(ours - expected).max() <= 0.5e-8 + 1e-15


def _one_step(optimizer_class, state: dict, **hyper):
    """One step from cs231n's w and dw with the optimizer's state loaded as a state_dict."""
    w = torch.nn.Parameter(torch.from_numpy(CS231N_W.copy()))
    optimizer = optimizer_class([w], **hyper)
    optimizer.load_state_dict({"state": {0: state},
                               "param_groups": optimizer.state_dict()["param_groups"]})
    w.grad = torch.from_numpy(CS231N_DW.copy())
    optimizer.step()
    return w, optimizer.state[w]


def test_momentum_passes_cs231n_sgd_momentum_check():
    """cs231n: ``v = mu v - lr dw; w = w + v`` (v starts at the given velocity).

    QianMomentum keeps ``dw_t = mu dw_{t-1} + lr g`` and steps ``theta -= dw``: its state is
    ``-v``. SGD+ (and torch-style SGD, dampening 0) keep ``b = mu b + g`` and step
    ``theta -= lr b``: their state is ``-v / lr``. All three give cs231n's next w.
    """
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    lr, mu = 1e-3, 0.9  # the check's learning_rate; cs231n's default momentum
    expected_next_w = np.asarray([
        [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
        [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
        [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
        [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096]])
    expected_velocity = np.asarray([
        [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
        [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
        [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
        [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096]])

    w, state = _one_step(ck.QianMomentum, {"velocity": torch.from_numpy(-v)}, lr=lr, momentum=mu)
    _assert_cs231n_close(w, expected_next_w, 1e-8)
    _assert_cs231n_close(-state["velocity"], expected_velocity, 1e-8)
    for cls, key in ((ck.SGDPlus, "velocity"), (ck.SGD, "momentum_buffer")):
        w, state = _one_step(cls, {key: torch.from_numpy(-v / lr)}, lr=lr, momentum=mu)
        _assert_cs231n_close(w, expected_next_w, 1e-8)
        _assert_cs231n_close(-lr * state[key], expected_velocity, 1e-8)


def test_rmsprop_passes_cs231n_rmsprop_check():
    """cs231n: ``cache = dr cache + (1 - dr) dw^2; w -= lr dw / (sqrt(cache) + eps)``:
    our RMSprop with ``alpha = decay_rate`` (0.99), ``eps = 1e-8`` and ``square_avg = cache``."""
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    expected_next_w = np.asarray([
        [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
        [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
        [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
        [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]])
    expected_cache = np.asarray([
        [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
        [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
        [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
        [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]])
    w, state = _one_step(ck.RMSprop, {"step": 0, "square_avg": torch.from_numpy(cache)},
                         lr=1e-2, alpha=0.99, eps=1e-8)
    _assert_cs231n_close(w, expected_next_w, 2e-7)
    _assert_cs231n_close(state["square_avg"], expected_cache, 2e-7)


def test_adam_passes_cs231n_adam_check():
    """cs231n's check starts at ``t = 5`` and increments t before using it, so its step is
    our step 6: our Adam with ``step = 5``, ``exp_avg = m``, ``exp_avg_sq = v``, and
    cs231n's defaults beta1 0.9, beta2 0.999, epsilon 1e-8 (added to sqrt(v_hat), as ours)."""
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    expected_next_w = np.asarray([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]])
    expected_v = np.asarray([
        [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
        [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
        [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
        [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]])
    expected_m = np.asarray([
        [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
        [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
        [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
        [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]])
    state = {"step": 5, "exp_avg": torch.from_numpy(m), "exp_avg_sq": torch.from_numpy(v)}
    w, state = _one_step(ck.Adam, state, lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    assert state["step"] == 6
    _assert_cs231n_close(w, expected_next_w, 2e-7)
    _assert_cs231n_close(state["exp_avg_sq"], expected_v, 2e-7)
    _assert_cs231n_close(state["exp_avg"], expected_m, 2e-7)
