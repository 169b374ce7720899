r"""Reduce-on-plateau as pure functions: the rule that cuts the rate when a metric stalls.

The "simple technique" of the Optimization II slides (Soleymani, 2024): fix the
learning rate until the error plateaus, then divide it by a fixed factor (e.g. 10).
Unlike the other schedules the rate here depends on the *metric history*, not on
the step alone, so the pure form is a state transition, applied once per epoch::

    state, reduce = plateau_step(state, metric, ...)      # one epoch of the rule
    lr = reduced_lr(lr, factor, min_lr, eps) if reduce else lr

and :func:`reduce_on_plateau` runs it over a whole metric sequence.
:class:`~coursekit.schedules.ReduceLROnPlateau` calls the same two functions.

The rule (as PyTorch's ``ReduceLROnPlateau``), for ``mode="min"``:

1. the metric *improves* if :math:`m < b (1 - \theta)` (``threshold_mode="rel"``)
   or :math:`m < b - \theta` (``"abs"``), :math:`b` the best so far
   (``mode="max"``: :math:`m > b (1 + \theta)` or :math:`m > b + \theta`);
   an improvement resets the count of bad epochs, anything else adds one;
2. during a cooldown after a reduction, bad epochs are not counted;
3. once the count exceeds ``patience``, the rate becomes
   :math:`\max(\eta \cdot \text{factor}, \eta_{\min})` (skipped if that changes it by
   no more than ``eps``), the count resets and a cooldown of ``cooldown`` epochs starts.

A NaN metric is never an improvement.

References
----------
.. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture slides,
   Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and Stanford
   cs231n). [soleymani2024training]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from coursekit import _checks as checks

__all__ = ["PlateauState", "ReduceLROnPlateau", "plateau_step", "reduce_on_plateau",
           "reduced_lr"]


class PlateauState(NamedTuple):
    """What the plateau rule remembers between epochs."""

    best: float
    num_bad_epochs: int = 0
    cooldown_counter: int = 0

    @classmethod
    def initial(cls, mode: str) -> PlateauState:
        """Before the first metric the best is the worst possible value for ``mode``."""
        return cls(best=math.inf if mode == "min" else -math.inf)


def _check_plateau_args(mode: str, factor: float, patience: int, threshold: float,
                       threshold_mode: str, cooldown: int, eps: float) -> None:
    """Validate the plateau rule's hyperparameters, naming the bad one."""
    checks.choice("mode", mode, ("min", "max"))
    checks.choice("threshold_mode", threshold_mode, ("rel", "abs"))
    checks.in_unit_interval("factor", factor, open_high=True)
    checks.integer("patience", patience, minimum=0)
    checks.nonnegative("threshold", threshold)
    checks.integer("cooldown", cooldown, minimum=0)
    checks.nonnegative("eps", eps)


def _improves(metric: float, best: float, mode: str, threshold: float,
              threshold_mode: str) -> bool:
    if mode == "min":
        bar = best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold
        return metric < bar
    bar = best * (1.0 + threshold) if threshold_mode == "rel" else best + threshold
    return metric > bar


def plateau_step(state: PlateauState, metric: float, *, mode: str = "min", patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0
                 ) -> tuple[PlateauState, bool]:
    """One epoch of the plateau rule: the new state, and whether to reduce the rate now."""
    metric = float(metric)
    best, bad, cooldown_counter = state
    if _improves(metric, best, mode, threshold, threshold_mode):
        best, bad = metric, 0
    else:
        bad += 1
    if cooldown_counter > 0:
        cooldown_counter -= 1
        bad = 0
    if bad > patience:
        return PlateauState(best, 0, cooldown), True
    return PlateauState(best, bad, cooldown_counter), False


def reduced_lr(lr: float, factor: float, min_lr: float, eps: float) -> float:
    r"""The rate after one cut: :math:`\max(\eta f, \eta_{\min})`, unless that moves it <= eps."""
    new_lr = max(lr * factor, min_lr)
    return new_lr if lr - new_lr > eps else lr


def reduce_on_plateau(metrics: Iterable[float], lr0: float = 1.0, *, mode: str = "min",
                      factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                      threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
                      eps: float = 1e-8) -> np.ndarray:
    """The learning rate after each epoch's metric, starting from ``lr0``.

    ``out[i]`` is the rate to use in the epoch after ``metrics[i]`` was observed
    (what ``scheduler.step(metrics[i])`` leaves in the optimizer).
    """
    _check_plateau_args(mode, factor, patience, threshold, threshold_mode, cooldown, eps)
    lr = checks.nonnegative("lr0", lr0)
    min_lr = checks.nonnegative("min_lr", min_lr)
    state = PlateauState.initial(mode)
    lrs = []
    for metric in metrics:
        state, reduce = plateau_step(state, metric, mode=mode, patience=patience,
                                     threshold=threshold, threshold_mode=threshold_mode,
                                     cooldown=cooldown)
        if reduce:
            lr = reduced_lr(lr, factor, min_lr, eps)
        lrs.append(lr)
    return np.asarray(lrs, dtype=np.float64)


class ReduceLROnPlateau(LRScheduler):
    """Cut the rate when a metric stops improving (as ``torch``'s ``ReduceLROnPlateau``).

    Call ``scheduler.step(metric)`` once per epoch with the monitored quantity
    (validation loss with ``mode="min"``, accuracy with ``mode="max"``). Each call
    applies :func:`plateau_step` and, when it says so, :func:`reduced_lr` to every
    param group, with that group's ``min_lr`` (a scalar or one value per group).

    It is an ``LRScheduler`` for ``isinstance`` checks but, like torch's, has no
    closed form in the step: its state is the best metric, the count of bad
    epochs and the cooldown counter, all saved by ``state_dict()``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0, eps: float = 1e-8) -> None:
        _check_plateau_args(mode, factor, patience, threshold, threshold_mode, cooldown, eps)
        self.optimizer = checks.instance("optimizer", optimizer, torch.optim.Optimizer,
                                         what="a torch.optim.Optimizer")
        self.min_lrs = [checks.nonnegative("min_lr", value) for value in
                        checks.per_group("min_lr", min_lr, len(optimizer.param_groups))]
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.best, self.num_bad_epochs, self.cooldown_counter = PlateauState.initial(mode)
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self, metrics: float) -> None:  # type: ignore[override]
        """Record one epoch's metric; reduce the rates if it has plateaued."""
        state = PlateauState(self.best, self.num_bad_epochs, self.cooldown_counter)
        state, reduce = plateau_step(state, metrics, mode=self.mode, patience=self.patience,
                                     threshold=self.threshold,
                                     threshold_mode=self.threshold_mode, cooldown=self.cooldown)
        self.best, self.num_bad_epochs, self.cooldown_counter = state
        self.last_epoch += 1
        if reduce:
            groups = self.optimizer.param_groups
            if len(groups) != len(self.min_lrs):
                raise checks.invalid("min_lrs", f"a list of {len(groups)}, one per param group "
                                     "of the optimizer now (set scheduler.min_lrs to match)",
                                     self.min_lrs)
            for group, min_lr in zip(groups, self.min_lrs, strict=True):
                group["lr"] = reduced_lr(float(group["lr"]), self.factor, min_lr, self.eps)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
