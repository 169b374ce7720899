"""Muon, Adafactor, Lion and Schedule-Free beside torch.optim and their authors' packages.

Issue 26. Each pair of runs starts from identical float64 weights, sees the same
mini-batches and computes its own gradients; after 100+ steps with three parameter
groups of different hyperparameters, the losses, the weights and the optimizer state
agree to 1e-10 relative:

- ``Muon`` and ``Adafactor`` with ``torch.optim.Muon`` / ``torch.optim.Adafactor``;
- ``ScheduleFreeSGD`` / ``ScheduleFreeAdamW`` with the authors' ``schedulefree``
  (``SGDScheduleFree``, ``AdamWScheduleFree``), through the train/eval switch, and their
  averaged weights with the explicit x, y, z of the package's ``*Reference`` classes;
- ``Lion`` with ``lion-pytorch`` and ``pytorch-optimizer``, whose defaults follow
  Chen et al. (2023).

Where a package differs from coursekit on purpose, a test asserts the difference and
the optimizer's docstring says which coursekit follows. Then: ``state_dict`` round trips
(save mid-run, load into a fresh optimizer, continue: the uninterrupted run's weights),
and errors on bad hyperparameters. The reference packages are in the ``dev`` extra; a
test whose package is missing is skipped.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from coursekit.optim.adafactor import Adafactor
from coursekit.optim.lion import Lion
from coursekit.optim.muon import Muon, newton_schulz
from coursekit.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from tests._optim_helpers import copy_weights, rel_error, train_steps

STEPS = 100
RTOL = 1e-10
_ROWS = torch.Generator().manual_seed(26)
BATCHES = [torch.randperm(10, generator=_ROWS)[:6] for _ in range(2 * STEPS)]


def _pairs(**axes) -> list[dict]:
    """Eight cases over up to five two-valued flags in which every pair of flags takes all
    four combinations of values (a 2^(5-2) design: the last two flags are the parity of
    the first with the second and with the third), instead of all 32."""
    keys = list(axes)
    cases = []
    for a, b, c in itertools.product((0, 1), repeat=3):
        levels = (a, b, c, a ^ b, a ^ c)[:len(keys)]
        cases.append({k: axes[k][i] for k, i in zip(keys, levels, strict=True)})
    return cases


def _packed(cases: list[dict], base: tuple[dict, dict, dict]) -> list[tuple[dict, ...]]:
    """The cases three at a time, one per parameter group (on top of the group's own
    ``base`` options): every flag is a per-group option, so one run checks three cases."""
    runs = []
    for start in range(0, len(cases), 3):
        runs.append(tuple({**base[g], **cases[(start + g) % len(cases)]} for g in range(3)))
    return runs


def _case_id(case: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in case.items())


def _run_id(groups: tuple[dict, ...]) -> str:
    return " | ".join(_case_id(g) for g in groups)


class Net:
    """A small float64 network with every kind of parameter the optimizers meet.

    ``w1`` is a non-contiguous matrix (a transposed view), ``k`` a 3-D tensor (a small
    convolution-like bank), ``gain`` a 0-d scalar, ``b1``/``b2`` vectors, and ``unused``
    never enters the loss (its ``grad`` stays None). ``matrices_only`` keeps the 2-D
    weights (tall ``w1``, square ``w3``, wide ``w2``) and drops the rest, for Muon.
    """

    def __init__(self, matrices_only: bool = False, seed: int = 0):
        g = torch.Generator().manual_seed(seed)

        def param(*shape, scale=0.5):
            return torch.nn.Parameter(scale * torch.randn(shape, generator=g,
                                                          dtype=torch.float64))

        self.matrices_only = matrices_only
        self.w1 = torch.nn.Parameter(param(4, 6).detach().t())          # (6, 4), transposed
        self.w3 = param(6, 6)
        self.w2 = param(3, 6)
        self.unused = param(2, 2)
        if not matrices_only:
            self.b1, self.b2 = param(6), param(3)
            self.k = param(2, 3, 4)
            self.gain = param(scale=1.0)
        data = torch.Generator().manual_seed(1234)
        self.x = torch.randn(10, 4, generator=data, dtype=torch.float64)
        self.y = torch.randn(10, 3, generator=data, dtype=torch.float64)
        assert not self.w1.is_contiguous()

    def parameters(self) -> list[torch.nn.Parameter]:
        if self.matrices_only:
            return [self.w1, self.w3, self.w2, self.unused]
        return [self.w1, self.b1, self.w3, self.k, self.gain, self.w2, self.b2, self.unused]

    def groups(self, *options: dict) -> list[dict]:
        """Three groups (first layer, middle, last layer) with the given options each."""
        if self.matrices_only:
            params = ([self.w1, self.unused], [self.w3], [self.w2])
        else:
            params = ([self.w1, self.b1, self.unused], [self.w3, self.k, self.gain],
                      [self.w2, self.b2])
        return [{"params": ps, **o} for ps, o in zip(params, options, strict=True)]

    def loss(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        x, y = (self.x, self.y) if rows is None else (self.x[rows], self.y[rows])
        h = torch.tanh(x @ self.w1.t() + (0 if self.matrices_only else self.b1))
        h = torch.tanh(h @ self.w3.t())
        out = h @ self.w2.t()
        if not self.matrices_only:
            bank = torch.einsum("ni,kji->nj", x, self.k)                # the 3-D tensor
            out = out + self.b2 + self.gain * torch.tanh(bank)
        return ((out - y) ** 2).mean()

    def train(self, optimizer, start: int, stop: int) -> list[float]:
        return train_steps(self.loss, optimizer, BATCHES[start:stop])

    def copy_from(self, other: Net) -> None:
        copy_weights(self.parameters(), other.parameters())


def _assert_same_weights(ours: Net, theirs: Net, rtol: float = RTOL) -> None:
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert rel_error(p, q) <= rtol, f"weights differ: rel error {rel_error(p, q):.3g}"


def _max_gap(ours: Net, theirs: Net) -> float:
    return max(rel_error(p, q) for p, q in zip(ours.parameters(), theirs.parameters(),
                                               strict=True))


def _assert_same_state(ours, theirs, ours_net: Net, theirs_net: Net,
                       rtol: float = RTOL) -> None:
    for p, q in zip(ours_net.parameters(), theirs_net.parameters(), strict=True):
        mine, other = ours.state[p], theirs.state[q]
        assert set(mine) == set(other)
        for key, value in other.items():
            assert rel_error(torch.as_tensor(mine[key]), value) <= rtol, key


def _assert_trained(net: Net) -> None:
    """The run moved the weights: agreement is not two copies of the starting point."""
    assert rel_error(net.w2, Net(net.matrices_only).w2) > 1e-2


def _run_pair(make_ours, make_theirs, matrices_only: bool = False, steps: int = STEPS):
    ours_net, theirs_net = Net(matrices_only), Net(matrices_only)
    ours, theirs = make_ours(ours_net), make_theirs(theirs_net)
    ours_losses = ours_net.train(ours, 0, steps)
    theirs_losses = theirs_net.train(theirs, 0, steps)
    _assert_trained(ours_net)
    assert rel_error(torch.tensor(ours_losses), torch.tensor(theirs_losses)) <= RTOL
    _assert_same_weights(ours_net, theirs_net)
    return ours_net, ours, theirs_net, theirs


def _assert_resumes_exactly(make, matrices_only: bool = False, steps: int = STEPS) -> None:
    """Save at half time, load into a fresh optimizer on a copy, continue: the same run."""
    whole = Net(matrices_only)
    whole.train(make(whole), 0, steps)

    first = Net(matrices_only)
    opt = make(first)
    first.train(opt, 0, steps // 2)
    saved = copy.deepcopy(opt.state_dict())
    second = Net(matrices_only, seed=1)          # other initial weights, overwritten below
    second.copy_from(first)
    fresh = make(second)
    fresh.load_state_dict(saved)
    second.train(fresh, steps // 2, steps)
    assert torch.equal(second.w2, whole.w2)
    _assert_same_weights(second, whole, rtol=0)


# =========================================================================================
# Muon: torch.optim.Muon
# =========================================================================================

MUON_GROUPS = ({"lr": 0.02}, {"lr": 0.01, "momentum": 0.9}, {"lr": 0.03, "weight_decay": 0.0})
# Every adjust_lr_fn with nesterov on and off, and each with and without weight decay.
MUON_CASES = [dict(nesterov=nesterov, weight_decay=(0.0, 0.1)[(i + nesterov) % 2],
                   adjust_lr_fn=fn)
              for i, fn in enumerate([None, "original", "match_rms_adamw", "spectral_unclamped"])
              for nesterov in (True, False)]
MUON_BASE = ({"lr": 0.02}, {"lr": 0.01, "momentum": 0.9}, {"lr": 0.03})


@pytest.mark.parametrize("groups", _packed(MUON_CASES, MUON_BASE), ids=_run_id)
def test_muon_matches_torch(groups):
    ours_net, ours, theirs_net, theirs = _run_pair(
        lambda net: Muon(net.groups(*groups)),
        lambda net: torch.optim.Muon(net.groups(*groups)), matrices_only=True)
    _assert_same_state(ours, theirs, ours_net, theirs_net)


def test_muon_state_moves_between_coursekit_and_torch():
    """Same state names (``momentum_buffer``): a run saved by one continues in the other."""
    whole = Net(matrices_only=True)
    whole.train(torch.optim.Muon(whole.groups(*MUON_GROUPS)), 0, STEPS)
    for first_cls, second_cls in ((torch.optim.Muon, Muon), (Muon, torch.optim.Muon)):
        first, second = Net(matrices_only=True), Net(matrices_only=True)
        opt = first_cls(first.groups(*MUON_GROUPS))
        first.train(opt, 0, STEPS // 2)
        second.copy_from(first)
        other = second_cls(second.groups(*MUON_GROUPS))
        other.load_state_dict(copy.deepcopy(opt.state_dict()))
        second.train(other, STEPS // 2, STEPS)
        _assert_same_weights(second, whole, rtol=0)


def test_newton_schulz_matches_torchs_iteration_bit_for_bit():
    from torch.optim._muon import _zeropower_via_newtonschulz
    g = torch.Generator().manual_seed(0)
    for shape in [(7, 3), (3, 7), (5, 5)]:
        G = torch.randn(*shape, generator=g, dtype=torch.float64)
        expected = _zeropower_via_newtonschulz(G, (3.4445, -4.7750, 2.0315), 5, 1e-7)
        assert torch.equal(newton_schulz(G), expected)


@pytest.mark.parametrize("shape", [(9, 4), (4, 9), (6, 6)])
def test_newton_schulz_applies_the_quintic_to_each_singular_value(shape):
    """In float64, NS(G) = U phi^5(S / ||G||_F) V^T exactly (up to rounding), where
    phi(s) = a s + b s^3 + c s^5: the iteration keeps the singular vectors."""
    G = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    s = S / G.norm()
    a, b, c = 3.4445, -4.7750, 2.0315
    for _ in range(5):
        s = a * s + b * s**3 + c * s**5
    expected = U @ torch.diag(s) @ Vh
    assert rel_error(newton_schulz(G, dtype=None), expected) <= 1e-12


def test_newton_schulz_lands_in_a_band_around_one_not_on_one():
    """Singular values spread over three decades come out between 0.68 and 1.21 (the
    docstring's band), not all equal to 1: the quintic trades convergence for speed."""
    g = torch.Generator().manual_seed(2)
    Q1, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    Q2, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    S = torch.logspace(0, -2, 8, dtype=torch.float64)
    out = newton_schulz(Q1 @ torch.diag(S) @ Q2.T, dtype=None)
    singular = torch.linalg.svdvals(out)
    assert singular.min() > 0.68 and singular.max() < 1.21
    assert (singular - 1).abs().max() > 0.05
    cubic = newton_schulz(Q1 @ torch.diag(S) @ Q2.T, steps=60, coefficients=(1.5, -0.5, 0.0),
                          dtype=None)
    assert torch.allclose(torch.linalg.svdvals(cubic), torch.ones(8, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(3,), (), (2, 3, 4)], ids=str)
def test_muon_refuses_non_matrices_naming_the_shape_and_adamw(shape):
    matrix = torch.nn.Parameter(torch.zeros(3, 3))
    odd = torch.nn.Parameter(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"parameter 1 in group 0 must be 2-D .*AdamW.*got "
                                         + ("\\(\\)" if not shape else str(shape).replace(
                                             "(", "\\(").replace(")", "\\)"))):
        Muon([matrix, odd])
    opt = Muon([matrix])
    with pytest.raises(ValueError, match=r"parameter 0 in group 1 must be 2-D"):
        opt.add_param_group({"params": odd})
    assert len(opt.param_groups) == 1                     # the refused group was not added
    with pytest.raises(ValueError, match=r"parameter 1 in group 0 must be 2-D"):
        Muon(iter([("w", matrix), ("b", odd)]))           # named parameters, a generator
    with pytest.raises(ValueError, match=r"G must be a 2-D matrix, got"):
        newton_schulz(odd.detach())


def test_muon_resumes_from_a_state_dict():
    _assert_resumes_exactly(lambda net: Muon(net.groups(*MUON_GROUPS), nesterov=False),
                            matrices_only=True)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1), "lr must be >= 0, got -1"),
    (dict(weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
    (dict(ns_steps=100), r"ns_steps must be an integer in \[0, 99\], got 100"),
    (dict(ns_steps=2.5), "ns_steps must be an integer"),
    (dict(ns_coefficients=(1.0, 2.0)), "ns_coefficients must be a sequence of 3 numbers"),
    (dict(eps=float("nan")), "eps must be finite"),
    (dict(adjust_lr_fn="rms"), "adjust_lr_fn must be one of None, 'original'"),
    (dict(ns_dtype="bf16"), "ns_dtype must be one of None, torch.bfloat16"),
])
def test_muon_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Muon([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)


# =========================================================================================
# Adafactor: torch.optim.Adafactor
# =========================================================================================

ADAFACTOR_GROUPS = ({"lr": 0.02}, {"lr": 0.01, "beta2_decay": -0.6, "d": 2.0},
                    {"lr": 0.05, "weight_decay": 0.0})
ADAFACTOR_CASES = _pairs(beta2_decay=[-0.8, -0.5], eps=[(None, 1e-3), (1e-3, 0.6)],
                        d=[1.0, 3.0], weight_decay=[0.0, 0.05], maximize=[False, True])
ADAFACTOR_BASE = ({"lr": 0.02}, {"lr": 0.01}, {"lr": 0.05})


@pytest.mark.parametrize("groups", _packed(ADAFACTOR_CASES, ADAFACTOR_BASE), ids=_run_id)
def test_adafactor_matches_torch(groups):
    ours_net, ours, theirs_net, theirs = _run_pair(
        lambda net: Adafactor(net.groups(*groups)),
        lambda net: torch.optim.Adafactor(net.groups(*groups), foreach=False))
    _assert_same_state(ours, theirs, ours_net, theirs_net)


def test_adafactor_factors_the_last_two_axes_and_keeps_vectors_whole():
    net = Net()
    opt = Adafactor(net.groups({}, {}, {}))
    net.train(opt, 0, 1)
    assert opt.state[net.k]["row_var"].shape == (2, 3, 1)      # one r, c per leading index
    assert opt.state[net.k]["col_var"].shape == (2, 1, 4)
    assert opt.state[net.w1]["row_var"].shape == (6, 1)
    assert opt.state[net.b1]["variance"].shape == (6,)
    assert opt.state[net.gain]["variance"].shape == ()
    # At t = 1 (beta2_1 = 0) a matrix's estimate is r c^T / mean(r) of g^2 itself.
    g2 = net.w3.grad ** 2
    state = opt.state[net.w3]
    v_hat = state["row_var"] @ state["col_var"] / state["row_var"].mean()
    assert rel_error(v_hat, g2.mean(1, keepdim=True) * g2.mean(0, keepdim=True)
                     / g2.mean()) <= 1e-14


def test_adafactor_resumes_from_a_state_dict():
    _assert_resumes_exactly(lambda net: Adafactor(net.groups(*ADAFACTOR_GROUPS),
                                                  weight_decay=0.01))


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1), "lr must be >= 0, got -1"),
    (dict(beta2_decay=0.5), "beta2_decay must be <= 0, got 0.5"),
    (dict(eps=1e-3), r"eps must be a pair \(eps1, eps2\), got 0.001"),
    (dict(eps=(-1.0, 1e-3)), r"eps\[0\] must be >= 0, got -1.0"),
    (dict(eps=(None, -1e-3)), r"eps\[1\] must be >= 0, got -0.001"),
    (dict(d=0.5), "d must be >= 1, got 0.5"),
    (dict(weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
])
def test_adafactor_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adafactor([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)


# =========================================================================================
# Lion: lion-pytorch and pytorch-optimizer
# =========================================================================================

LION_GROUPS = ({"lr": 1e-3, "weight_decay": 0.1}, {"lr": 3e-4, "weight_decay": 0.0},
               {"lr": 2e-3, "weight_decay": 0.5, "betas": (0.95, 0.98)})


def _lion_pytorch():
    return pytest.importorskip("lion_pytorch")


def _pytorch_optimizer():
    return pytest.importorskip("pytorch_optimizer")


def test_lion_follows_the_papers_algorithm_on_one_step():
    """Chen et al. (2023), Algorithm 2, written out: two steps on fixed gradients."""
    theta = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    grads = [torch.tensor([0.3, -0.1, 0.0], dtype=torch.float64),
             torch.tensor([-0.2, -0.4, 0.1], dtype=torch.float64)]
    lr, wd, beta1, beta2 = 0.1, 0.5, 0.9, 0.99
    p = torch.nn.Parameter(theta.clone())
    opt = Lion([p], lr=lr, betas=(beta1, beta2), weight_decay=wd)
    m, expected = torch.zeros(3, dtype=torch.float64), theta.clone()
    for g in grads:
        p.grad = g.clone()
        opt.step()
        expected = expected - lr * (torch.sign(beta1 * m + (1 - beta1) * g) + wd * expected)
        m = beta2 * m + (1 - beta2) * g
        assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-15)
    assert torch.allclose(opt.state[p]["exp_avg"], m, rtol=0, atol=1e-15)


def test_lion_matches_lion_pytorch():
    package = _lion_pytorch()
    ours_net, ours, theirs_net, theirs = _run_pair(
        lambda net: Lion(net.groups(*LION_GROUPS)),
        lambda net: package.Lion(net.groups(*LION_GROUPS)))
    _assert_same_state(ours, theirs, ours_net, theirs_net)


@pytest.mark.parametrize("foreach, maximize", [(False, False), (True, True)])
def test_lion_matches_pytorch_optimizer(foreach, maximize):
    package = _pytorch_optimizer()
    ours_net, ours, theirs_net, theirs = _run_pair(
        lambda net: Lion(net.groups(*LION_GROUPS), maximize=maximize),
        lambda net: package.Lion(net.groups(*LION_GROUPS), foreach=foreach,
                                 maximize=maximize))
    _assert_same_state(ours, theirs, ours_net, theirs_net)


def _lr_halved_midway(net: Net, optimizer) -> None:
    net.train(optimizer, 0, STEPS // 2)
    for group in optimizer.param_groups:
        group["lr"] /= 2
    net.train(optimizer, STEPS // 2, STEPS)


def test_lion_pytorch_decoupled_decay_is_weight_decay_over_the_initial_rate():
    """lion-pytorch's ``decoupled_weight_decay=True`` shrinks by ``1 - lr * wd / lr_0``
    with ``lr_0`` the constructor's rate: this class with ``weight_decay = wd / lr_0``,
    in every group and under a changing rate too (a reparametrisation, not another
    algorithm)."""
    package = _lion_pytorch()
    lr_0 = 1e-3
    ours_net, theirs_net = Net(), Net()
    _lr_halved_midway(ours_net, Lion(ours_net.groups(
        *[{**g, "weight_decay": g["weight_decay"] / lr_0} for g in LION_GROUPS])))
    _lr_halved_midway(theirs_net, package.Lion(theirs_net.groups(*LION_GROUPS), lr=lr_0,
                                               decoupled_weight_decay=True))
    _assert_trained(ours_net)
    _assert_same_weights(ours_net, theirs_net)


def test_pytorch_optimizer_lion_fixed_decay_is_not_scaled_by_the_rate():
    """``fixed_decay=True`` shrinks by ``1 - wd`` whatever the rate: this class with
    ``weight_decay = wd / lr`` while the rate is constant, and not once it changes."""
    package = _pytorch_optimizer()
    rescaled = [{**g, "weight_decay": g["weight_decay"] / g["lr"]} for g in LION_GROUPS]
    _run_pair(lambda net: Lion(net.groups(*rescaled)),
              lambda net: package.Lion(net.groups(*LION_GROUPS), fixed_decay=True,
                                       foreach=False))
    ours_net, theirs_net = Net(), Net()
    _lr_halved_midway(ours_net, Lion(ours_net.groups(*rescaled)))
    _lr_halved_midway(theirs_net, package.Lion(theirs_net.groups(*LION_GROUPS),
                                               fixed_decay=True, foreach=False))
    assert _max_gap(ours_net, theirs_net) > 1e-3


def test_pytorch_optimizer_lion_coupled_decay_is_not_the_paper():
    """``weight_decouple=False`` puts ``wd * theta`` inside the sign (and into ``p.grad``):
    a different algorithm from the paper's, which coursekit follows."""
    package = _pytorch_optimizer()
    ours_net, theirs_net = Net(), Net()
    ours_net.train(Lion(ours_net.groups(*LION_GROUPS)), 0, STEPS)
    theirs = package.Lion(theirs_net.groups(*LION_GROUPS), weight_decouple=False,
                          foreach=False)
    theirs_net.train(theirs, 0, STEPS)
    assert _max_gap(ours_net, theirs_net) > 1e-3
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    p.grad = torch.tensor([0.5, 0.25], dtype=torch.float64)
    package.Lion([p], weight_decay=0.1, weight_decouple=False, foreach=False).step()
    assert torch.allclose(p.grad, torch.tensor([0.6, 0.05], dtype=torch.float64),
                          rtol=0, atol=1e-15)                      # grad + wd * theta


def test_lion_leaves_grad_alone_where_pytorch_optimizer_negates_it_to_maximize():
    package = _pytorch_optimizer()
    gradient = torch.tensor([0.5, -0.25], dtype=torch.float64)
    grads = {}
    for name, make in {"coursekit": lambda p: Lion([p], maximize=True),
                       "pytorch-optimizer": lambda p: package.Lion([p], maximize=True,
                                                                   foreach=False)}.items():
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
        p.grad = gradient.clone()
        make(p).step()
        grads[name] = p.grad
    assert torch.equal(grads["coursekit"], gradient)
    assert torch.equal(grads["pytorch-optimizer"], -gradient)


def test_lion_resumes_from_a_state_dict():
    _assert_resumes_exactly(lambda net: Lion(net.groups(*LION_GROUPS)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1), "lr must be >= 0, got -1"),
    (dict(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\), got 1.0"),
    (dict(betas=0.9), r"betas must be a pair \(beta1, beta2\), got 0.9"),
    (dict(weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
])
def test_lion_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Lion([torch.nn.Parameter(torch.zeros(2))], **kwargs)


# =========================================================================================
# Schedule-Free: the authors' schedulefree package
# =========================================================================================

def _schedulefree():
    return pytest.importorskip("schedulefree")


SF_SGD_GROUPS = ({"lr": 0.5}, {"lr": 0.2, "momentum": 0.8}, {"lr": 1.0, "weight_decay": 0.0})
SF_ADAMW_GROUPS = ({"lr": 0.01}, {"lr": 0.005, "betas": (0.8, 0.99)},
                   {"lr": 0.02, "weight_decay": 0.0})
SF_SGD_BASE = ({"lr": 0.5}, {"lr": 0.2, "momentum": 0.8}, {"lr": 1.0})
SF_ADAMW_BASE = ({"lr": 0.01}, {"lr": 0.005, "betas": (0.8, 0.99)}, {"lr": 0.02})
SF_CASES = _pairs(warmup_steps=[0, 20], r=[0.0, 1.0], weight_lr_power=[2.0, 0.0],
                 weight_decay=[0.0, 0.01])


def _schedule_free_pair(ours_cls, theirs_name: str, groups, case: dict, foreach=False):
    """Train 120 steps, switch both to eval and compare x, train 30 more, compare again."""
    package = _schedulefree()
    theirs_cls = getattr(package, theirs_name)
    ours_net, theirs_net = Net(), Net()
    ours = ours_cls(ours_net.groups(*groups), **case)
    theirs = theirs_cls(theirs_net.groups(*groups), foreach=foreach, **case)
    for opt in (ours, theirs):
        opt.train()
    losses = [net.train(opt, 0, 120) for net, opt in ((ours_net, ours), (theirs_net, theirs))]
    assert rel_error(torch.tensor(losses[0]), torch.tensor(losses[1])) <= RTOL
    _assert_same_weights(ours_net, theirs_net)                   # y
    _assert_same_state(ours, theirs, ours_net, theirs_net)       # z (and v)
    for opt in (ours, theirs):
        opt.eval()
    _assert_same_weights(ours_net, theirs_net)                   # x, the averaged weights
    assert rel_error(ours_net.loss(), theirs_net.loss()) <= RTOL
    for opt in (ours, theirs):
        opt.train()
    ours_net.train(ours, 120, 150)
    theirs_net.train(theirs, 120, 150)
    _assert_same_weights(ours_net, theirs_net)
    _assert_trained(ours_net)
    assert [g["k"] for g in ours.param_groups] == [150] * 3


@pytest.mark.parametrize("groups", _packed(SF_CASES, SF_SGD_BASE), ids=_run_id)
def test_schedule_free_sgd_matches_the_authors_package(groups):
    _schedule_free_pair(ScheduleFreeSGD, "SGDScheduleFree", groups, {})


@pytest.mark.parametrize("groups", _packed(SF_CASES, SF_ADAMW_BASE), ids=_run_id)
def test_schedule_free_adamw_matches_the_authors_package(groups):
    _schedule_free_pair(ScheduleFreeAdamW, "AdamWScheduleFree", groups, {})


@pytest.mark.parametrize("ours_cls, theirs_name, groups", [
    (ScheduleFreeSGD, "SGDScheduleFree", SF_SGD_GROUPS),
    (ScheduleFreeAdamW, "AdamWScheduleFree", SF_ADAMW_GROUPS)], ids=["sgd", "adamw"])
def test_schedule_free_matches_the_packages_foreach_path(ours_cls, theirs_name, groups):
    _schedule_free_pair(ours_cls, theirs_name, groups,
                        dict(warmup_steps=10, r=0.5, weight_lr_power=2.0, weight_decay=0.01),
                        foreach=True)


@pytest.mark.parametrize("ours_cls, reference_name, groups", [
    (ScheduleFreeSGD, "SGDScheduleFreeReference", SF_SGD_GROUPS),
    (ScheduleFreeAdamW, "AdamWScheduleFreeReference", SF_ADAMW_GROUPS)], ids=["sgd", "adamw"])
def test_schedule_free_eval_weights_are_the_explicit_average(ours_cls, reference_name, groups):
    """The package's *Reference classes store x, y and z explicitly: our eval() weights,
    recovered from y and z alone, are their x."""
    package = _schedulefree()
    case = dict(warmup_steps=10, r=1.0, weight_lr_power=2.0, weight_decay=0.01)
    ours_net, ref_net = Net(), Net()
    ours = ours_cls(ours_net.groups(*groups), **case)
    reference = getattr(package, reference_name)(ref_net.groups(*groups), **case)
    for opt in (ours, reference):
        opt.train()
    ours_net.train(ours, 0, STEPS)
    ref_net.train(reference, 0, STEPS)
    ours.eval()
    for p, q in zip(ours_net.parameters(), ref_net.parameters(), strict=True):
        x = reference.state[q].get("x", q)          # ``unused`` has no state: it never moved
        assert rel_error(p, x) <= RTOL


def test_schedule_free_plain_average_without_warmup_or_weighting():
    """r = 0, weight_lr_power = 0, no warmup: c_t = 1/t, so x is the mean of z_2..z_{T+1}
    and z_1 = theta_0: check x against the z's recorded along the way."""
    net = Net()
    opt = ScheduleFreeSGD(net.groups({"lr": 0.3}, {"lr": 0.3}, {"lr": 0.3}),
                          weight_lr_power=0.0)
    opt.train()
    zs = []
    for t in range(20):
        net.train(opt, t, t + 1)
        zs.append(opt.state[net.w2]["z"].clone())
    opt.eval()
    assert rel_error(net.w2, torch.stack(zs).mean(0)) <= 1e-12


def test_schedule_free_step_refuses_eval_mode():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.ones(2)
    for opt in (ScheduleFreeSGD([p]), ScheduleFreeAdamW([p])):
        with pytest.raises(RuntimeError, match=r"step\(\) needs train mode: call "
                                               r"optimizer.train\(\)"):
            opt.step()
        opt.train()
        opt.step()
        opt.eval()
        with pytest.raises(RuntimeError, match="needs train mode"):
            opt.step()


@pytest.mark.parametrize("save_in", ["train", "eval"])
@pytest.mark.parametrize("cls, groups", [(ScheduleFreeSGD, SF_SGD_GROUPS),
                                         (ScheduleFreeAdamW, SF_ADAMW_GROUPS)],
                         ids=["sgd", "adamw"])
def test_schedule_free_resumes_from_a_state_dict(cls, groups, save_in):
    """The mode and the averaging counters travel in param_groups; saved in eval mode
    (the package's advice) the weights are x, and train() after loading restores y."""
    def make(net):
        return cls(net.groups(*groups), warmup_steps=10, r=0.5, weight_decay=0.01)

    whole = Net()
    opt = make(whole)
    opt.train()
    whole.train(opt, 0, STEPS)

    first = Net()
    opt = make(first)
    opt.train()
    first.train(opt, 0, STEPS // 2)
    if save_in == "eval":
        opt.eval()
    saved = copy.deepcopy(opt.state_dict())
    second = Net(seed=1)
    second.copy_from(first)
    fresh = make(second)
    fresh.load_state_dict(saved)
    fresh.train()
    second.train(fresh, STEPS // 2, STEPS)
    tolerance = 0 if save_in == "train" else 1e-12     # eval/train round trip rounds
    _assert_same_weights(second, whole, rtol=tolerance)


def test_schedule_free_state_moves_from_the_authors_package():
    package = _schedulefree()
    whole = Net()
    opt = package.AdamWScheduleFree(whole.groups(*SF_ADAMW_GROUPS), foreach=False)
    opt.train()
    whole.train(opt, 0, STEPS)
    first, second = Net(), Net()
    opt = package.AdamWScheduleFree(first.groups(*SF_ADAMW_GROUPS), foreach=False)
    opt.train()
    first.train(opt, 0, STEPS // 2)
    second.copy_from(first)
    ours = ScheduleFreeAdamW(second.groups(*SF_ADAMW_GROUPS))
    ours.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert ours.param_groups[0]["train_mode"] and ours.param_groups[0]["k"] == STEPS // 2
    second.train(ours, STEPS // 2, STEPS)
    _assert_same_weights(second, whole)


def test_schedule_free_leaves_grad_alone_where_the_package_overwrites_it():
    """The package adds ``wd * y`` into ``p.grad`` (SGD) or replaces ``p.grad`` by the
    Adam-scaled step (AdamW); coursekit keeps ``p.grad`` the loss's gradient."""
    package = _schedulefree()
    gradient = torch.tensor([0.5, -0.25], dtype=torch.float64)
    makers = {
        "ours-sgd": lambda p: ScheduleFreeSGD([p], weight_decay=0.1),
        "ours-adamw": lambda p: ScheduleFreeAdamW([p], weight_decay=0.1),
        "package-sgd": lambda p: package.SGDScheduleFree([p], weight_decay=0.1, foreach=False),
        "package-adamw": lambda p: package.AdamWScheduleFree([p], weight_decay=0.1,
                                                             foreach=False),
    }
    grads = {}
    for name, make in makers.items():
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
        p.grad = gradient.clone()
        opt = make(p)
        opt.train()
        opt.step()
        grads[name] = p.grad
    assert torch.equal(grads["ours-sgd"], gradient)
    assert torch.equal(grads["ours-adamw"], gradient)
    assert torch.allclose(grads["package-sgd"], gradient + 0.1 * torch.tensor(
        [1.0, -2.0], dtype=torch.float64), rtol=0, atol=1e-15)
    assert not torch.allclose(grads["package-adamw"], gradient)


def test_schedule_free_adamw_is_not_the_papers_bias_correction_variant():
    """The package's AdamWScheduleFreePaper moves Adam's bias correction into the rate
    (as the paper's Algorithm 1); coursekit follows AdamWScheduleFree, the shipped one."""
    package = _schedulefree()
    ours_net, paper_net = Net(), Net()
    ours = ScheduleFreeAdamW(ours_net.groups(*SF_ADAMW_GROUPS))
    paper = package.AdamWScheduleFreePaper(paper_net.groups(*SF_ADAMW_GROUPS), foreach=False)
    for net, opt in ((ours_net, ours), (paper_net, paper)):
        opt.train()
        net.train(opt, 0, STEPS)
    assert _max_gap(ours_net, paper_net) > 1e-3


@pytest.mark.parametrize("cls, kwargs, message", [
    (ScheduleFreeSGD, dict(lr=-1), "lr must be >= 0, got -1"),
    (ScheduleFreeSGD, dict(momentum=0.0), r"momentum must be in \(0, 1\), got 0.0"),
    (ScheduleFreeSGD, dict(momentum=1.0), r"momentum must be in \(0, 1\), got 1.0"),
    (ScheduleFreeSGD, dict(weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
    (ScheduleFreeSGD, dict(warmup_steps=2.5), "warmup_steps must be an integer >= 0, got 2.5"),
    (ScheduleFreeSGD, dict(r=-1.0), "r must be >= 0, got -1.0"),
    (ScheduleFreeSGD, dict(weight_lr_power=-2), "weight_lr_power must be >= 0, got -2"),
    (ScheduleFreeAdamW, dict(betas=(0.0, 0.999)), r"betas\[0\] must be in \(0, 1\), got 0.0"),
    (ScheduleFreeAdamW, dict(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\), got 1.0"),
    (ScheduleFreeAdamW, dict(eps=-1e-8), "eps must be >= 0, got -1e-08"),
])
def test_schedule_free_rejects_bad_hyperparameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)
