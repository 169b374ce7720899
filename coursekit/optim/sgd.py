r"""Stochastic gradient descent, with optional heavy-ball or Nesterov momentum.

The algorithm (PyTorch's formulation, which the tests reproduce exactly)::

    for t = 1, 2, ...
        g_t = grad f(theta_{t-1})             (-grad when maximize=True)
        g_t = g_t + weight_decay * theta_{t-1}          (L2 penalty, if any)
        if momentum > 0:
            b_t = g_t                                   if t == 1
            b_t = momentum * b_{t-1} + (1 - dampening) * g_t   otherwise
            d_t = g_t + momentum * b_t   if nesterov   else   b_t
        else:
            d_t = g_t
        theta_t = theta_{t-1} - lr * d_t

With ``dampening=0`` the buffer is the "SGD+" velocity of the course
(``v = mu v + g``), see :mod:`coursekit.optim.momentum`.
"""

from __future__ import annotations

import torch

from coursekit.optim.base import Optimizer, check_lr, check_nonnegative

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent (arguments and defaults as ``torch.optim.SGD``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups (dicts) to optimize.
    lr : float
        Learning rate, >= 0.
    momentum : float
        Momentum factor ``mu`` (0 disables momentum).
    dampening : float
        Dampening ``tau`` in [0, 1] applied to the gradient entering the buffer.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    nesterov : bool
        Use Nesterov's look-ahead momentum (needs momentum > 0, dampening = 0).
    maximize : bool
        Ascend the objective instead of descending it.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        check_lr(lr)
        check_nonnegative("momentum", momentum)
        check_nonnegative("dampening", dampening)
        if dampening > 1:
            raise ValueError(f"Invalid dampening: {dampening} (must be in [0, 1])")
        check_nonnegative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Invalid nesterov=True with momentum={momentum}, dampening={dampening}: "
                "Nesterov momentum requires momentum > 0 and dampening = 0"
            )
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        mu = group["momentum"]
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()  # b_1 = g_1
            else:
                buf.mul_(mu).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=mu) if group["nesterov"] else buf
        param.add_(grad, alpha=-group["lr"])
