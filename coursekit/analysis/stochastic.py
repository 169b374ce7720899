r"""Stochastic gradients measured: their variance, their cost, and SGD on a noisy landscape.

Training minimises the empirical risk, the mean of per-example losses
:math:`\ell_i(\theta)` over the :math:`n` training examples,

.. math::
    L(\theta) = \frac1n \sum_{i=1}^n \ell_i(\theta), \qquad
    \nabla L(\theta) = \bar g = \frac1n \sum_{i=1}^n g_i, \quad g_i = \nabla \ell_i(\theta).

A mini-batch :math:`\mathcal B` of :math:`B` examples gives the estimate
:math:`g_{\mathcal B} = \frac1B \sum_{i \in \mathcal B} g_i`. It is unbiased,
:math:`E[g_{\mathcal B}] = \bar g`, and its total variance (the trace of its covariance)
falls like :math:`1/B`:

.. math::
    E\,\lVert g_{\mathcal B} - \bar g \rVert^2 = \frac{\sigma^2}{B}
    \quad\text{(examples drawn with replacement)}, \qquad
    \frac{\sigma^2}{B}\,\frac{n - B}{n - 1} \quad\text{(without replacement)},

where :math:`\sigma^2 = \frac1n \sum_i \lVert g_i - \bar g \rVert^2` is the per-example
variance. The second factor, the finite-population correction, makes the full batch
:math:`B = n` exact. This module measures both sides of that law on a real model:

``per_sample_gradients``
    Every :math:`g_i` at once, with ``torch.func`` (``vmap`` of ``grad``).
``gradient_variance``
    :math:`\sigma^2` from the per-example gradients, and
    :math:`E\lVert g_{\mathcal B} - \bar g \rVert^2` measured by drawing mini-batches and
    back-propagating through each, for a list of batch sizes; a
    :class:`GradientVariance` with the prediction beside the measurement.
``time_epochs``
    Wall-clock seconds of one epoch of SGD for each batch size: fewer, larger,
    vectorised steps against many small ones.

and runs SGD on a two-dimensional landscape whose gradient noise is known exactly
(:class:`coursekit.landscapes.NoisyGradient`):

``run_sgd``
    Many independent runs of
    :math:`\theta_{k+1} = \theta_k - \eta_k\,(\nabla f(\theta_k) + \xi_k / \sqrt{B_k})`
    under a step-size schedule :math:`\eta_k` and a batch-size schedule :math:`B_k`;
    an :class:`SGDRuns` with each run's distance to the minimum.
``noise_floor``
    Where constant-step SGD settles on a quadratic: the stationary
    :math:`E\lVert\theta - \theta^*\rVert^2`, proportional to :math:`\eta / B` for small steps.
``constant_step_bound``, ``decreasing_step_bound``
    What the convergence theory of SGD on a strongly convex function guarantees:
    linear convergence to a floor proportional to :math:`\eta` for a constant step,
    :math:`O(1/k)` for steps :math:`\beta/(\gamma + k)` (Bottou et al., 2018).
``phase_schedule``
    Per-step learning rates and batch sizes for phases measured in examples, to
    compare "decay the learning rate" with "increase the batch size" at equal data.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import _checks as checks
from coursekit.data import Batches
from coursekit.landscapes import Landscape, NoisyGradient, Quadratic

__all__ = [
    "EpochTimes",
    "GradientVariance",
    "SGDRuns",
    "constant_step_bound",
    "decreasing_step_bound",
    "gradient_variance",
    "noise_floor",
    "per_sample_gradients",
    "phase_schedule",
    "run_sgd",
    "time_epochs",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PerStep = float | Sequence[float] | np.ndarray | Callable[[int], float]


# ----------------------------------------------------------------------------- checks


def _batch_sizes(batch_sizes: Any, n: int) -> np.ndarray:
    """A non-empty 1-D int array of batch sizes, each in [1, n]; one int is a list of one."""
    if not isinstance(batch_sizes, (list, tuple, range, np.ndarray)):
        return np.asarray([checks.integer("batch_sizes", batch_sizes, minimum=1, maximum=n)],
                          dtype=np.int64)
    sizes = checks.integers("batch_sizes", batch_sizes, minimum=1)
    for i, size in enumerate(sizes):
        checks.integer(f"batch_sizes[{i}]", size, minimum=1, maximum=n)
    return np.asarray(sizes, dtype=np.int64)


def _check_data(x: Any, y: Any) -> None:
    checks.instance("x", x, torch.Tensor)
    checks.instance("y", y, torch.Tensor)
    if len(x) == 0:
        raise checks.invalid("x", "non-empty", x)
    checks.length("y", y, len(x), "targets, one per row of x")


def _trainable(model: nn.Module) -> tuple[list[str], list[torch.Tensor]]:
    checks.instance("model", model, nn.Module, what="a torch.nn.Module")
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise checks.invalid("model", "a module with trainable parameters", model)
    return [name for name, _ in named], [p for _, p in named]


# ----------------------------------------------------------------------------- gradients


def _flat_gradient(model: nn.Module, params: list[torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor, loss: LossFn) -> torch.Tensor:
    """``grad (1/B) sum_i loss_i`` over the batch ``(x, y)``, flattened to shape (P,)."""
    grads = torch.autograd.grad(loss(model(x), y), params)
    return torch.cat([g.reshape(-1) for g in grads])


def per_sample_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         loss: LossFn = F.cross_entropy, *,
                         chunk_size: int = 512) -> torch.Tensor:
    r"""The gradient of every example's own loss, one row per example.

    .. math::
        G_{i,:} = g_i = \nabla_\theta\, \ell\big(f(x_i; \theta), y_i\big)

    computed with ``torch.func.vmap`` over ``torch.func.grad`` of the model called
    functionally on one example at a time (a batch of one), ``chunk_size`` examples per
    vectorised call. Columns follow ``model.named_parameters()`` (trainable ones only),
    each parameter flattened. The model is evaluated as it is: put it in ``eval()``
    mode first if it has dropout or batch normalisation.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs to outputs.
    x, y : torch.Tensor
        Inputs ``(n, ...)`` and targets ``(n, ...)`` on the model's device.
    loss : callable
        ``loss(outputs, targets)`` averaged over the batch (cross entropy by default).
    chunk_size : int
        Examples per vectorised call (bounds the memory of intermediate results).

    Returns
    -------
    torch.Tensor
        Shape ``(n, P)`` with ``P`` the number of trainable scalars, in the dtype of the
        parameters.
    """
    _check_data(x, y)
    chunk_size = checks.integer("chunk_size", chunk_size, minimum=1)
    names, params = _trainable(model)
    frozen = {name: p.detach() for name, p in model.named_parameters()
              if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def example_loss(values: tuple[torch.Tensor, ...], xi: torch.Tensor,
                     yi: torch.Tensor) -> torch.Tensor:
        state = {**frozen, **buffers, **dict(zip(names, values, strict=True))}
        out = torch.func.functional_call(model, state, (xi.unsqueeze(0),))
        return loss(out, yi.unsqueeze(0))

    per_example = torch.func.vmap(torch.func.grad(example_loss), in_dims=(None, 0, 0))
    values = tuple(p.detach() for p in params)
    rows = []
    for start in range(0, len(x), chunk_size):
        grads = per_example(values, x[start:start + chunk_size], y[start:start + chunk_size])
        rows.append(torch.cat([g.reshape(len(g), -1) for g in grads], dim=1))
    return torch.cat(rows)


@dataclass(frozen=True, eq=False)
class GradientVariance:
    r"""How noisy mini-batch gradients are, measured and predicted, per batch size.

    Attributes
    ----------
    batch_sizes : numpy.ndarray of int
        The batch sizes :math:`B` measured.
    variance : numpy.ndarray
        Measured :math:`E\lVert g_{\mathcal B} - \bar g\rVert^2`: the mean over
        ``repeats`` drawn mini-batches of the squared distance between the mini-batch
        gradient and the full gradient.
    stderr : numpy.ndarray
        Standard error of each entry of ``variance`` (spread over the draws /
        sqrt(repeats)).
    deviations : numpy.ndarray, shape (n,)
        :math:`\lVert g_i - \bar g\rVert^2` for every example: how much each one
        contributes to the noise (after training, a few hard examples dominate).
    per_sample_variance : float
        :math:`\sigma^2 = \frac1n \sum_i \lVert g_i - \bar g\rVert^2`, the mean of
        ``deviations``.
    full_gradient_norm2 : float
        :math:`\lVert \bar g \rVert^2`, the signal the noise is compared with.
    n : int
        Number of examples the mini-batches are drawn from.
    repeats : int
        Mini-batches drawn per batch size.
    replace : bool
        Whether examples were drawn with replacement (iid) or without (as in an epoch).
    """

    batch_sizes: np.ndarray
    variance: np.ndarray
    stderr: np.ndarray
    deviations: np.ndarray
    per_sample_variance: float
    full_gradient_norm2: float
    n: int
    repeats: int
    replace: bool

    def predicted(self, batch_sizes: Any = None) -> np.ndarray:
        r"""The law: :math:`\sigma^2/B`, times :math:`(n - B)/(n - 1)` without replacement.

        Parameters
        ----------
        batch_sizes : array_like of int, optional
            Where to evaluate it (default: the measured ``batch_sizes``).
        """
        B = self.batch_sizes if batch_sizes is None else np.asarray(batch_sizes, np.float64)
        law = self.per_sample_variance / B
        if self.replace or self.n == 1:
            return law
        return law * (self.n - B) / (self.n - 1)

    def table(self) -> pd.DataFrame:
        """One row per batch size: measured variance, its standard error, the law, their ratio."""
        predicted = self.predicted()
        return pd.DataFrame({
            "batch size": self.batch_sizes.astype(int), "measured": self.variance,
            "stderr": self.stderr, "predicted": predicted,
            "measured / predicted": np.divide(self.variance, predicted,
                                              out=np.full(len(predicted), np.nan),
                                              where=predicted != 0)})


def gradient_variance(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      batch_sizes: Sequence[int], *, repeats: int = 100,
                      replace: bool = False, loss: LossFn = F.cross_entropy,
                      seed: int = 0, chunk_size: int = 512) -> GradientVariance:
    r"""Measure the variance of mini-batch gradients against the :math:`\sigma^2/B` law.

    With the parameters fixed at their current values:

    1. the full gradient :math:`\bar g` by one backward pass over all of ``(x, y)``;
    2. the per-example variance :math:`\sigma^2 = \frac1n \sum_i \lVert g_i - \bar g
       \rVert^2` from :func:`per_sample_gradients`;
    3. for each batch size :math:`B`, ``repeats`` mini-batches drawn at random (with or
       without replacement), each back-propagated as in training, and the mean of
       :math:`\lVert g_{\mathcal B} - \bar g \rVert^2` over them.

    Step 3 does not use the per-example gradients, so comparing it with
    :meth:`GradientVariance.predicted` tests the law rather than assuming it. The
    model is put in ``eval()`` mode (no dropout: the noise measured is that of
    sampling the data) and restored afterwards; its parameters are not changed.

    Parameters
    ----------
    model : torch.nn.Module
        The model, with the parameters at which to measure.
    x, y : torch.Tensor
        The examples the mini-batches are drawn from, on the model's device.
    batch_sizes : sequence of int
        Batch sizes, each between 1 and ``len(x)``.
    repeats : int
        Mini-batches drawn per batch size.
    replace : bool
        Draw examples with replacement (iid, exactly :math:`\sigma^2/B`) or without
        (one shuffled epoch's batches, with the finite-population correction).
    loss : callable
        ``loss(outputs, targets)`` averaged over the batch.
    seed : int
        Seed of the ``torch.Generator`` that draws the mini-batches.
    chunk_size : int
        Examples per call of :func:`per_sample_gradients`: step 2 holds a
        ``chunk_size x P`` block of gradients at a time, never all ``n x P``.

    Returns
    -------
    GradientVariance
    """
    _check_data(x, y)
    n = len(x)
    sizes = _batch_sizes(batch_sizes, n)
    repeats = checks.integer("repeats", repeats, minimum=1)
    chunk_size = checks.integer("chunk_size", chunk_size, minimum=1)
    checks.integer("seed", seed, minimum=0)
    _, params = _trainable(model)
    was_training = model.training
    model.eval()
    try:
        full = _flat_gradient(model, params, x, y, loss).double()
        chunks = []
        for start in range(0, n, chunk_size):
            G = per_sample_gradients(model, x[start:start + chunk_size],
                                     y[start:start + chunk_size], loss, chunk_size=chunk_size)
            chunks.append(((G.double() - full) ** 2).sum(dim=1))
        deviations = torch.cat(chunks).cpu()
        generator = torch.Generator().manual_seed(int(seed))
        variance, stderr = [], []
        for B in sizes:
            squared = torch.empty(repeats, dtype=torch.float64, device=full.device)
            for r in range(repeats):
                if replace:
                    index = torch.randint(n, (int(B),), generator=generator)
                else:
                    index = torch.randperm(n, generator=generator)[:B]
                index = index.to(x.device)
                g = _flat_gradient(model, params, x[index], y[index], loss).double()
                squared[r] = ((g - full) ** 2).sum()
            variance.append(float(squared.mean()))
            stderr.append(float(squared.std()) / math.sqrt(repeats) if repeats > 1 else math.nan)
    finally:
        model.train(was_training)
    return GradientVariance(batch_sizes=sizes, variance=np.asarray(variance),
                            stderr=np.asarray(stderr), deviations=deviations.numpy(),
                            per_sample_variance=float(deviations.mean()),
                            full_gradient_norm2=float((full**2).sum()), n=n,
                            repeats=repeats, replace=bool(replace))


# ----------------------------------------------------------------------------- timing


@dataclass(frozen=True, eq=False)
class EpochTimes:
    """Wall-clock cost of one epoch of SGD per batch size (see :func:`time_epochs`).

    Attributes
    ----------
    batch_sizes : numpy.ndarray of int
        The batch sizes timed.
    steps : numpy.ndarray of int
        Optimizer steps in one epoch, ``ceil(n / B)``.
    seconds : numpy.ndarray
        The fastest of the repeated epochs, in seconds.
    n : int
        Examples per epoch.
    device : str
        Where it ran.
    """

    batch_sizes: np.ndarray
    steps: np.ndarray
    seconds: np.ndarray
    n: int
    device: str

    @property
    def seconds_per_step(self) -> np.ndarray:
        """``seconds / steps``."""
        return self.seconds / self.steps

    @property
    def examples_per_second(self) -> np.ndarray:
        """Throughput: ``n / seconds``."""
        return self.n / self.seconds

    def table(self) -> pd.DataFrame:
        """One row per batch size: steps per epoch, time per epoch and per step, throughput."""
        return pd.DataFrame({
            "batch size": np.asarray(self.batch_sizes, dtype=int),
            "steps": np.asarray(self.steps, dtype=int), "s / epoch": self.seconds,
            "ms / step": 1e3 * self.seconds / self.steps, "examples / s": self.n / self.seconds})


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epochs(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                batch_sizes: Sequence[int], *, lr: float = 1e-3, repeats: int = 3,
                loss: LossFn = F.cross_entropy, seed: int = 0) -> EpochTimes:
    r"""Time one epoch of mini-batch SGD for each batch size.

    Each epoch is the training loop at its plainest, ``ceil(n / B)`` steps of

    .. math::
        \theta \leftarrow \theta - \eta\, \nabla_\theta \frac1B \sum_{i \in \mathcal B}
        \ell_i(\theta)

    over shuffled batches of the in-memory tensors (:class:`coursekit.data.Batches`),
    with ``torch.optim.SGD``. One batch of ``B`` examples is one vectorised forward and
    backward pass, so the time per step grows much more slowly than ``B`` until the
    hardware is saturated, and the epoch gets faster with ``B``. Every batch size
    starts from a fresh copy of ``model`` (the caller's model is not trained); the
    first epoch of each is run once untimed (warm-up), then the fastest of
    ``repeats`` epochs is kept. CUDA work is synchronised before the clock stops.

    Parameters
    ----------
    model : torch.nn.Module
        The model to copy; it stays where it is (the data should be on its device).
    x, y : torch.Tensor
        One epoch's examples.
    batch_sizes : sequence of int
        Batch sizes, each between 1 and ``len(x)``.
    lr : float
        SGD's learning rate (small, so that long epochs at ``B = 1`` stay finite).
    repeats : int
        Timed epochs per batch size; the minimum is reported.
    loss : callable
        ``loss(outputs, targets)`` averaged over the batch.
    seed : int
        Seed of the shuffling.

    Returns
    -------
    EpochTimes
    """
    _check_data(x, y)
    _trainable(model)
    sizes = _batch_sizes(batch_sizes, len(x))
    repeats = checks.integer("repeats", repeats, minimum=1)
    checks.nonnegative("lr", lr)
    device = x.device
    seconds, steps = [], []
    for B in sizes:
        replica = copy.deepcopy(model)
        optimizer = torch.optim.SGD(replica.parameters(), lr=lr)
        batches = Batches(x, y, int(B), shuffle=True, seed=seed)
        best = math.inf
        for epoch in range(repeats + 1):
            batches.set_epoch(epoch)
            _synchronize(device)
            start = time.perf_counter()
            for xb, yb in batches:
                optimizer.zero_grad()
                loss(replica(xb), yb).backward()
                optimizer.step()
            _synchronize(device)
            if epoch > 0:
                best = min(best, time.perf_counter() - start)
        seconds.append(best)
        steps.append(len(batches))
    return EpochTimes(batch_sizes=sizes, steps=np.asarray(steps, dtype=np.int64),
                      seconds=np.asarray(seconds), n=len(x), device=str(device))


# ----------------------------------------------------------------------------- noisy SGD


def _per_step(name: str, value: PerStep, steps: int, at_least: float) -> np.ndarray:
    """A schedule given as a constant, a sequence or a function of the step ``t = 0, 1, ...``,
    as a float64 array of length ``steps``, every entry finite and >= ``at_least``."""
    if callable(value):
        values = checks.array(name, [value(t) for t in range(steps)], at_least=at_least)
    elif np.ndim(value) == 0:
        values = np.full(steps, checks.real(name, value, at_least=at_least))
    else:
        values = checks.shape(name, checks.array(name, value, at_least=at_least), (steps,))
    return values


@dataclass(frozen=True, eq=False)
class SGDRuns:
    r"""Independent SGD runs on one landscape, recorded by :func:`run_sgd`.

    Attributes
    ----------
    distances : numpy.ndarray, shape (steps + 1, runs)
        :math:`\lVert \theta_k - \theta^* \rVert` of each run after ``k`` steps (row 0
        is the start), to the nearest documented minimum; ``inf`` or ``nan`` once a run
        has diverged.
    final : numpy.ndarray, shape (runs, 2)
        The last iterate of each run.
    lrs : numpy.ndarray, shape (steps,)
        The step size :math:`\eta_k` of step ``k + 1``.
    batch_sizes : numpy.ndarray, shape (steps,)
        The batch size :math:`B_k` of step ``k + 1``.
    landscape : Landscape
        The function minimised.
    """

    distances: np.ndarray
    final: np.ndarray
    lrs: np.ndarray
    batch_sizes: np.ndarray
    landscape: Landscape

    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return len(self.lrs)

    @property
    def runs(self) -> int:
        """Number of independent runs."""
        return self.distances.shape[1]

    @property
    def mean_squared_distance(self) -> np.ndarray:
        r""":math:`E\lVert\theta_k - \theta^*\rVert^2` over the runs, shape (steps + 1,).

        ``inf`` once any run has diverged.
        """
        with np.errstate(over="ignore"):
            return np.mean(self.distances**2, axis=1)

    @property
    def examples(self) -> np.ndarray:
        """Examples processed before each recorded point: 0, B_0, B_0 + B_1, ..."""
        return np.concatenate([[0.0], np.cumsum(self.batch_sizes)])


def run_sgd(fn: Landscape, lr: PerStep, steps: int, *, batch_size: PerStep = 1,
            runs: int = 1, start: Any = None) -> SGDRuns:
    r"""Run SGD with step-size and batch-size schedules, many independent runs at once.

    Every run follows

    .. math::
        \theta_{k+1} = \theta_k - \eta_k \Big(\nabla f(\theta_k) + \frac{\xi_k}{\sqrt{B_k}}\Big)

    from the same ``start``, where :math:`\xi_k` is the gradient noise of ``fn`` (for
    :class:`~coursekit.landscapes.NoisyGradient`, :math:`\sigma` times a standard
    normal vector: the noise of *one* example), so that a batch of :math:`B_k`
    examples has noise :math:`\sigma / \sqrt{B_k}`. A deterministic landscape gives
    plain gradient descent. The runs are rows of one ``(runs, 2)`` tensor in float64;
    ``fn.reset()`` is called first, so a call repeats exactly. With ``runs=1`` and
    ``batch_size=1`` the iterates are those of :func:`coursekit.landscapes.run` with
    ``torch.optim.SGD`` and the same schedule.

    Parameters
    ----------
    fn : Landscape
        The function, usually ``NoisyGradient(Quadratic(...), sigma)``.
    lr : float, sequence of float, or callable
        :math:`\eta_k`: a constant, ``steps`` values, or a function of the step
        ``k = 0, 1, ...``, e.g. ``lambda k: schedules.one_over_t(k, lr0=0.5)``.
    steps : int
        Number of steps, >= 1.
    batch_size : int, sequence, or callable
        :math:`B_k`, in the same three forms (each >= 1; need not be an integer).
    runs : int
        Independent runs (independent noise), >= 1.
    start : pair of float, optional
        The starting point (default ``fn.start``).

    Returns
    -------
    SGDRuns
    """
    checks.instance("fn", fn, Landscape, what="a coursekit.landscapes.Landscape")
    if not fn.minima:
        raise checks.invalid("fn", "a landscape with a minimum to measure distances to", fn)
    steps = checks.integer("steps", steps, minimum=1)
    runs = checks.integer("runs", runs, minimum=1)
    lrs = _per_step("lr", lr, steps, at_least=0)
    batch_sizes = _per_step("batch_size", batch_size, steps, at_least=1)
    theta0 = torch.as_tensor(checks.vector("start", fn.start if start is None else start,
                                           length=2))
    minima = torch.tensor(fn.minima, dtype=torch.float64)
    fn.reset()

    theta = theta0.repeat(runs, 1)
    distances = torch.empty(steps + 1, runs, dtype=torch.float64)
    distances[0] = torch.cdist(theta, minima).min(dim=1).values
    with torch.no_grad():
        for k in range(steps):
            g = fn.grad(theta)
            noise = fn.sample_grad(theta) - g
            theta = theta - float(lrs[k]) * (g + noise / math.sqrt(batch_sizes[k]))
            distances[k + 1] = torch.cdist(theta, minima).min(dim=1).values
    return SGDRuns(distances=distances.numpy(), final=theta.numpy(), lrs=lrs,
                   batch_sizes=batch_sizes, landscape=fn)


def noise_floor(fn: NoisyGradient, lr: float, batch_size: float = 1) -> float:
    r"""Where constant-step SGD settles on a noisy quadratic: the stationary mean squared distance.

    Along an eigenvector of the Hessian with curvature :math:`\lambda`, one step is
    :math:`e_{k+1} = (1 - \eta\lambda)\, e_k - \eta\, s\, z_k` with
    :math:`s = \sigma/\sqrt B` and :math:`z_k \sim N(0, 1)`. Its variance settles where
    :math:`v = (1 - \eta\lambda)^2 v + \eta^2 s^2`, so, summed over the two eigenvalues
    :math:`\mu` and :math:`L` of :class:`~coursekit.landscapes.Quadratic`,

    .. math::
        \lim_{k\to\infty} E\,\lVert \theta_k - \theta^* \rVert^2
        = \sum_{\lambda \in \{\mu, L\}} \frac{\eta\, \sigma^2}{B\, \lambda\, (2 - \eta\lambda)}
        \;\approx\; \frac{\eta}{B}\, \frac{\sigma^2}{2} \Big(\frac1\mu + \frac1L\Big)
        \quad (\eta L \ll 1).

    A constant step never converges: the floor shrinks only with :math:`\eta / B`, the
    ratio the linear scaling rule keeps fixed. Infinite when :math:`\eta \ge 2/L`.

    Parameters
    ----------
    fn : NoisyGradient
        Noise of standard deviation ``sigma`` per coordinate around a ``Quadratic``.
    lr : float
        The constant step size :math:`\eta \ge 0`.
    batch_size : float
        :math:`B \ge 1`.

    Returns
    -------
    float
    """
    checks.instance("fn", fn, NoisyGradient, what="NoisyGradient(Quadratic(...), sigma)")
    checks.instance("fn.landscape", fn.landscape, Quadratic)
    lr = checks.nonnegative("lr", lr)
    batch_size = checks.real("batch_size", batch_size, at_least=1)
    quadratic = fn.landscape
    total = 0.0
    for curvature in (quadratic.mu, quadratic.L):
        if lr * curvature >= 2:
            return math.inf
        total += lr * fn.sigma**2 / (batch_size * curvature * (2 - lr * curvature))
    return total


def _bound_setting(fn: NoisyGradient, batch_size: float, start: Any
                   ) -> tuple[float, float, float, float]:
    """``(m, eta_max, s2, a0)`` of the SGD bounds on ``fn``: the contraction constant
    2 mu L / (mu + L), the largest step 2 / (mu + L), the total noise variance
    2 sigma^2 / B of the two coordinates, and the squared distance of the start."""
    checks.instance("fn", fn, NoisyGradient, what="NoisyGradient(Quadratic(...), sigma)")
    checks.instance("fn.landscape", fn.landscape, Quadratic)
    batch_size = checks.real("batch_size", batch_size, at_least=1)
    start = checks.vector("start", fn.start if start is None else start, length=2)
    mu, L = fn.landscape.mu, fn.landscape.L
    a0 = float(np.sum((np.asarray(start) - np.asarray(fn.minima[0])) ** 2))
    return 2 * mu * L / (mu + L), 2 / (mu + L), 2 * fn.sigma**2 / batch_size, a0


def constant_step_bound(fn: NoisyGradient, lr: float, steps: int, *, batch_size: float = 1,
                        start: Any = None) -> np.ndarray:
    r"""The guaranteed :math:`E\lVert\theta_k - \theta^*\rVert^2` of SGD with a constant step.

    Let :math:`f` be :math:`\mu`-strongly convex and :math:`L`-smooth, and let SGD
    take steps :math:`\theta_{k+1} = \theta_k - \eta\,(\nabla f(\theta_k) + \xi_k)`
    with noise of mean zero and :math:`E\lVert\xi_k\rVert^2 \le s^2`, independent
    of the past. Then for :math:`\eta \le 2/(\mu + L)`

    .. math::
        E\lVert\theta_{k+1} - \theta^*\rVert^2 \le (1 - m\eta)\,
        E\lVert\theta_k - \theta^*\rVert^2 + \eta^2 s^2,
        \qquad m = \frac{2\mu L}{\mu + L} \in [\mu, 2\mu),

    and unrolling it,

    .. math::
        E\lVert\theta_k - \theta^*\rVert^2 \le (1 - m\eta)^k\,
        \lVert\theta_0 - \theta^*\rVert^2 + \frac{\eta\, s^2}{m}:

    linear convergence to a noise floor :math:`\eta s^2 / m \le \eta s^2/\mu`.
    Proof of the first line: the cross term of :math:`\lVert(\theta_k - \eta\nabla
    f(\theta_k) - \theta^*) - \eta\xi_k\rVert^2` has mean zero, and the gradient
    step itself contracts the squared distance by :math:`1 - m\eta`, because
    :math:`\langle\nabla f(\theta), \theta - \theta^*\rangle \ge \frac{\mu
    L}{\mu + L}\lVert\theta - \theta^*\rVert^2 + \frac{1}{\mu + L}\lVert\nabla
    f(\theta)\rVert^2` for such :math:`f` (Nesterov, 2018, Chapter 2).

    Here :math:`f` is the :class:`~coursekit.landscapes.Quadratic` inside ``fn`` and
    the noise of a batch of :math:`B` examples has :math:`s^2 = 2\sigma^2 / B` (two
    coordinates of variance :math:`\sigma^2/B`). The exact floor of this problem is
    :func:`noise_floor`; for small steps the bound is twice it.

    Parameters
    ----------
    fn : NoisyGradient
        Noise of standard deviation ``sigma`` per coordinate around a ``Quadratic``.
    lr : float
        The constant step :math:`\eta`, in [0, 2 / (mu + L)].
    steps : int
        The bound is returned for ``k = 0, ..., steps``.
    batch_size : float
        :math:`B \ge 1`.
    start : pair of float, optional
        :math:`\theta_0` (default ``fn.start``).

    Returns
    -------
    numpy.ndarray, shape (steps + 1,)

    References
    ----------
    .. [1] Bottou, L., Curtis, F. E. and Nocedal, J. (2018). Optimization methods for
       large-scale machine learning. SIAM Review, 60(2), 223–311. doi:10.1137/16M1080173.
       [bottou2018optimization]
    .. [2] Nesterov, Y. (2018). Lectures on Convex Optimization, 2nd ed. Springer
       Optimization and Its Applications 137. Springer. doi:10.1007/978-3-319-91578-4.
       [nesterov2018lectures]
    """
    m, eta_max, s2, a0 = _bound_setting(fn, batch_size, start)
    lr = checks.real("lr", lr, at_least=0, at_most=eta_max)
    steps = checks.integer("steps", steps, minimum=0)
    k = np.arange(steps + 1, dtype=np.float64)
    return (1 - m * lr) ** k * a0 + (lr * s2 / m if lr > 0 else 0.0)


def decreasing_step_bound(fn: NoisyGradient, beta: float, gamma: float, steps: int, *,
                          batch_size: float = 1, start: Any = None) -> np.ndarray:
    r"""The guaranteed :math:`E\lVert\theta_k - \theta^*\rVert^2` of SGD with steps
    :math:`\eta_k = \beta / (\gamma + k)`: :math:`O(1/k)`.

    Under the assumptions of :func:`constant_step_bound`, the one-step inequality
    :math:`a_{k+1} \le (1 - m\eta_k)\, a_k + \eta_k^2 s^2` holds for every
    :math:`\eta_k \le 2/(\mu + L)`. With :math:`\eta_k = \beta/(\gamma + k)`,
    :math:`\beta m > 1` and :math:`\beta/\gamma \le 2/(\mu + L)`,

    .. math::
        E\lVert\theta_k - \theta^*\rVert^2 \le \frac{\nu}{\gamma + k}, \qquad
        \nu = \max\Big(\frac{\beta^2 s^2}{\beta m - 1},\;
        \gamma\,\lVert\theta_0 - \theta^*\rVert^2\Big).

    Proof by induction, writing :math:`t = \gamma + k`: if :math:`a_k \le \nu/t`, then
    :math:`a_{k+1} \le \frac{(t - \beta m)\nu + \beta^2 s^2}{t^2} \le
    \frac{(t - 1)\nu}{t^2} \le \frac{\nu}{t + 1}`, using
    :math:`(\beta m - 1)\nu \ge \beta^2 s^2` and :math:`(t-1)(t+1) \le t^2`. The
    condition :math:`\beta m > 1` is the "large enough constant" of the :math:`1/k`
    schedule: with a smaller :math:`\beta` the error can fall more slowly than
    :math:`1/k`.

    Parameters
    ----------
    fn : NoisyGradient
        Noise of standard deviation ``sigma`` per coordinate around a ``Quadratic``.
    beta, gamma : float
        The schedule :math:`\eta_k = \beta/(\gamma + k)`, ``k = 0, 1, ...``; e.g.
        ``schedules.inverse_time_decay(k, lr0, k=c)`` is ``beta = lr0 / c``,
        ``gamma = 1 / c``.
    steps : int
        The bound is returned for ``k = 0, ..., steps``.
    batch_size : float
        :math:`B \ge 1`.
    start : pair of float, optional
        :math:`\theta_0` (default ``fn.start``).

    Returns
    -------
    numpy.ndarray, shape (steps + 1,)

    References
    ----------
    .. [1] Bottou, L., Curtis, F. E. and Nocedal, J. (2018). Optimization methods for
       large-scale machine learning. SIAM Review, 60(2), 223–311. doi:10.1137/16M1080173.
       [bottou2018optimization]
    .. [2] Nesterov, Y. (2018). Lectures on Convex Optimization, 2nd ed. Springer
       Optimization and Its Applications 137. Springer. doi:10.1007/978-3-319-91578-4.
       [nesterov2018lectures]
    """
    m, eta_max, s2, a0 = _bound_setting(fn, batch_size, start)
    beta = checks.real("beta", beta, above=1 / m)
    gamma = checks.real("gamma", gamma, at_least=beta / eta_max)
    steps = checks.integer("steps", steps, minimum=0)
    nu = max(beta**2 * s2 / (beta * m - 1), gamma * a0)
    return nu / (gamma + np.arange(steps + 1, dtype=np.float64))


def phase_schedule(examples: Sequence[int], lrs: Sequence[float],
                   batch_sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-step learning rates and batch sizes for training phases measured in examples.

    Phase ``i`` processes ``examples[i]`` examples in ``examples[i] // batch_sizes[i]``
    steps of step size ``lrs[i]``. Two schedules with the same ``examples`` see the
    same data, however differently they split it into steps, which is the fair way
    to compare decaying the learning rate with growing the batch (Smith et al., 2018,
    "Don't decay the learning rate, increase the batch size").

    Parameters
    ----------
    examples : sequence of int
        Examples per phase; each a multiple of that phase's batch size.
    lrs : sequence of float
        Step size per phase, >= 0.
    batch_sizes : sequence of int
        Batch size per phase, >= 1.

    Returns
    -------
    lr, batch_size : numpy.ndarray
        One entry per step, ready for :func:`run_sgd`.

    References
    ----------
    .. [1] Smith, S. L., Kindermans, P.-J., Ying, C. and Le, Q. V. (2018). Don't decay
       the learning rate, increase the batch size. ICLR 2018. arXiv:1711.00489.
       [smith2018dont]
    """
    if not len(examples) == len(lrs) == len(batch_sizes) or len(examples) == 0:
        raise ValueError(f"examples, lrs and batch_sizes must have one length > 0 (one entry "
                         f"per phase), got lengths {len(examples)}, {len(lrs)}, "
                         f"{len(batch_sizes)}")
    lr_steps, batch_steps = [], []
    for i, (count, lr, B) in enumerate(zip(examples, lrs, batch_sizes, strict=True)):
        count = checks.integer(f"examples[{i}]", count, minimum=1)
        B = checks.integer(f"batch_sizes[{i}]", B, minimum=1)
        if count % B:
            raise checks.invalid(f"examples[{i}]", f"a multiple of batch_sizes[{i}] = {B}", count)
        lr_steps.append(np.full(count // B, checks.nonnegative(f"lrs[{i}]", lr)))
        batch_steps.append(np.full(count // B, B, dtype=np.float64))
    return np.concatenate(lr_steps), np.concatenate(batch_steps)
