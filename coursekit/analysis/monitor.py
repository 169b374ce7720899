r"""Watching a training run from inside: per-layer gradient norms and update-to-weight ratios.

The loss curve says *that* a run goes wrong; the layers say *where* and often *why*.
:class:`LayerMonitor` is an ``on_step`` hook of :func:`coursekit.train.fit` that
records, after every step :math:`t` and for every weight tensor :math:`W` of the
model,

.. math::
    \lVert g_t \rVert, \qquad \lVert W_{t-1} \rVert, \qquad
    \lVert \Delta W_t \rVert = \lVert W_t - W_{t-1} \rVert, \qquad
    \rho_t = \frac{\lVert \Delta W_t \rVert}{\lVert W_{t-1} \rVert},

the gradient of the step's batch, the weights before the step, the change the step
made and their ratio (norms are Frobenius norms of the whole tensor). The update is
measured, not computed from the gradient: for plain SGD it is :math:`\eta g_t`, with
momentum :math:`\eta v_t`, for Adam :math:`\eta \hat m_t / (\sqrt{\hat v_t} +
\epsilon)`, so the ratio means the same for every optimizer.

The rule of thumb of the cs231n notes (Karpathy, 2016): the ratio should be
somewhere around :math:`10^{-3}`; much lower suggests a learning rate that is too
small, much higher one that is too large. It is a heuristic for a first look, not a
law: the notes call the ratio of about :math:`10^{-2}` of their own small example
network still healthy. Two readings need no rule of thumb: a ratio that is exactly
zero (the layer has stopped learning, e.g. all its ReLU units are dead) and one near
1 or above (each step rewrites the layer).

Usage::

    monitor = LayerMonitor(model)
    history = train.fit(model, optimizer, data.train, epochs=5, on_step=monitor)
    table = monitor.table()             # one row per (step, parameter)
    table.groupby("parameter")["update_ratio"].median()
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch
from torch import nn

from coursekit import _checks as checks
from coursekit.train import StepInfo

__all__ = ["COLUMNS", "LayerMonitor"]

COLUMNS = ("step", "epoch", "parameter", "lr", "grad_norm", "weight_norm", "update_norm",
           "update_ratio")
"""The columns of :meth:`LayerMonitor.table`, in order."""


def _norm(tensor: torch.Tensor) -> float:
    """The Frobenius norm of a tensor, accumulated in float64."""
    return float(torch.linalg.vector_norm(tensor.detach(), dtype=torch.float64))


class LayerMonitor:
    r"""An ``on_step`` hook recording per-parameter gradient norm, weight norm and update ratio.

    Build it on the model just before :func:`coursekit.train.fit` trains that model
    (it keeps a copy of the weights as they are then, the weights before the first
    step), and pass it as ``fit(..., on_step=monitor)``. After every step it reads
    the gradient left in each parameter's ``.grad`` and the change of the weights
    since the step before (module notes); :meth:`table` returns what it recorded.
    It never stops training.

    Parameters
    ----------
    model : torch.nn.Module
        The model ``fit`` trains.
    every : int
        Record every ``every``-th step (steps ``every``, ``2 * every``, ...; the
        step numbers of :class:`coursekit.train.StepInfo`). The weights are still
        copied before each recorded step, so the update is that step's alone.
    weights_only : bool
        Record the weight matrices and kernels (parameters with two or more
        dimensions: the tensors the rule of thumb is about) and skip the biases,
        whose norms start near zero and make ratios that say little. False records
        every trainable parameter.

    Attributes
    ----------
    model : torch.nn.Module
        The model watched.
    parameters : tuple of str
        The names (``model.named_parameters()``) of the parameters recorded.

    Notes
    -----
    The gradient is the one ``.grad`` holds after the step: for a plain step the
    gradient of the step's batch at the weights before it; in closure mode (L-BFGS)
    that of the closure's last evaluation. ``weight_norm`` is the norm *before* the
    step, as in the cs231n notes, so ``update_ratio = update_norm / weight_norm``
    (infinite when a tensor starts at zero and moves, NaN when it stays at zero).

    References
    ----------
    .. [1] Karpathy, A. (2016). CS231n: Convolutional Neural Networks for Visual
       Recognition, course notes, "Neural Networks Part 3: Learning and
       Evaluation", section "Ratio of weights:updates". Stanford University.
       https://cs231n.github.io/neural-networks-3/ [karpathy2016neural]
    """

    def __init__(self, model: nn.Module, *, every: int = 1, weights_only: bool = True) -> None:
        self.model = checks.instance("model", model, nn.Module, what="a torch.nn.Module")
        self.every = checks.integer("every", every, minimum=1)
        checks.choice("weights_only", weights_only, (True, False))
        named = [(name, p) for name, p in model.named_parameters()
                 if p.requires_grad and (p.ndim >= 2 or not weights_only)]
        if not named:
            rule = ("a module with trainable weight matrices (parameters of two or more "
                    "dimensions; weights_only=False records the others)" if weights_only
                    else "a module with trainable parameters")
            raise checks.invalid("model", rule, type(model).__name__)
        self.parameters = tuple(name for name, _ in named)
        self._tensors = tuple(p for _, p in named)
        self._before = [p.detach().clone() for p in self._tensors]
        self._rows: list[dict[str, Any]] = []

    def __call__(self, info: StepInfo) -> None:
        """Record step ``info.step`` if it is one of the recorded steps; never stop training."""
        if info.model is not self.model:
            raise checks.invalid("on_step", "the LayerMonitor of the model fit trains (this "
                                 "one watches another model)", type(info.model).__name__)
        if info.step % self.every == 0:
            for name, p, before in zip(self.parameters, self._tensors, self._before,
                                       strict=True):
                after = p.detach()
                weight = _norm(before)
                update = _norm(after - before.to(after.device))
                ratio = update / weight if weight > 0 else (math.inf if update > 0 else math.nan)
                self._rows.append({
                    "step": info.step, "epoch": info.epoch, "parameter": name, "lr": info.lr,
                    "grad_norm": math.nan if p.grad is None else _norm(p.grad),
                    "weight_norm": weight, "update_norm": update, "update_ratio": ratio})
        if (info.step + 1) % self.every == 0:
            self._before = [p.detach().clone() for p in self._tensors]

    def table(self) -> pd.DataFrame:
        """What was recorded: one row per (recorded step, parameter), columns :data:`COLUMNS`.

        ``step`` and ``epoch`` as in :class:`coursekit.train.StepInfo` (steps from 1,
        epochs from 0); ``lr`` the learning rate of the step (first parameter group);
        the norms and ratio as in the module notes.
        """
        return pd.DataFrame(self._rows, columns=list(COLUMNS))

    def __repr__(self) -> str:
        steps = len(self._rows) // len(self.parameters)
        return (f"LayerMonitor({len(self.parameters)} parameters, every {self.every} steps, "
                f"{steps} steps recorded)")
