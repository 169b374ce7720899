r"""coursekit.optim.hyper against the hyperoptimizer paper's own code (gdtuo), transcribed.

Chandra et al. (2022) publish their implementation as the package
``gradient-descent-the-ultimate-optimizer``, module ``gdtuo`` (repository
kach/gradient-descent-the-ultimate-optimizer, file
``src/gradient_descent_the_ultimate_optimizer/gdtuo.py``, read at commit 2bce5c32; the
other stored version, d6a3dbbe, lacks only its ``end()``, which frees gradients). It is not
installed here: the ``_G*`` classes below are our transcription of its update rules
and of its ``begin() / zero_grad() / backward / step()`` protocol, in plain float64
torch tensors, written from the reading below. Each test trains the same MLP (fixed
initial weights) on the same 60 minibatches with a coursekit stack driven through
:class:`~coursekit.optim.hyper.ModuleWrapper` and with the transcription, and compares
every step's loss, every level's hyperparameters and the weights after every step.

What gdtuo does, read from its code
-----------------------------------
Protocol. ``mw = ModuleWrapper(model, optimizer=stack)``; per step ``mw.begin()``, the
forward pass, ``mw.zero_grad()``, ``loss.backward(create_graph=True)``, ``mw.step()``.
``begin()`` calls ``requires_grad_()`` and ``retain_grad()`` on every tensor a level
holds (the weights; every level's hyperparameters in their stored form), so that the
backward pass leaves a ``.grad`` on non-leaf tensors too; ``zero_grad()`` sets each
such ``.grad`` to zeros (not None), so a hyperparameter the loss does not reach yet
has gradient exactly 0. ``step()`` recurses: a level first calls the ``step`` of the
level above on its own hyperparameters, then updates the tensors of the level below.
Hence the order within a step is top first, and every update uses the hyperparameters
*just* updated by the level above: the weights' step ``w_{t+1} = w_t - alpha_t g_t``
uses ``alpha_t``, computed at this step from the hypergradient
``dL(w_t)/d alpha_{t-1}``. The top level has ``NoOpOptimizer`` above it: its
hyperparameters are fixed.

What is detached. Every update builds ``new = old.detach() - h * u(grad.detach(), state)``:
the updated tensor and its gradient enter detached, the hyperparameters ``h`` of the
updating level do not. A new weight's graph therefore reaches exactly one update back,
to the hyperparameters that made it, and through them (themselves the output of the
level above's update one step earlier) up the stack. State (SGD's momentum buffer,
AdaGrad's ``G``, RMSProp's ``s``, Adam's ``m`` and ``v``) is stored with its graph but
detached when it is read at the next step; AdaGrad also detaches its denominator (which
depends on no hyperparameter). So the hypergradient of ``h_{t-1}`` is
``dL(w_t)/dw_t . dw_t/dh_{t-1}`` through that one update (for SGD ``-g_t . g_{t-1}``).
``create_graph=True`` gives each ``.grad`` a graph of its own, but every use detaches
it (``param.grad.detach()``), so it changes no value (checked below).

First step. The weights are then the module's leaf parameters, which depend on no
hyperparameter: every hypergradient is the 0 that ``zero_grad()`` wrote. gdtuo has no
special case: every level steps, and a stateful level above the bottom counts that
step (Adam's ``t``, and its ``v`` decays by ``beta2``) with a zero gradient.

The rules (defaults as in gdtuo; ``tanh map``: stored ``x``, used as ``(1 + tanh x)/2``
in (0, 1), stored from ``y`` as ``log((1 + z)/(1 - z))/2 = atanh(z)``, ``z = 2y - 1``;
gdtuo calls these ``clamp``/``unclamp``; it is a smooth map, not a clip):

- ``SGD(alpha=0.01, mu=0.0)``: hyperparameters ``alpha`` and ``mu``, both stored as
  they are (either may leave any range). Momentum only when the *initial* ``mu`` is
  not 0: ``b_1 = g_1``, ``b_t = b_{t-1} mu + g_t``, ``w - b alpha``. With ``mu = 0``,
  ``mu`` is still learned by the level above, but it enters no update: its
  hypergradient is 0 and it stays 0.
- ``AdaGrad(alpha=0.01)``: ``G_0 = 0.1`` (every entry), ``G_t = G_{t-1} + g_t^2``,
  ``w - alpha g / sqrt(G_t + eps)``, ``eps = 1e-10`` *inside* the square root, fixed.
- ``RMSProp(alpha=0.01, gamma=0.99)``: ``alpha`` stored as ``sqrt(alpha)`` and used as
  its square (so >= 0), ``gamma`` through the tanh map. ``s_0 = 0``,
  ``s_t = gamma s_{t-1} + (1 - gamma) g_t^2``, ``w - alpha g / sqrt(s_t + eps)``,
  ``eps = 1e-8`` *inside* the square root, fixed. ``RMSPropAlpha``: the same with
  ``gamma`` a fixed number; only ``alpha`` is learned (as its square root).
- ``Adam(alpha=1e-3, beta1=0.9, beta2=0.999, log_eps=-8)``: ``eps = 10**log_eps``;
  ``alpha`` as it is, the betas through the tanh map. ``m_0 = 0``, ``v_0 = eps`` (the
  code's comment: sqrt is not differentiable at 0), ``t`` counted per level,
  ``m_hat = m_t/(1 - beta1^t)``, ``v_hat = v_t/(1 - beta2^t)``,
  ``w - alpha m_hat / (sqrt(v_hat) + eps)``: here ``eps`` is *outside* the square root.
  ``AdamBaydin``: the same with fixed betas; only ``alpha`` is learned.
- A level learns every hyperparameter of the level below (no subsets, besides the
  ``RMSPropAlpha`` and ``AdamBaydin`` classes). Hyperparameters are made with
  ``torch.tensor(value)``, in torch's default dtype (float32 unless changed) whatever the
  model's dtype; the transcription is float64 throughout (gdtuo run under
  ``torch.set_default_dtype(torch.float64)``). No clipping, weight decay or parameter
  groups; ``SGDPerParam`` (a learned step size per weight tensor) has no coursekit
  counterpart and is not compared.

Where coursekit agrees, and where it deliberately differs
---------------------------------------------------------
The protocol, the order of updates, what is detached, the one-step hypergradients,
the tanh map of Adam's betas and RMSProp's gamma, RMSProp's ``alpha = a^2`` and the
as-is ``alpha`` of SGD, Adam and AdaGrad are gdtuo's: SGD / SGD, SGD / SGD / SGD and,
with ``eps = 0``, RMSProp / SGD, RMSPropAlpha / SGD and AdaGrad / SGD (with
``initial_accumulator_value=0.1``) agree with the faithful transcription to float64
rounding (relative 1e-10 over 60 steps). The differences, each
asserted to be there (``test_coursekit_differs_from_gdtuo``) and to be the only one
(``test_coursekit_agrees_with_gdtuo``, with the transcription given coursekit's choice),
documented and argued in :mod:`coursekit.optim.hyper`'s docstring:

1. Adam's ``v_0``: coursekit 0 (torch's), gdtuo ``eps``; Adam and AdamAlpha (gdtuo's
   AdamBaydin). coursekit takes ``d sqrt(v)/dv`` as 0 where ``v`` is exactly 0.
2. ``eps`` of RMSProp and AdaGrad: coursekit outside the square root (torch's), gdtuo
   inside. With ``eps = 0`` the two are the same rule.
3. AdaGrad's ``G_0``: coursekit ``initial_accumulator_value``, default 0 (torch's);
   0.1 gives gdtuo's.
4. SGD's momentum ``mu``: coursekit learns it through the tanh map, gdtuo as it is.
5. The first step: coursekit's levels above the bottom do not step (there is nothing to
   learn from), gdtuo's step with a zero hypergradient. Only a stateful level above
   the bottom can tell: Adam's ``t`` and ``v`` (SGD / Adam below).
6. Not a difference in value: gdtuo's ``mu = 0`` hyperparameter (coursekit has none)
   stays 0; ``create_graph=True`` is unnecessary. Not tested here: gdtuo's float32
   hyperparameters under a float64 model (coursekit uses the model's dtype).

The paper's own text was not compared: only its code.

References
----------
.. [1] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient descent: The
   ultimate optimizer. NeurIPS 2022. arXiv:1909.13371. [chandra2022gradient]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.optim import hyper

STEPS = 60
DTYPE = torch.float64


# ---------------------------------------------------------------------------------------
# The transcription of gdtuo (float64)
# ---------------------------------------------------------------------------------------

def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=DTYPE)


def _squash(x: torch.Tensor) -> torch.Tensor:
    """gdtuo's ``clamp``: the real line onto (0, 1)."""
    return (x.tanh() + 1.0) / 2.0


def _unsquash(y: torch.Tensor) -> torch.Tensor:
    """gdtuo's ``unclamp``, the inverse of :func:`_squash`, written as gdtuo writes it."""
    z = 2.0 * y - 1.0
    return ((1.0 + z) / (1.0 - z)).log() / 2.0


class _GLevel:
    """gdtuo's ``Optimizable``: ``parameters`` maps names to hyperparameters in their stored
    form; ``above`` is the level that learns them (None: gdtuo's ``NoOpOptimizer``)."""

    def __init__(self, parameters: dict[str, torch.Tensor], above: _GLevel | None):
        self.parameters = parameters
        self.above = above
        self.tracked: list[torch.Tensor] = []

    def begin(self) -> None:
        for tensor in self.tracked:
            tensor.grad = None
        self.tracked = []
        for tensor in self.parameters.values():
            tensor.requires_grad_()
            tensor.retain_grad()
            self.tracked.append(tensor)
        if self.above is not None:
            self.above.begin()

    def zero_grad(self) -> None:
        for tensor in self.tracked:
            tensor.grad = torch.zeros_like(tensor)
        if self.above is not None:
            self.above.zero_grad()

    def step(self, below: dict[str, torch.Tensor], *, above: bool = True) -> None:
        """Let the level above update this level's hyperparameters, then update ``below``
        (replacing its tensors). ``above=False`` skips the levels above (coursekit's
        first step, see test_coursekit_differs_from_gdtuo)."""
        if above and self.above is not None:
            self.above.step(self.parameters)
        self.update(below)

    def update(self, below: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def natural(self) -> dict[str, float]:
        """Every hyperparameter's value as used (fixed ones included)."""
        raise NotImplementedError

    def levels(self) -> list[_GLevel]:
        return [self] if self.above is None else [self, *self.above.levels()]


class _GSGD(_GLevel):
    """gdtuo's ``SGD``; ``mu_map=True`` stores ``mu`` through the tanh map (coursekit)."""

    def __init__(self, alpha: float = 0.01, mu: float = 0.0, above: _GLevel | None = None, *,
                 mu_map: bool = False):
        self.mu, self.mu_map, self.buffers = mu, mu_map and mu != 0.0, {}
        stored_mu = _unsquash(_scalar(mu)) if self.mu_map else _scalar(mu)
        super().__init__({"alpha": _scalar(alpha), "mu": stored_mu}, above)

    def _mu(self) -> torch.Tensor:
        mu = self.parameters["mu"]
        return _squash(mu) if self.mu_map else mu

    def update(self, below):
        for name, tensor in below.items():
            g, w = tensor.grad.detach(), tensor.detach()
            if self.mu != 0.0:
                if name in self.buffers:
                    g = self.buffers[name].detach() * self._mu() + g
                self.buffers[name] = g
            below[name] = w - g * self.parameters["alpha"]

    def natural(self):
        return {"alpha": self.parameters["alpha"].item(), "mu": self._mu().item()}


class _GAdaGrad(_GLevel):
    """gdtuo's ``AdaGrad`` (``G_0``, ``eps`` and its place made arguments)."""

    def __init__(self, alpha: float = 0.01, above: _GLevel | None = None, *,
                 eps: float = 1e-10, g0: float = 0.1, eps_inside: bool = True):
        self.eps, self.g0, self.eps_inside, self.sums = eps, g0, eps_inside, {}
        super().__init__({"alpha": _scalar(alpha)}, above)

    def update(self, below):
        for name, tensor in below.items():
            g = tensor.grad.detach()
            start = self.sums[name] if name in self.sums else torch.zeros_like(tensor) + self.g0
            self.sums[name] = total = start.detach() + torch.square(g)
            root = (torch.sqrt(total + self.eps) if self.eps_inside
                    else torch.sqrt(total) + self.eps)
            below[name] = tensor.detach() - self.parameters["alpha"] * g / root.detach()

    def natural(self):
        return {"alpha": self.parameters["alpha"].item()}


class _GRMSProp(_GLevel):
    """gdtuo's ``RMSProp``, or its ``RMSPropAlpha`` with ``learn_gamma=False`` (``eps`` and
    its place made arguments)."""

    def __init__(self, alpha: float = 0.01, gamma: float = 0.99,
                 above: _GLevel | None = None, *, learn_gamma: bool = True,
                 eps: float = 1e-8, eps_inside: bool = True):
        self.gamma, self.learn_gamma = gamma, learn_gamma
        self.eps, self.eps_inside, self.squares = eps, eps_inside, {}
        parameters = {"alpha": torch.sqrt(_scalar(alpha))}
        if learn_gamma:
            parameters["gamma"] = _unsquash(_scalar(gamma))
        super().__init__(parameters, above)

    def _gamma(self):
        return _squash(self.parameters["gamma"]) if self.learn_gamma else self.gamma

    def update(self, below):
        gamma, alpha = self._gamma(), torch.square(self.parameters["alpha"])
        for name, tensor in below.items():
            g = tensor.grad.detach()
            previous = self.squares.get(name, torch.zeros_like(tensor)).detach()
            self.squares[name] = s = gamma * previous + (1.0 - gamma) * torch.square(g)
            root = torch.sqrt(s + self.eps) if self.eps_inside else torch.sqrt(s) + self.eps
            below[name] = tensor.detach() - alpha * g / root

    def natural(self):
        gamma = self._gamma()
        return {"alpha": torch.square(self.parameters["alpha"]).item(),
                "gamma": gamma.item() if self.learn_gamma else gamma}


class _GAdam(_GLevel):
    """gdtuo's ``Adam``, or its ``AdamBaydin`` with ``learn_betas=False``; ``v0`` replaces
    gdtuo's ``v_0 = eps`` when given."""

    def __init__(self, alpha: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 log_eps: float = -8.0, above: _GLevel | None = None, *,
                 learn_betas: bool = True, v0: float | None = None):
        self.eps = 10.0 ** log_eps
        self.v0 = self.eps if v0 is None else v0
        self.betas, self.learn_betas = (beta1, beta2), learn_betas
        self.t, self.moments = 0, {}
        parameters = {"alpha": _scalar(alpha)}
        if learn_betas:
            parameters["beta1"] = _unsquash(_scalar(beta1))
            parameters["beta2"] = _unsquash(_scalar(beta2))
        super().__init__(parameters, above)

    def _betas(self):
        if not self.learn_betas:
            return self.betas
        return _squash(self.parameters["beta1"]), _squash(self.parameters["beta2"])

    def step(self, below, *, above=True):
        self.t += 1  # gdtuo counts before stepping the level above
        super().step(below, above=above)

    def update(self, below):
        beta1, beta2 = self._betas()
        t = float(self.t)
        for name, tensor in below.items():
            if name not in self.moments:
                self.moments[name] = (torch.zeros_like(tensor), torch.zeros_like(tensor) + self.v0)
            m, v = self.moments[name]
            g = tensor.grad.detach()
            m = beta1 * m.detach() + (1.0 - beta1) * g
            v = beta2 * v.detach() + (1.0 - beta2) * g * g
            self.moments[name] = (m, v)
            m_hat, v_hat = m / (1.0 - beta1 ** t), v / (1.0 - beta2 ** t)
            below[name] = tensor.detach() - self.parameters["alpha"] * (
                m_hat / (v_hat ** 0.5 + self.eps))

    def natural(self):
        beta1, beta2 = self._betas()
        if self.learn_betas:
            beta1, beta2 = beta1.item(), beta2.item()
        return {"alpha": self.parameters["alpha"].item(), "beta1": beta1, "beta2": beta2}


# ---------------------------------------------------------------------------------------
# The model, the data and the two drivers
# ---------------------------------------------------------------------------------------

def _initial_weights() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = {"0.weight": (10, 6), "0.bias": (10,), "2.weight": (3, 10), "2.bias": (3,)}
    return {name: 0.5 * torch.randn(shape, generator=g, dtype=DTYPE)
            for name, shape in shapes.items()}


def _mlp() -> nn.Module:
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).to(DTYPE)
    initial = _initial_weights()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(initial[name])
    return model


def _forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The MLP of :func:`_mlp` on the weights ``w`` (the same ops as nn.Linear / nn.Tanh)."""
    hidden = torch.tanh(F.linear(x, w["0.weight"], w["0.bias"]))
    return F.linear(hidden, w["2.weight"], w["2.bias"])


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches of a noisy linear regression; every gradient entry is non-zero."""
    g = torch.Generator().manual_seed(1)
    teacher = 0.5 * torch.randn(6, 3, generator=g, dtype=DTYPE)
    batches = []
    for _ in range(STEPS):
        x = torch.randn(16, 6, generator=g, dtype=DTYPE)
        batches.append((x, x @ teacher + 0.1 * torch.randn(16, 3, generator=g, dtype=DTYPE)))
    return batches


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out - y) ** 2).mean()


@dataclass
class Run:
    losses: list[float]
    weights: list[dict[str, torch.Tensor]]          # after every step
    hyper: list[dict[str, list[float]]]              # per level, bottom first: value per step


def _run_coursekit(stack: hyper.HyperOptimizer) -> Run:
    model = _mlp()
    opt = hyper.ModuleWrapper(model, stack)
    losses, weights = [], []
    for x, y in _batches():
        opt.zero_grad()
        loss = _loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        weights.append({name: p.detach().clone() for name, p in model.named_parameters()})
    return Run(losses, weights, [level.history for level in stack.levels()])


def _run_gdtuo(stack: _GLevel, *, skip_first_above: bool = False,
               create_graph: bool = False) -> Run:
    """gdtuo's loop: begin, forward, zero_grad, backward, step (``ModuleWrapper`` is the
    weights dict here). ``skip_first_above`` leaves the levels above the bottom out of
    step 1, as coursekit does."""
    weights = {name: w.clone().requires_grad_() for name, w in _initial_weights().items()}
    levels = stack.levels()
    losses, after, record = [], [], [{} for _ in levels]
    for t, (x, y) in enumerate(_batches()):
        for w in weights.values():                      # ModuleWrapper.begin()
            w.requires_grad_()
            w.retain_grad()
        stack.begin()
        loss = _loss(_forward(weights, x), y)
        for w in weights.values():                      # ModuleWrapper.zero_grad()
            w.grad = torch.zeros_like(w)
        stack.zero_grad()
        loss.backward(create_graph=create_graph)
        stack.step(weights, above=not (skip_first_above and t == 0))
        losses.append(loss.item())
        after.append({name: w.detach().clone() for name, w in weights.items()})
        for level, values in zip(levels, record, strict=True):
            for name, value in level.natural().items():
                values.setdefault(name, []).append(value)
    return Run(losses, after, record)


def _largest_difference(ours: Run, theirs: Run) -> float:
    """The largest relative difference of a weight tensor, over all steps (cs231n style)."""
    worst = 0.0
    for a, b in zip(ours.weights, theirs.weights, strict=True):
        for name in a:
            scale = max(a[name].abs().max().item(), b[name].abs().max().item())
            worst = max(worst, (a[name] - b[name]).abs().max().item() / scale)
    return worst


def _assert_agree(ours: Run, theirs: Run) -> None:
    np.testing.assert_allclose(ours.losses, theirs.losses, rtol=1e-10, atol=0)
    for step, (a, b) in enumerate(zip(ours.weights, theirs.weights, strict=True)):
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-10, atol=1e-13,
                                       msg=f"{name} differs after step {step + 1}")
    assert len(ours.hyper) == len(theirs.hyper)
    for level, (mine, gdtuo) in enumerate(zip(ours.hyper, theirs.hyper, strict=True)):
        assert mine.keys() <= gdtuo.keys(), level
        for name, values in mine.items():
            np.testing.assert_allclose(values, gdtuo[name], rtol=1e-10, atol=1e-15,
                                       err_msg=f"level {level}: {name}")
        for name in gdtuo.keys() - mine.keys():
            # gdtuo's SGD without momentum learns mu too; its hypergradient is 0.
            assert set(gdtuo[name]) == {0.0}, (level, name)


# ---------------------------------------------------------------------------------------
# The stacks: (coursekit, transcription of gdtuo, options of _run_gdtuo)
# ---------------------------------------------------------------------------------------

Case = tuple[Callable[[], hyper.HyperOptimizer], Callable[[], _GLevel], dict]

AGREE: dict[str, Case] = {
    "SGD / SGD": (
        lambda: hyper.SGD(0.05, optimizer=hyper.SGD(0.02)),
        lambda: _GSGD(0.05, above=_GSGD(0.02)), {}),
    "SGD / SGD / SGD": (
        lambda: hyper.SGD(0.05, optimizer=hyper.SGD(0.01, optimizer=hyper.SGD(1e-3))),
        lambda: _GSGD(0.05, above=_GSGD(0.01, above=_GSGD(1e-3))), {}),
    "SGD(mu) / SGD, gdtuo's mu through coursekit's tanh map": (
        lambda: hyper.SGD(0.02, mu=0.8, optimizer=hyper.SGD(0.01)),
        lambda: _GSGD(0.02, 0.8, above=_GSGD(0.01), mu_map=True), {}),
    "Adam / SGD, gdtuo with v_0 = 0": (
        lambda: hyper.Adam(0.01, optimizer=hyper.SGD(1e-3)),
        lambda: _GAdam(0.01, above=_GSGD(1e-3), v0=0.0), {}),
    "AdamAlpha / SGD (AdamBaydin), gdtuo with v_0 = 0": (
        lambda: hyper.AdamAlpha(0.01, optimizer=hyper.SGD(1e-3)),
        lambda: _GAdam(0.01, above=_GSGD(1e-3), learn_betas=False, v0=0.0), {}),
    "Adam / SGD / SGD, gdtuo with v_0 = 0": (
        lambda: hyper.Adam(0.01, optimizer=hyper.SGD(1e-3, optimizer=hyper.SGD(1e-5))),
        lambda: _GAdam(0.01, above=_GSGD(1e-3, above=_GSGD(1e-5)), v0=0.0), {}),
    "RMSProp / SGD, eps = 0": (
        lambda: hyper.RMSProp(0.01, eps=0.0, optimizer=hyper.SGD(1e-3)),
        lambda: _GRMSProp(0.01, above=_GSGD(1e-3), eps=0.0), {}),
    "RMSProp / SGD, gdtuo with eps outside the root": (
        lambda: hyper.RMSProp(0.01, optimizer=hyper.SGD(1e-3)),
        lambda: _GRMSProp(0.01, above=_GSGD(1e-3), eps_inside=False), {}),
    "RMSPropAlpha / SGD, eps = 0": (
        lambda: hyper.RMSPropAlpha(0.01, eps=0.0, optimizer=hyper.SGD(1e-3)),
        lambda: _GRMSProp(0.01, above=_GSGD(1e-3), learn_gamma=False, eps=0.0), {}),
    "AdaGrad / SGD, G_0 = 0.1 and eps = 0": (
        lambda: hyper.AdaGrad(0.05, eps=0.0, initial_accumulator_value=0.1,
                              optimizer=hyper.SGD(0.01)),
        lambda: _GAdaGrad(0.05, above=_GSGD(0.01), eps=0.0), {}),
    "AdaGrad / SGD, G_0 = 0.1, gdtuo with eps outside the root": (
        lambda: hyper.AdaGrad(0.05, initial_accumulator_value=0.1, optimizer=hyper.SGD(0.01)),
        lambda: _GAdaGrad(0.05, above=_GSGD(0.01), eps_inside=False), {}),
    "SGD / Adam, gdtuo with v_0 = 0 and no step above the bottom at step 1": (
        lambda: hyper.SGD(0.05, optimizer=hyper.Adam(0.002)),
        lambda: _GSGD(0.05, above=_GAdam(0.002, v0=0.0)), {"skip_first_above": True}),
}

DIFFER: dict[str, Case] = {
    "Adam / SGD: v_0 = eps in gdtuo": (
        AGREE["Adam / SGD, gdtuo with v_0 = 0"][0],
        lambda: _GAdam(0.01, above=_GSGD(1e-3)), {}),
    "AdamAlpha / SGD: v_0 = eps in gdtuo's AdamBaydin": (
        AGREE["AdamAlpha / SGD (AdamBaydin), gdtuo with v_0 = 0"][0],
        lambda: _GAdam(0.01, above=_GSGD(1e-3), learn_betas=False), {}),
    "RMSProp / SGD: eps = 1e-8 inside the root in gdtuo": (
        AGREE["RMSProp / SGD, gdtuo with eps outside the root"][0],
        lambda: _GRMSProp(0.01, above=_GSGD(1e-3)), {}),
    "RMSPropAlpha / SGD: eps = 1e-8 inside the root in gdtuo": (
        lambda: hyper.RMSPropAlpha(0.01, optimizer=hyper.SGD(1e-3)),
        lambda: _GRMSProp(0.01, above=_GSGD(1e-3), learn_gamma=False), {}),
    "AdaGrad / SGD: eps = 1e-3 inside the root in gdtuo": (
        lambda: hyper.AdaGrad(0.05, eps=1e-3, initial_accumulator_value=0.1,
                              optimizer=hyper.SGD(0.01)),
        lambda: _GAdaGrad(0.05, above=_GSGD(0.01), eps=1e-3), {}),
    "AdaGrad / SGD: G_0 = 0 (coursekit's default) against gdtuo's 0.1": (
        lambda: hyper.AdaGrad(0.05, optimizer=hyper.SGD(0.01)),
        lambda: _GAdaGrad(0.05, above=_GSGD(0.01)), {}),
    "SGD(mu) / SGD: mu learned as it is in gdtuo": (
        AGREE["SGD(mu) / SGD, gdtuo's mu through coursekit's tanh map"][0],
        lambda: _GSGD(0.02, 0.8, above=_GSGD(0.01)), {}),
    "SGD / Adam: gdtuo's Adam above steps at step 1 (v_0 = 0 in both)": (
        AGREE["SGD / Adam, gdtuo with v_0 = 0 and no step above the bottom at step 1"][0],
        lambda: _GSGD(0.05, above=_GAdam(0.002, v0=0.0)), {}),
}


@pytest.mark.parametrize("name", list(AGREE))
def test_coursekit_agrees_with_gdtuo(name):
    make_ours, make_theirs, options = AGREE[name]
    stack = make_ours()
    ours = _run_coursekit(stack)
    theirs = _run_gdtuo(make_theirs(), **options)
    _assert_agree(ours, theirs)
    # The comparison has teeth: every learned hyperparameter moved, the bottom alpha by
    # more than 1%, and training made progress.
    for level, record in zip(stack.levels(), ours.hyper, strict=True):
        for hp in level.learn:
            assert record[hp][-1] != record[hp][0], (level, hp)
    alpha = ours.hyper[0]["alpha"]
    assert abs(alpha[-1] / alpha[0] - 1) > 0.01
    assert np.mean(ours.losses[-10:]) < 0.5 * np.mean(ours.losses[:10])


@pytest.mark.parametrize("name", list(DIFFER))
def test_coursekit_differs_from_gdtuo(name):
    make_ours, make_theirs, options = DIFFER[name]
    ours = _run_coursekit(make_ours())
    theirs = _run_gdtuo(make_theirs(), **options)
    assert _largest_difference(ours, theirs) > 1e-6


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
@pytest.mark.parametrize("name", ["SGD / SGD / SGD", "Adam / SGD, gdtuo with v_0 = 0"])
def test_create_graph_changes_nothing(name):
    """gdtuo's backward(create_graph=True) against a plain backward: the same values (the
    gradients' own graphs are detached before every use), so coursekit needs no
    create_graph."""
    _, make_theirs, options = AGREE[name]
    plain = _run_gdtuo(make_theirs(), **options)
    graph = _run_gdtuo(make_theirs(), create_graph=True, **options)
    np.testing.assert_allclose(graph.losses, plain.losses, rtol=1e-14, atol=0)
    assert _largest_difference(graph, plain) < 1e-14
    for a, b in zip(graph.hyper, plain.hyper, strict=True):
        for name_ in a:
            np.testing.assert_allclose(a[name_], b[name_], rtol=1e-14, atol=0)
