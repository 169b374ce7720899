r"""Adafactor: Adam's second moment in O(m + n) memory instead of O(m n), and no first moment.

Shazeer and Stern (2018). Adam keeps ``v``, one number per weight. For a matrix
``G`` (m x n) Adafactor keeps only its row means ``r`` (m) and column means ``c`` (n)
of ``G^2`` and rebuilds ``v`` as their rank-1 product ``r c^T / mean(r)``, the
best rank-1 fit in the I-divergence, exact whenever ``G^2`` is itself rank 1. A
tensor of 3 or more dimensions is factored over its last two (one ``r``, ``c`` per
leading index); a vector or scalar keeps its full ``v``. Written as torch.optim.Adafactor
computes it::

    for t = 1, 2, ...
        g_t = grad f(theta_{t-1})                       (-grad when maximize=True)
        beta2_t = 1 - t^beta2_decay                      (0 at t = 1: no bias to correct)
        rho_t = min(lr, 1 / sqrt(t))                     relative step size
        alpha_t = max(eps2, RMS(theta_{t-1})) * rho_t    step relative to the weights' size
        theta *= 1 - lr * weight_decay                   (decoupled; the extension of torch)
        matrix:  r_t = beta2_t r_{t-1} + (1 - beta2_t) mean_cols(g_t^2)          (m)
                 c_t = beta2_t c_{t-1} + (1 - beta2_t) mean_rows(g_t^2)          (n)
                 v_hat = r_t c_t^T / max(mean(r_t), eps1)
        vector:  v_hat = v_t = beta2_t v_{t-1} + (1 - beta2_t) g_t^2
        u_t = g_t / sqrt(max(v_hat, eps1^2))
        u_t = u_t / max(1, RMS(u_t) / d)                 update clipping
        theta_t = theta - alpha_t * u_t

with ``RMS(x) = ||x||_2 / sqrt(numel)`` and ``eps1 = None`` meaning the dtype's machine
epsilon. ``r c^T / mean(r)`` is the paper's ``R C / (1^T R)`` with sums replaced by means
(the same matrix).

Where torch and the paper differ, coursekit follows torch, whose numbers the tests
check: the paper adds ``eps1 = 1e-30`` to ``g^2`` inside the averages, torch (and this
class) floors ``v_hat`` at ``eps1^2`` instead; the paper's ``rho_t = min(1e-2, 1/sqrt(t))``
is torch's with ``lr = 1e-2`` (the default); the paper's optional first moment
(``beta1``) and its variant without the relative step size are not offered, and the
weight decay is torch's addition. ``foreach`` is not offered either: there is one path.

tests/test_reference_2020s_a.py runs this class beside ``torch.optim.Adafactor``
(``foreach=False``) for 100 steps in float64 over ``beta2_decay``, both ``eps``, ``d``,
weight decay and ``maximize``, with matrices, vectors and 3-D tensors: the same numbers.

References
----------
.. [1] Shazeer, N. and Stern, M. (2018). Adafactor: Adaptive learning rates with sublinear
   memory cost. ICML 2018. arXiv:1804.04235. [shazeer2018adafactor]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["Adafactor"]


def _rms(x: torch.Tensor) -> float:
    return x.norm(2).item() / x.numel() ** 0.5


class Adafactor(Optimizer):
    """Adafactor (arguments and defaults as ``torch.optim.Adafactor``, without ``foreach``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Upper bound of the relative step size ``rho_t``, >= 0.
    beta2_decay : float
        ``beta2_t = 1 - t^beta2_decay``, <= 0 (the paper's -0.8).
    eps : tuple
        ``(eps1, eps2)``: floor of the second-moment estimate (``None``: the dtype's
        machine epsilon) and of the weights' RMS in the relative step size.
    d : float
        Clipping threshold of the update's RMS, >= 1.
    weight_decay : float
        Decoupled weight decay, ``theta *= 1 - lr * weight_decay``.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Shazeer, N. and Stern, M. (2018). Adafactor: Adaptive learning rates with
       sublinear memory cost. ICML 2018. arXiv:1804.04235. [shazeer2018adafactor]
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.real("beta2_decay", beta2_decay, at_most=0)
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise checks.invalid("eps", "a pair (eps1, eps2)", eps)
        if eps[0] is not None:
            checks.nonnegative("eps[0]", eps[0])
        checks.nonnegative("eps[1]", eps[1])
        checks.real("d", d, at_least=1)
        checks.nonnegative("weight_decay", weight_decay)
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        if param.ndim > 1:
            state["row_var"] = param.new_zeros((*param.shape[:-1], 1))   # r: mean over columns
            state["col_var"] = param.new_zeros((*param.shape[:-2], 1, param.shape[-1]))  # c
        else:
            state["variance"] = torch.zeros_like(param)                  # v

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = torch.finfo(param.dtype).eps
        lr = group["lr"]
        one_minus_beta2 = t ** group["beta2_decay"]
        rho = min(lr, 1 / t**0.5)
        alpha = max(eps2, _rms(param)) * rho
        param.mul_(1 - lr * group["weight_decay"])

        grad_sq = grad * grad
        if param.ndim > 1:
            r, c = state["row_var"], state["col_var"]
            r.lerp_(grad_sq.mean(dim=-1, keepdim=True), one_minus_beta2)
            c.lerp_(grad_sq.mean(dim=-2, keepdim=True), one_minus_beta2)
            v_hat = (r @ c).div_(r.mean(dim=-2, keepdim=True).clamp(min=eps1))
        else:
            v = state["variance"]
            v.lerp_(grad_sq, one_minus_beta2)
            v_hat = v.clone()
        u = v_hat.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
        param.add_(u, alpha=-alpha / max(1.0, _rms(u) / group["d"]))
