r"""Adadelta: RMSprop whose step size is a running RMS of the past steps themselves.

Zeiler (2012). Like RMSprop, every coordinate divides its gradient by the root of a
moving average of squared gradients, ``v``. Instead of a global learning rate in the
numerator, Adadelta puts the root of a second moving average, ``u``, of its own past
*steps*: the ratio ``RMS[step] / RMS[g]`` has the units of ``theta / g``, those of an
inverse curvature, so the step is measured in the units of the parameter::

    v_0 = 0, u_0 = 0
    for t = 1, 2, ...
        g_t     = grad f(theta_{t-1})                       (-grad when maximize=True)
        g_t     = g_t + weight_decay * theta_{t-1}
        v_t     = rho * v_{t-1} + (1 - rho) * g_t^2         (E[g^2]_t in the paper)
        Delta_t = sqrt(u_{t-1} + eps) / sqrt(v_t + eps) * g_t
        u_t     = rho * u_{t-1} + (1 - rho) * Delta_t^2     (E[Delta x^2]_t)
        theta_t = theta_{t-1} - lr * Delta_t

The paper's algorithm is ``lr = 1`` (the default, as in PyTorch); ``lr`` only scales
the step taken, while ``u`` averages the unscaled ``Delta``. Because ``u_0 = 0``, the
first steps have size about ``sqrt(eps / (1 - rho))`` whatever the gradient, so ``eps``
sets how fast Adadelta gets going; ``u`` then grows with the steps it has taken.

``foreach=True`` selects the multi-tensor path of :mod:`coursekit.optim.fast` (identical
numbers; torch's Adadelta has no ``fused`` and neither has ours).

References
----------
.. [1] Zeiler, M. D. (2012). ADADELTA: An adaptive learning rate method. arXiv:1212.5701.
   [zeiler2012adadelta]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer
from coursekit.optim.fast import bucket

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta (arguments and defaults as ``torch.optim.Adadelta``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Factor on the step ``Delta_t``, >= 0 (1 is the paper's algorithm).
    rho : float
        Decay rate of both moving averages (squared gradients and squared steps),
        in [0, 1].
    eps : float
        Added inside both square roots; sets the size of the first steps.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    foreach : bool, optional
        Multi-tensor path (identical numbers); ``None`` picks it on CUDA.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Zeiler, M. D. (2012). ADADELTA: An adaptive learning rate method.
       arXiv:1212.5701. [zeiler2012adadelta]
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.in_unit_interval("rho", rho)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        checks.choice("foreach", foreach, (None, True, False))
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        foreach=foreach)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["square_avg"] = torch.zeros_like(param)   # v
        state["acc_delta"] = torch.zeros_like(param)    # u

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        rho, eps = group["rho"], group["eps"]
        v, u = state["square_avg"], state["acc_delta"]
        v.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        rms_g = v.add(eps).sqrt_()
        delta = u.add(eps).sqrt_().div_(rms_g).mul_(grad)   # RMS[Delta]_{t-1} / RMS[g]_t * g
        u.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.add_(delta, alpha=-group["lr"])

    def update_group(self, group: dict, params: list[torch.Tensor], mode: str) -> None:
        """The same step for a whole group with ``torch._foreach_*`` (``foreach=True``)."""
        for ps in bucket(params, key=lambda p: (p.device, p.dtype)):
            states = [self.state[p] for p in ps]
            for state in states:
                state["step"] += 1
            _adadelta_foreach(ps, [p.grad for p in ps], [s["square_avg"] for s in states],
                              [s["acc_delta"] for s in states], group)


def _adadelta_foreach(params, grads, square_avgs, acc_deltas, group: dict) -> None:
    """Adadelta on lists of tensors with ``torch._foreach_*``: line for line the readable update."""
    rho, eps = group["rho"], group["eps"]
    if group["maximize"]:
        grads = torch._foreach_neg(grads)
    if group["weight_decay"] != 0:
        grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
    torch._foreach_mul_(square_avgs, rho)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - rho)
    rms_g = torch._foreach_add(square_avgs, eps)
    torch._foreach_sqrt_(rms_g)
    deltas = torch._foreach_add(acc_deltas, eps)
    torch._foreach_sqrt_(deltas)
    torch._foreach_div_(deltas, rms_g)
    torch._foreach_mul_(deltas, grads)
    torch._foreach_mul_(acc_deltas, rho)
    torch._foreach_addcmul_(acc_deltas, deltas, deltas, value=1 - rho)
    torch._foreach_add_(params, deltas, alpha=-group["lr"])
