r"""Adam and AdamW: momentum + per-coordinate RMS scaling + bias correction.

Kingma & Ba (2015); AMSGrad from Reddi et al. (2018); decoupled weight decay
(AdamW) from Loshchilov & Hutter (2019)::

    m_0 = 0, v_0 = 0
    for t = 1, 2, ...
        g_t = grad f(theta_{t-1})                 (-grad when maximize=True)
        weight decay (L2: g_t += wd * theta;  decoupled: theta *= 1 - lr * wd)
        m_t = beta1 * m_{t-1} + (1 - beta1) * g_t          first moment
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2        second moment
        m_hat = m_t / (1 - beta1^t)                         bias corrections
        v_hat = v_t / (1 - beta2^t)
        if amsgrad: vmax_t = max(vmax_{t-1}, v_t); v_hat = vmax_t / (1 - beta2^t)
        theta_t = theta_{t-1} - lr * m_hat / (sqrt(v_hat) + eps)

In optax's terms Adam is ``chain(scale_by_momentum, scale_by_rms, bias_correct,
scale(-lr))``: each line above is one of those pieces.
"""

from __future__ import annotations

import torch

from coursekit.optim.base import (
    Optimizer,
    apply_weight_decay,
    check_betas,
    check_lr,
    check_nonnegative,
)

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (arguments and defaults as ``torch.optim.Adam``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)``: decay rates of the first and second moment, in [0, 1).
    eps : float
        Added to ``sqrt(v_hat)`` for numerical stability.
    weight_decay : float
        Weight decay coefficient (L2 unless ``decoupled_weight_decay``).
    amsgrad : bool
        Normalise by the running maximum of the second moment (AMSGrad).
    maximize : bool
        Ascend the objective instead of descending it.
    decoupled_weight_decay : bool
        Shrink the weights directly (AdamW) instead of adding an L2 gradient.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        check_lr(lr)
        check_betas(betas)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)      # m
        state["exp_avg_sq"] = torch.zeros_like(param)   # v
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = torch.zeros_like(param)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        grad = apply_weight_decay(param, grad, group, group["decoupled_weight_decay"])

        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)                         # m = beta1 m + (1 - beta1) g
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

        bias_correction1 = 1 - beta1**t
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        if group["amsgrad"]:
            torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        # denom = sqrt(v_hat) + eps, built in place in one buffer
        denom = v.sqrt().div_(bias_correction2_sqrt).add_(group["eps"])
        param.addcdiv_(m, denom, value=-group["lr"] / bias_correction1)


class AdamW(Adam):
    """Adam with decoupled weight decay (arguments and defaults as ``torch.optim.AdamW``).

    Identical to ``Adam(..., decoupled_weight_decay=True)`` except that the default
    ``weight_decay`` is ``1e-2``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
