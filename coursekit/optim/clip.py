r"""Gradient-norm clipping: a fixed threshold, and a running-mean threshold.

Global-norm clipping (Pascanu et al., 2013) treats all gradient tensors
as one vector ``g`` and shrinks it, direction unchanged, when its norm exceeds a
threshold ``theta``::

    ||g||_p = ( sum_i ||g_i||_p^p )^(1/p)                 (p = 2 by default)
    g <- g * min(1, theta / (||g||_p + eps))              (eps = 1e-6, as torch)

:func:`clip_grad_norm_` is ``torch.nn.utils.clip_grad_norm_`` written out.

The running-mean rule (from a student presentation of Chandra et al. (2022), for the
hyper-optimizer stacks of that paper, whose large top-level step size makes
gradients explode) needs no threshold: ``theta_t`` is the mean of the gradient
norms seen so far, and the mean remembers the *clipped* norms, so one explosion
cannot raise the bar for the next::

    theta_t   = ||g_t||                                       t = 1
    theta_t   = ((t - 1) * theta'_{t-1} + ||g_t||) / t        t > 1
    g'_t      = g_t * min(1, theta_t / ||g_t||)
    theta'_t  = ((t - 1) * theta'_{t-1} + ||g'_t||) / t

The first gradient is therefore passed unchanged and starts the mean
(``theta'_1 = ||g_1||``). Later, ``g_t`` is shrunk exactly when its norm exceeds
the mean so far, ``theta'_{t-1}``, and then to ``theta_t``, which lies between
the two. A zero gradient passes unchanged (its scale is 1). A non-finite norm is
not special-cased: like torch's clipping it yields non-finite gradients, and it
makes the running mean non-finite from then on.

Both clippers are callables on a list of gradient tensors, returning new tensors,
so they plug into any level of a :mod:`coursekit.optim.hyper` stack::

    hyper.SGD(0.01, optimizer=hyper.SGD(50.0), clip=RunningMeanClip())   # parameter level
    hyper.SGD(0.01, optimizer=hyper.SGD(50.0, clip=RunningMeanClip()))   # hyperparameter level

and ``clip_grad_norm_(parameters)`` applies them in place to ``.grad`` before an
ordinary ``optimizer.step()``.

References
----------
.. [1] Pascanu, R., Mikolov, T. and Bengio, Y. (2013). On the difficulty of training
   recurrent neural networks. ICML 2013, PMLR 28(3), 1310–1318. arXiv:1211.5063.
   [pascanu2013difficulty]
.. [2] A student presentation of Chandra et al. (2022): final presentation on "Gradient
   Descent: The Ultimate Optimizer", with a running-mean gradient-norm clipping rule for the
   top-level step size. [chandra2022presentation]
.. [3] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient descent: The
   ultimate optimizer. NeurIPS 2022. arXiv:1909.13371. [chandra2022gradient]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from coursekit import _checks as checks

__all__ = [
    "GlobalNormClip",
    "RunningMeanClip",
    "clip_by_global_norm",
    "clip_grad_norm_",
    "global_norm",
]


def _grads_of(parameters: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def global_norm(tensors: Sequence[torch.Tensor], norm_type: float = 2.0) -> torch.Tensor:
    """The p-norm of all ``tensors`` taken together as one vector (0 for an empty list).

    Parameters
    ----------
    tensors : sequence of Tensor
        The gradients (any shapes, one dtype and device).
    norm_type : float
        ``p`` of the p-norm, > 0; ``math.inf`` for the largest absolute entry.
    """
    p = checks.real("norm_type", norm_type, above=0, allow_inf=True)
    if not tensors:
        return torch.tensor(0.0)
    norms = torch.stack([torch.linalg.vector_norm(g, p) for g in tensors])
    return torch.linalg.vector_norm(norms, p)


def clip_by_global_norm(grads: Sequence[torch.Tensor], max_norm: float,
                        norm_type: float = 2.0, eps: float = 1e-6) -> list[torch.Tensor]:
    """Return ``grads * min(1, max_norm / (||grads|| + eps))``, leaving ``grads`` untouched.

    Parameters
    ----------
    grads : sequence of Tensor
        The gradients, scaled together by one factor.
    max_norm : float
        The threshold ``theta``, >= 0.
    norm_type : float
        ``p`` of the p-norm, > 0 or ``math.inf``.
    eps : float
        Added to the norm before dividing, as torch does (1e-6).
    """
    checks.nonnegative("max_norm", max_norm)
    total = global_norm(grads, norm_type)
    scale = torch.clamp(max_norm / (total + eps), max=1.0)
    return [g * scale for g in grads]


def clip_grad_norm_(parameters: torch.Tensor | Iterable[torch.Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> torch.Tensor:
    """Clip the parameters' ``.grad`` in place to global norm ``max_norm``; as torch's.

    Same contract as ``torch.nn.utils.clip_grad_norm_``: parameters without a
    gradient are skipped, and the return value is the total norm *before* clipping.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        Parameters whose gradients are clipped.
    max_norm : float
        The threshold, >= 0.
    norm_type : float
        ``p`` of the p-norm, > 0 or ``math.inf``.
    error_if_nonfinite : bool
        Raise instead of producing non-finite gradients when the norm is nan or inf.
    """
    grads = _grads_of(parameters)
    total = global_norm(grads, norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} of the gradients is {total.item()}"
                           "; set error_if_nonfinite=False to clip anyway")
    with torch.no_grad():
        for g, clipped in zip(grads, clip_by_global_norm(grads, max_norm, norm_type), strict=True):
            g.copy_(clipped)
    return total


class GlobalNormClip:
    """Global-norm clipping with a fixed threshold, as a callable on a list of gradients.

    Parameters
    ----------
    max_norm : float
        The threshold, >= 0.
    norm_type : float
        ``p`` of the p-norm, > 0 or ``math.inf``.

    References
    ----------
    .. [1] Pascanu, R., Mikolov, T. and Bengio, Y. (2013). On the difficulty of training
       recurrent neural networks. ICML 2013, PMLR 28(3), 1310–1318. arXiv:1211.5063.
       [pascanu2013difficulty]
    """

    def __init__(self, max_norm: float, norm_type: float = 2.0):
        checks.nonnegative("max_norm", max_norm)
        self.max_norm = float(max_norm)
        self.norm_type = checks.real("norm_type", norm_type, above=0, allow_inf=True)

    def __repr__(self) -> str:
        return f"GlobalNormClip(max_norm={self.max_norm:g}, norm_type={self.norm_type:g})"

    def __call__(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Return the clipped gradients (new tensors)."""
        return clip_by_global_norm(grads, self.max_norm, self.norm_type)


class RunningMeanClip:
    """Clip to the running mean of the (clipped) gradient norms.

    The rule of a student presentation of Chandra et al. (2022). Each call is one
    step ``t`` of the rule in the module docstring. The state is the step count ``t``
    and the mean ``theta`` of the clipped norms so far; both stay tensors on the
    gradients' device, so clipping never waits for the GPU.

    Parameters
    ----------
    norm_type : float
        ``p`` of the p-norm, > 0 or ``math.inf`` (the presentation uses 2).

    References
    ----------
    .. [1] A student presentation of Chandra et al. (2022): final presentation on
       "Gradient Descent: The Ultimate Optimizer", with a running-mean gradient-norm
       clipping rule for the top-level step size. [chandra2022presentation]
    """

    def __init__(self, norm_type: float = 2.0):
        self.norm_type = checks.real("norm_type", norm_type, above=0, allow_inf=True)
        self.t = 0
        self.theta: torch.Tensor | None = None
        self._record: dict[str, list[torch.Tensor]] = {"norm": [], "threshold": [], "scale": []}

    def __repr__(self) -> str:
        return f"RunningMeanClip(norm_type={self.norm_type:g})"

    @property
    def history(self) -> dict[str, list[float]]:
        """Per step: the gradient's ``norm``, the ``threshold`` theta_t, the ``scale`` used."""
        return {key: torch.stack(values).tolist() if values else []
                for key, values in self._record.items()}

    def __call__(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Clip one step's gradients; return them as new tensors."""
        norm = global_norm(grads, self.norm_type).detach()
        self.t += 1
        t = self.t
        previous = torch.zeros_like(norm) if self.theta is None else self.theta
        theta = ((t - 1) * previous + norm) / t             # = ||g_1|| at t = 1
        scale = torch.where(norm > 0, torch.clamp(theta / norm, max=1.0), 1.0)
        clipped = [g * scale for g in grads]
        # ||g'_t|| = scale * ||g_t||: the mean remembers the clipped norm.
        self.theta = ((t - 1) * previous + scale * norm) / t
        for key, value in (("norm", norm), ("threshold", theta), ("scale", scale)):
            self._record[key].append(value)
        return clipped

    def clip_grad_norm_(self, parameters: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
        """Apply one step of the rule in place to the parameters' ``.grad``; return the norm
        before clipping (parameters without a gradient are skipped)."""
        grads = _grads_of(parameters)
        with torch.no_grad():
            for g, clipped in zip(grads, self(grads), strict=True):
                g.copy_(clipped)
        return self._record["norm"][-1]

    def state_dict(self) -> dict[str, object]:
        """The step count ``t``, the mean ``theta`` and the history, to resume the rule later
        (:class:`coursekit.optim.hyper.ModuleWrapper` saves it with its stack)."""
        return {"t": self.t, "theta": self.theta,
                "history": {key: torch.stack(values) if values else torch.empty(0)
                            for key, values in self._record.items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Continue from a :meth:`state_dict`."""
        self.t = state["t"]
        self.theta = state["theta"]
        self._record = {key: list(values.unbind(0)) for key, values in state["history"].items()}
