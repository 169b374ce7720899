r"""The two classic forms of heavy-ball momentum, side by side.

"SGD+" (the form of the course's first homework, and of ``torch.optim.SGD`` with
``dampening=0``) accumulates *gradients* and multiplies by the learning rate at
the end::

    v_t     = mu * v_{t-1} + g_t
    theta_t = theta_{t-1} - lr_t * v_t

Qian's form (1999; also Sutskever et al. 2013) accumulates *steps*, so each
gradient is scaled by the learning rate in force when it was seen::

    dw_t    = mu * dw_{t-1} + lr_t * g_t
    theta_t = theta_{t-1} - dw_t

With a constant learning rate the two are the same sequence (``dw_t = lr v_t``).
When ``lr_t`` changes (a schedule), SGD+ rescales its whole history at once while
Qian's form only rescales new gradients: the iterates differ.
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["QianMomentum", "SGDPlus"]


class _HeavyBall(Optimizer):
    def __init__(self, params, lr: float, momentum: float, weight_decay: float):
        checks.nonnegative("lr", lr)
        checks.beta("momentum", momentum)
        checks.nonnegative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["velocity"] = torch.zeros_like(param)

    @staticmethod
    def _gradient(param: torch.Tensor, grad: torch.Tensor, group: dict) -> torch.Tensor:
        if group["weight_decay"] != 0:
            return grad.add(param, alpha=group["weight_decay"])
        return grad


class SGDPlus(_HeavyBall):
    """Momentum as "SGD+": ``v = mu v + g``; ``theta -= lr v``.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    momentum : float
        ``mu`` in [0, 1); the velocity averages roughly the last ``1 / (1 - mu)``
        gradients.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, momentum, weight_decay)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        v = state["velocity"]
        v.mul_(group["momentum"]).add_(self._gradient(param, grad, group))
        param.add_(v, alpha=-group["lr"])


class QianMomentum(_HeavyBall):
    """Momentum in Qian's form: ``dw = mu dw + lr g``; ``theta -= dw``.

    Same parameters as :class:`SGDPlus`; the state ``velocity`` holds ``dw``, the
    last step taken, rather than an accumulated gradient.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, momentum, weight_decay)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        dw = state["velocity"]
        dw.mul_(group["momentum"]).add_(self._gradient(param, grad, group), alpha=group["lr"])
        param.sub_(dw)
