r"""Adamax: Adam with the infinity norm in place of the second moment.

Kingma and Ba (2015), section 7.1. Replacing the L2 average of past gradients by
an exponentially weighted infinity norm gives a denominator that needs no bias
correction::

    m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t
    u_t     = max(beta2 * u_{t-1}, |g_t| + eps)
    theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t / u_t

References
----------
.. [1] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
   ICLR 2015. arXiv:1412.6980. [kingma2015adam]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax (arguments and defaults as ``torch.optim.Adamax``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)`` in [0, 1).
    eps : float
        Added to ``|g|`` so the denominator is never zero.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
       ICLR 2015. arXiv:1412.6980. [kingma2015adam]
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, *, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)   # m
        state["exp_inf"] = torch.zeros_like(param)   # u

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        beta1, beta2 = group["betas"]
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        m, u = state["exp_avg"], state["exp_inf"]
        m.lerp_(grad, 1 - beta1)
        torch.maximum(u.mul_(beta2), grad.abs().add_(group["eps"]), out=u)
        param.addcdiv_(m, u, value=-group["lr"] / (1 - beta1 ** state["step"]))
