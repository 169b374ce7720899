r"""Hypergradients made visible: SGD's derived by hand and checked four ways, and stacks trained.

Gradient descent with step size ``alpha`` moves ``w_t = w_{t-1} - alpha g_{t-1}``
with ``g_{t-1} = grad f(w_{t-1})``. The next loss ``f(w_t)`` is therefore a
function of ``alpha``, and the chain rule gives its derivative::

    d f(w_t) / d alpha = grad f(w_t) . d w_t / d alpha = -g_t . g_{t-1}

the *hypergradient* (Baydin et al., 2018): negative (so alpha should grow) while
successive gradients agree, positive when they point against each other. :func:`sgd_hypergradient`
computes it four independent ways at one point: the formula, autograd through
the update, a central difference in ``alpha``, and the update that
:mod:`coursekit.optim.hyper` actually makes to alpha in a two-step
``SGD / SGD(kappa)`` stack.

:func:`train_stack` trains a model with a hyper-optimizer stack
(``hyper.ModuleWrapper``) on a :class:`coursekit.data.Dataset` through
:func:`coursekit.train.fit` and returns what a lecture plots: the loss of every
step, every level's hyperparameters over time, the test error and whether the
run blew up. :func:`sweep_top_level` repeats it over the top level's step size
``kappa``, without and with the running-mean clipping of a student presentation of
Chandra et al. (2022), and over seeds (a :func:`coursekit.experiments.sweep.sweep`),
which is how the presentation measured the stacks' sensitivity.

References
----------
.. [1] Baydin, A. G., Cornish, R., Martínez Rubio, D., Schmidt, M. and Wood, F. (2018).
   Online learning rate adaptation with hypergradient descent. ICLR 2018. arXiv:1703.04782.
   [baydin2018online]
.. [2] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient descent: The
   ultimate optimizer. NeurIPS 2022. arXiv:1909.13371. [chandra2022gradient]
.. [3] A student presentation of Chandra et al. (2022): final presentation on "Gradient
   Descent: The Ultimate Optimizer", with a running-mean gradient-norm clipping rule for the
   top-level step size. [chandra2022presentation]
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import _checks as checks
from coursekit.data import Dataset
from coursekit.experiments.sweep import sweep
from coursekit.optim import hyper
from coursekit.runtime import seed as seed_everything
from coursekit.train import evaluate, fit

__all__ = ["CLIPPING", "StackRun", "sgd_hypergradient", "sweep_top_level", "train_stack"]

CLIPPING = ("none", "parameters", "hypergradients")
"""Where :func:`sweep_top_level` asks for the running-mean clipping rule (``RunningMeanClip``)."""


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
    checks.flat_tensor("w", w)
    checks.positive("h", h)
    checks.positive("kappa", kappa)
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

    def closure() -> torch.Tensor:
        wrapper.zero_grad()
        loss = f(param)
        loss.backward()
        return loss

    for _ in range(2):
        wrapper.step(closure)
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
        The mini-batch loss of every step (a diverged run's last one is the
        non-finite loss it stopped at).
    hyperparameters : list of dict
        Per level of the stack, bottom first: ``{name: values per step}``
        (``HyperOptimizer.history``), one value per step taken (a diverged run
        took no step on its last loss).
    final : dict
        The bottom level's hyperparameters at the end.
    test_error : float
        Share of misclassified test examples, in [0, 1]: one minus the accuracy of
        :func:`coursekit.train.evaluate`, or 1 when the weights are no longer finite.
    diverged : bool
        A mini-batch loss became non-finite and training stopped there
        (:func:`coursekit.train.fit`'s rule).
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
        """One row of a results table (``pandas.DataFrame([r.record() for r in results])``)."""
        return {"stack": self.label, "test error %": 100 * self.test_error,
                "final alpha": self.final.get("alpha", math.nan), "diverged": self.diverged,
                "seconds": self.seconds}


def train_stack(make: Callable[..., hyper.ModuleWrapper], data: Dataset,
                model_fn: Callable[[], nn.Module], epochs: int, *, batch_size: int = 256,
                seed: int = 0, device: torch.device | str | None = None,
                loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                label: str | None = None) -> StackRun:
    """Train ``model_fn()`` with the stack ``make(params)`` for ``epochs`` epochs, by ``fit``.

    ``coursekit.seed(seed)`` is called first, so equal seeds give equal initial
    weights; :func:`coursekit.train.fit` trains with the batches of ``seed``
    (those of ``data.train.batches(batch_size, seed=seed)``, a new order every
    epoch). Divergence is fit's rule: the first non-finite mini-batch loss ends the
    run, with no step taken on it (``diverged`` reports it instead of fit's
    warning). Before fit, this function had a loop of its own that checked the loss
    once per epoch and kept stepping to the end of that epoch; a run that diverges
    now stops earlier, so its losses, hyperparameters and test error differ from
    that loop's. Runs that do not diverge take the same steps as before.

    Parameters
    ----------
    make : callable
        ``make(params)`` returns a :class:`~coursekit.optim.hyper.ModuleWrapper` with
        a fresh stack over ``params``, e.g.
        ``lambda params: hyper.ModuleWrapper(params, hyper.SGD(0.01, optimizer=hyper.SGD(0.01)))``.
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
    checks.integer("epochs", epochs, minimum=1)
    device = data.train.x.device if device is None else torch.device(device)
    seed_everything(seed)
    model = model_fn().to(device)
    optimizer = checks.instance("make(params)", make(model.parameters()), hyper.ModuleWrapper,
                                what="a hyper.ModuleWrapper (a stack over the parameters)")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Training diverged", category=RuntimeWarning)
        history = fit(model, optimizer, data.train, epochs, loss=loss, device=device,
                      batch_size=batch_size, progress=False, seed=seed)
    seconds = time.perf_counter() - start
    stack = optimizer.stack
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    # Not finite: no prediction at all (evaluate's argmax of a row of NaN is class 0).
    test_error = 1.0 - evaluate(model, data.test, loss=loss)["accuracy"] if finite else 1.0
    return StackRun(label=repr(stack) if label is None else label,
                    losses=np.asarray(history.batch_loss, dtype=np.float64),
                    hyperparameters=[level.history for level in stack.levels()],
                    final=stack.hyperparameters(), test_error=test_error,
                    diverged=history.diverged, seconds=seconds)


def sweep_top_level(make: Callable[..., hyper.ModuleWrapper], kappas: Sequence[float],
                    data: Dataset, model_fn: Callable[[], nn.Module], epochs: int, *,
                    clipping: Sequence[str] = CLIPPING, seeds: Sequence[int] = (0,),
                    batch_size: int = 256,
                    device: torch.device | str | None = None) -> pd.DataFrame:
    """Test error of a stack over its top-level step size, for each clipping placement.

    A :func:`coursekit.experiments.sweep.sweep` (serial) of :func:`train_stack` over
    ``kappa`` x ``clipping`` x ``seed``, summarised over the seeds.

    Parameters
    ----------
    make : callable
        ``make(params, kappa=kappa, clipping=where)`` returns a
        :class:`~coursekit.optim.hyper.ModuleWrapper` over ``params`` with a fresh
        stack whose top level steps with ``kappa``; ``where`` is one of
        :data:`CLIPPING` and says where to put a
        :class:`coursekit.optim.clip.RunningMeanClip`: nowhere, on the network's
        gradients (``clip=`` of the bottom level) or on the hypergradients
        (``clip=`` of the top level).
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
    pandas.DataFrame
        One row per (kappa, placement), in that order: ``kappa``, ``clipping``,
        ``test error %`` (mean over seeds), ``sem`` (its standard error over
        seeds, NaN for one seed), ``seeds``, ``diverged`` (how many runs blew up)
        and ``final alpha`` (mean).
    """
    checks.vector("kappas", kappas, at_least=0)
    for where in clipping:
        checks.choice("clipping", where, CLIPPING)
    seeds = checks.integers("seeds", seeds, minimum=0)

    def run(kappa: float, clipping: str, seed: int) -> dict[str, Any]:
        result = train_stack(functools.partial(make, kappa=kappa, clipping=clipping), data,
                             model_fn, epochs, batch_size=batch_size, seed=seed, device=device)
        return {"test error %": 100 * result.test_error, "diverged": result.diverged,
                "final alpha": result.final.get("alpha", math.nan)}

    table = sweep(run, {"kappa": list(kappas), "clipping": list(clipping), "seed": list(seeds)},
                  executor="serial", progress=False)
    for row, trace in table.attrs["tracebacks"].items():
        failed = table.loc[row]
        raise RuntimeError(f"the run at kappa={failed['kappa']!r}, clipping="
                           f"{failed['clipping']!r}, seed={failed['seed']} failed: "
                           f"{failed['error']}\n{trace}")
    return (table.groupby(["kappa", "clipping"], sort=False)
            .agg(**{"test error %": ("test error %", "mean"), "sem": ("test error %", "sem"),
                    "seeds": ("seed", "size"), "diverged": ("diverged", "sum"),
                    "final alpha": ("final alpha", "mean")})
            .reset_index())
