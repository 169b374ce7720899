r"""Lion: the sign of an interpolated momentum, found by a program search.

Chen et al. (2023), Algorithm 2 ("EvoLved Sign Momentum"). Every coordinate moves by
exactly ``lr`` per step, in the direction of the sign of a blend of the momentum and the
new gradient; the momentum itself is a slower average (``beta2 > beta1``)::

    m_0 = 0
    for t = 1, 2, ...
        g_t = grad f(theta_{t-1})                       (-grad when maximize=True)
        u_t = sign(beta1 * m_{t-1} + (1 - beta1) * g_t)    the update: +-1 (0 where 0)
        theta_t = theta_{t-1} - lr * (u_t + wd * theta_{t-1})
        m_t = beta2 * m_{t-1} + (1 - beta2) * g_t           momentum, after the update

One buffer per weight (Adam keeps two). Because ``sign`` gives every coordinate a step
of size ``lr``, the update's norm is larger than Adam's (whose ``m / sqrt(v)`` is
usually below 1 per coordinate), so the paper recommends a learning rate 3-10 times
smaller than AdamW's and a weight decay 3-10 times larger, keeping ``lr * wd`` similar.

The weight decay is decoupled and scaled by the learning rate, as in the paper and in
the defaults of both packages the tests compare against. They differ elsewhere, and
coursekit follows the paper:

- lion-pytorch's ``decoupled_weight_decay=True`` divides the weight decay by the
  constructor's learning rate ``lr_0`` (``theta *= 1 - lr * wd / lr_0``): that is this
  class with ``weight_decay = wd / lr_0``, in every group and under any schedule, a
  reparametrisation rather than another algorithm, so it is not offered separately.
- pytorch-optimizer's ``fixed_decay=True`` shrinks by ``1 - wd`` whatever the rate:
  this class with ``weight_decay = wd / lr`` only while the rate is constant; under a
  schedule its decay no longer scales with the rate, while the paper's does.
- pytorch-optimizer's ``weight_decouple=False`` adds ``wd * theta`` to the gradient
  inside the sign (an L2 penalty, not in the paper, and written into ``p.grad`` in
  place). Its ``maximize=True`` also negates ``p.grad`` in place; this class leaves
  ``p.grad`` the loss's gradient, as torch.optim does.

tests/test_reference_2020s_a.py checks the defaults of both packages against this class
(100 steps, float64, three parameter groups) and records each difference above.

References
----------
.. [1] Chen, X., Liang, C., Huang, D., Real, E., Wang, K., Pham, H., Dong, X., Luong, T.,
   Hsieh, C.-J., Lu, Y. and Le, Q. V. (2023). Symbolic discovery of optimization
   algorithms. NeurIPS 2023. arXiv:2302.06675. [chen2023symbolic]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["Lion"]


class Lion(Optimizer):
    """Lion (defaults of the paper and of lion-pytorch / pytorch-optimizer).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0: the size of every coordinate's step.
    betas : tuple of float
        ``(beta1, beta2)`` in [0, 1): the blend inside the sign, and the momentum's decay.
    weight_decay : float
        Decoupled weight decay, ``theta *= 1 - lr * weight_decay``.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Chen, X., Liang, C., Huang, D., Real, E., Wang, K., Pham, H., Dong, X., Luong,
       T., Hsieh, C.-J., Lu, Y. and Le, Q. V. (2023). Symbolic discovery of optimization
       algorithms. NeurIPS 2023. arXiv:2302.06675. [chen2023symbolic]
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        checks.nonnegative("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["exp_avg"] = torch.zeros_like(param)   # m

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        m = state["exp_avg"]
        u = m.lerp(grad, 1 - beta1).sign_()          # sign(beta1 m + (1 - beta1) g)
        param.mul_(1 - lr * group["weight_decay"])
        param.add_(u, alpha=-lr)
        m.lerp_(grad, 1 - beta2)                     # m = beta2 m + (1 - beta2) g
