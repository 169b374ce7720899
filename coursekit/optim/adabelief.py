r"""AdaBelief: adapt the step to the "belief" in the observed gradient.

Zhuang et al. (2020). Adam divides by the EMA of ``g^2``; AdaBelief
divides by the EMA of ``(g - m)^2``, how far the gradient strays from its own
prediction ``m``. Where gradients agree with the momentum (a smooth valley) the
denominator is small and the step is large; where they disagree it is cautious.

The semantics follow the authors' reference implementation (adabelief-pytorch
0.2), including ``eps`` added *inside* ``s_t`` (so it accumulates in the state)::

    weight decay (decoupled: theta *= 1 - lr * wd;   L2: g += wd * theta)
    m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
    s_t = beta2 * s_{t-1} + (1 - beta2) * (g_t - m_t)^2 + eps
    if amsgrad: s_max_t = max(s_max_{t-1}, s_t), used in place of s_t in the
                unrectified update (the reference's rectified update uses s_t)
    without rectification:
        theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(s_t / (1 - beta2^t)) + eps)
    with rectification (as RAdam, with rho_t from beta2):
        if rho_t >= 5:
            k_t = sqrt((1 - beta2^t) (rho_t - 4)(rho_t - 2) rho_inf
                       / ((rho_inf - 4)(rho_inf - 2) rho_t)) / (1 - beta1^t)
            theta_t = theta_{t-1} - lr * k_t * m_t / (sqrt(s_t) + eps)
        elif degenerated_to_sgd:
            theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t
        else:
            no update

Where the package and the paper part ways, coursekit follows the package. The paper's
Algorithm 2 has neither weight decay nor rectification; the package (since 0.1.0) by
default decouples weight decay and rectifies the step as RAdam (Liu et al., 2020) does,
with its threshold ``rho_t >= 5``, and so do our defaults. ``rectify=False`` with
``weight_decay=0`` is the paper's update. The package's ``fixed_decay=True``
(``theta *= 1 - wd``, not scaled by lr) is ``weight_decay=wd / lr`` here at a constant lr.
One deliberate difference: with L2 weight decay the package adds ``wd * theta`` into
``p.grad`` in place, while we leave ``p.grad`` the loss's gradient (as torch.optim does).
The per-parameter state (``step``, ``exp_avg``, ``exp_avg_var``, ``max_exp_avg_var``) has
the package's names and meaning, so the ``state`` of a ``state_dict()`` saved by one
continues the run in the other (under the other's own ``param_groups``).

tests/test_reference_optimizers.py runs this class beside adabelief-pytorch over all its
flag combinations (and beside pytorch-optimizer's AdaBelief, which differs from the
authors in two places: its ``ams_bound`` also bounds the rectified step, and it counts
steps per parameter group, so a parameter that first gets a gradient late starts with the
group's bias correction; we count per parameter, as the authors do).

References
----------
.. [1] Zhuang, J., Tang, T., Ding, Y., Tatikonda, S., Dvornek, N., Papademetris, X. and
   Duncan, J. S. (2020). AdaBelief optimizer: Adapting stepsizes by the belief in observed
   gradients. NeurIPS 2020. arXiv:2010.07468. [zhuang2020adabelief]
.. [2] Liu, L., Jiang, H., He, P., Chen, W., Liu, X., Gao, J. and Han, J. (2020). On the
   variance of the adaptive learning rate and beyond. ICLR 2020. arXiv:1908.03265.
   [liu2020variance]
"""

from __future__ import annotations

import math

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer, apply_weight_decay

__all__ = ["AdaBelief"]


class AdaBelief(Optimizer):
    """AdaBelief (defaults of the reference implementation, adabelief-pytorch 0.2).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)`` in [0, 1).
    eps : float
        Added inside ``s_t`` and to its square root. AdaBelief's ``eps`` plays the
        role of the *square* of Adam's, hence the tiny default ``1e-16``.
    weight_decay : float
        Weight decay coefficient.
    amsgrad : bool
        Normalise by the running maximum of ``s_t``.
    decoupled_weight_decay : bool
        Decoupled (AdamW-style) weight decay; the reference's ``weight_decouple``.
    rectify : bool
        RAdam's variance rectification of the adaptive step.
    degenerated_to_sgd : bool
        With ``rectify``, take momentum-SGD steps while ``rho_t < 5`` (else skip).
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Zhuang, J., Tang, T., Ding, Y., Tatikonda, S., Dvornek, N., Papademetris, X.
       and Duncan, J. S. (2020). AdaBelief optimizer: Adapting stepsizes by the belief
       in observed gradients. NeurIPS 2020. arXiv:2010.07468. [zhuang2020adabelief]
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-16, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 decoupled_weight_decay: bool = True, rectify: bool = True,
                 degenerated_to_sgd: bool = True, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, decoupled_weight_decay=decoupled_weight_decay,
                        rectify=rectify, degenerated_to_sgd=degenerated_to_sgd,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)      # m
        state["exp_avg_var"] = torch.zeros_like(param)  # s
        if group["amsgrad"]:
            state["max_exp_avg_var"] = torch.zeros_like(param)

    @staticmethod
    def rectified_step_size(t: int, beta1: float, beta2: float) -> float | None:
        """``k_t`` of the rectified update, or ``None`` while ``rho_t < 5``."""
        rho_inf = 2 / (1 - beta2) - 1
        beta2_t = beta2**t
        rho_t = rho_inf - 2 * t * beta2_t / (1 - beta2_t)
        if rho_t < 5:
            return None
        return math.sqrt((1 - beta2_t) * (rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) / (1 - beta1**t)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        grad = apply_weight_decay(param, grad, group, group["decoupled_weight_decay"])

        m, s = state["exp_avg"], state["exp_avg_var"]
        m.lerp_(grad, 1 - beta1)
        residual = grad - m
        s.mul_(beta2).addcmul_(residual, residual, value=1 - beta2).add_(eps)
        if group["amsgrad"]:
            torch.maximum(state["max_exp_avg_var"], s, out=state["max_exp_avg_var"])

        if not group["rectify"]:
            s_used = state["max_exp_avg_var"] if group["amsgrad"] else s
            denom = s_used.sqrt().div_(math.sqrt(1 - beta2**t)).add_(eps)
            param.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
            return
        k_t = self.rectified_step_size(t, beta1, beta2)
        if k_t is not None:
            param.addcdiv_(m, s.sqrt().add_(eps), value=-lr * k_t)
        elif group["degenerated_to_sgd"]:
            param.add_(m, alpha=-lr / (1 - beta1**t))
