r"""RMSprop: divide the gradient by a running root-mean-square of its history.

Lecture 6e of Hinton et al. (2012); the centered variant is from Graves (2013). Unlike
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

``foreach=True`` and ``fused=True`` select the fast paths of
:mod:`coursekit.optim.fast` (torch's RMSprop has no ``fused``; ours does).

References
----------
.. [1] Hinton, G., Srivastava, N. and Swersky, K. (2012). Neural networks for machine
   learning, Lecture 6 (6d: a separate, adaptive learning rate for each connection; 6e:
   rmsprop: divide the gradient by a running average of its recent magnitude). Lecture
   slides, Coursera, University of Toronto. [hinton2012neural]
.. [2] Graves, A. (2013). Generating sequences with recurrent neural networks.
   arXiv:1308.0850. [graves2013generating]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer
from coursekit.optim.fast import bucket, check_fast_flags, compiled, scalar

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
    foreach : bool, optional
        Multi-tensor path (identical numbers); ``None`` picks it on CUDA.
    fused : bool, optional
        Compiled single-pass path (same numbers up to rounding).

    References
    ----------
    .. [1] Hinton, G., Srivastava, N. and Swersky, K. (2012). Neural networks for
       machine learning, Lecture 6 (6d: a separate, adaptive learning rate for each
       connection; 6e: rmsprop: divide the gradient by a running average of its recent
       magnitude). Lecture slides, Coursera, University of Toronto. [hinton2012neural]
    .. [2] Graves, A. (2013). Generating sequences with recurrent neural networks.
       arXiv:1308.0850. [graves2013generating]
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 *, foreach: bool | None = None, maximize: bool = False,
                 fused: bool | None = None):
        checks.nonnegative("lr", lr)
        checks.beta("alpha", alpha)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        checks.nonnegative("momentum", momentum)
        check_fast_flags(foreach, fused)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize,
                        foreach=foreach, fused=fused)
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

    def update_group(self, group: dict, params: list[torch.Tensor], mode: str) -> None:
        """The same step for a whole group: multi-tensor (``foreach``) or compiled (``fused``)."""
        for ps in bucket(params, key=lambda p: (p.device, p.dtype)):
            states = [self.state[p] for p in ps]
            for state in states:
                state["step"] += 1
            tensors = dict(
                params=ps, grads=[p.grad for p in ps],
                square_avgs=[s["square_avg"] for s in states],
                grad_avgs=[s["grad_avg"] for s in states] if group["centered"] else [],
                bufs=[s["momentum_buffer"] for s in states] if group["momentum"] > 0 else [])
            if mode == "foreach":
                _rmsprop_foreach(**tensors, group=group)
            else:
                like = ps[0]
                _rmsprop_kernel(**tensors, lr=scalar(group["lr"], like),
                                alpha=scalar(group["alpha"], like), eps=scalar(group["eps"], like),
                                weight_decay=scalar(group["weight_decay"], like),
                                momentum=scalar(group["momentum"], like),
                                has_weight_decay=group["weight_decay"] != 0,
                                has_momentum=group["momentum"] > 0, centered=group["centered"],
                                maximize=group["maximize"])


def _rmsprop_foreach(params, grads, square_avgs, grad_avgs, bufs, group: dict) -> None:
    """RMSprop on lists of tensors with ``torch._foreach_*``: line for line the readable update."""
    alpha = group["alpha"]
    if group["maximize"]:
        grads = torch._foreach_neg(grads)
    if group["weight_decay"] != 0:
        grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
    torch._foreach_mul_(square_avgs, alpha)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
    if group["centered"]:
        torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)
        denom = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
        torch._foreach_sqrt_(denom)
    else:
        denom = torch._foreach_sqrt(square_avgs)
    torch._foreach_add_(denom, group["eps"])
    if group["momentum"] > 0:
        torch._foreach_mul_(bufs, group["momentum"])
        torch._foreach_addcdiv_(bufs, grads, denom)
        torch._foreach_add_(params, bufs, alpha=-group["lr"])
    else:
        torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])


@compiled
def _rmsprop_kernel(params, grads, square_avgs, grad_avgs, bufs, *, lr, alpha, eps, weight_decay,
                    momentum, has_weight_decay: bool, has_momentum: bool, centered: bool,
                    maximize: bool) -> None:
    for i, (param, grad, v) in enumerate(zip(params, grads, square_avgs, strict=True)):
        if maximize:
            grad = -grad
        if has_weight_decay:
            grad = grad + weight_decay * param
        v.mul_(alpha).add_((1 - alpha) * grad * grad)
        if centered:
            grad_avgs[i].lerp_(grad, 1 - alpha)
            denom = (v - grad_avgs[i] * grad_avgs[i]).sqrt() + eps
        else:
            denom = v.sqrt() + eps
        if has_momentum:
            bufs[i].mul_(momentum).add_(grad / denom)
            param.sub_(lr * bufs[i])
        else:
            param.sub_(lr * grad / denom)
