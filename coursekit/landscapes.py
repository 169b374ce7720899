r"""Two-dimensional test functions, and a runner that drives any optimizer across them.

Each landscape is a function ``f(x, y)`` written from its equation, next to its
analytic gradient, with the points that make it interesting (its global minima,
its saddles), a plotting ``domain`` and a suggested ``start``::

    fn = Rosenbrock()
    fn(torch.tensor([1.0, 1.0]))          # f at one point: tensor(0.)
    fn.grad(torch.tensor([0.0, 0.0]))     # analytic gradient, shape (2,)
    fn(xy)                                # any batch: xy has shape (..., 2)
    fn(x, y)                              # or two broadcastable tensors

Everything is ordinary torch arithmetic, so autograd works through ``fn(xy)``
(the tests check every analytic gradient against it in float64).

``run`` puts a 2-element parameter at ``start`` and repeats, for ``steps`` steps::

    theta.grad = gradient of f at theta      (plus noise, for NoisyGradient)
    optimizer.step()
    scheduler.step()                          (if a scheduler is given)

and returns a :class:`Trajectory` (points, values, gradient norms, learning
rates). Any ``torch.optim.Optimizer`` works, ours or PyTorch's::

    traj = run(lambda p: coursekit.optim.Adam(p, lr=0.1), Rosenbrock(), steps=500)
    traj.final, traj.distance_to_minimum, traj.diverged

``grid`` evaluates a landscape on a mesh, in one vectorised call, for contour plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from coursekit import _checks as checks

__all__ = [
    "Beale",
    "Himmelblau",
    "Landscape",
    "MonkeySaddle",
    "NoisyGradient",
    "Quadratic",
    "Rastrigin",
    "Rosenbrock",
    "Saddle",
    "Trajectory",
    "grid",
    "learning_rate",
    "run",
]

Point = tuple[float, float]
Domain = tuple[tuple[float, float], tuple[float, float]]


def _as_float_tensor(value: Any) -> torch.Tensor:
    """A floating tensor: tensors keep their dtype, anything else becomes float64."""
    if not isinstance(value, torch.Tensor):
        return torch.as_tensor(value, dtype=torch.float64)
    return value if value.is_floating_point() else value.to(torch.float64)


def _split(xy: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn ``(xy,)`` with shape (..., 2), or ``(x, y)``, into two broadcast tensors."""
    if y is None:
        xy = checks.shape("xy", _as_float_tensor(xy), (..., 2))
        return xy[..., 0], xy[..., 1]
    x, y = torch.broadcast_tensors(_as_float_tensor(xy), _as_float_tensor(y))
    return x, y


class Landscape:
    """A function ``f(x, y)`` with its analytic gradient and its notable points.

    Subclasses write ``_f(x, y)`` and ``_grad(x, y)`` from their equations and set
    the attributes below in ``__init__``.

    Attributes
    ----------
    name : str
        Short name with the parameters, used for titles and legends.
    minima : tuple of (x, y)
        The global minima (local minima of multimodal functions are not listed).
    min_value : float or None
        ``f`` at the global minima; ``None`` when ``f`` is unbounded below.
    saddles : tuple of (x, y)
        Saddle points (critical points that are neither minima nor maxima).
    maxima : tuple of (x, y)
        Local maxima.
    domain : ((x_min, x_max), (y_min, y_max))
        A rectangle that shows the interesting part of the function.
    start : (x, y)
        A starting point that makes a good demonstration.
    """

    name: str = "landscape"
    minima: tuple[Point, ...] = ()
    min_value: float | None = None
    saddles: tuple[Point, ...] = ()
    maxima: tuple[Point, ...] = ()
    domain: Domain = ((-2.0, 2.0), (-2.0, 2.0))
    start: Point = (-1.5, 1.5)

    def _f(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _f(x, y)")

    def _grad(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement _grad(x, y)")

    def __call__(self, xy: Any, y: Any = None) -> torch.Tensor:
        """``f`` at ``xy`` of shape (..., 2), or at broadcastable ``x`` and ``y``; shape (...)."""
        return self._f(*_split(xy, y))

    def grad(self, xy: Any, y: Any = None) -> torch.Tensor:
        """The analytic gradient ``(df/dx, df/dy)`` stacked in a last axis of size 2."""
        x, y = _split(xy, y)
        gx, gy = self._grad(x, y)
        return torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)

    def sample_grad(self, xy: torch.Tensor) -> torch.Tensor:
        """The gradient an optimizer is shown at ``xy``: exact here, noisy in NoisyGradient."""
        return self.grad(xy)

    def reset(self) -> None:
        """Restart any randomness (a no-op for deterministic landscapes)."""

    def nearest_minimum(self, point: Any) -> Point:
        """The documented global minimum closest (Euclidean) to ``point``."""
        if not self.minima:
            raise ValueError(f"{self.name} has no minimum (it is unbounded below)")
        p = np.asarray(point, dtype=np.float64)
        distances = [math.hypot(mx - p[0], my - p[1]) for mx, my in self.minima]
        return self.minima[int(np.argmin(distances))]

    def __repr__(self) -> str:
        return self.name


class Quadratic(Landscape):
    r"""An ill-conditioned quadratic bowl with chosen condition number and orientation.

    .. math::
        f(p) = \tfrac12\, p^\top A p, \qquad
        A = R(\theta)\,\mathrm{diag}(\mu, L)\,R(\theta)^\top, \qquad L = \kappa\,\mu

    where ``R(theta)`` rotates by ``angle``: the curvature is ``mu`` along
    ``(cos theta, sin theta)`` and ``L`` along ``(-sin theta, cos theta)``. Written
    out, with ``c = cos theta`` and ``s = sin theta``::

        a11 = mu c^2 + L s^2,   a12 = (mu - L) c s,   a22 = mu s^2 + L c^2
        f(x, y) = (a11 x^2 + 2 a12 x y + a22 y^2) / 2
        grad f  = (a11 x + a12 y,  a12 x + a22 y)

    Gradient descent converges for ``0 < lr < 2 / L``; the best constant step
    ``lr = 2 / (L + mu)`` shrinks the error by ``(kappa - 1) / (kappa + 1)`` per step,
    which is why a large condition number ``kappa`` makes it slow.

    Parameters
    ----------
    condition_number : float
        ``kappa = L / mu`` >= 1.
    angle : float
        Rotation ``theta`` of the eigenvectors, in radians.
    mu : float
        The smallest curvature (eigenvalue of ``A``), > 0.
    """

    def __init__(self, condition_number: float = 10.0, angle: float = 0.0, mu: float = 1.0):
        self.condition_number = checks.real("condition_number", condition_number, at_least=1)
        self.angle = checks.real("angle", angle)
        self.mu = checks.positive("mu", mu)
        self.L = self.condition_number * self.mu
        c, s = math.cos(self.angle), math.sin(self.angle)
        self.a11 = self.mu * c * c + self.L * s * s
        self.a12 = (self.mu - self.L) * c * s
        self.a22 = self.mu * s * s + self.L * c * c
        self.name = f"Quadratic(kappa={self.condition_number:g}, angle={self.angle:.3g})"
        self.minima = ((0.0, 0.0),)
        self.min_value = 0.0
        self.domain = ((-2.0, 2.0), (-2.0, 2.0))
        self.start = (-1.5, 1.0)

    @property
    def hessian(self) -> torch.Tensor:
        """The constant Hessian ``A`` as a 2x2 float64 tensor."""
        return torch.tensor([[self.a11, self.a12], [self.a12, self.a22]], dtype=torch.float64)

    def _f(self, x, y):
        return 0.5 * (self.a11 * x * x + 2 * self.a12 * x * y + self.a22 * y * y)

    def _grad(self, x, y):
        return self.a11 * x + self.a12 * y, self.a12 * x + self.a22 * y


class Rosenbrock(Landscape):
    r"""Rosenbrock's banana valley: easy to find, slow to follow.

    .. math::
        f(x, y) = (a - x)^2 + b\,(y - x^2)^2

    .. math::
        \partial_x f = -2 (a - x) - 4 b x (y - x^2), \qquad \partial_y f = 2 b (y - x^2)

    One global minimum ``f(a, a^2) = 0`` at the end of a curved, flat-bottomed
    valley whose walls steepen with ``b``.

    Parameters
    ----------
    a : float
        Position of the minimum, ``(a, a^2)``.
    b : float
        Steepness of the valley walls, > 0.
    """

    def __init__(self, a: float = 1.0, b: float = 100.0):
        self.a = checks.real("a", a)
        self.b = checks.positive("b", b)
        self.name = f"Rosenbrock(a={self.a:g}, b={self.b:g})"
        self.minima = ((self.a, self.a**2),)
        self.min_value = 0.0
        scale = max(1.0, abs(self.a))
        self.domain = ((-2.0 * scale, 2.0 * scale), (-scale**2, 3.0 * scale**2))
        self.start = (-1.2 * scale, scale**2)

    def _f(self, x, y):
        return (self.a - x) ** 2 + self.b * (y - x**2) ** 2

    def _grad(self, x, y):
        return -2 * (self.a - x) - 4 * self.b * x * (y - x**2), 2 * self.b * (y - x**2)


class Beale(Landscape):
    r"""Beale's function: a flat plateau, sharp ridges and one minimum at ``(3, 0.5)``.

    .. math::
        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2

    With ``t_k = c_k - x + x y^k`` (``c = 1.5, 2.25, 2.625``), the gradient is

    .. math::
        \partial_x f = \sum_k 2 t_k (y^k - 1), \qquad
        \partial_y f = \sum_k 2 t_k\, k\, x\, y^{k-1}

    Global minimum ``f(3, 0.5) = 0``; a saddle at ``(0, 1)``.
    """

    def __init__(self):
        self.name = "Beale"
        self.minima = ((3.0, 0.5),)
        self.min_value = 0.0
        self.saddles = ((0.0, 1.0),)
        self.domain = ((-4.5, 4.5), (-4.5, 4.5))
        self.start = (1.0, 1.5)

    def _terms(self, x, y):
        return 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3

    def _f(self, x, y):
        t1, t2, t3 = self._terms(x, y)
        return t1**2 + t2**2 + t3**2

    def _grad(self, x, y):
        t1, t2, t3 = self._terms(x, y)
        gx = 2 * t1 * (y - 1) + 2 * t2 * (y**2 - 1) + 2 * t3 * (y**3 - 1)
        gy = 2 * t1 * x + 2 * t2 * 2 * x * y + 2 * t3 * 3 * x * y**2
        return gx, gy


class Himmelblau(Landscape):
    r"""Himmelblau's function: four global minima, so where you end depends on where you start.

    .. math::
        f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    .. math::
        \partial_x f = 4 x (x^2 + y - 11) + 2 (x + y^2 - 7), \qquad
        \partial_y f = 2 (x^2 + y - 11) + 4 y (x + y^2 - 7)

    All four minima have ``f = 0``: ``(3, 2)`` exactly, and three irrational ones
    (given to double precision, found by Newton's method). There are also four
    saddles and one local maximum near ``(-0.271, -0.923)``.
    """

    def __init__(self):
        self.name = "Himmelblau"
        self.minima = (
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.2831859912861696),
            (3.5844283403304917, -1.8481265269644036),
        )
        self.min_value = 0.0
        self.saddles = (
            (0.08667750455539634, 2.884254701174776),
            (-3.0730257507643897, -0.08135304428796751),
            (3.385154183607021, 0.07385187983774928),
            (-0.12796134673068005, -1.9537149802445766),
        )
        self.maxima = ((-0.2708445906673476, -0.9230385564799815),)
        self.domain = ((-5.0, 5.0), (-5.0, 5.0))
        self.start = (0.0, 0.0)

    def _f(self, x, y):
        return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2

    def _grad(self, x, y):
        u, v = x**2 + y - 11, x + y**2 - 7
        return 4 * x * u + 2 * v, 2 * u + 4 * y * v


class Rastrigin(Landscape):
    r"""Rastrigin's function: a bowl covered in regularly spaced local minima.

    .. math::
        f(x, y) = 2A + \sum_{z \in \{x, y\}} \left(z^2 - A \cos(2\pi z)\right)

    .. math::
        \partial_z f = 2 z + 2 \pi A \sin(2 \pi z)

    Global minimum ``f(0, 0) = 0``; a local minimum sits near every integer point,
    which traps plain gradient descent.

    Parameters
    ----------
    amplitude : float
        ``A``, the height of the ripples, >= 0.
    """

    def __init__(self, amplitude: float = 10.0):
        self.amplitude = checks.nonnegative("amplitude", amplitude)
        self.name = f"Rastrigin(A={self.amplitude:g})"
        self.minima = ((0.0, 0.0),)
        self.min_value = 0.0
        self.domain = ((-5.12, 5.12), (-5.12, 5.12))
        self.start = (3.2, -2.7)

    def _f(self, x, y):
        A = self.amplitude
        return (2 * A + (x**2 - A * torch.cos(2 * math.pi * x))
                + (y**2 - A * torch.cos(2 * math.pi * y)))

    def _grad(self, x, y):
        A = self.amplitude
        return (2 * x + 2 * math.pi * A * torch.sin(2 * math.pi * x),
                2 * y + 2 * math.pi * A * torch.sin(2 * math.pi * y))


class Saddle(Landscape):
    r"""The simplest saddle, unbounded below.

    .. math::
        f(x, y) = x^2 - y^2, \qquad \nabla f = (2x, -2y)

    The origin is a saddle: a minimum along ``x``, a maximum along ``y``. Started
    on the ``x`` axis, gradient descent converges to it; a tiny ``y`` offset grows
    geometrically and lets it escape.
    """

    def __init__(self):
        self.name = "Saddle x^2 - y^2"
        self.saddles = ((0.0, 0.0),)
        self.domain = ((-2.0, 2.0), (-2.0, 2.0))
        self.start = (-1.5, 0.01)

    def _f(self, x, y):
        return x**2 - y**2

    def _grad(self, x, y):
        return 2 * x, -2 * y


class MonkeySaddle(Landscape):
    r"""The monkey saddle: three ways down, and a flat (degenerate) critical point.

    .. math::
        f(x, y) = x^3 - 3 x y^2, \qquad \nabla f = (3x^2 - 3y^2,\; -6xy)

    The Hessian vanishes at the origin, so second-order information cannot tell
    this saddle from a minimum; ``f`` is unbounded below.
    """

    def __init__(self):
        self.name = "Monkey saddle x^3 - 3xy^2"
        self.saddles = ((0.0, 0.0),)
        self.domain = ((-1.5, 1.5), (-1.5, 1.5))
        self.start = (1.0, 0.01)

    def _f(self, x, y):
        return x**3 - 3 * x * y**2

    def _grad(self, x, y):
        return 3 * x**2 - 3 * y**2, -6 * x * y


class NoisyGradient(Landscape):
    r"""The stochastic setting: ``landscape`` seen through noisy gradients.

    Values and :meth:`grad` are the wrapped landscape's; :meth:`sample_grad`, the
    gradient that :func:`run` shows the optimizer, adds Gaussian noise:

    .. math::
        \tilde g = \nabla f(x, y) + \sigma\,\xi, \qquad \xi \sim N(0, I_2)

    so ``E[g~] = grad f`` and each coordinate has variance ``sigma^2``. A mini-batch
    of ``B`` samples with per-sample variance ``s^2`` corresponds to
    ``sigma = s / sqrt(B)``.

    The noise comes from a ``torch.Generator`` seeded with ``seed``; :meth:`reset`
    re-seeds it, and :func:`run` calls it first, so every optimizer compared on
    the same wrapper sees the same noise sequence.

    Parameters
    ----------
    landscape : Landscape
        The function whose gradient gets noisy.
    sigma : float
        Standard deviation of the noise per coordinate, >= 0.
    seed : int
        Seed of the noise generator.
    """

    def __init__(self, landscape: Landscape, sigma: float, seed: int = 0):
        self.landscape = checks.instance("landscape", landscape, Landscape)
        self.sigma = checks.nonnegative("sigma", sigma)
        self.seed = checks.integer("seed", seed, minimum=0)
        self.name = f"{landscape.name} + noise(sigma={self.sigma:g})"
        self.minima = landscape.minima
        self.min_value = landscape.min_value
        self.saddles = landscape.saddles
        self.maxima = landscape.maxima
        self.domain = landscape.domain
        self.start = landscape.start
        self._generator = torch.Generator().manual_seed(self.seed)

    @property
    def variance(self) -> float:
        """The noise variance ``sigma^2`` of each gradient coordinate."""
        return self.sigma**2

    def _f(self, x, y):
        return self.landscape._f(x, y)

    def _grad(self, x, y):
        return self.landscape._grad(x, y)

    def sample_grad(self, xy: torch.Tensor) -> torch.Tensor:
        """``grad f(xy) + sigma * xi`` with fresh standard normal ``xi`` of the same shape."""
        g = self.landscape.sample_grad(xy)
        xi = torch.randn(g.shape, generator=self._generator, dtype=torch.float64)
        return g + self.sigma * xi.to(g)

    def reset(self) -> None:
        """Re-seed the noise generator (and the wrapped landscape's, if any)."""
        self._generator.manual_seed(self.seed)
        self.landscape.reset()


@dataclass(eq=False)
class Trajectory:
    """The path of one optimizer across one landscape, as recorded by :func:`run`.

    Attributes
    ----------
    points : numpy.ndarray, shape (n + 1, 2)
        ``points[0]`` is the start, ``points[k]`` the parameter after step ``k``.
    values : numpy.ndarray, shape (n + 1,)
        ``f(points[k])`` (the true value, also for noisy landscapes).
    grad_norms : numpy.ndarray, shape (n + 1,)
        ``|grad f(points[k])|`` of the exact gradient.
    lrs : numpy.ndarray, shape (n,)
        The learning rate used by step ``k + 1`` (:func:`learning_rate`: that of the
        first parameter group; NaN for an optimizer whose group has no ``"lr"``).
    landscape : Landscape
        The function that was optimized.
    label : str
        A name for legends (the optimizer's class name unless given).
    diverged : bool
        True when a step produced a non-finite point, value or gradient; the run
        then stopped and that point is not recorded.
    diverged_at : int or None
        The number of the step that diverged (``n + 1``), or None.
    """

    points: np.ndarray
    values: np.ndarray
    grad_norms: np.ndarray
    lrs: np.ndarray
    landscape: Landscape
    label: str
    diverged: bool = False
    diverged_at: int | None = None

    @property
    def steps(self) -> int:
        """The number of steps recorded (fewer than requested if the run diverged)."""
        return len(self.points) - 1

    @property
    def start(self) -> np.ndarray:
        """The starting point, shape (2,)."""
        return self.points[0]

    @property
    def final(self) -> np.ndarray:
        """The last recorded (finite) point, shape (2,)."""
        return self.points[-1]

    @property
    def final_value(self) -> float:
        """``f`` at the last recorded point."""
        return float(self.values[-1])

    def distances_to_minimum(self) -> np.ndarray:
        """Distance from every point to its nearest documented global minimum, shape (n + 1,)."""
        if not self.landscape.minima:
            raise ValueError(f"{self.landscape.name} has no minimum (it is unbounded below)")
        minima = np.asarray(self.landscape.minima, dtype=np.float64)
        gaps = self.points[:, None, :] - minima[None, :, :]
        return np.sqrt((gaps**2).sum(axis=-1)).min(axis=1)

    @property
    def distance_to_minimum(self) -> float:
        """Distance from the final point to the nearest documented global minimum."""
        return float(self.distances_to_minimum()[-1])

    def __repr__(self) -> str:
        status = f"diverged at step {self.diverged_at}" if self.diverged else "finite"
        return (f"Trajectory({self.label!r} on {self.landscape.name}, {self.steps} steps, "
                f"final={self.final.tolist()}, f={self.final_value:.6g}, {status})")


def _is_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def learning_rate(optimizer: Any) -> float:
    """The learning rate of ``optimizer``'s first parameter group, as a float.

    NaN when the optimizer has no parameter groups or its first group has no
    ``"lr"`` (an optimizer that sets its own step sizes). What :func:`run` records
    per step in ``Trajectory.lrs``, and :func:`coursekit.train.fit` in ``History.lr``.
    """
    groups = getattr(optimizer, "param_groups", None)
    if not groups or groups[0].get("lr") is None:
        return math.nan
    return float(groups[0]["lr"])


def run(optimizer_factory: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
        fn: Landscape, start: Any = None, steps: int = 100,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None, *,
        label: str | None = None, dtype: torch.dtype = torch.float64) -> Trajectory:
    """Optimize ``fn`` from ``start`` for ``steps`` steps and record the path.

    Each step sets ``theta.grad = fn.sample_grad(theta)`` (the analytic gradient,
    plus noise for :class:`NoisyGradient`), calls ``optimizer.step()`` and then
    ``scheduler.step()`` if a scheduler was given. If a step produces a
    non-finite point, value or gradient the run stops and the trajectory is
    marked ``diverged``. ``fn.reset()`` is called first, so noisy runs repeat.

    Optimizers that need a closure (``torch.optim.LBFGS``) are not supported.

    Parameters
    ----------
    optimizer_factory : callable
        Takes the parameter list and returns an optimizer, e.g.
        ``lambda params: torch.optim.SGD(params, lr=0.01)``.
    fn : Landscape
        The function to minimize.
    start : pair of float, optional
        The starting point (default ``fn.start``).
    steps : int
        Number of optimizer steps, >= 0.
    scheduler : callable, optional
        Takes the optimizer and returns a scheduler, e.g.
        ``lambda opt: torch.optim.lr_scheduler.StepLR(opt, 10)``.
    label : str, optional
        Name for legends (default: the optimizer's class name).
    dtype : torch.dtype
        Floating dtype of the parameter (float64 by default).

    Returns
    -------
    Trajectory
    """
    checks.instance("fn", fn, Landscape, what="a coursekit.landscapes.Landscape")
    checks.function("optimizer_factory", optimizer_factory,
                    what="a function of the parameters, e.g. lambda p: SGD(p, lr=0.1)")
    if scheduler is not None:
        checks.function("scheduler", scheduler,
                        what="a function of the optimizer, e.g. lambda opt: StepLR(opt, 10)")
    steps = checks.integer("steps", steps, minimum=0)
    start = checks.vector("start", fn.start if start is None else start, length=2)
    theta = torch.tensor(start, dtype=dtype)
    if not _is_finite(theta):
        raise checks.invalid("start", f"finite in {dtype}", start)
    theta.requires_grad_(True)
    optimizer = optimizer_factory([theta])
    checks.instance("optimizer_factory(params)", optimizer, torch.optim.Optimizer,
                    what="a torch.optim.Optimizer")
    lr_scheduler = scheduler(optimizer) if scheduler is not None else None
    fn.reset()

    with torch.no_grad():
        point = theta.detach().clone()
        points, values, grad_norms, lrs = [point], [fn(point)], [fn.grad(point).norm()], []
        diverged_at = None
        for k in range(1, steps + 1):
            lr = learning_rate(optimizer)
            theta.grad = fn.sample_grad(theta.detach())
            optimizer.step()
            if lr_scheduler is not None:
                lr_scheduler.step()
            point = theta.detach().clone()
            value, gradient = fn(point), fn.grad(point)
            if not _is_finite(point, value, gradient):
                diverged_at = k
                break
            points.append(point)
            values.append(value)
            grad_norms.append(gradient.norm())
            lrs.append(lr)

    return Trajectory(
        points=torch.stack(points).to(torch.float64).numpy(),
        values=torch.stack(values).to(torch.float64).numpy(),
        grad_norms=torch.stack(grad_norms).to(torch.float64).numpy(),
        lrs=np.asarray(lrs, dtype=np.float64),
        landscape=fn,
        label=type(optimizer).__name__ if label is None else label,
        diverged=diverged_at is not None,
        diverged_at=diverged_at,
    )


def grid(fn: Landscape, resolution: int = 201,
         domain: Domain | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``fn`` on a ``resolution x resolution`` mesh in one vectorised call.

    Parameters
    ----------
    fn : Landscape
        The function to evaluate.
    resolution : int
        Number of grid points along each axis, >= 2.
    domain : ((x_min, x_max), (y_min, y_max)), optional
        The rectangle (default ``fn.domain``).

    Returns
    -------
    X, Y, Z : numpy.ndarray, shape (resolution, resolution)
        Coordinates and values, ``Z[i, j] = f(X[i, j], Y[i, j])``, ready for
        ``ax.contour(X, Y, Z)`` (rows follow ``y``, columns follow ``x``).
    """
    checks.instance("fn", fn, Landscape, what="a coursekit.landscapes.Landscape")
    resolution = checks.integer("resolution", resolution, minimum=2)
    (x_min, x_max), (y_min, y_max) = fn.domain if domain is None else domain
    for i, (low, high) in enumerate(((x_min, x_max), (y_min, y_max))):
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise checks.invalid(f"domain[{i}]", "a finite range (low, high) with low < high",
                                 (low, high))
    x = torch.linspace(x_min, x_max, resolution, dtype=torch.float64)
    y = torch.linspace(y_min, y_max, resolution, dtype=torch.float64)
    X, Y = torch.meshgrid(x, y, indexing="xy")
    with torch.no_grad():
        Z = fn(X, Y)
    return X.numpy(), Y.numpy(), Z.numpy()
