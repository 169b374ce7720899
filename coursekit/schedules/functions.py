r"""Learning-rate schedules as pure functions of the step ``t``.

Every function here maps a step (an int, a float, or a NumPy array of steps,
all >= 0) to the learning rate at that step, with no hidden state::

    cosine_annealing(10, 0.1, T_max=100)                     # one value
    cosine_annealing(np.arange(100), 0.1, T_max=100)         # a whole curve to plot

``lr0`` (the lectures' :math:`\eta_0` or :math:`\alpha_0`) is the initial learning
rate. Its default of 1.0 turns each function into a *multiplier*, which is what
``LambdaLR`` and :class:`~coursekit.schedules.HyperparameterScheduler` expect::

    LambdaLR(opt, functools.partial(inverse_time_decay, k=0.01))

These functions are the single source of truth: each scheduler class (in
:mod:`coursekit.schedules.schedulers`) calls one of them with its own step count.

Steps count from ``t = 0`` (the first step, before any decay), as
``scheduler.last_epoch`` does after construction. Where a lecture writes a
formula with 1-based steps (``1/t``, ``1/sqrt(t)``), the docstring says how the
shift is made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from coursekit import _checks as checks

__all__ = [
    "Schedule",
    "Steps",
    "constant",
    "constant_factor",
    "cosine_annealing",
    "cosine_warm_restarts",
    "exponential_decay",
    "geometric_decay",
    "halving",
    "inverse_sqrt_decay",
    "inverse_time_decay",
    "linear_decay",
    "linear_schedule",
    "linear_warmup",
    "multistep_decay",
    "one_over_t",
    "per_epoch",
    "polynomial_decay",
    "sequential",
    "step_decay",
    "trapezoidal",
    "warmup_cosine",
    "with_warmup",
]


def over_steps(formula: Callable[..., Any]) -> Callable[..., Any]:
    """Let ``formula(t, ...)`` accept an int, a float or an array of steps ``t >= 0``.

    The wrapped formula always receives ``t`` as a float64 NumPy array (0-d for a
    single step) and may use NumPy operations freely; the caller gets a Python
    ``float`` back for a single step and a float64 array of ``t``'s shape otherwise.
    """

    @functools.wraps(formula)
    def evaluate(t: Any, *args: Any, **kwargs: Any) -> float | np.ndarray:
        steps = checks.array("t", t, at_least=0)
        value = np.broadcast_to(formula(steps, *args, **kwargs), steps.shape)
        return float(value) if steps.ndim == 0 else value.astype(np.float64)

    return evaluate

Steps = int | float | np.ndarray
"""A step ``t >= 0`` or an array of them."""

Schedule = Callable[[Steps], Any]
"""Anything mapping steps to rates (or multipliers), e.g. a ``partial`` of a function here."""


def _ramp(x: np.ndarray, length: float) -> np.ndarray:
    """0 for ``x <= 0``, ``x / length`` in between, 1 for ``x >= length`` (a step if length 0)."""
    if length == 0:
        return (x >= 0).astype(np.float64)
    return np.clip(x / length, 0.0, 1.0)


def _segments(t: np.ndarray, milestones: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Which segment ``[m_i, m_{i+1})`` each step falls in, and the step counted from m_i."""
    starts = np.array([0, *milestones], dtype=np.float64)
    index = np.searchsorted(np.asarray(milestones, dtype=np.float64), t, side="right")
    return index, t - starts[index]


# ---------------------------------------------------------------------------- constant, steps


@over_steps
def constant(t: Steps, lr0: float = 1.0) -> float | np.ndarray:
    r"""The constant schedule :math:`\eta_t = \eta_0`.

    The baseline every other schedule is compared with ("fix the learning rate until
    the error plateaus"; Soleymani, 2024). As a scheduler: ``ConstantLR(opt,
    factor=1.0)`` or simply none.

    References
    ----------
    .. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    """
    return checks.nonnegative("lr0", lr0) + 0.0 * t


@over_steps
def step_decay(t: Steps, lr0: float = 1.0, *, step_size: int, gamma: float = 0.1
               ) -> float | np.ndarray:
    r"""Step decay: multiply by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / \mathrm{step\_size} \rfloor}

    Scheduler: :class:`~coursekit.schedules.StepLR`.
    """
    lr0 = checks.nonnegative("lr0", lr0)
    step_size = checks.integer("step_size", step_size, minimum=1)
    gamma = checks.nonnegative("gamma", gamma)
    return lr0 * gamma ** np.floor_divide(t, step_size)


@over_steps
def multistep_decay(t: Steps, lr0: float = 1.0, *, milestones: Sequence[int],
                    gamma: float = 0.1) -> float | np.ndarray:
    r"""Multi-step decay: multiply by ``gamma`` at each milestone.

    .. math:: \eta_t = \eta_0 \, \gamma^{\#\{i : m_i \le t\}}

    E.g. ResNets: ``milestones=[30, 60, 90], gamma=0.1`` ("step-wise"; Soleymani, 2024).
    A milestone listed twice counts twice. Scheduler:
    :class:`~coursekit.schedules.MultiStepLR`.

    References
    ----------
    .. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    gamma = checks.nonnegative("gamma", gamma)
    ms = sorted(checks.integer("milestones", m, minimum=0) for m in milestones)
    return lr0 * gamma ** np.searchsorted(np.asarray(ms, dtype=np.float64), t, side="right")


@over_steps
def halving(t: Steps, lr0: float = 1.0, *, every: int = 1) -> float | np.ndarray:
    r"""Halve the learning rate every ``every`` steps: :math:`\eta_t = \eta_{t-1}/2`.

    One of the common decays of the STAT 453 slides (Raschka, 2021).

    .. math:: \eta_t = \eta_0 \, 2^{-\lfloor t / \text{every} \rfloor}

    The step decay with ``gamma = 1/2``. Scheduler: :class:`~coursekit.schedules.HalvingLR`.

    References
    ----------
    .. [1] Raschka, S. (2021). Lecture 12: Improving gradient descent-based
       optimization. Lecture slides, STAT 453: Introduction to Deep Learning and
       Generative Models, University of Wisconsin–Madison, Spring 2021.
       [raschka2021stat453]
    """
    return step_decay(t, lr0, step_size=every, gamma=0.5)


# ---------------------------------------------------------------------------- smooth decays


@over_steps
def exponential_decay(t: Steps, lr0: float = 1.0, *, k: float) -> float | np.ndarray:
    r"""Exponential decay with decay rate ``k`` (Raschka, 2021).

    .. math:: \eta_t = \eta_0 \, e^{-k t}

    The same curve as :func:`geometric_decay` with :math:`\gamma = e^{-k}`. The
    CSL4020 project report scheduled Adam's betas this way with ``k = 1``
    (:math:`\beta e^{-t}`), which is very aggressive per step; ``k = 0.01`` or a
    per-epoch step (see :func:`per_epoch`) are gentler. Scheduler:
    :class:`~coursekit.schedules.ExponentialDecayLR`.

    References
    ----------
    .. [1] Raschka, S. (2021). Lecture 12: Improving gradient descent-based
       optimization. Lecture slides, STAT 453: Introduction to Deep Learning and
       Generative Models, University of Wisconsin–Madison, Spring 2021.
       [raschka2021stat453]
    .. [2] CSL4020 (n.d.). Intermediate project report 2: a hand-written Adam with
       scheduled betas. Student project report, CSL4020 Deep Learning. [csl4020project]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    k = checks.nonnegative("k", k)
    return lr0 * np.exp(-k * t)


@over_steps
def geometric_decay(t: Steps, lr0: float = 1.0, *, gamma: float) -> float | np.ndarray:
    r"""PyTorch's exponential form: multiply by ``gamma`` every step.

    .. math:: \eta_t = \eta_0 \, \gamma^t

    ``gamma < 1`` decays, ``gamma > 1`` grows (as in an lr range test). Scheduler:
    :class:`~coursekit.schedules.ExponentialLR`.
    """
    lr0 = checks.nonnegative("lr0", lr0)
    gamma = checks.positive("gamma", gamma)
    return lr0 * gamma**t


@over_steps
def inverse_time_decay(t: Steps, lr0: float = 1.0, *, k: float) -> float | np.ndarray:
    r"""Inverse-time decay ("inverse decay"; Raschka, 2021).

    .. math:: \eta_t = \frac{\eta_0}{1 + k t}

    Scheduler: :class:`~coursekit.schedules.InverseTimeLR`.

    References
    ----------
    .. [1] Raschka, S. (2021). Lecture 12: Improving gradient descent-based
       optimization. Lecture slides, STAT 453: Introduction to Deep Learning and
       Generative Models, University of Wisconsin–Madison, Spring 2021.
       [raschka2021stat453]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    k = checks.nonnegative("k", k)
    return lr0 / (1.0 + k * t)


@over_steps
def one_over_t(t: Steps, lr0: float = 1.0) -> float | np.ndarray:
    r"""The 1/t schedule of Robbins and Monro (1951).

    .. math:: \eta_t = \frac{\eta_0}{t + 1}

    i.e. :math:`\eta_0 / k` at the 1-based iteration :math:`k = t + 1`. SGD
    converges almost surely when the step sizes satisfy (Robbins and Monro, 1951;
    Soleymani, 2024)

    .. math:: \sum_k \eta_k = \infty \quad\text{and}\quad \sum_k \eta_k^2 < \infty:

    the first so the iterates can still reach any point, the second so the noise
    they accumulate stays bounded. For :math:`\eta_k = \eta_0/k` the sum is the
    harmonic series (it diverges like :math:`\eta_0 \ln k`) and the sum of squares
    is :math:`\eta_0^2 \pi^2 / 6`. :math:`1/k` is the fastest decay meeting both
    conditions and the optimal rate for strongly convex losses. It is
    :func:`inverse_time_decay` with ``k = 1``. Scheduler:
    :class:`~coursekit.schedules.OneOverTLR`.

    References
    ----------
    .. [1] Robbins, H. and Monro, S. (1951). A stochastic approximation method. The
       Annals of Mathematical Statistics, 22(3), 400–407. doi:10.1214/aoms/1177729586.
       [robbins1951stochastic]
    .. [2] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    """
    return inverse_time_decay(t, lr0, k=1.0)


@over_steps
def inverse_sqrt_decay(t: Steps, lr0: float = 1.0, *, k: float = 1.0) -> float | np.ndarray:
    r"""Inverse square-root decay (Soleymani, 2024); the Transformer's schedule after warm-up.

    .. math:: \eta_t = \frac{\eta_0}{\sqrt{1 + k t}}

    With ``k = 1`` this is :math:`\alpha_0 / \sqrt{k'}` at the 1-based iteration
    :math:`k' = t + 1`. It decays slower than 1/t: :math:`\sum \eta_t^2` diverges.
    After its warm-up, the learning rate of the Transformer (Vaswani et al., 2017)
    decays this way. Scheduler: :class:`~coursekit.schedules.InverseSqrtLR`.

    References
    ----------
    .. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    .. [2] Vaswani, A., Shazeer, N., Parmar, N., Uszkoreit, J., Jones, L., Gomez, A. N.,
       Kaiser, Ł. and Polosukhin, I. (2017). Attention is all you need. NIPS 2017.
       arXiv:1706.03762. [vaswani2017attention]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    k = checks.nonnegative("k", k)
    return lr0 / np.sqrt(1.0 + k * t)


@over_steps
def polynomial_decay(t: Steps, lr0: float = 1.0, *, total_iters: int = 5, power: float = 1.0
                     ) -> float | np.ndarray:
    r"""Polynomial decay to zero over ``total_iters`` steps, then zero.

    .. math:: \eta_t = \eta_0 \left(1 - \frac{\min(t, T)}{T}\right)^{p}

    ``power = 1`` is linear decay. Scheduler: :class:`~coursekit.schedules.PolynomialLR`.
    """
    lr0 = checks.nonnegative("lr0", lr0)
    total_iters = checks.integer("total_iters", total_iters, minimum=1)
    power = checks.nonnegative("power", power)
    return lr0 * (1.0 - _ramp(t, total_iters)) ** power


@over_steps
def linear_schedule(t: Steps, lr0: float = 1.0, *, start_factor: float = 1.0 / 3,
                    end_factor: float = 1.0, total_iters: int = 5) -> float | np.ndarray:
    r"""Interpolate the multiplier linearly from ``start_factor`` to ``end_factor``.

    .. math:: \eta_t = \eta_0 \left(s + (e - s) \frac{\min(t, T)}{T}\right)

    The building block of warm-up (``s < e = 1``) and linear decay (``s = 1, e = 0``).
    Scheduler: :class:`~coursekit.schedules.LinearLR`.
    """
    lr0 = checks.nonnegative("lr0", lr0)
    start_factor = checks.nonnegative("start_factor", start_factor)
    end_factor = checks.nonnegative("end_factor", end_factor)
    total_iters = checks.integer("total_iters", total_iters, minimum=1)
    return lr0 * (start_factor + (end_factor - start_factor) * _ramp(t, total_iters))


@over_steps
def linear_decay(t: Steps, lr0: float = 1.0, *, total_steps: int) -> float | np.ndarray:
    r"""Linear decay to zero at ``total_steps`` (Soleymani, 2024), then zero.

    .. math:: \alpha_t = \alpha_0 \left(1 - \frac{t}{T}\right)

    Scheduler: ``LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=T)``.

    References
    ----------
    .. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    """
    return linear_schedule(t, lr0, start_factor=1.0, end_factor=0.0, total_iters=total_steps)


@over_steps
def constant_factor(t: Steps, lr0: float = 1.0, *, factor: float = 1.0 / 3,
                    total_iters: int = 5) -> float | np.ndarray:
    r"""A reduced learning rate for the first ``total_iters`` steps, then the full one.

    .. math:: \eta_t = \eta_0 \cdot \begin{cases} f & t < T \\ 1 & t \ge T \end{cases}

    A crude warm-up. Scheduler: :class:`~coursekit.schedules.ConstantLR`.
    """
    lr0 = checks.nonnegative("lr0", lr0)
    factor = checks.in_unit_interval("factor", factor)
    total_iters = checks.integer("total_iters", total_iters, minimum=1)
    return lr0 * np.where(t < total_iters, factor, 1.0)


# ---------------------------------------------------------------------------- cosine


def _cosine(t: np.ndarray, lr0: float, T: Any, eta_min: float) -> np.ndarray:
    return eta_min + (lr0 - eta_min) * (1.0 + np.cos(np.pi * t / T)) / 2.0


@over_steps
def cosine_annealing(t: Steps, lr0: float = 1.0, *, T_max: float, eta_min: float = 0.0
                     ) -> float | np.ndarray:
    r"""Cosine annealing from ``lr0`` down to ``eta_min`` over ``T_max`` steps.

    .. math:: \eta_t = \eta_{\min} + \frac{1}{2}(\eta_0 - \eta_{\min})
              \left(1 + \cos\frac{t \pi}{T_{\max}}\right)

    (Loshchilov and Hutter, 2017; Soleymani, 2024, with :math:`\eta_{\min} = 0`.) Past
    ``T_max`` the formula is evaluated as written, so the rate climbs back up with
    period ``2 T_max``, exactly as PyTorch's ``CosineAnnealingLR`` does; use
    :func:`cosine_warm_restarts` to restart instead. Scheduler:
    :class:`~coursekit.schedules.CosineAnnealingLR`.

    References
    ----------
    .. [1] Loshchilov, I. and Hutter, F. (2017). SGDR: Stochastic gradient descent with
       warm restarts. ICLR 2017. arXiv:1608.03983. [loshchilov2017sgdr]
    .. [2] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    T_max = checks.positive("T_max", T_max)
    eta_min = checks.nonnegative("eta_min", eta_min)
    return _cosine(t, lr0, T_max, eta_min)


@over_steps
def cosine_warm_restarts(t: Steps, lr0: float = 1.0, *, T_0: int, T_mult: int = 1,
                         eta_min: float = 0.0) -> float | np.ndarray:
    r"""Cosine annealing with warm restarts (SGDR; Loshchilov and Hutter, 2017).

    The run is cut into cycles of lengths :math:`T_i = T_0 \, T_{mult}^i`; inside
    a cycle, with :math:`T_{cur}` the steps since the last restart,

    .. math:: \eta_t = \eta_{\min} + \frac{1}{2}(\eta_0 - \eta_{\min})
              \left(1 + \cos\frac{T_{cur} \pi}{T_i}\right)

    so the rate jumps back to :math:`\eta_0` at every restart. Scheduler:
    :class:`~coursekit.schedules.CosineAnnealingWarmRestarts`.

    References
    ----------
    .. [1] Loshchilov, I. and Hutter, F. (2017). SGDR: Stochastic gradient descent with
       warm restarts. ICLR 2017. arXiv:1608.03983. [loshchilov2017sgdr]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    T_0 = checks.integer("T_0", T_0, minimum=1)
    T_mult = checks.integer("T_mult", T_mult, minimum=1)
    eta_min = checks.nonnegative("eta_min", eta_min)
    if T_mult == 1:
        return _cosine(np.mod(t, T_0), lr0, T_0, eta_min)
    restarts = [0]                       # cycle i starts at T_0 (T_mult^i - 1) / (T_mult - 1)
    while restarts[-1] <= np.max(t, initial=0.0):
        restarts.append(restarts[-1] + T_0 * T_mult ** (len(restarts) - 1))
    cycle = np.searchsorted(np.asarray(restarts, dtype=np.float64), t, side="right") - 1
    T_cur = t - np.asarray(restarts, dtype=np.float64)[cycle]
    return _cosine(T_cur, lr0, T_0 * float(T_mult) ** cycle, eta_min)


# ---------------------------------------------------------------------------- warm-up, trapezoid


@over_steps
def linear_warmup(t: Steps, lr0: float = 1.0, *, warmup_steps: int, start_factor: float = 0.0
                  ) -> float | np.ndarray:
    r"""Linear warm-up from ``start_factor * lr0`` to ``lr0`` over ``warmup_steps``, then flat.

    .. math:: \eta_t = \eta_0 \left(s + (1 - s) \frac{\min(t, W)}{W}\right)

    High initial rates can make the loss explode; ramping up over the first steps
    prevents it (Soleymani, 2024; gradual warm-up as in Goyal et al., 2017). Combine
    with any decay through :func:`with_warmup`.
    Scheduler: :class:`~coursekit.schedules.LinearWarmupLR`.

    References
    ----------
    .. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    .. [2] Goyal, P., Dollár, P., Girshick, R., Noordhuis, P., Wesolowski, L., Kyrola,
       A., Tulloch, A., Jia, Y. and He, K. (2017). Accurate, large minibatch SGD:
       Training ImageNet in 1 hour. arXiv:1706.02677. [goyal2017accurate]
    """
    start_factor = checks.in_unit_interval("start_factor", start_factor)
    return linear_schedule(t, lr0, start_factor=start_factor, end_factor=1.0,
                           total_iters=checks.integer("warmup_steps", warmup_steps, minimum=1))


@over_steps
def trapezoidal(t: Steps, lr0: float = 1.0, *, total_steps: int, warmup_steps: int,
                decay_steps: int, start_factor: float = 0.0, end_factor: float = 0.0
                ) -> float | np.ndarray:
    r"""Trapezoidal schedule (Xing et al., 2018; Soleymani, 2024): warm up, hold, decay linearly.

    With :math:`W` = ``warmup_steps``, :math:`D` = ``decay_steps``, :math:`T` = ``total_steps``:

    .. math:: \eta_t = \eta_0 \left(s + (1-s)\,\rho\!\left(\tfrac{t}{W}\right)\right)
              \left(1 + (e-1)\,\rho\!\left(\tfrac{t - (T - D)}{D}\right)\right),
              \qquad \rho(x) = \min(\max(x, 0), 1)

    i.e. linear from :math:`s\eta_0` to :math:`\eta_0` on :math:`[0, W]`, flat on
    :math:`[W, T - D]`, linear down to :math:`e\eta_0` on :math:`[T - D, T]`.
    Scheduler: :class:`~coursekit.schedules.TrapezoidalLR`.

    References
    ----------
    .. [1] Xing, C., Arpit, D., Tsirigotis, C. and Bengio, Y. (2018). A walk with SGD.
       arXiv:1802.08770. [xing2018walk]
    .. [2] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture
       slides, Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and
       Stanford cs231n). [soleymani2024training]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    total_steps = checks.integer("total_steps", total_steps, minimum=1)
    warmup_steps = checks.integer("warmup_steps", warmup_steps, minimum=0)
    decay_steps = checks.integer("decay_steps", decay_steps, minimum=0)
    start_factor = checks.in_unit_interval("start_factor", start_factor)
    end_factor = checks.in_unit_interval("end_factor", end_factor)
    if warmup_steps + decay_steps > total_steps:
        raise checks.invalid("warmup_steps", f"<= total_steps - decay_steps = "
                             f"{total_steps - decay_steps}", warmup_steps)
    up = start_factor + (1.0 - start_factor) * _ramp(t, warmup_steps)
    down = 1.0 + (end_factor - 1.0) * _ramp(t - (total_steps - decay_steps), decay_steps)
    return lr0 * up * down


@over_steps
def warmup_cosine(t: Steps, lr0: float = 1.0, *, total_steps: int, warmup_steps: int = 0,
                  start_factor: float = 0.0) -> float | np.ndarray:
    r"""Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``total_steps``.

    With :math:`W` = ``warmup_steps``, :math:`T` = ``total_steps``, :math:`s` =
    ``start_factor``:

    .. math:: \eta_t = \eta_0 \begin{cases} s + (1 - s)\, t / W & t < W \\
              \frac{1}{2}\left(1 + \cos\frac{\pi \min(t - W,\ T - W)}{T - W}\right)
              & t \ge W \end{cases}

    The schedule of a run whose length is known in advance: the warm-up of Goyal et
    al. (2017), then the cosine of Loshchilov and Hutter (2017) over what remains, so
    the rate reaches zero at the last step and stays there (it does not climb back as
    :func:`cosine_annealing` past ``T_max`` does). ``warmup_steps=0`` is cosine
    annealing over the whole budget. The same rates as
    ``with_warmup(partial(cosine_annealing, lr0, T_max=T - W), W)``, and as PyTorch's
    ``SequentialLR([LinearLR(s, 1, W), CosineAnnealingLR(T - W)], [W])`` before step
    :math:`T`. Scheduler: :class:`~coursekit.schedules.WarmupCosineLR`.

    References
    ----------
    .. [1] Goyal, P., Dollár, P., Girshick, R., Noordhuis, P., Wesolowski, L., Kyrola,
       A., Tulloch, A., Jia, Y. and He, K. (2017). Accurate, large minibatch SGD:
       Training ImageNet in 1 hour. arXiv:1706.02677. [goyal2017accurate]
    .. [2] Loshchilov, I. and Hutter, F. (2017). SGDR: Stochastic gradient descent with
       warm restarts. ICLR 2017. arXiv:1608.03983. [loshchilov2017sgdr]
    """
    lr0 = checks.nonnegative("lr0", lr0)
    total_steps = checks.integer("total_steps", total_steps, minimum=1)
    warmup_steps = checks.integer("warmup_steps", warmup_steps, minimum=0)
    start_factor = checks.in_unit_interval("start_factor", start_factor)
    if warmup_steps >= total_steps:
        raise checks.invalid("warmup_steps", f"< total_steps = {total_steps} (some steps must "
                             "be left for the decay)", warmup_steps)
    decay = total_steps - warmup_steps
    up = start_factor + (1.0 - start_factor) * _ramp(t, warmup_steps)
    down = _cosine(np.clip(t - warmup_steps, 0.0, decay), 1.0, decay, 0.0)
    return lr0 * np.where(t < warmup_steps, up, down)


# ---------------------------------------------------------------------------- composition


@over_steps
def sequential(t: Steps, schedules: Sequence[Schedule], milestones: Sequence[int]
               ) -> float | np.ndarray:
    r"""Run ``schedules[i]`` on ``[m_i, m_{i+1})``, each restarted from its own step 0.

    .. math:: \eta_t = f_i(t - m_i) \quad \text{for } m_i \le t < m_{i+1},\ m_0 = 0

    The pure-function form of :class:`~coursekit.schedules.SequentialLR`.
    """
    if len(milestones) != len(schedules) - 1:
        raise checks.invalid("milestones", f"{len(schedules) - 1} steps for {len(schedules)} "
                             "schedules", list(milestones))
    for i, m in enumerate(milestones):
        checks.integer(f"milestones[{i}]", m, minimum=1 if i == 0 else milestones[i - 1] + 1)
    index, local = _segments(t, milestones)
    out = np.empty(t.shape, dtype=np.float64)
    for i, schedule in enumerate(schedules):
        here = index == i
        if np.any(here):
            out[here] = schedule(local[here])
    return out


def with_warmup(schedule: Schedule, warmup_steps: int, start_factor: float = 0.0) -> Schedule:
    r"""Prefix any schedule with a linear warm-up to its initial value.

    .. math:: \eta_t = \begin{cases} f(0) \left(s + (1 - s)\, t / W\right) & t < W \\
              f(t - W) & t \ge W \end{cases}

    ``with_warmup(partial(cosine_annealing, lr0=0.1, T_max=90), warmup_steps=10)``
    warms up for 10 steps, then anneals for 90. The same as
    ``SequentialLR(opt, [LinearWarmupLR(opt, W), scheduler], milestones=[W])``.
    """
    warmup_steps = checks.integer("warmup_steps", warmup_steps, minimum=1)
    start_factor = checks.in_unit_interval("start_factor", start_factor)

    def warmed_up(t: Steps) -> float | np.ndarray:
        peak = float(schedule(0))
        ramp = functools.partial(linear_warmup, lr0=peak, warmup_steps=warmup_steps,
                                 start_factor=start_factor)
        return sequential(t, [ramp, schedule], [warmup_steps])

    return warmed_up


def per_epoch(schedule: Schedule, steps_per_epoch: int) -> Schedule:
    r"""Hold ``schedule`` constant within each epoch: :math:`\eta_t = f(\lfloor t / n \rfloor)`.

    Turns a per-step formula into its per-epoch staircase while the scheduler is
    still stepped every batch, e.g. the :math:`\beta_1 e^{-\text{epoch}}` of the CSL4020
    project report:
    ``per_epoch(partial(exponential_decay, k=1.0), steps_per_epoch=len(loader))``.

    References
    ----------
    .. [1] CSL4020 (n.d.). Intermediate project report 2: a hand-written Adam with
       scheduled betas. Student project report, CSL4020 Deep Learning. [csl4020project]
    """
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch, minimum=1)

    def by_epoch(t: Steps) -> float | np.ndarray:
        epoch = np.floor_divide(np.asarray(t, dtype=np.float64), steps_per_epoch)
        return schedule(float(epoch) if epoch.ndim == 0 else epoch)

    return by_epoch

