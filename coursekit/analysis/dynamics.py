r"""How fast gradient descent and momentum converge: measured rates, and the theory beside them.

Near a minimum, gradient methods converge *linearly*: the distance to the
minimum shrinks by a roughly constant factor :math:`r` per step,

.. math:: \|\theta_k - \theta^\star\| \approx C\, r^k, \qquad 0 \le r < 1,

and :math:`r` (the *rate*; smaller is faster) is what the learning rate
:math:`\eta` and the momentum :math:`\mu` control. This module measures
:math:`r` from a run and computes it from theory.

Measured::

    traj = landscapes.run(lambda p: optim.SGD(p, lr=0.05, momentum=0.8), Quadratic(25))
    convergence_rate(traj)                          # r fitted to the distances
    rate_map(Quadratic(25), lrs, momenta)           # r on a whole (mu, lr) grid at once

Theory, on a quadratic with curvatures (Hessian eigenvalues) :math:`h` between
:math:`\mu_{\min}` and :math:`L`, condition number :math:`\kappa = L / \mu_{\min}`::

    momentum_rate(lr, momentum, curvatures=(mu_min, L))   # spectral radius of the iteration
    gradient_descent_optimum(L, mu_min)                   # best lr and rate without momentum
    strongly_convex_bound(L, mu, gap0, steps)             # (1 - mu/L)^k gap0, step 1/L
    convex_bound(L, distance0, steps)                     # L d0^2 / (2k), step 1/L
    heavy_ball_optimum(L, mu_min)                         # best (lr, momentum) and rate
    nesterov_optimum(L, mu_min)                           # the same for Nesterov's momentum
    averaging_window(momentum)                            # 1 / (1 - mu)
    momentum_weights(momentum, steps)                     # mu^k, the weight of each old gradient

The two optima are the lecture's headline: gradient descent's best rate is
:math:`(\kappa - 1)/(\kappa + 1)`, heavy-ball momentum's is
:math:`(\sqrt\kappa - 1)/(\sqrt\kappa + 1)` (Polyak, 1964), so momentum needs about
:math:`\sqrt\kappa` rather than :math:`\kappa` steps per digit of accuracy. Goh (2017)
draws the same analysis; Lessard et al. (2016) give Nesterov's tuning.

On a saddle, :func:`escape_step` counts the steps until the loss drops below a
level, and a negative curvature in :func:`momentum_rate` gives the escape factor.
Two figures go with all this: :func:`coursekit.viz.plot.rate_map` and
:func:`coursekit.viz.plot.distances`.

References
----------
.. [1] Polyak, B. T. (1964). Some methods of speeding up the convergence of iteration
   methods. USSR Computational Mathematics and Mathematical Physics, 4(5), 1–17.
   doi:10.1016/0041-5553(64)90137-5. [polyak1964some]
.. [2] Goh, G. (2017). Why momentum really works. Distill. doi:10.23915/distill.00006.
   [goh2017why]
.. [3] Lessard, L., Recht, B. and Packard, A. (2016). Analysis and design of optimization
   algorithms via integral quadratic constraints. SIAM Journal on Optimization, 26(1),
   57–95. doi:10.1137/15M1009597. arXiv:1408.3595. [lessard2016analysis]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from coursekit import _checks as checks
from coursekit.landscapes import Landscape, NoisyGradient, Trajectory

__all__ = [
    "Optimum",
    "averaging_window",
    "convergence_rate",
    "convex_bound",
    "escape_step",
    "gradient_descent_optimum",
    "heavy_ball_optimum",
    "momentum_rate",
    "momentum_weights",
    "nesterov_optimum",
    "rate_map",
    "strongly_convex_bound",
]


FLOOR = 1e-120
"""Distances at or below this count as "arrived": a run is measured only down to here.

Far below it the squares inside a Euclidean distance leave the normal floating-point
range (about 1e-308 for float64) and the distances lose their precision."""


class Optimum(NamedTuple):
    """The best constant hyperparameters for a quadratic, and the rate they reach."""

    lr: float
    momentum: float
    rate: float


# ----------------------------------------------------------------------------- checks


def _curvatures(L: Any, mu: Any) -> tuple[float, float]:
    """The smallest curvature ``mu > 0`` and the largest ``L >= mu``."""
    mu, L = checks.positive("mu", mu), checks.real("L", L)
    if L < mu:
        raise checks.invalid("L", f">= mu = {mu}", L)
    return L, mu


def _check_tail(tail: Any) -> float:
    """The fraction of the run to fit, in (0, 1]."""
    return checks.in_unit_interval("tail", tail, open_low=True)


# ----------------------------------------------------------------------------- theory


def averaging_window(momentum: float | np.ndarray) -> float | np.ndarray:
    r"""The number of recent gradients that momentum effectively averages: :math:`1/(1-\mu)`.

    The "SGD+" velocity :math:`v_t = \mu v_{t-1} + g_t` (with :math:`v_0 = 0`) is a
    weighted sum of past gradients,

    .. math:: v_t = \sum_{k=0}^{t-1} \mu^k g_{t-k}, \qquad
              \sum_{k=0}^{\infty} \mu^k = \frac{1}{1 - \mu},

    so on a constant gradient it tends to :math:`g / (1 - \mu)`: each step is
    :math:`1/(1-\mu)` times longer than plain gradient descent's. The weights
    :math:`\mu^k` fall by a factor :math:`e` after :math:`-1/\ln\mu \approx 1/(1-\mu)`
    steps, which is why :math:`1/(1-\mu)` is read as the length of the averaging
    window: 10 gradients for :math:`\mu = 0.9`, 100 for 0.99.

    Parameters
    ----------
    momentum : float or array
        :math:`\mu` in [0, 1).

    Returns
    -------
    float or numpy.ndarray
    """
    mu = checks.array("momentum", momentum, at_least=0, below=1)
    window = 1.0 / (1.0 - mu)
    return float(window) if window.ndim == 0 else window


def momentum_weights(momentum: float, steps: int) -> np.ndarray:
    r"""The weight :math:`\mu^k` of the gradient seen ``k`` steps ago in the velocity.

    ``momentum_weights(mu, n)[k]`` multiplies :math:`g_{t-k}` in
    :math:`v_t = \sum_k \mu^k g_{t-k}`, for ``k = 0, ..., n - 1``; the weights sum
    to :math:`(1 - \mu^n)/(1 - \mu)`, approaching :func:`averaging_window`.
    """
    mu = checks.beta("momentum", momentum)
    steps = checks.integer("steps", steps, minimum=1)
    return mu ** np.arange(steps, dtype=np.float64)


def momentum_rate(lr: float | np.ndarray, momentum: float | np.ndarray,
                  curvatures: Sequence[float], *, nesterov: bool = False) -> float | np.ndarray:
    r"""The theoretical linear rate of momentum on a quadratic: the iteration's spectral radius.

    Along an eigenvector of the Hessian with curvature :math:`h`, heavy-ball
    momentum :math:`\theta_{k+1} = \theta_k - \eta h \theta_k + \mu(\theta_k - \theta_{k-1})`
    is a linear recurrence whose characteristic polynomial is

    .. math:: z^2 - (1 + \mu - \eta h)\, z + \mu = 0 \qquad \text{(heavy ball)}

    and, for Nesterov's momentum in PyTorch's form
    (:math:`v_{k+1} = \mu v_k + g_k`, :math:`\theta_{k+1} = \theta_k - \eta(g_k + \mu v_{k+1})`),

    .. math:: z^2 - (1 + \mu)(1 - \eta h)\, z + \mu (1 - \eta h) = 0 \qquad \text{(Nesterov)}.

    The error shrinks like :math:`r^k` with :math:`r = \max_h \max |z|` over the
    roots :math:`z` and the curvatures :math:`h`; ``r >= 1`` means no convergence.
    With ``momentum = 0`` both reduce to gradient descent, :math:`r = \max_h |1 - \eta h|`.
    Complex roots (:math:`(1 + \mu - \eta h)^2 < 4\mu` for heavy ball) have
    modulus :math:`\sqrt\mu`: the iterates spiral in. A negative curvature (the
    downhill direction of a saddle) gives ``r > 1``: then ``r`` is the factor by
    which the distance from the saddle grows per step, i.e. how fast it is escaped.

    Parameters
    ----------
    lr, momentum : float or array
        :math:`\eta \ge 0` and :math:`\mu \in [0, 1)`; arrays broadcast against each
        other (e.g. ``lr[None, :]`` and ``momentum[:, None]`` give a grid).
    curvatures : sequence of float
        The Hessian's eigenvalues, e.g. ``(fn.mu, fn.L)`` for a
        :class:`~coursekit.landscapes.Quadratic` (for positive curvatures the
        extremes decide the maximum), or ``(-2.0,)`` for the downhill direction of
        :class:`~coursekit.landscapes.Saddle`.
    nesterov : bool
        Nesterov's polynomial instead of heavy ball's.

    Returns
    -------
    float or numpy.ndarray
        The rate, shaped like ``lr`` and ``momentum`` broadcast.
    """
    eta = checks.array("lr", lr, at_least=0)
    mu = checks.array("momentum", momentum, at_least=0, below=1)
    h = checks.vector("curvatures", curvatures)
    eta, mu = np.broadcast_arrays(eta[..., None], mu[..., None])  # curvature on the last axis
    if nesterov:
        trace, det = (1 + mu) * (1 - eta * h), mu * (1 - eta * h)
    else:
        trace, det = 1 + mu - eta * h, mu
    root = np.sqrt((trace**2 - 4 * det).astype(np.complex128))
    rate = np.maximum(np.abs((trace + root) / 2), np.abs((trace - root) / 2)).max(axis=-1)
    return float(rate) if rate.ndim == 0 else rate


def gradient_descent_optimum(L: float, mu: float) -> Optimum:
    r"""The best constant step of gradient descent on a quadratic with curvatures in [mu, L].

    The rate :math:`\max(|1 - \eta\mu|, |1 - \eta L|)` is smallest where the two
    are equal:

    .. math:: \eta^\star = \frac{2}{L + \mu}, \qquad
              r^\star = \frac{L - \mu}{L + \mu} = \frac{\kappa - 1}{\kappa + 1}.
    """
    L, mu = _curvatures(L, mu)
    return Optimum(lr=2.0 / (L + mu), momentum=0.0, rate=(L - mu) / (L + mu))


def strongly_convex_bound(L: float, mu: float, gap0: float, steps: int) -> np.ndarray:
    r"""The guaranteed gap of gradient descent with step 1/L on an L-smooth, mu-strongly convex f.

    For every :math:`L`-smooth (:math:`\nabla f` is :math:`L`-Lipschitz) and
    :math:`\mu`-strongly convex :math:`f`, the iterates
    :math:`x_{k+1} = x_k - \nabla f(x_k)/L` satisfy

    .. math:: f(x_k) - f^\star \le \Big(1 - \frac{\mu}{L}\Big)^k \big(f(x_0) - f^\star\big).

    Proof: the descent lemma gives
    :math:`f(x_{k+1}) \le f(x_k) - \lVert\nabla f(x_k)\rVert^2 / (2L)`, and strong
    convexity gives :math:`\lVert\nabla f(x)\rVert^2 \ge 2\mu\,(f(x) - f^\star)`;
    together, each step multiplies the gap by at most :math:`1 - \mu/L`.

    Parameters
    ----------
    L, mu : float
        The smoothness and strong-convexity constants, ``L >= mu > 0``.
    gap0 : float
        :math:`f(x_0) - f^\star \ge 0`.
    steps : int
        The bound is returned for ``k = 0, ..., steps``.

    Returns
    -------
    numpy.ndarray, shape (steps + 1,)

    References
    ----------
    .. [1] Nesterov, Y. (2018). Lectures on Convex Optimization, 2nd ed. Springer
       Optimization and Its Applications 137. Springer. doi:10.1007/978-3-319-91578-4.
       [nesterov2018lectures]
    """
    L, mu = _curvatures(L, mu)
    gap0 = checks.nonnegative("gap0", gap0)
    steps = checks.integer("steps", steps, minimum=0)
    return gap0 * (1.0 - mu / L) ** np.arange(steps + 1, dtype=np.float64)


def convex_bound(L: float, distance0: float, steps: int) -> np.ndarray:
    r"""The guaranteed gap of gradient descent with step 1/L on an L-smooth convex f: O(1/k).

    For every convex, :math:`L`-smooth :math:`f` with a minimiser :math:`x^\star`,
    the iterates :math:`x_{k+1} = x_k - \nabla f(x_k)/L` satisfy, for :math:`k \ge 1`,

    .. math:: f(x_k) - f^\star \le \frac{L\, \lVert x_0 - x^\star\rVert^2}{2k}.

    Proof: the descent lemma and convexity give
    :math:`f(x_{i+1}) - f^\star \le \frac L2 \big(\lVert x_i - x^\star\rVert^2 -
    \lVert x_{i+1} - x^\star\rVert^2\big)`; summing over :math:`i < k` telescopes to
    :math:`\frac L2 \lVert x_0 - x^\star\rVert^2`, and since the gaps never increase,
    :math:`k` times the last one is at most that sum. No rate in :math:`\mu` appears:
    the bound holds for every condition number, and is what is left when
    :math:`\mu \to 0`.

    Parameters
    ----------
    L : float
        The smoothness constant, > 0.
    distance0 : float
        :math:`\lVert x_0 - x^\star\rVert \ge 0`.
    steps : int
        The bound is returned for ``k = 0, ..., steps`` (``inf`` at ``k = 0``).

    Returns
    -------
    numpy.ndarray, shape (steps + 1,)

    References
    ----------
    .. [1] Nesterov, Y. (2018). Lectures on Convex Optimization, 2nd ed. Springer
       Optimization and Its Applications 137. Springer. doi:10.1007/978-3-319-91578-4.
       [nesterov2018lectures]
    """
    L = checks.positive("L", L)
    distance0 = checks.nonnegative("distance0", distance0)
    steps = checks.integer("steps", steps, minimum=0)
    k = np.arange(steps + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(k > 0, L * distance0**2 / (2.0 * np.maximum(k, 1.0)), np.inf)


def heavy_ball_optimum(L: float, mu: float) -> Optimum:
    r"""The best constant (lr, momentum) of heavy-ball momentum on a quadratic (Polyak, 1964).

    .. math:: \eta^\star = \left(\frac{2}{\sqrt L + \sqrt\mu}\right)^2, \qquad
              \mu^\star = \left(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\right)^2, \qquad
              r^\star = \sqrt{\mu^\star} = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}

    with :math:`\kappa = L / \mu`. At these values the roots of
    :func:`momentum_rate`'s polynomial are double roots of modulus
    :math:`\sqrt{\mu^\star}` at both ends of the spectrum, and complex of the same
    modulus in between: every direction converges at the same rate.

    Parameters
    ----------
    L, mu : float
        The largest and smallest curvature, ``L >= mu > 0``.

    Returns
    -------
    Optimum
        ``(lr, momentum, rate)``.

    References
    ----------
    .. [1] Polyak, B. T. (1964). Some methods of speeding up the convergence of
       iteration methods. USSR Computational Mathematics and Mathematical Physics, 4(5),
       1–17. doi:10.1016/0041-5553(64)90137-5. [polyak1964some]
    """
    L, mu = _curvatures(L, mu)
    root_kappa = math.sqrt(L / mu)
    rate = (root_kappa - 1) / (root_kappa + 1)
    return Optimum(lr=(2.0 / (math.sqrt(L) + math.sqrt(mu))) ** 2, momentum=rate**2, rate=rate)


def nesterov_optimum(L: float, mu: float) -> Optimum:
    r"""The best constant (lr, momentum) of Nesterov's momentum on a quadratic.

    For Nesterov's polynomial in :func:`momentum_rate` the optimal tuning on
    quadratics (Lessard et al., 2016) is

    .. math:: \eta^\star = \frac{4}{3L + \mu}, \qquad
              \mu^\star = \frac{\sqrt{3\kappa + 1} - 2}{\sqrt{3\kappa + 1} + 2}, \qquad
              r^\star = 1 - \frac{2}{\sqrt{3\kappa + 1}},

    the same :math:`O(1/\sqrt\kappa)` gap to 1 as heavy ball, with a somewhat
    larger constant: on quadratics heavy ball is the faster of the two.

    References
    ----------
    .. [1] Lessard, L., Recht, B. and Packard, A. (2016). Analysis and design of
       optimization algorithms via integral quadratic constraints. SIAM Journal on
       Optimization, 26(1), 57–95. doi:10.1137/15M1009597. arXiv:1408.3595.
       [lessard2016analysis]
    .. [2] Nesterov, Y. (1983). A method for solving the convex programming problem with
       convergence rate O(1/k^2). Doklady Akademii Nauk SSSR, 269(3), 543–547 (in
       Russian; English translation in Soviet Mathematics Doklady, 27, 372–376).
       [nesterov1983method]
    """
    L, mu = _curvatures(L, mu)
    root = math.sqrt(3 * L / mu + 1)
    return Optimum(lr=4.0 / (3 * L + mu), momentum=(root - 2) / (root + 2), rate=1 - 2 / root)


# ----------------------------------------------------------------------------- measurement


def _fit_rates(distances: np.ndarray, lengths: np.ndarray, tail: float, floor: float
               ) -> np.ndarray:
    r"""Fit :math:`\log d_k = a + k \log r` to the tail of each column of ``distances``.

    Column ``p`` holds ``lengths[p]`` recorded distances (rows beyond are ignored).
    Its usable part ends before the first distance that is not finite or is <= ``floor``;
    the fit uses the last ``tail`` fraction of that part (at least two points). A
    run that reached the floor in one step has rate 0; one that blew up at once, inf.
    """
    n_rows, n_runs = distances.shape
    k = np.arange(n_rows, dtype=np.float64)[:, None]
    recorded = k < lengths[None, :]
    with np.errstate(invalid="ignore"):
        good = recorded & np.isfinite(distances) & (distances > floor)
    usable = np.where(good.all(axis=0), n_rows, np.argmin(good, axis=0))
    stop = distances[np.minimum(usable, n_rows - 1), np.arange(n_runs)]
    arrived = (usable < lengths) & np.isfinite(stop) & (stop <= floor)  # else: a blow-up
    count = np.maximum(2, np.ceil(tail * usable))
    in_tail = (k >= (usable - count)[None, :]) & (k < usable[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(in_tail, np.log(np.where(good, distances, 1.0)), 0.0)
        weights = in_tail.astype(np.float64)
        n = weights.sum(axis=0)
        k_mean = (weights * k).sum(axis=0) / n
        y_mean = y.sum(axis=0) / n
        k_centred = np.where(in_tail, k - k_mean, 0.0)
        slope = (k_centred * (y - y_mean)).sum(axis=0) / (k_centred**2).sum(axis=0)
        rates = np.exp(slope)
    return np.where(usable >= 2, rates, np.where(arrived, 0.0, np.inf))


def convergence_rate(trajectory: Trajectory | Sequence[float] | np.ndarray, *,
                     tail: float = 0.5, floor: float = FLOOR) -> float:
    r"""The linear rate :math:`r` fitted to the distances to the minimum of one run.

    With :math:`d_k` the distance after step :math:`k`, fit by least squares

    .. math:: \log d_k \approx a + k \log r

    over the last ``tail`` fraction of the run, so the transient of the first steps
    is left out, and return :math:`r = e^{\text{slope}}`. A pure geometric sequence
    :math:`d_k = d_0 r^k` gives back :math:`r` exactly; oscillating distances
    (momentum spiralling in) are averaged over. :math:`r < 1` converges, and
    :math:`-1/\log_{10} r` is the number of steps per digit of accuracy.

    The fit stops at the first distance that is not finite (the run blew up) or
    is at most ``floor`` (it arrived). Fewer than two usable distances give 0 if
    the run arrived in one step and ``inf`` if it blew up at once.

    Parameters
    ----------
    trajectory : Trajectory or sequence of float
        A run from :func:`coursekit.landscapes.run` on a landscape with a minimum,
        or the distances :math:`d_0, d_1, \dots` themselves.
    tail : float
        Fraction of the run to fit, in (0, 1].
    floor : float
        Distances at or below this end the measurement (see :data:`FLOOR`).

    Returns
    -------
    float
    """
    tail = _check_tail(tail)
    floor = checks.real("floor", floor)
    if isinstance(trajectory, Trajectory):
        distances = trajectory.distances_to_minimum()
    else:
        distances = checks.series("trajectory", trajectory)
        if np.any(distances < 0):
            raise checks.invalid("trajectory", "a Trajectory or a 1-D sequence of distances >= 0",
                                 trajectory)
    if len(distances) < 2:
        raise checks.invalid("trajectory", "a run of at least one step (two distances)",
                             trajectory)
    if not distances[0] > floor:
        raise checks.invalid("trajectory", f"a run that starts above floor={floor}, not at "
                             f"distance {distances[0]}", trajectory)
    return float(_fit_rates(distances[:, None], np.array([len(distances)]), tail, floor)[0])


def rate_map(landscape: Landscape, lrs: Sequence[float] | np.ndarray,
             momenta: Sequence[float] | np.ndarray, steps: int = 500, *,
             start: Sequence[float] | None = None, nesterov: bool = False, tail: float = 0.5,
             floor: float = FLOOR) -> np.ndarray:
    r"""Measured linear rates of momentum SGD over a grid of (momentum, lr), all runs at once.

    Every grid cell is one run of PyTorch-style SGD with momentum from ``start``,

    .. math:: v_{k+1} = \mu v_k + \nabla f(\theta_k), \qquad
              \theta_{k+1} = \theta_k - \eta\, d_{k+1}, \qquad
              d_{k+1} = \begin{cases} v_{k+1} & \text{heavy ball} \\
              \nabla f(\theta_k) + \mu v_{k+1} & \text{Nesterov} \end{cases}

    with :math:`v_0 = 0` (so the first step is a gradient step, as in
    ``torch.optim.SGD``; at a constant rate SGD+, Qian's form and ``SGD`` coincide).
    The cells run side by side as one batch of shape ``(cells, 2)``, using that a
    landscape's gradient accepts any batch of points, and each cell stops at its
    first non-finite point, value or gradient, like
    :func:`coursekit.landscapes.run`. The rates are then fitted as in
    :func:`convergence_rate`, so ``rate_map(...)[i, j]`` equals
    ``convergence_rate(run(lambda p: SGD(p, lr=lrs[j], momentum=momenta[i]), landscape, ...))``
    up to rounding, at a fraction of the cost.

    Parameters
    ----------
    landscape : Landscape
        A deterministic landscape with a documented minimum (not ``NoisyGradient``).
    lrs : 1-D sequence of float
        Learning rates :math:`\eta \ge 0` (the columns).
    momenta : 1-D sequence of float
        Momenta :math:`\mu \in [0, 1)` (the rows).
    steps : int
        Steps per run, >= 1.
    start : pair of float, optional
        Common starting point (default ``landscape.start``).
    nesterov : bool
        Nesterov's momentum instead of heavy ball's.
    tail, floor : float
        As in :func:`convergence_rate`.

    Returns
    -------
    numpy.ndarray, shape (len(momenta), len(lrs))
        ``rates[i, j]`` for ``momenta[i]`` and ``lrs[j]``; ``inf`` where a run blew
        up at its first step.
    """
    checks.instance("landscape", landscape, Landscape)
    if isinstance(landscape, NoisyGradient):
        raise checks.invalid("landscape", "noise-free (noisy gradients have no linear rate; "
                             "pass the landscape it wraps)", landscape)
    if not landscape.minima:
        raise checks.invalid("landscape", "a landscape with a minimum to converge to", landscape)
    lr_grid = checks.vector("lrs", lrs, at_least=0)
    momentum_grid = checks.vector("momenta", momenta, at_least=0, below=1)
    steps = checks.integer("steps", steps, minimum=1)
    tail, floor = _check_tail(tail), checks.real("floor", floor)
    start = landscape.start if start is None else start
    start_point = torch.tensor(checks.vector("start", start, length=2))

    mu, eta = (torch.from_numpy(a.reshape(-1, 1).copy())
               for a in np.meshgrid(momentum_grid, lr_grid, indexing="ij"))
    minima = np.asarray(landscape.minima, dtype=np.float64)
    theta = start_point.expand(len(mu), 2).clone()
    velocity = torch.zeros_like(theta)
    gradient = landscape.grad(theta)
    lengths = torch.full((len(mu),), steps + 1)
    alive = torch.ones(len(mu), dtype=torch.bool)
    distances = np.empty((steps + 1, len(mu)), dtype=np.float64)
    distances[0] = _distance(theta.numpy(), minima)
    for k in range(1, steps + 1):
        velocity = mu * velocity + gradient
        direction = gradient + mu * velocity if nesterov else velocity
        theta = theta - eta * direction
        gradient = landscape.grad(theta)
        finite = (torch.isfinite(theta).all(dim=1) & torch.isfinite(landscape(theta))
                  & torch.isfinite(gradient).all(dim=1))
        lengths[alive & ~finite] = k
        alive &= finite
        distances[k] = _distance(theta.numpy(), minima)
    rates = _fit_rates(distances, lengths.numpy(), tail, floor)
    return rates.reshape(len(momentum_grid), len(lr_grid))


def _distance(points: np.ndarray, minima: np.ndarray) -> np.ndarray:
    """Euclidean distance from each point (n, 2) to its nearest minimum (m, 2).

    In NumPy, as :meth:`Trajectory.distances_to_minimum` computes it (and because a
    torch reduction over a short axis is slow with several threads)."""
    gaps = points[:, None, :] - minima[None, :, :]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sqrt((gaps**2).sum(axis=-1)).min(axis=1)


def escape_step(trajectory: Trajectory, level: float) -> int | None:
    """The first step at which the loss is below ``level``, or None if it never gets there.

    On a saddle (:class:`~coursekit.landscapes.Saddle`, value 0 at the saddle
    point) ``escape_step(traj, -1.0)`` counts the steps an optimizer needs to
    leave it and head downhill.
    """
    checks.instance("trajectory", trajectory, Trajectory)
    below = np.flatnonzero(trajectory.values < checks.real("level", level))
    return int(below[0]) if below.size else None

