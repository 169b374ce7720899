r"""Hypergradients made visible: SGD's derived by hand and checked four ways, and stacks trained.

Gradient descent with step size ``alpha`` moves ``w_t = w_{t-1} - alpha g_{t-1}``
with ``g_{t-1} = grad f(w_{t-1})``. The next loss ``f(w_t)`` is therefore a
function of ``alpha``, and the chain rule gives its derivative::

    d f(w_t) / d alpha = grad f(w_t) . d w_t / d alpha = -g_t . g_{t-1}

the *hypergradient*: negative (so alpha should grow) while successive gradients
agree, positive when they point against each other. :func:`sgd_hypergradient`
computes it four independent ways at one point: the formula, autograd through
the update, a central difference in ``alpha``, and the update that
:mod:`coursekit.optim.hyper` actually makes to alpha in a two-step
``SGD / SGD(kappa)`` stack.

:func:`train_stack` trains a model with a hyper-optimizer stack
(``hyper.ModuleWrapper``) on a :class:`coursekit.data.Dataset` and returns what a
lecture plots: the loss of every step, every level's hyperparameters over time,
the test error and whether the run blew up. :func:`sweep_top_level` repeats it
over the top level's step size ``kappa``, without and with seed 002's
running-mean clipping, which is how the seed measured the stacks' sensitivity.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.data import Dataset
from coursekit.optim import hyper
from coursekit.runtime import seed as seed_everything

__all__ = ["CLIPPING", "StackRun", "sgd_hypergradient", "sweep_top_level", "train_stack"]

CLIPPING = ("none", "parameters", "hypergradients")
"""Where :func:`sweep_top_level` asks for seed 002's running-mean clipping rule."""


def sgd_hypergradient(f: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor,
                      alpha: float, h: float = 1e-6, kappa: float = 1e-3) -> dict[str, float]:
    r"""``d f(w_t) / d alpha`` after one SGD step ``w_t = w - alpha grad f(w)``, four ways.

    Parameters
    ----------
    f : callable
        Scalar loss of a flat parameter vector (e.g. from
        :func:`coursekit.analysis.second_order.flat_loss`); use float64 for the checks.
    w : torch.Tensor
        ``w_{t-1}``, a 1-D tensor.
    alpha : float
        The step size of that step.
    h : float
        Half-width of the central difference in ``alpha``.
    kappa : float
        Step size of the top level in the ``SGD / SGD(kappa)`` stack; the
        hypergradient is read back as ``(alpha_before - alpha_after) / kappa``.

    Returns
    -------
    dict
        ``formula`` (``-g_t . g_{t-1}``), ``autograd`` (differentiating
        ``f(w - alpha g_{t-1})`` with respect to ``alpha``), ``central difference``
        and ``coursekit.optim.hyper``.
    """
    if not isinstance(w, torch.Tensor) or w.dim() != 1 or not w.is_floating_point():
        raise ValueError(f"Invalid w: {w!r} (expected a 1-D floating-point tensor)")
    for name, value in (("h", h), ("kappa", kappa)):
        if not value > 0:
            raise ValueError(f"Invalid {name}: {value!r} (must be > 0)")
    w = w.detach()

    def grad(point: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            point = point.detach().requires_grad_(True)
            return torch.autograd.grad(f(point), point)[0]

    g_prev = grad(w)
    g_now = grad(w - alpha * g_prev)
    formula = -float(g_now @ g_prev)

    a = torch.tensor(float(alpha), dtype=w.dtype, device=w.device, requires_grad=True)
    with torch.enable_grad():
        (autograd,) = torch.autograd.grad(f(w - a * g_prev), a)

    with torch.no_grad():
        central = (f(w - (alpha + h) * g_prev) - f(w - (alpha - h) * g_prev)) / (2 * h)

    stack = hyper.SGD(alpha, optimizer=hyper.SGD(kappa))
    param = w.clone().requires_grad_(True)
    wrapper = hyper.ModuleWrapper([param], stack)
    for _ in range(2):
        wrapper.zero_grad()
        with torch.enable_grad():
            f(param).backward()
        wrapper.step()
    alphas = stack.history["alpha"]
    from_stack = (alphas[0] - alphas[1]) / kappa

    return {"formula": formula, "autograd": float(autograd), "central difference": float(central),
            "coursekit.optim.hyper": from_stack}


@dataclasses.dataclass(eq=False)
class StackRun:
    """One training run of a hyper-optimizer stack, as :func:`train_stack` records it.

    Attributes
    ----------
    label : str
        The stack (``repr``), e.g. ``SGD(alpha=0.01) / SGD(alpha=0.01)``.
    losses : numpy.ndarray
        The mini-batch loss of every step.
    hyperparameters : list of dict
        Per level of the stack, bottom first: ``{name: values per step}``
        (``HyperOptimizer.history``).
    final : dict
        The bottom level's hyperparameters at the end.
    test_error : float
        Share of misclassified test examples (non-finite outputs count as
        errors), in [0, 1].
    diverged : bool
        The loss became non-finite; training stopped at the end of that epoch.
    seconds : float
        Wall time of the training.
    """

    label: str
    losses: np.ndarray
    hyperparameters: list[dict[str, list[float]]]
    final: dict[str, float]
    test_error: float
    diverged: bool
    seconds: float

    @property
    def alpha(self) -> np.ndarray:
        """The bottom level's step size at every step."""
        return np.asarray(self.hyperparameters[0]["alpha"])

    def record(self) -> dict[str, Any]:
        """A row for :func:`coursekit.viz.tables.format_table`."""
        return {"stack": self.label, "test error %": 100 * self.test_error,
                "final alpha": self.final.get("alpha", math.nan), "diverged": self.diverged,
                "seconds": self.seconds}


def train_stack(build: Callable[[], hyper.HyperOptimizer], data: Dataset,
                model_fn: Callable[[], nn.Module], epochs: int, *, batch_size: int = 256,
                seed: int = 0, device: torch.device | str | None = None,
                loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                label: str | None = None) -> StackRun:
    """Train ``model_fn()`` with the stack ``build()`` for ``epochs`` epochs (seed 002's loop).

    ``coursekit.seed(seed)`` is called first, so equal seeds give equal initial
    weights and equal batches (``data.train.batches(batch_size, seed=seed)``).
    The loss is checked for finiteness once per epoch (no device sync per step);
    a non-finite loss ends the run.

    Parameters
    ----------
    build : callable
        Returns a fresh stack, e.g. ``lambda: hyper.SGD(0.01, optimizer=hyper.SGD(0.01))``.
    data : Dataset
        Training and test splits.
    model_fn : callable
        Returns a fresh model.
    epochs : int
        Passes over the training split, >= 1.
    batch_size : int
        Mini-batch size (the paper's 256 by default).
    seed : int
        Seed of the weights and of the batch order.
    device : torch.device or str, optional
        Where to train (default: the data's device).
    loss : callable
        ``loss(model(x), y)``.
    label : str, optional
        Default: ``repr`` of the stack.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Invalid epochs: {epochs!r} (expected an integer >= 1)")
    device = data.train.x.device if device is None else torch.device(device)
    seed_everything(seed)
    model = model_fn().to(device)
    stack = build()
    if not isinstance(stack, hyper.HyperOptimizer):
        raise TypeError(f"build() returned {stack!r}, not a hyper-optimizer")
    wrapper = hyper.ModuleWrapper(model, stack)
    batches = data.train.to(device).batches(batch_size, seed=seed)
    losses: list[torch.Tensor] = []
    diverged = False
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in batches:
            wrapper.zero_grad()
            value = loss(model(x), y)
            value.backward()
            wrapper.step()
            losses.append(value.detach())
        if not torch.isfinite(losses[-1]):
            diverged = True
            break
    seconds = time.perf_counter() - start
    test = data.test.to(device)
    with torch.no_grad():
        logits = model(test.x)
        wrong = (logits.argmax(dim=1) != test.y) | ~torch.isfinite(logits).all(dim=1)
    return StackRun(label=repr(stack) if label is None else label,
                    losses=torch.stack(losses).cpu().double().numpy(),
                    hyperparameters=[level.history for level in stack.levels()],
                    final=stack.hyperparameters(), test_error=float(wrong.float().mean()),
                    diverged=diverged, seconds=seconds)


def sweep_top_level(make_stack: Callable[[float, str], hyper.HyperOptimizer],
                    kappas: Sequence[float], data: Dataset, model_fn: Callable[[], nn.Module],
                    epochs: int, *, clipping: Sequence[str] = CLIPPING,
                    seeds: Sequence[int] = (0,), batch_size: int = 256,
                    device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """Test error of a stack over its top-level step size, for each clipping placement.

    Parameters
    ----------
    make_stack : callable
        ``make_stack(kappa, where)`` returns a fresh stack whose top level steps
        with ``kappa``; ``where`` is one of :data:`CLIPPING` and says where to put
        a :class:`coursekit.optim.clip.RunningMeanClip`: nowhere, on the
        network's gradients (``clip=`` of the bottom level) or on the
        hypergradients (``clip=`` of the top level).
    kappas : sequence of float
        The top-level step sizes.
    data, model_fn, epochs, batch_size, device
        As in :func:`train_stack`.
    clipping : sequence of str
        Which placements to run (a subset of :data:`CLIPPING`).
    seeds : sequence of int
        One run per seed; each (kappa, placement) sees the same seeds.

    Returns
    -------
    list of dict
        Per (kappa, placement): ``kappa``, ``clipping``, ``test error %`` (mean
        over seeds), ``spread`` (standard deviation over seeds, NaN for one seed),
        ``diverged`` (how many runs blew up) and ``final alpha`` (mean).
    """
    unknown = [where for where in clipping if where not in CLIPPING]
    if unknown:
        raise ValueError(f"Invalid clipping: {unknown} (choose from {CLIPPING})")
    if not seeds:
        raise ValueError("Invalid seeds: none given")
    records = []
    for kappa in kappas:
        for where in clipping:
            runs = [train_stack(lambda where=where, kappa=kappa: make_stack(kappa, where), data,
                                model_fn, epochs, batch_size=batch_size, seed=seed,
                                device=device) for seed in seeds]
            errors = np.array([100 * run.test_error for run in runs])
            records.append({
                "kappa": kappa,
                "clipping": where,
                "test error %": float(errors.mean()),
                "spread": float(errors.std(ddof=1)) if len(errors) > 1 else math.nan,
                "diverged": sum(run.diverged for run in runs),
                "final alpha": float(np.mean([run.final.get("alpha", math.nan) for run in runs])),
            })
    return records
