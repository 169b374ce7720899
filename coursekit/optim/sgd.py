r"""Stochastic gradient descent, with optional heavy-ball or Nesterov momentum.

Stochastic approximation is Robbins and Monro (1951), heavy-ball momentum Polyak (1964),
accelerated gradient Nesterov (1983); the ``nesterov=True`` form below is the one
Sutskever et al. (2013) derived for deep learning.

The algorithm (PyTorch's formulation, which the tests reproduce exactly)::

    for t = 1, 2, ...
        g_t = grad f(theta_{t-1})             (-grad when maximize=True)
        g_t = g_t + weight_decay * theta_{t-1}          (L2 penalty, if any)
        if momentum > 0:
            b_t = g_t                                   if t == 1
            b_t = momentum * b_{t-1} + (1 - dampening) * g_t   otherwise
            d_t = g_t + momentum * b_t   if nesterov   else   b_t
        else:
            d_t = g_t
        theta_t = theta_{t-1} - lr * d_t

``foreach=True`` and ``fused=True`` select the fast paths of
:mod:`coursekit.optim.fast`.

With ``dampening=0`` the buffer is the "SGD+" velocity of the course
(``v = mu v + g``), see :mod:`coursekit.optim.momentum`.

References
----------
.. [1] Robbins, H. and Monro, S. (1951). A stochastic approximation method. The Annals of
   Mathematical Statistics, 22(3), 400–407. doi:10.1214/aoms/1177729586.
   [robbins1951stochastic]
.. [2] Polyak, B. T. (1964). Some methods of speeding up the convergence of iteration
   methods. USSR Computational Mathematics and Mathematical Physics, 4(5), 1–17.
   doi:10.1016/0041-5553(64)90137-5. [polyak1964some]
.. [3] Nesterov, Y. (1983). A method for solving the convex programming problem with
   convergence rate O(1/k^2). Doklady Akademii Nauk SSSR, 269(3), 543–547 (in Russian;
   English translation in Soviet Mathematics Doklady, 27, 372–376). [nesterov1983method]
.. [4] Sutskever, I., Martens, J., Dahl, G. and Hinton, G. (2013). On the importance of
   initialization and momentum in deep learning. ICML 2013, PMLR 28(3), 1139–1147.
   [sutskever2013importance]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer
from coursekit.optim.fast import bucket, check_fast_flags, compiled, scalar

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent (arguments and defaults as ``torch.optim.SGD``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups (dicts) to optimize.
    lr : float
        Learning rate, >= 0.
    momentum : float
        Momentum factor ``mu`` (0 disables momentum).
    dampening : float
        Dampening ``tau`` in [0, 1] applied to the gradient entering the buffer.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    nesterov : bool
        Use Nesterov's look-ahead momentum (needs momentum > 0, dampening = 0).
    maximize : bool
        Ascend the objective instead of descending it.
    foreach : bool, optional
        Multi-tensor path (identical numbers); ``None`` picks it on CUDA.
    fused : bool, optional
        Compiled single-pass path (same numbers up to rounding).

    References
    ----------
    .. [1] Robbins, H. and Monro, S. (1951). A stochastic approximation method. The
       Annals of Mathematical Statistics, 22(3), 400–407. doi:10.1214/aoms/1177729586.
       [robbins1951stochastic]
    .. [2] Polyak, B. T. (1964). Some methods of speeding up the convergence of
       iteration methods. USSR Computational Mathematics and Mathematical Physics, 4(5),
       1–17. doi:10.1016/0041-5553(64)90137-5. [polyak1964some]
    .. [3] Sutskever, I., Martens, J., Dahl, G. and Hinton, G. (2013). On the importance
       of initialization and momentum in deep learning. ICML 2013, PMLR 28(3),
       1139–1147. [sutskever2013importance]
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, fused: bool | None = None):
        checks.nonnegative("lr", lr)
        checks.nonnegative("momentum", momentum)
        checks.in_unit_interval("dampening", dampening)
        checks.nonnegative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise checks.invalid("nesterov", f"False with momentum={momentum} and dampening="
                                 f"{dampening} (Nesterov needs momentum > 0 and dampening = 0)",
                                 nesterov)
        check_fast_flags(foreach, fused)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        mu = group["momentum"]
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()  # b_1 = g_1
            else:
                buf.mul_(mu).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=mu) if group["nesterov"] else buf
        param.add_(grad, alpha=-group["lr"])

    def update_group(self, group: dict, params: list[torch.Tensor], mode: str) -> None:
        """The same step for a whole group: multi-tensor (``foreach``) or compiled (``fused``)."""
        if group["momentum"] != 0:
            # The first step only creates the buffer (b_1 = g_1): take it on the readable path.
            first = [p for p in params if "momentum_buffer" not in self.state[p]]
            for param in first:
                self.update(param, param.grad, self.state[param], group)
            first_ids = {id(p) for p in first}
            params = [p for p in params if id(p) not in first_ids]
        for ps in bucket(params, key=lambda p: (p.device, p.dtype)):
            bufs = [self.state[p]["momentum_buffer"] for p in ps] if group["momentum"] else []
            if mode == "foreach":
                _sgd_foreach(ps, [p.grad for p in ps], bufs, group)
            else:
                like = ps[0]
                _sgd_kernel(ps, [p.grad for p in ps], bufs, lr=scalar(group["lr"], like),
                            momentum=scalar(group["momentum"], like),
                            dampening=scalar(group["dampening"], like),
                            weight_decay=scalar(group["weight_decay"], like),
                            has_momentum=group["momentum"] != 0,
                            has_weight_decay=group["weight_decay"] != 0,
                            nesterov=group["nesterov"], maximize=group["maximize"])


def _sgd_foreach(params, grads, bufs, group: dict) -> None:
    """SGD on lists of tensors with ``torch._foreach_*``: line for line the readable update."""
    if group["maximize"]:
        grads = torch._foreach_neg(grads)
    if group["weight_decay"] != 0:
        grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
    mu = group["momentum"]
    if mu != 0:
        torch._foreach_mul_(bufs, mu)
        torch._foreach_add_(bufs, grads, alpha=1 - group["dampening"])
        grads = torch._foreach_add(grads, bufs, alpha=mu) if group["nesterov"] else bufs
    torch._foreach_add_(params, grads, alpha=-group["lr"])


@compiled
def _sgd_kernel(params, grads, bufs, *, lr, momentum, dampening, weight_decay, has_momentum: bool,
                has_weight_decay: bool, nesterov: bool, maximize: bool) -> None:
    for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
        if maximize:
            grad = -grad
        if has_weight_decay:
            grad = grad + weight_decay * param
        if has_momentum:
            buf = bufs[i]
            buf.mul_(momentum).add_((1 - dampening) * grad)
            grad = grad + momentum * buf if nesterov else buf
        param.sub_(lr * grad)
