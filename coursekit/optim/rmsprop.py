r"""RMSprop: divide the gradient by a running root-mean-square of its history.

Hinton's lecture 6e (2012); the centered variant is Graves (2013). Unlike
Adagrad's ever-growing sum, an exponential moving average forgets old gradients::

    for t = 1, 2, ...
        g_t = grad f(theta_{t-1})              (-grad when maximize=True)
        g_t = g_t + weight_decay * theta_{t-1}
        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2          (v_0 = 0)
        if centered:                                  (subtract the mean squared)
            gbar_t = alpha * gbar_{t-1} + (1 - alpha) * g_t
            denom  = sqrt(v_t - gbar_t^2) + eps
        else:
            denom  = sqrt(v_t) + eps
        if momentum > 0:
            b_t     = momentum * b_{t-1} + g_t / denom
            theta_t = theta_{t-1} - lr * b_t
        else:
            theta_t = theta_{t-1} - lr * g_t / denom
"""

from __future__ import annotations

import torch

from coursekit.optim.base import Optimizer, check_beta, check_lr, check_nonnegative

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (arguments and defaults as ``torch.optim.RMSprop``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    alpha : float
        Smoothing constant of the squared-gradient average, in [0, 1).
    eps : float
        Added to the denominator for numerical stability.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    momentum : float
        Momentum factor on the normalised step (0 disables it).
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its raw
        second moment.
    maximize : bool
        Ascend the objective instead of descending it.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 *, maximize: bool = False):
        check_lr(lr)
        check_beta("alpha", alpha)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("momentum", momentum)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["square_avg"] = torch.zeros_like(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        alpha = group["alpha"]
        v = state["square_avg"]
        v.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            gbar = state["grad_avg"]
            gbar.lerp_(grad, 1 - alpha)  # gbar += (1 - alpha)(g - gbar)
            denom = v.addcmul(gbar, gbar, value=-1).sqrt_()
        else:
            denom = v.sqrt()
        denom.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).addcdiv_(grad, denom)
            param.add_(buf, alpha=-group["lr"])
        else:
            param.addcdiv_(grad, denom, value=-group["lr"])
