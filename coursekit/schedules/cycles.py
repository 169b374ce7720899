r"""Schedules that go up as well as down: cyclical learning rates and the one-cycle policy.

Both also cycle the momentum (SGD's ``momentum`` or Adam's ``beta1``) *inversely*
to the learning rate: a large step with a large momentum is unstable, so when the
rate peaks the momentum dips. Each schedule therefore comes as a pair of pure
functions of the step, one for the rate and one for the momentum, sharing the
same shape. The classes :class:`~coursekit.schedules.CyclicLR` and
:class:`~coursekit.schedules.OneCycleLR` call them.

References
----------
.. [1] Smith, L. N. (2017). Cyclical learning rates for training neural networks. IEEE
   Winter Conference on Applications of Computer Vision (WACV 2017), 464–472.
   doi:10.1109/WACV.2017.58. arXiv:1506.01186. [smith2017cyclical]
.. [2] Smith, L. N. and Topin, N. (2019). Super-convergence: Very fast training of neural
   networks using large learning rates. Proc. SPIE 11006, Artificial Intelligence and
   Machine Learning for Multi-Domain Operations Applications, 1100612.
   doi:10.1117/12.2520589. arXiv:1708.07120. [smith2019super]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from coursekit import _checks as checks
from coursekit.schedules.functions import Steps, over_steps
from coursekit.schedules.schedulers import ClosedFormLR

__all__ = ["CyclicLR", "OneCycleLR", "cyclical", "cyclical_momentum", "one_cycle",
           "one_cycle_momentum"]

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
ANNEAL_STRATEGIES = ("cos", "linear")


def _cyclical_height(t: np.ndarray, step_size_up: float, step_size_down: float | None,
                     mode: str, gamma: float, scale_fn: Callable[[float], float] | None,
                     scale_mode: str) -> np.ndarray:
    """The fraction in [0, 1] of the way from the low to the high end of the cycle at step t."""
    up = checks.positive("step_size_up", step_size_up)
    down = up if step_size_down is None else checks.positive("step_size_down", step_size_down)
    gamma = checks.positive("gamma", gamma)
    if scale_fn is None:
        checks.choice("mode", mode, CYCLIC_MODES)
    else:
        checks.choice("scale_mode", scale_mode, ("cycle", "iterations"))

    cycle = np.floor(1.0 + t / (up + down))           # 1, 2, 3, ...
    x = 1.0 + t / (up + down) - cycle                 # position in the cycle, in [0, 1)
    rise = up / (up + down)
    triangle = np.where(x <= rise, x / rise, (1.0 - x) / (1.0 - rise))

    if scale_fn is not None:
        argument = cycle if scale_mode == "cycle" else t
        scale = np.vectorize(scale_fn, otypes=[np.float64])(argument)
    elif mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 0.5 ** (cycle - 1.0)
    else:
        scale = gamma**t
    return triangle * scale


@over_steps
def cyclical(t: Steps, *, base_lr: float, max_lr: float, step_size_up: float = 2000,
             step_size_down: float | None = None, mode: str = "triangular", gamma: float = 1.0,
             scale_fn: Callable[[float], float] | None = None, scale_mode: str = "cycle"
             ) -> float | np.ndarray:
    r"""Cyclical learning rate (Smith, 2017; Raschka, 2021): a triangle wave between two bounds.

    With cycle length :math:`L = u + d` (``step_size_up`` + ``step_size_down``) and
    :math:`r = u / L`:

    .. math::
        c = \left\lfloor 1 + \frac{t}{L} \right\rfloor, \qquad
        x = 1 + \frac{t}{L} - c \in [0, 1), \qquad
        h = \begin{cases} x / r & x \le r \\ (1 - x) / (1 - r) & x > r \end{cases}

        \eta_t = \eta_{base} + (\eta_{max} - \eta_{base}) \, h \, s

    where the amplitude scale :math:`s` is 1 (``"triangular"``), :math:`2^{-(c-1)}`
    (``"triangular2"``, halved every cycle) or :math:`\gamma^t` (``"exp_range"``).
    A custom ``scale_fn`` replaces ``mode`` and is evaluated on the cycle number
    :math:`c` (``scale_mode="cycle"``) or on :math:`t` (``"iterations"``).

    References
    ----------
    .. [1] Smith, L. N. (2017). Cyclical learning rates for training neural networks.
       IEEE Winter Conference on Applications of Computer Vision (WACV 2017), 464–472.
       doi:10.1109/WACV.2017.58. arXiv:1506.01186. [smith2017cyclical]
    .. [2] Raschka, S. (2021). Lecture 12: Improving gradient descent-based
       optimization. Lecture slides, STAT 453: Introduction to Deep Learning and
       Generative Models, University of Wisconsin–Madison, Spring 2021.
       [raschka2021stat453]
    """
    base_lr = checks.nonnegative("base_lr", base_lr)
    max_lr = checks.nonnegative("max_lr", max_lr)
    height = _cyclical_height(t, step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
    return base_lr + (max_lr - base_lr) * height


@over_steps
def cyclical_momentum(t: Steps, *, base_momentum: float, max_momentum: float,
                      step_size_up: float = 2000, step_size_down: float | None = None,
                      mode: str = "triangular", gamma: float = 1.0,
                      scale_fn: Callable[[float], float] | None = None,
                      scale_mode: str = "cycle") -> float | np.ndarray:
    r"""The momentum that goes with :func:`cyclical`: the same wave, upside down.

    .. math:: \mu_t = \mu_{max} - (\mu_{max} - \mu_{base}) \, h \, s

    with :math:`h, s` as in :func:`cyclical`: momentum is ``max_momentum`` where
    the rate is lowest and ``base_momentum`` where it peaks.
    """
    base_momentum = checks.in_unit_interval("base_momentum", base_momentum)
    max_momentum = checks.in_unit_interval("max_momentum", max_momentum)
    height = _cyclical_height(t, step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
    return max_momentum - (max_momentum - base_momentum) * height


def _one_cycle_phase_ends(total_steps: int, pct_start: float, three_phase: bool) -> list[float]:
    """The step at which each phase ends (the last phase ends at ``total_steps - 1``)."""
    total_steps = checks.integer("total_steps", total_steps, minimum=1)
    pct_start = checks.in_unit_interval("pct_start", pct_start)
    peak = pct_start * total_steps - 1.0
    ends = [peak, 2.0 * peak, total_steps - 1.0] if three_phase else [peak, total_steps - 1.0]
    if not all(later > earlier for earlier, later in zip([0.0, *ends], ends, strict=False)):
        raise checks.invalid("pct_start", f"such that every phase of the cycle has more than "
                             f"one step (with total_steps={total_steps} they end at steps "
                             f"{ends})", pct_start)
    return ends


def _one_cycle(t: np.ndarray, values: list[float], total_steps: int, pct_start: float,
               anneal_strategy: str, three_phase: bool) -> np.ndarray:
    """Anneal from ``values[i]`` to ``values[i + 1]`` during phase ``i``."""
    ends = _one_cycle_phase_ends(total_steps, pct_start, three_phase)
    checks.choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
    if np.any(t > total_steps):
        raise checks.invalid("t", f"<= total_steps={total_steps} (where the one-cycle "
                             "schedule ends)", np.max(t))
    phase = np.minimum(np.searchsorted(np.asarray(ends), t, side="left"), len(ends) - 1)
    start_step = np.asarray([0.0, *ends[:-1]])[phase]
    pct = (t - start_step) / (np.asarray(ends)[phase] - start_step)
    start, end = np.asarray(values[:-1])[phase], np.asarray(values[1:])[phase]
    if anneal_strategy == "cos":
        return end + (start - end) * (1.0 + np.cos(np.pi * pct)) / 2.0
    return start + (end - start) * pct


@over_steps
def one_cycle(t: Steps, *, max_lr: float, total_steps: int, pct_start: float = 0.3,
              anneal_strategy: str = "cos", div_factor: float = 25.0,
              final_div_factor: float = 1e4, three_phase: bool = False) -> float | np.ndarray:
    r"""The 1cycle policy (Smith and Topin, 2019): one climb to ``max_lr``, one long descent.

    With :math:`\eta_{init} = \eta_{max} / \mathrm{div\_factor}` and
    :math:`\eta_{min} = \eta_{init} / \mathrm{final\_div\_factor}`, the rate anneals

    - two phases (default, fastai's variant): :math:`\eta_{init} \to \eta_{max}`
      over the first ``pct_start`` of the steps, then :math:`\eta_{max} \to \eta_{min}`;
    - three phases (the paper's): :math:`\eta_{init} \to \eta_{max} \to \eta_{init}`
      symmetrically, then :math:`\eta_{init} \to \eta_{min}`.

    Phase :math:`i` spans steps :math:`(e_{i-1}, e_i]` with :math:`e_0 = p T - 1`
    (:math:`p` = ``pct_start``; with three phases :math:`e_1 = 2pT - 2`), the last
    ending at :math:`T - 1`. Within a phase, with the fraction done
    :math:`f = (t - e_{i-1}) / (e_i - e_{i-1})`, the anneal from :math:`a` to :math:`b` is

    .. math:: \text{cos: } b + \frac{a - b}{2}(1 + \cos \pi f) \qquad
              \text{linear: } a + (b - a)\,f

    Valid for :math:`0 \le t \le T` (``t = T`` extrapolates one step, as PyTorch allows).

    References
    ----------
    .. [1] Smith, L. N. and Topin, N. (2019). Super-convergence: Very fast training of
       neural networks using large learning rates. Proc. SPIE 11006, Artificial
       Intelligence and Machine Learning for Multi-Domain Operations Applications,
       1100612. doi:10.1117/12.2520589. arXiv:1708.07120. [smith2019super]
    """
    max_lr = checks.nonnegative("max_lr", max_lr)
    div_factor = checks.positive("div_factor", div_factor)
    final_div_factor = checks.positive("final_div_factor", final_div_factor)
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    values = ([initial_lr, max_lr, initial_lr, min_lr] if three_phase
              else [initial_lr, max_lr, min_lr])
    return _one_cycle(t, values, total_steps, pct_start, anneal_strategy, three_phase)


@over_steps
def one_cycle_momentum(t: Steps, *, total_steps: int, base_momentum: float = 0.85,
                       max_momentum: float = 0.95, pct_start: float = 0.3,
                       anneal_strategy: str = "cos", three_phase: bool = False
                       ) -> float | np.ndarray:
    r"""The momentum that goes with :func:`one_cycle`, annealed over the same phases.

    ``max_momentum`` :math:`\to` ``base_momentum`` while the rate climbs, back to
    ``max_momentum`` while it falls (three phases: then held at ``max_momentum``).
    """
    base_momentum = checks.in_unit_interval("base_momentum", base_momentum)
    max_momentum = checks.in_unit_interval("max_momentum", max_momentum)
    values = ([max_momentum, base_momentum, max_momentum, max_momentum] if three_phase
              else [max_momentum, base_momentum, max_momentum])
    return _one_cycle(t, values, total_steps, pct_start, anneal_strategy, three_phase)


# ---------------------------------------------------------------------------- scheduler classes


def _momentum_key(optimizer: torch.optim.Optimizer) -> str:
    """Adam-like optimizers cycle ``betas[0]``; SGD-like ones ``momentum``."""
    if "betas" in optimizer.defaults:
        return "betas"
    if "momentum" in optimizer.defaults:
        return "momentum"
    raise checks.invalid("cycle_momentum", f"False for {type(optimizer).__name__}, which has "
                         "neither 'momentum' nor 'betas'", True)


def _set_momentum(group: dict, key: str, value: float) -> None:
    if key == "betas":
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class CyclicLR(ClosedFormLR):
    """Cyclical learning rate and inverse momentum (as ``torch``'s ``CyclicLR``).

    The rate of group g at step t is :func:`cyclical` with that group's
    ``base_lr``/``max_lr``; with ``cycle_momentum`` its momentum (or Adam's
    ``beta1``) is :func:`cyclical_momentum`. Step it after every batch.
    ``base_lr``, ``max_lr``, ``base_momentum`` and ``max_momentum`` may be lists
    with one value per group. A custom ``scale_fn`` is not part of ``state_dict()``.
    """

    _code_attributes = ("scale_fn",)

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float | list[float],
                 max_lr: float | list[float], step_size_up: int = 2000,
                 step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.8,
                 max_momentum: float | list[float] = 0.9, last_epoch: int = -1) -> None:
        n_groups = len(optimizer.param_groups)
        self.cycle_base_lrs = checks.per_group("base_lr", base_lr, n_groups)
        self.max_lrs = checks.per_group("max_lr", max_lr, n_groups)
        self.wave = dict(step_size_up=step_size_up, step_size_down=step_size_down, mode=mode,
                         gamma=gamma, scale_mode=scale_mode)
        self.scale_fn = scale_fn
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.momentum_key = _momentum_key(optimizer)
            self.base_momentums = checks.per_group("base_momentum", base_momentum, n_groups)
            self.max_momentums = checks.per_group("max_momentum", max_momentum, n_groups)
            self.momentum_at(0)    # validates the momentum bounds
        self.lr_at(0)              # validates the rest before the optimizer is touched
        if last_epoch == -1:       # the cycle starts at base_lr, which becomes the base rate
            for group, lr in zip(optimizer.param_groups, self.cycle_base_lrs, strict=True):
                group["lr"] = group["initial_lr"] = lr
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int) -> list[float]:
        return [cyclical(t, base_lr=low, max_lr=high, scale_fn=self.scale_fn, **self.wave)
                for low, high in zip(self.cycle_base_lrs, self.max_lrs, strict=True)]

    def momentum_at(self, t: int) -> list[float]:
        """The momentum (or ``beta1``) of each param group at step ``t``."""
        return [cyclical_momentum(t, base_momentum=low, max_momentum=high,
                                  scale_fn=self.scale_fn, **self.wave)
                for low, high in zip(self.base_momentums, self.max_momentums, strict=True)]

    def _on_step(self, t: int) -> None:
        if self.cycle_momentum:
            for group, value in zip(self.optimizer.param_groups, self.momentum_at(t), strict=True):
                _set_momentum(group, self.momentum_key, value)


class OneCycleLR(ClosedFormLR):
    """The 1cycle policy for the rate and, inversely, the momentum (as ``torch``'s ``OneCycleLR``).

    The rate of group g at step t is :func:`one_cycle` with that group's
    ``max_lr``; with ``cycle_momentum`` its momentum (or Adam's ``beta1``) is
    :func:`one_cycle_momentum`. Give ``total_steps``, or ``epochs`` and
    ``steps_per_epoch``; step it after every batch, at most ``total_steps`` times.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise checks.invalid("total_steps", "given (or both epochs and "
                                     "steps_per_epoch)", total_steps)
            total_steps = (checks.integer("epochs", epochs, minimum=1)
                           * checks.integer("steps_per_epoch", steps_per_epoch, minimum=1))
        self.total_steps = total_steps
        n_groups = len(optimizer.param_groups)
        self.max_lrs = checks.per_group("max_lr", max_lr, n_groups)
        self.phases = dict(total_steps=total_steps, pct_start=pct_start,
                           anneal_strategy=anneal_strategy, three_phase=three_phase)
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.momentum_key = _momentum_key(optimizer)
            self.base_momentums = checks.per_group("base_momentum", base_momentum, n_groups)
            self.max_momentums = checks.per_group("max_momentum", max_momentum, n_groups)
            self.momentum_at(0)
        initial_lrs = self.lr_at(0)
        if last_epoch == -1:       # the cycle starts at max_lr / div_factor
            for group, lr in zip(optimizer.param_groups, initial_lrs, strict=True):
                group["initial_lr"] = lr
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int) -> list[float]:
        return [one_cycle(t, max_lr=peak, div_factor=self.div_factor,
                          final_div_factor=self.final_div_factor, **self.phases)
                for peak in self.max_lrs]

    def momentum_at(self, t: int) -> list[float]:
        """The momentum (or ``beta1``) of each param group at step ``t``."""
        return [one_cycle_momentum(t, base_momentum=low, max_momentum=high, **self.phases)
                for low, high in zip(self.base_momentums, self.max_momentums, strict=True)]

    def _on_step(self, t: int) -> None:
        if self.cycle_momentum:
            for group, value in zip(self.optimizer.param_groups, self.momentum_at(t), strict=True):
                _set_momentum(group, self.momentum_key, value)
