r"""Adam and AdamW: momentum + per-coordinate RMS scaling + bias correction.

Kingma and Ba (2015); AMSGrad from Reddi et al. (2018); decoupled weight decay
(AdamW) from Loshchilov and Hutter (2019)::

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

``foreach=True`` and ``fused=True`` select the fast paths of
:mod:`coursekit.optim.fast` (same numbers; ``fused`` compiles the whole step into
one pass over memory per tensor).

In optax's terms Adam is ``chain(scale_by_momentum, scale_by_rms, bias_correct,
scale(-lr))``: each line above is one of those pieces.

References
----------
.. [1] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
   ICLR 2015. arXiv:1412.6980. [kingma2015adam]
.. [2] Reddi, S. J., Kale, S. and Kumar, S. (2018). On the convergence of Adam and beyond.
   ICLR 2018. arXiv:1904.09237. [reddi2018convergence]
.. [3] Loshchilov, I. and Hutter, F. (2019). Decoupled weight decay regularization.
   ICLR 2019. arXiv:1711.05101. [loshchilov2019decoupled]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer, apply_weight_decay
from coursekit.optim.fast import bucket, check_fast_flags, compiled, scalar

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
    foreach : bool, optional
        Multi-tensor path (identical numbers); ``None`` picks it on CUDA.
    fused : bool, optional
        Compiled single-pass path (same numbers up to rounding).

    References
    ----------
    .. [1] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
       ICLR 2015. arXiv:1412.6980. [kingma2015adam]
    .. [2] Reddi, S. J., Kale, S. and Kumar, S. (2018). On the convergence of Adam and
       beyond. ICLR 2018. arXiv:1904.09237. [reddi2018convergence]
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        check_fast_flags(foreach, fused)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach, fused=fused,
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

    def update_group(self, group: dict, params: list[torch.Tensor], mode: str) -> None:
        """The same step for a whole group: multi-tensor (``foreach``) or compiled (``fused``)."""
        states = [self.state[p] for p in params]
        for state in states:
            state["step"] += 1
        # Tensors sharing a step count, device and dtype are updated together.
        for indices in bucket(range(len(params)), key=lambda i: (
                states[i]["step"], params[i].device, params[i].dtype)):
            ps = [params[i] for i in indices]
            st = [states[i] for i in indices]
            tensors = dict(
                params=ps, grads=[p.grad for p in ps], exp_avgs=[s["exp_avg"] for s in st],
                exp_avg_sqs=[s["exp_avg_sq"] for s in st],
                max_exp_avg_sqs=[s["max_exp_avg_sq"] for s in st] if group["amsgrad"] else [])
            if mode == "foreach":
                _adam_foreach(**tensors, t=st[0]["step"], group=group)
            else:
                _adam_fused(**tensors, t=st[0]["step"], group=group)


def _adam_foreach(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, t: int,
                  group: dict) -> None:
    """Adam on lists of tensors with ``torch._foreach_*``: line for line the readable update."""
    beta1, beta2 = group["betas"]
    lr, wd = group["lr"], group["weight_decay"]
    if group["maximize"]:
        grads = torch._foreach_neg(grads)
    if wd != 0:
        if group["decoupled_weight_decay"]:
            torch._foreach_mul_(params, 1 - lr * wd)
        else:
            grads = torch._foreach_add(grads, params, alpha=wd)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    v = exp_avg_sqs
    if group["amsgrad"]:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        v = max_exp_avg_sqs
    denom = torch._foreach_sqrt(v)
    torch._foreach_div_(denom, (1 - beta2**t) ** 0.5)
    torch._foreach_add_(denom, group["eps"])
    torch._foreach_addcdiv_(params, exp_avgs, denom, value=-lr / (1 - beta1**t))


def _adam_fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, t: int,
                group: dict) -> None:
    """Adam as one compiled kernel; hyperparameters travel as 0-d tensors (no recompiles)."""
    beta1, beta2 = group["betas"]
    like = params[0]
    _adam_kernel(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                 lr=scalar(group["lr"], like), beta1=scalar(beta1, like),
                 beta2=scalar(beta2, like), eps=scalar(group["eps"], like),
                 weight_decay=scalar(group["weight_decay"], like),
                 bias_correction1=scalar(1 - beta1**t, like),
                 bias_correction2_sqrt=scalar((1 - beta2**t) ** 0.5, like),
                 amsgrad=group["amsgrad"], maximize=group["maximize"],
                 decoupled=group["decoupled_weight_decay"],
                 has_weight_decay=group["weight_decay"] != 0)


@compiled
def _adam_kernel(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, lr, beta1, beta2, eps,
                 weight_decay, bias_correction1, bias_correction2_sqrt, amsgrad: bool,
                 maximize: bool, decoupled: bool, has_weight_decay: bool) -> None:
    for i, (param, grad, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs,
                                               strict=True)):
        if maximize:
            grad = -grad
        if has_weight_decay:
            if decoupled:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).add_((1 - beta2) * grad * grad)
        if amsgrad:
            v = torch.maximum(max_exp_avg_sqs[i], v)
            max_exp_avg_sqs[i].copy_(v)
        param.sub_(lr / bias_correction1 * m / (v.sqrt() / bias_correction2_sqrt + eps))


class AdamW(Adam):
    """Adam with decoupled weight decay (arguments and defaults as ``torch.optim.AdamW``).

    Identical to ``Adam(..., decoupled_weight_decay=True)`` except that the default
    ``weight_decay`` is ``1e-2``.

    References
    ----------
    .. [1] Loshchilov, I. and Hutter, F. (2019). Decoupled weight decay regularization.
       ICLR 2019. arXiv:1711.05101. [loshchilov2019decoupled]
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         foreach=foreach, fused=fused, decoupled_weight_decay=True)
