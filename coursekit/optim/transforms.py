r"""Update rules built from small pieces, in the style of optax: Adam is a chain of four.

A *transform* turns the update proposed so far into a new one, for one parameter
tensor, keeping whatever state it needs. Chained, the pieces make the optimizers
of the lecture::

    adam = chain(scale_by_momentum(0.9),        m_t   = beta1 m_{t-1} + (1 - beta1) g_t
                 bias_correction(0.9),          m_hat = m_t / (1 - beta1^t)
                 scale_by_rms(0.999, 1e-8),     u     = m_hat / (sqrt(v_hat) + eps)
                 scale_by_learning_rate())      u     = -lr * u
    opt = TransformOptimizer(model.parameters(), adam, lr=1e-3)   # = torch.optim.Adam

and ``theta <- theta + u`` at the end (optax's ``apply_updates``). Each piece sees
two things: ``u``, the update handed down the chain (it starts as the gradient),
and ``g``, the gradient the chain was given. Pieces that *move* the update
(momentum, scaling) act on ``u``; pieces that *measure the gradient* (the RMS of
``g``, the sign agreement of successive ``g``) read ``g``. That is what lets Adam
be written as a chain at all: its first moment and its second moment are both
statistics of the raw gradient, and the second divides the first.

Where does the bias correction of ``v`` go? Inside :func:`scale_by_rms`, because
``eps`` is added after it: ``m_hat / (sqrt(v / (1 - beta2^t)) + eps)`` cannot be
split into a correction of ``m`` times an uncorrected RMS scaling unless ``eps``
is rescaled too. ``scale_by_rms(..., bias_correction=False)`` gives RMSprop's
uncorrected denominator.

The pieces:

=====================================  ==================================================
``scale(factor)``                      ``u <- factor * u``
``scale_by_learning_rate()``           ``u <- -lr * u`` with ``lr`` from the param group
``trace(momentum)``                    ``b <- mu b + u; u <- b``  (heavy ball, torch SGD)
``scale_by_momentum(beta1)``           ``m <- beta1 m + (1 - beta1) u; u <- m``
``bias_correction(beta)``              ``u <- u / (1 - beta^t)``
``scale_by_rms(beta2, eps)``           ``v <- beta2 v + (1 - beta2) g^2;``
                                       ``u <- u / (sqrt(v_hat) + eps)``
``scale_by_local_gains(beta)``         per-weight gains (Raschka, 2021; see the function)
``add_decayed_weights(weight_decay)``  ``u <- u + weight_decay * theta``
=====================================  ==================================================

and ready-made chains :func:`sgd_momentum`, :func:`rmsprop`, :func:`adam`,
:func:`adamw` and :func:`local_gains`; the tests show the first four equal
``torch.optim.SGD(momentum=...)``, ``RMSprop``, ``Adam`` and ``AdamW`` in float64.

:func:`bias_correction_table` shows numerically what the correction undoes: the
first steps of :class:`coursekit.optim.Adam` on a constant gradient, with ``m_t``
next to ``m_hat``. :func:`effective_learning_rates` reads, from any run on a
landscape, the step size each coordinate actually got.

References
----------
.. [1] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
   ICLR 2015. arXiv:1412.6980. [kingma2015adam]
.. [2] Hinton, G., Srivastava, N. and Swersky, K. (2012). Neural networks for machine
   learning, Lecture 6 (6d: a separate, adaptive learning rate for each connection; 6e:
   rmsprop: divide the gradient by a running average of its recent magnitude). Lecture
   slides, Coursera, University of Toronto. [hinton2012neural]
.. [3] Raschka, S. (2021). Lecture 12: Improving gradient descent-based optimization.
   Lecture slides, STAT 453: Introduction to Deep Learning and Generative Models, University
   of Wisconsin–Madison, Spring 2021. [raschka2021stat453]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = [
    "Chain",
    "Transform",
    "TransformOptimizer",
    "adam",
    "adamw",
    "add_decayed_weights",
    "bias_correction",
    "bias_correction_table",
    "chain",
    "effective_learning_rates",
    "local_gains",
    "rmsprop",
    "scale",
    "scale_by_learning_rate",
    "scale_by_local_gains",
    "scale_by_momentum",
    "scale_by_rms",
    "sgd_momentum",
    "trace",
]


class Transform:
    """One piece of an update rule, for one parameter tensor.

    ``init(param)`` returns the piece's state for that tensor (a dict);
    ``apply(u, g, param, state, group)`` returns the new update, given the update
    ``u`` so far, the gradient ``g`` the chain received, the parameter, this
    piece's state (changed in place) and the parameter's group (for ``lr``).
    """

    name = "transform"

    def init(self, param: torch.Tensor) -> dict[str, Any]:
        """The state of this piece for ``param`` (default: none)."""
        return {}

    def apply(self, u: torch.Tensor, g: torch.Tensor, param: torch.Tensor, state: dict,
              group: dict) -> torch.Tensor:
        """Return the transformed update; must be overridden."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply()")

    def __repr__(self) -> str:
        return self.name


class _Function(Transform):
    """A transform from an ``apply`` function and an optional ``init`` function."""

    def __init__(self, name: str, apply: Callable[..., torch.Tensor],
                 init: Callable[[torch.Tensor], dict[str, Any]] | None = None):
        self.name = name
        self._apply = apply
        self._init = init

    def init(self, param: torch.Tensor) -> dict[str, Any]:
        return {} if self._init is None else self._init(param)

    def apply(self, u, g, param, state, group):
        return self._apply(u, g, param, state, group)


class Chain(Transform):
    """Transforms applied one after the other; the state is one dict per piece."""

    def __init__(self, *pieces: Transform):
        for i, piece in enumerate(pieces):
            checks.instance(f"pieces[{i}]", piece, Transform,
                            what="a Transform such as scale_by_momentum(0.9)")
        self.pieces = pieces
        self.name = "chain(" + ", ".join(repr(p) for p in pieces) + ")"

    def init(self, param: torch.Tensor) -> dict[str, Any]:
        return {"pieces": [piece.init(param) for piece in self.pieces]}

    def apply(self, u, g, param, state, group):
        for piece, piece_state in zip(self.pieces, state["pieces"], strict=True):
            u = piece.apply(u, g, param, piece_state, group)
        return u


def chain(*pieces: Transform) -> Chain:
    """Compose transforms, first to last: ``chain(scale_by_momentum(0.9), scale(-0.1))``."""
    return Chain(*pieces)


def scale(factor: float) -> Transform:
    """``u <- factor * u`` (``scale(-lr)`` ends a chain with a fixed learning rate)."""
    factor = checks.real("factor", factor)
    return _Function(f"scale({factor:g})", lambda u, g, param, state, group: factor * u)


def scale_by_learning_rate() -> Transform:
    """``u <- -lr * u`` with ``lr`` read from the parameter group at every step.

    ``scale(-lr)`` with the learning rate kept in ``param_groups``, so that
    learning-rate schedulers, :func:`coursekit.landscapes.run` and
    :func:`coursekit.train.fit` see and change it as with any torch optimizer.
    """
    return _Function("scale_by_learning_rate()",
                     lambda u, g, param, state, group: -group["lr"] * u)


def trace(momentum: float) -> Transform:
    r"""Heavy-ball momentum as torch's SGD writes it: ``b_t = mu b_{t-1} + u_t``, ``u <- b_t``.

    With ``b_0 = 0`` the first step is ``b_1 = u_1``, torch's ``b_1 = g_1``.
    """
    checks.beta("momentum", momentum)

    def apply(u, g, param, state, group):
        b = state["momentum_buffer"]
        b.mul_(momentum).add_(u)
        return b.clone()

    return _Function(f"trace({momentum:g})", apply,
                     lambda param: {"momentum_buffer": torch.zeros_like(param)})


def scale_by_momentum(beta1: float) -> Transform:
    r"""Adam's first moment: ``m_t = beta1 m_{t-1} + (1 - beta1) u_t`` (``m_0 = 0``); ``u <- m_t``.

    An exponential moving average: it averages about the last ``1 / (1 - beta1)``
    updates, and starts biased toward 0 (see :func:`bias_correction`).
    """
    checks.beta("beta1", beta1)

    def apply(u, g, param, state, group):
        m = state["exp_avg"]
        m.lerp_(u, 1 - beta1)
        return m.clone()

    return _Function(f"scale_by_momentum({beta1:g})", apply,
                     lambda param: {"exp_avg": torch.zeros_like(param)})


def bias_correction(beta: float) -> Transform:
    r"""Undo the zero start of an average with decay ``beta``: ``u <- u / (1 - beta^t)``.

    An average started at 0 and fed the same ``x`` every step is
    ``(1 - beta^t) x`` after ``t`` steps, not ``x``; dividing by ``1 - beta^t``
    makes it exact for a constant input (and unbiased for a stationary one).
    The piece counts its own steps ``t``.
    """
    checks.beta("beta", beta)

    def apply(u, g, param, state, group):
        state["step"] += 1
        return u / (1 - beta ** state["step"])

    return _Function(f"bias_correction({beta:g})", apply, lambda param: {"step": 0})


def scale_by_rms(beta2: float = 0.999, eps: float = 1e-8, bias_correction: bool = True
                 ) -> Transform:
    r"""Divide by the root mean square of the gradient: ``u <- u / (sqrt(v_hat) + eps)``.

    .. math::
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \qquad
        \hat v_t = v_t / (1 - \beta_2^t) \text{ (or } v_t \text{ without bias correction)}

    ``v`` is a statistic of ``g``, the gradient the chain received, wherever the
    piece sits in the chain (module notes).

    Parameters
    ----------
    beta2 : float
        Decay of the squared-gradient average, in [0, 1) (RMSprop's ``alpha``).
    eps : float
        Added to the root, >= 0.
    bias_correction : bool
        Divide ``v_t`` by ``1 - beta2^t`` (Adam) or not (RMSprop).
    """
    checks.beta("beta2", beta2)
    checks.nonnegative("eps", eps)
    correct = bias_correction

    def apply(u, g, param, state, group):
        state["step"] += 1
        v = state["exp_avg_sq"]
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        v_hat = v / (1 - beta2 ** state["step"]) if correct else v
        return u / (v_hat.sqrt() + eps)

    return _Function(f"scale_by_rms({beta2:g}, eps={eps:g}"
                     f"{'' if correct else ', bias_correction=False'})", apply,
                     lambda param: {"step": 0, "exp_avg_sq": torch.zeros_like(param)})


def scale_by_local_gains(beta: float = 0.05, max_gain: float = math.inf) -> Transform:
    r"""Local gains: one multiplier per weight, grown while its gradient keeps its sign.

    The adaptive rule of the STAT 453 slides (Raschka, 2021), from lecture 6d of
    Hinton et al. (2012), whose increment 0.05 and shrink factor 0.95 are the default.

    Every weight starts with gain ``gain = 1``. At each step, with ``g_t`` and
    ``g_{t-1}`` this weight's current and previous gradient::

        gain <- gain + beta          if g_t * g_{t-1} > 0   (consistent: speed up)
        gain <- gain * (1 - beta)    if g_t * g_{t-1} < 0   (direction flipped: slow down)
        u    <- gain * u

    so that, followed by ``scale_by_learning_rate()``, the step is
    ``Delta w = -lr * gain * dL/dw``. Growth is additive and shrinkage
    multiplicative, so oscillating weights lose their gain quickly and large
    gains fall fastest. On the first step (no previous gradient) the gain stays 1.

    Parameters
    ----------
    beta : float
        The gain increment and the shrink fraction, in [0, 1).
    max_gain : float
        Upper limit on the gain (none by default, as on the STAT 453 slides).

    References
    ----------
    .. [1] Raschka, S. (2021). Lecture 12: Improving gradient descent-based
       optimization. Lecture slides, STAT 453: Introduction to Deep Learning and
       Generative Models, University of Wisconsin–Madison, Spring 2021.
       [raschka2021stat453]
    .. [2] Hinton, G., Srivastava, N. and Swersky, K. (2012). Neural networks for
       machine learning, Lecture 6 (6d: a separate, adaptive learning rate for each
       connection; 6e: rmsprop: divide the gradient by a running average of its recent
       magnitude). Lecture slides, Coursera, University of Toronto. [hinton2012neural]
    """
    checks.beta("beta", beta)
    checks.real("max_gain", max_gain, at_least=1, allow_inf=True)

    def apply(u, g, param, state, group):
        gain, previous = state["gain"], state["previous_grad"]
        agreement = g * previous
        gain.copy_(torch.where(agreement > 0, gain + beta,
                               torch.where(agreement < 0, gain * (1 - beta), gain)))
        gain.clamp_(max=max_gain)
        previous.copy_(g)
        return gain * u

    return _Function(f"scale_by_local_gains({beta:g})", apply,
                     lambda param: {"gain": torch.ones_like(param),
                                    "previous_grad": torch.zeros_like(param)})


def add_decayed_weights(weight_decay: float) -> Transform:
    r"""``u <- u + weight_decay * theta``: decoupled weight decay when placed before the lr.

    In ``chain(..., add_decayed_weights(wd), scale_by_learning_rate())`` the step
    becomes ``theta <- theta (1 - lr wd) - lr u``: AdamW's decay, which the
    adaptive scaling before it never sees.
    """
    checks.nonnegative("weight_decay", weight_decay)
    return _Function(f"add_decayed_weights({weight_decay:g})",
                     lambda u, g, param, state, group: u + weight_decay * param)


# ------------------------------------------------------------------ ready-made chains


def sgd_momentum(momentum: float = 0.9) -> Chain:
    """``torch.optim.SGD(lr, momentum)``: ``chain(trace(momentum), scale_by_learning_rate())``."""
    return chain(trace(momentum), scale_by_learning_rate())


def rmsprop(alpha: float = 0.99, eps: float = 1e-8) -> Chain:
    """``torch.optim.RMSprop(lr, alpha, eps)``: uncorrected RMS scaling, then the lr."""
    return chain(scale_by_rms(alpha, eps, bias_correction=False), scale_by_learning_rate())


def adam(betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> Chain:
    """``torch.optim.Adam(lr, betas, eps)``: momentum + bias correction + RMS scaling + lr."""
    beta1, beta2 = betas
    return chain(scale_by_momentum(beta1), bias_correction(beta1), scale_by_rms(beta2, eps),
                 scale_by_learning_rate())


def adamw(betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2) -> Chain:
    """``torch.optim.AdamW``: Adam's chain with ``add_decayed_weights`` before the lr."""
    beta1, beta2 = betas
    return chain(scale_by_momentum(beta1), bias_correction(beta1), scale_by_rms(beta2, eps),
                 add_decayed_weights(weight_decay), scale_by_learning_rate())


def local_gains(beta: float = 0.05, max_gain: float = math.inf) -> Chain:
    """The local-gains rule (Raschka, 2021): ``Delta w = -lr * gain * g``, per-weight gains."""
    return chain(scale_by_local_gains(beta, max_gain), scale_by_learning_rate())


class TransformOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` that applies a transform: ``theta <- theta + transform(g)``.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    transform : Transform
        The update rule, usually a :func:`chain` ending in
        :func:`scale_by_learning_rate` or ``scale(-lr)``.
    lr : float
        The learning rate kept in ``param_groups`` (read by
        :func:`scale_by_learning_rate`; ignored by a chain that has none).
    """

    def __init__(self, params: Iterable[Any], transform: Transform, lr: float = 1e-3):
        checks.instance("transform", transform, Transform,
                        what="a Transform, e.g. transforms.adam()")
        checks.nonnegative("lr", lr)
        self.transform = transform
        super().__init__(params, {"lr": lr})

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state.update(self.transform.init(param))

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        param.add_(self.transform.apply(grad, grad, param, state, group))

    def __repr__(self) -> str:
        return f"TransformOptimizer({self.transform!r}, lr={self.defaults['lr']:g})"


def bias_correction_table(steps: int = 10, grad: float = 1.0,
                          betas: tuple[float, float] = (0.9, 0.999), lr: float = 1e-3,
                          eps: float = 1e-8) -> list[dict[str, float]]:
    r"""The first ``steps`` steps of :class:`coursekit.optim.Adam` on a constant gradient.

    A single float64 parameter receives the gradient ``grad`` at every step; after
    each step the table reads Adam's state (``m_t = exp_avg``, ``v_t = exp_avg_sq``)
    and the step it took. For a constant gradient ``m_t = (1 - beta1^t) g``, so
    the uncorrected ``m_t`` starts at a tenth of ``g`` (for ``beta1 = 0.9``)
    while ``m_hat = m_t / (1 - beta1^t)`` equals ``g`` from the first step.

    Returns
    -------
    list of dict
        Per step ``t``: ``m_t``, ``m_hat``, ``v_t``, ``v_hat``, ``step`` (the
        parameter's change over ``lr``, i.e. ``m_hat / (sqrt(v_hat) + eps)``) and
        ``uncorrected step`` (``m_t / (sqrt(v_t) + eps)``, what Adam would do
        without the corrections).
    """
    from coursekit.optim.adam import Adam

    checks.integer("steps", steps, minimum=1)
    beta1, beta2 = betas
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = Adam([theta], lr=lr, betas=betas, eps=eps)
    rows = []
    for t in range(1, steps + 1):
        before = theta.item()
        theta.grad = torch.full_like(theta, grad)
        optimizer.step()
        state = optimizer.state[theta]
        m, v = state["exp_avg"].item(), state["exp_avg_sq"].item()
        rows.append({
            "t": t,
            "m_t": m,
            "m_hat": m / (1 - beta1**t),
            "v_t": v,
            "v_hat": v / (1 - beta2**t),
            "step": (before - theta.item()) / lr,
            "uncorrected step": m / (math.sqrt(v) + eps),
        })
    return rows


def effective_learning_rates(trajectory: Any) -> np.ndarray:
    r"""The step size each coordinate actually got, along a run on a landscape.

    .. math::
        \eta^{\text{eff}}_{k,i} = \frac{|\theta_{k,i} - \theta_{k-1,i}|}
                                     {|\nabla_i f(\theta_{k-1})|}

    For plain SGD this is the learning rate itself; for Adagrad it is
    ``lr / (sqrt(sum of g_i^2) + eps)``; for methods with momentum it also
    contains the momentum's contribution. The gradient is the landscape's exact
    one (for a :class:`~coursekit.landscapes.NoisyGradient`, not the noisy sample
    the optimizer saw).

    Parameters
    ----------
    trajectory : coursekit.landscapes.Trajectory
        A run from :func:`coursekit.landscapes.run`.

    Returns
    -------
    numpy.ndarray, shape (steps, 2)
        NaN where a gradient coordinate was exactly 0.
    """
    from coursekit.landscapes import Trajectory

    checks.instance("trajectory", trajectory, Trajectory, what="a landscapes.Trajectory")
    points = torch.as_tensor(trajectory.points, dtype=torch.float64)
    grads = trajectory.landscape.grad(points[:-1]).numpy()
    steps = np.abs(np.diff(trajectory.points, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(grads != 0, steps / np.abs(grads), np.nan)
