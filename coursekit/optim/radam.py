r"""RAdam: Adam with a rectified adaptive learning rate (Liu et al., 2020).

Early in training ``v_t`` is estimated from few gradients, so ``1 / sqrt(v_hat)``
has a huge variance. RAdam measures the length of the approximating simple moving
average, ``rho_t``, and only trusts the adaptive step once ``rho_t > 5``,
multiplying it by a rectification term ``r_t`` that corrects its variance; before
that it takes plain momentum steps (a built-in warm-up)::

    rho_inf = 2 / (1 - beta2) - 1
    m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t;   m_hat = m_t / (1 - beta1^t)
    v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t^2
    rho_t   = rho_inf - 2 t beta2^t / (1 - beta2^t)
    if rho_t > 5:
        r_t     = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        theta_t = theta_{t-1} - lr * r_t * m_hat * sqrt(1 - beta2^t) / (sqrt(v_t) + eps)
    else:
        theta_t = theta_{t-1} - lr * m_hat

References
----------
.. [1] Liu, L., Jiang, H., He, P., Chen, W., Liu, X., Gao, J. and Han, J. (2020). On the
   variance of the adaptive learning rate and beyond. ICLR 2020. arXiv:1908.03265.
   [liu2020variance]
"""

from __future__ import annotations

import math

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer, apply_weight_decay

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam (arguments and defaults as ``torch.optim.RAdam``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)`` in [0, 1).
    eps : float
        Added to ``sqrt(v_t)``.
    weight_decay : float
        Weight decay coefficient (L2 unless ``decoupled_weight_decay``).
    decoupled_weight_decay : bool
        Decoupled (AdamW-style) weight decay.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Liu, L., Jiang, H., He, P., Chen, W., Liu, X., Gao, J. and Han, J. (2020). On
       the variance of the adaptive learning rate and beyond. ICLR 2020.
       arXiv:1908.03265. [liu2020variance]
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)

    @staticmethod
    def rectification(t: int, beta2: float) -> float | None:
        """``r_t`` at step ``t``, or ``None`` while ``rho_t <= 5`` (no adaptive step yet)."""
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
        if rho_t <= 5.0:
            return None
        return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        grad = apply_weight_decay(param, grad, group, group["decoupled_weight_decay"])

        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        m_hat = m / (1 - beta1**t)

        r_t = self.rectification(t, beta2)
        if r_t is None:
            param.add_(m_hat, alpha=-lr)
        else:
            adaptive_lr = (1 - beta2**t) ** 0.5 / v.sqrt().add_(group["eps"])
            param.add_(m_hat.mul_(adaptive_lr), alpha=-lr * r_t)
