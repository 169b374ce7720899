r"""The two classic forms of heavy-ball momentum (Polyak, 1964), side by side.

"SGD+" (the name and form of the ECE 60146 homework report, ECE 60146, 2024, which
the course's first homework follows, and of ``torch.optim.SGD`` with
``dampening=0``) accumulates *gradients* and multiplies by the learning rate at
the end::

    v_t     = mu * v_{t-1} + g_t
    theta_t = theta_{t-1} - lr_t * v_t

Qian's form (Qian, 1999; also Sutskever et al., 2013) accumulates *steps*, so each
gradient is scaled by the learning rate in force when it was seen::

    dw_t    = mu * dw_{t-1} + lr_t * g_t
    theta_t = theta_{t-1} - dw_t

With a constant learning rate the two are the same sequence (``dw_t = lr v_t``).
When ``lr_t`` changes (a schedule), SGD+ rescales its whole history at once while
Qian's form only rescales new gradients: the iterates differ.

References
----------
.. [1] Polyak, B. T. (1964). Some methods of speeding up the convergence of iteration
   methods. USSR Computational Mathematics and Mathematical Physics, 4(5), 1–17.
   doi:10.1016/0041-5553(64)90137-5. [polyak1964some]
.. [2] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for Avi Kak's
   ComputationalGraphPrimer. Student homework report, ECE 60146 Deep Learning, Purdue
   University, Spring 2024. [ece60146hw2]
.. [3] Qian, N. (1999). On the momentum term in gradient descent learning algorithms. Neural
   Networks, 12(1), 145–151. doi:10.1016/S0893-6080(98)00116-6. [qian1999momentum]
.. [4] Sutskever, I., Martens, J., Dahl, G. and Hinton, G. (2013). On the importance of
   initialization and momentum in deep learning. ICML 2013, PMLR 28(3), 1139–1147.
   [sutskever2013importance]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["QianMomentum", "SGDPlus"]


class _HeavyBall(Optimizer):
    def __init__(self, params, lr: float, momentum: float, weight_decay: float):
        checks.nonnegative("lr", lr)
        checks.beta("momentum", momentum)
        checks.nonnegative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["velocity"] = torch.zeros_like(param)

    @staticmethod
    def _gradient(param: torch.Tensor, grad: torch.Tensor, group: dict) -> torch.Tensor:
        if group["weight_decay"] != 0:
            return grad.add(param, alpha=group["weight_decay"])
        return grad


class SGDPlus(_HeavyBall):
    """Momentum as "SGD+": ``v = mu v + g``; ``theta -= lr v``.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    momentum : float
        ``mu`` in [0, 1); the velocity averages roughly the last ``1 / (1 - mu)``
        gradients.
    weight_decay : float
        L2 penalty coefficient added to the gradient.

    References
    ----------
    .. [1] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for
       Avi Kak's ComputationalGraphPrimer. Student homework report, ECE 60146 Deep
       Learning, Purdue University, Spring 2024. [ece60146hw2]
    .. [2] Polyak, B. T. (1964). Some methods of speeding up the convergence of
       iteration methods. USSR Computational Mathematics and Mathematical Physics, 4(5),
       1–17. doi:10.1016/0041-5553(64)90137-5. [polyak1964some]
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, momentum, weight_decay)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        v = state["velocity"]
        v.mul_(group["momentum"]).add_(self._gradient(param, grad, group))
        param.add_(v, alpha=-group["lr"])


class QianMomentum(_HeavyBall):
    """Momentum in Qian's form: ``dw = mu dw + lr g``; ``theta -= dw``.

    Same parameters as :class:`SGDPlus`; the state ``velocity`` holds ``dw``, the
    last step taken, rather than an accumulated gradient.

    References
    ----------
    .. [1] Qian, N. (1999). On the momentum term in gradient descent learning
       algorithms. Neural Networks, 12(1), 145–151. doi:10.1016/S0893-6080(98)00116-6.
       [qian1999momentum]
    .. [2] Sutskever, I., Martens, J., Dahl, G. and Hinton, G. (2013). On the importance
       of initialization and momentum in deep learning. ICML 2013, PMLR 28(3),
       1139–1147. [sutskever2013importance]
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, momentum, weight_decay)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        dw = state["velocity"]
        dw.mul_(group["momentum"]).add_(self._gradient(param, grad, group), alpha=group["lr"])
        param.sub_(dw)
