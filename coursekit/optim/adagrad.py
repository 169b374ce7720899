r"""Adagrad: a per-coordinate learning rate from the sum of squared gradients.

Duchi et al. (2011). Every coordinate keeps the running *sum* of its
squared gradients, so frequently-updated coordinates slow down and rare ones keep
a large step::

    state_sum_0 = initial_accumulator_value
    for t = 1, 2, ...
        g_t        = grad f(theta_{t-1})       (-grad when maximize=True)
        g_t        = g_t + weight_decay * theta_{t-1}
        lr_t       = lr / (1 + (t - 1) * lr_decay)
        state_sum_t = state_sum_{t-1} + g_t * g_t
        theta_t    = theta_{t-1} - lr_t * g_t / (sqrt(state_sum_t) + eps)

Because the sum only grows, the effective step shrinks like 1/sqrt(t): good for
convex problems, often too aggressive for deep networks (the motivation of RMSprop,
Hinton et al., 2012).

References
----------
.. [1] Duchi, J., Hazan, E. and Singer, Y. (2011). Adaptive subgradient methods for online
   learning and stochastic optimization. Journal of Machine Learning Research, 12,
   2121–2159. [duchi2011adaptive]
.. [2] Hinton, G., Srivastava, N. and Swersky, K. (2012). Neural networks for machine
   learning, Lecture 6 (6d: a separate, adaptive learning rate for each connection; 6e:
   rmsprop: divide the gradient by a running average of its recent magnitude). Lecture
   slides, Coursera, University of Toronto. [hinton2012neural]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (arguments and defaults as ``torch.optim.Adagrad``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Base learning rate, >= 0.
    lr_decay : float
        Decay of the base rate: ``lr / (1 + (t - 1) lr_decay)``.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    initial_accumulator_value : float
        Starting value of the squared-gradient sum.
    eps : float
        Added to the square root for numerical stability.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Duchi, J., Hazan, E. and Singer, Y. (2011). Adaptive subgradient methods for
       online learning and stochastic optimization. Journal of Machine Learning
       Research, 12, 2121–2159. [duchi2011adaptive]
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.nonnegative("lr_decay", lr_decay)
        checks.nonnegative("weight_decay", weight_decay)
        checks.nonnegative("initial_accumulator_value", initial_accumulator_value)
        checks.nonnegative("eps", eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults)
        # Like torch.optim.Adagrad, create the state up front (not at the first
        # step), so it exists even for parameters that never receive a gradient.
        for group in self.param_groups:
            for param in group["params"]:
                self.init_state(param, self.state[param], group)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["sum"] = torch.full_like(param, group["initial_accumulator_value"])

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        lr_t = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        state["sum"].addcmul_(grad, grad, value=1)
        denom = state["sum"].sqrt().add_(group["eps"])
        param.addcdiv_(grad, denom, value=-lr_t)
