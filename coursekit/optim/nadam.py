r"""NAdam: Adam with Nesterov momentum (Dozat, 2016).

Nesterov's idea (Nesterov, 1983) is to apply the momentum of the *next* step now. Dozat's NAdam
also warms the momentum coefficient up with a schedule ``mu_t``::

    mu_t    = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
    P_t     = mu_1 * mu_2 * ... * mu_t                     (running product)
    m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t
    v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t^2
    v_hat   = v_t / (1 - beta2^t)
    theta_t = theta_{t-1} - lr * [ (1 - mu_t) / (1 - P_t)       * g_t
                                   + mu_{t+1} / (1 - P_t mu_{t+1}) * m_t ] / (sqrt(v_hat) + eps)

The first term is the bias-corrected current gradient, the second the
bias-corrected momentum one step ahead.

References
----------
.. [1] Dozat, T. (2016). Incorporating Nesterov momentum into Adam. ICLR 2016, Workshop
   Track. https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ. [dozat2016incorporating]
.. [2] Nesterov, Y. (1983). A method for solving the convex programming problem with
   convergence rate O(1/k^2). Doklady Akademii Nauk SSSR, 269(3), 543–547 (in Russian;
   English translation in Soviet Mathematics Doklady, 27, 372–376). [nesterov1983method]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer, apply_weight_decay

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam (arguments and defaults as ``torch.optim.NAdam``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)`` in [0, 1).
    eps : float
        Added to ``sqrt(v_hat)``.
    weight_decay : float
        Weight decay coefficient (L2 unless ``decoupled_weight_decay``).
    momentum_decay : float
        ``psi`` in the momentum warm-up ``mu_t = beta1 (1 - 0.5 * 0.96^(t psi))``.
    decoupled_weight_decay : bool
        Decoupled (AdamW-style) weight decay, giving NAdamW.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Dozat, T. (2016). Incorporating Nesterov momentum into Adam. ICLR 2016,
       Workshop Track. https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ.
       [dozat2016incorporating]
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        checks.nonnegative("momentum_decay", momentum_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["mu_product"] = 1.0
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        lr, psi = group["lr"], group["momentum_decay"]
        grad = apply_weight_decay(param, grad, group, group["decoupled_weight_decay"])

        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]

        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = v.div(1 - beta2**t).sqrt_().add_(group["eps"])
        param.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
        param.addcdiv_(m, denom, value=-lr * mu_next / (1.0 - mu_product * mu_next))
