r"""Learning-rate schedulers with PyTorch's interface, each calling one pure function.

A scheduler here is a ``torch.optim.lr_scheduler.LRScheduler``: build it on an
optimizer (ours or torch's), call ``scheduler.step()`` after ``optimizer.step()``,
read ``get_last_lr()``, save and restore it with ``state_dict()`` /
``load_state_dict()``. Classes that PyTorch also has carry the same name,
arguments and defaults, and produce the same learning rates (the tests check
300 steps of each against torch).

The difference is inside. PyTorch updates most rates *recursively*
(``lr <- lr * gamma``), so the rate at step t depends on every earlier step and on
anyone else who touched ``group["lr"]``. Here every rate is a *closed form*:

    lr of group g at step t = schedule(t, lr0 = base lr of group g)

with ``schedule`` one of the pure functions of :mod:`coursekit.schedules.functions`.
That makes ``scheduler.lr_at(t)`` available for any t without stepping, and makes
``state_dict`` just the step count and the base rates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from coursekit import _checks as checks
from coursekit.schedules.functions import (
    Steps,
    _segments,
    constant_factor,
    cosine_annealing,
    cosine_warm_restarts,
    exponential_decay,
    geometric_decay,
    halving,
    inverse_sqrt_decay,
    inverse_time_decay,
    linear_schedule,
    linear_warmup,
    multistep_decay,
    one_over_t,
    polynomial_decay,
    step_decay,
    trapezoidal,
    warmup_cosine,
)

__all__ = [
    "ClosedFormLR",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialDecayLR",
    "ExponentialLR",
    "FormulaLR",
    "HalvingLR",
    "InverseSqrtLR",
    "InverseTimeLR",
    "LambdaLR",
    "LinearLR",
    "LinearWarmupLR",
    "MultiStepLR",
    "OneOverTLR",
    "PolynomialLR",
    "SequentialLR",
    "StepLR",
    "TrapezoidalLR",
    "WarmupCosineLR",
]


class ClosedFormLR(LRScheduler):
    """Base class: the learning rates at step ``t`` are ``lr_at(t)``, one per param group.

    Subclasses implement :meth:`lr_at`; those that also drive another
    hyperparameter (momentum in ``CyclicLR``) override :meth:`_on_step`.
    Attributes named in ``_code_attributes`` hold functions rebuilt by the
    constructor; they are left out of ``state_dict()`` so that it pickles (and
    loads with ``torch.load(..., weights_only=True)``).
    """

    _code_attributes: tuple[str, ...] = ()

    def lr_at(self, t: int) -> list[float]:
        """The learning rate of each param group at step ``t``."""
        raise NotImplementedError(f"{type(self).__name__} must implement lr_at(t)")

    def _on_step(self, t: int) -> None:
        """Set hyperparameters other than lr for step ``t`` (default: none)."""

    def get_lr(self) -> list[float]:
        """The learning rates for the current step ``last_epoch`` (called by ``step()``)."""
        self._on_step(self.last_epoch)
        return self.lr_at(self.last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: every attribute except the optimizer and functions."""
        skip = {"optimizer", *self._code_attributes}
        return {key: value for key, value in self.__dict__.items() if key not in skip}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (functions stay as constructed)."""
        self.__dict__.update(state_dict)


class FormulaLR(ClosedFormLR):
    """A scheduler following one pure function: ``lr_g(t) = schedule(t, base_lr_g)``.

    Subclasses store their hyperparameters and implement :meth:`schedule`. The
    constructor evaluates it once before touching the optimizer, so bad arguments
    raise the pure function's ``ValueError`` (naming the argument) at once.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, last_epoch: int = -1) -> None:
        self.schedule(0, 1.0)
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        """The pure function of the step this scheduler follows (``t`` may be an array)."""
        raise NotImplementedError(f"{type(self).__name__} must implement schedule(t, lr0)")

    def lr_at(self, t: int) -> list[float]:
        return [self.schedule(t, lr0) for lr0 in self.base_lrs]


# ------------------------------------------------------------------------- PyTorch's schedulers


class StepLR(FormulaLR):
    r"""Multiply the rate by ``gamma`` every ``step_size`` steps (as ``torch``'s ``StepLR``).

    :math:`\eta_t = \eta_0 \gamma^{\lfloor t / \mathrm{step\_size} \rfloor}` (:func:`step_decay`).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return step_decay(t, lr0, step_size=self.step_size, gamma=self.gamma)


class MultiStepLR(FormulaLR):
    r"""Multiply the rate by ``gamma`` at each milestone (as ``torch``'s ``MultiStepLR``).

    :math:`\eta_t = \eta_0 \gamma^{\#\{m_i \le t\}}` (:func:`multistep_decay`).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: Sequence[int],
                 gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return multistep_decay(t, lr0, milestones=self.milestones, gamma=self.gamma)


class ConstantLR(FormulaLR):
    r"""Scale the rate by ``factor`` for ``total_iters`` steps (as ``torch``'s ``ConstantLR``).

    :math:`\eta_t = \eta_0 f` for :math:`t < T`, :math:`\eta_0` after (:func:`constant_factor`).
    ``factor=1.0`` gives the constant schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factor: float = 1.0 / 3,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return constant_factor(t, lr0, factor=self.factor, total_iters=self.total_iters)


class LinearLR(FormulaLR):
    r"""Move the multiplier linearly from ``start_factor`` to ``end_factor`` (as ``torch``'s).

    :math:`\eta_t = \eta_0 (s + (e - s) \min(t, T) / T)` (:func:`linear_schedule`).
    ``LinearLR(opt, 1.0, 0.0, T)`` is the lectures' linear decay. Unlike torch's,
    ``start_factor=0`` is allowed (a warm-up from zero).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return linear_schedule(t, lr0, start_factor=self.start_factor,
                               end_factor=self.end_factor, total_iters=self.total_iters)


class ExponentialLR(FormulaLR):
    r"""Multiply the rate by ``gamma`` every step (as ``torch``'s ``ExponentialLR``).

    :math:`\eta_t = \eta_0 \gamma^t` (:func:`geometric_decay`).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, gamma: float,
                 last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return geometric_decay(t, lr0, gamma=self.gamma)


class PolynomialLR(FormulaLR):
    r"""Decay polynomially to zero over ``total_iters`` steps (as ``torch``'s ``PolynomialLR``).

    :math:`\eta_t = \eta_0 (1 - \min(t, T)/T)^p` (:func:`polynomial_decay`).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_iters: int = 5,
                 power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return polynomial_decay(t, lr0, total_iters=self.total_iters, power=self.power)


class CosineAnnealingLR(FormulaLR):
    r"""Cosine annealing to ``eta_min`` over ``T_max`` steps (as ``torch``'s).

    :math:`\eta_t = \eta_{\min} + \frac12(\eta_0 - \eta_{\min})(1 + \cos(\pi t / T_{\max}))`
    (:func:`cosine_annealing`), in closed form where torch recurses.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return cosine_annealing(t, lr0, T_max=self.T_max, eta_min=self.eta_min)


class CosineAnnealingWarmRestarts(FormulaLR):
    r"""Cosine annealing restarted after ``T_0``, ``T_0 T_mult``, ... steps (SGDR; as torch's).

    See :func:`cosine_warm_restarts`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, T_0: int, T_mult: int = 1,
                 eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return cosine_warm_restarts(t, lr0, T_0=self.T_0, T_mult=self.T_mult,
                                    eta_min=self.eta_min)


class LambdaLR(ClosedFormLR):
    r"""The rate times a function of the step (as ``torch``'s ``LambdaLR``).

    :math:`\eta_{g,t} = \eta_{g,0} \, \lambda_g(t)`, with one function for all
    groups or a list with one per group. Any function of
    :mod:`coursekit.schedules.functions` with ``lr0=1`` is such a multiplier::

        LambdaLR(opt, with_warmup(partial(cosine_annealing, T_max=90), warmup_steps=10))

    The functions are not part of ``state_dict()``; rebuild them when loading.
    """

    _code_attributes = ("lr_lambdas",)

    def __init__(self, optimizer: torch.optim.Optimizer,
                 lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self.lr_lambdas = checks.per_group("lr_lambda", lr_lambda, len(optimizer.param_groups))
        for i, fn in enumerate(self.lr_lambdas):
            checks.function(f"lr_lambda[{i}]", fn, what="a function of t")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int) -> list[float]:
        return [float(lr0 * fn(t)) for fn, lr0 in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class SequentialLR(ClosedFormLR):
    r"""Run schedulers one after another, switching at the milestones (as ``torch``'s).

    Scheduler :math:`i` runs on steps :math:`[m_i, m_{i+1})` counting its own steps
    from 0 there (:func:`~coursekit.schedules.functions.sequential`). The classic
    use is warm-up followed by a decay::

        SequentialLR(opt, [LinearWarmupLR(opt, 10), CosineAnnealingLR(opt, T_max=90)],
                     milestones=[10])

    The schedulers must be coursekit's (closed-form) schedulers on the same optimizer.
    """

    _code_attributes = ("schedulers",)

    def __init__(self, optimizer: torch.optim.Optimizer, schedulers: Sequence[ClosedFormLR],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        if len(schedulers) == 0:
            raise checks.invalid("schedulers", "a non-empty list", schedulers)
        for i, scheduler in enumerate(schedulers):
            checks.instance(f"schedulers[{i}]", scheduler, ClosedFormLR,
                            what="a coursekit.schedules scheduler (closed-form in the step)")
            if scheduler.optimizer is not optimizer:
                raise checks.invalid(f"schedulers[{i}]", "a scheduler of this optimizer",
                                     scheduler)
        if len(milestones) != len(schedulers) - 1:
            raise checks.invalid("milestones", f"{len(schedulers) - 1} steps for "
                                 f"{len(schedulers)} schedulers", list(milestones))
        for i, m in enumerate(milestones):
            checks.integer(f"milestones[{i}]", m, minimum=1 if i == 0 else milestones[i - 1] + 1)
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)

    def _current(self, t: int) -> tuple[ClosedFormLR, int]:
        index, local = _segments(np.asarray(t, dtype=np.float64), self.milestones)
        return self.schedulers[int(index)], int(local)

    def lr_at(self, t: int) -> list[float]:
        scheduler, local = self._current(t)
        return scheduler.lr_at(local)

    def _on_step(self, t: int) -> None:
        scheduler, local = self._current(t)
        scheduler.last_epoch = local
        scheduler._on_step(local)

    def state_dict(self) -> dict[str, Any]:
        """Own state plus each scheduler's ``state_dict()``, under ``"schedulers"``."""
        return {**super().state_dict(),
                "schedulers": [scheduler.state_dict() for scheduler in self.schedulers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        own = {key: value for key, value in state_dict.items() if key != "schedulers"}
        super().load_state_dict(own)
        for scheduler, state in zip(self.schedulers, state_dict["schedulers"], strict=True):
            scheduler.load_state_dict(state)


# ------------------------------------------------------------------ the lectures' other schedules


class ExponentialDecayLR(FormulaLR):
    r"""Exponential decay :math:`\eta_t = \eta_0 e^{-k t}` (:func:`exponential_decay`)."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: float, last_epoch: int = -1) -> None:
        self.k = k
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return exponential_decay(t, lr0, k=self.k)


class HalvingLR(FormulaLR):
    r"""Halve the rate every ``every`` steps (:func:`halving`).

    :math:`\eta_t = \eta_0 2^{-\lfloor t/n \rfloor}` with :math:`n` = ``every``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, every: int = 1,
                 last_epoch: int = -1) -> None:
        self.every = every
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return halving(t, lr0, every=self.every)


class InverseTimeLR(FormulaLR):
    r"""Inverse-time decay: :math:`\eta_t = \eta_0 / (1 + k t)` (:func:`inverse_time_decay`)."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: float, last_epoch: int = -1) -> None:
        self.k = k
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return inverse_time_decay(t, lr0, k=self.k)


class OneOverTLR(FormulaLR):
    r"""The Robbins-Monro 1/t schedule: :math:`\eta_t = \eta_0 / (t + 1)` (:func:`one_over_t`)."""

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return one_over_t(t, lr0)


class InverseSqrtLR(FormulaLR):
    r"""Inverse square-root decay :math:`\eta_0 / \sqrt{1 + k t}` (:func:`inverse_sqrt_decay`)."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: float = 1.0,
                 last_epoch: int = -1) -> None:
        self.k = k
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return inverse_sqrt_decay(t, lr0, k=self.k)


class LinearWarmupLR(FormulaLR):
    r"""Linear warm-up to the base rate over ``warmup_steps``, then flat (:func:`linear_warmup`).

    Compose it with any decay through :class:`SequentialLR`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int,
                 start_factor: float = 0.0, last_epoch: int = -1) -> None:
        self.warmup_steps, self.start_factor = warmup_steps, start_factor
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return linear_warmup(t, lr0, warmup_steps=self.warmup_steps,
                             start_factor=self.start_factor)


class TrapezoidalLR(FormulaLR):
    r"""Warm up, hold, then decay linearly (:func:`trapezoidal`; Xing et al., 2018)."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                 decay_steps: int, start_factor: float = 0.0, end_factor: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.total_steps, self.warmup_steps, self.decay_steps = (total_steps, warmup_steps,
                                                                 decay_steps)
        self.start_factor, self.end_factor = start_factor, end_factor
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return trapezoidal(t, lr0, total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                           decay_steps=self.decay_steps, start_factor=self.start_factor,
                           end_factor=self.end_factor)


class WarmupCosineLR(FormulaLR):
    r"""Linear warm-up, then cosine decay to zero at ``total_steps`` (:func:`warmup_cosine`)."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
                 start_factor: float = 0.0, last_epoch: int = -1) -> None:
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.start_factor = start_factor
        super().__init__(optimizer, last_epoch)

    def schedule(self, t: Steps, lr0: float) -> float | np.ndarray:
        return warmup_cosine(t, lr0, total_steps=self.total_steps,
                             warmup_steps=self.warmup_steps, start_factor=self.start_factor)
