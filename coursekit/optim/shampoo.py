r"""Shampoo: one preconditioning matrix per dimension of each parameter tensor.

Gupta et al. (2018). Full-matrix AdaGrad (Duchi et al., 2011) would precondition the
gradient of an ``m x n`` weight with the inverse square root of an ``mn x mn`` matrix: far
too big. Shampoo keeps one ``m x m`` statistic ``L`` for the rows and one ``n x n``
statistic ``R`` for the columns, a Kronecker-factored approximation of that matrix, and
preconditions on both sides. The paper's Algorithm 1 (a matrix) and 2 (a tensor of order
``k``, ``G_(i)`` its unfolding along dimension ``i``, ``x_i`` the product along it)::

    L_0 = eps I_m,  R_0 = eps I_n
    for t = 1, 2, ...
        G_t = grad f(W_{t-1})
        L_t = L_{t-1} + G_t G_t^T,      R_t = R_{t-1} + G_t^T G_t
        W_t = W_{t-1} - lr * L_t^{-1/4} G_t R_t^{-1/4}

    order k:  H^i_t = H^i_{t-1} + G_(i) G_(i)^T  for each dimension i,
              W_t  = W_{t-1} - lr * G_t x_1 (H^1_t)^{-1/2k} x_2 ... x_k (H^k_t)^{-1/2k}

A vector (a bias, k = 1) gets ``H^{-1/2} g``: full-matrix AdaGrad itself. The inverse roots
are computed here by an eigendecomposition, ``H = Q diag(lambda) Q^T`` and ``H^{-1/r} = Q
diag(lambda^{-1/r}) Q^T``, exact for the symmetric positive definite ``H``. Computing them
costs ``O(m^3)`` per dimension, so in practice they are refreshed only every
``precondition_frequency`` steps (at t = 1, 1 + f, 1 + 2f, ...), and the statistics are
added at every step. This readable form keeps whole matrices and suits small models; the
scalable version (Anil et al., 2020) adds blocking, grafting and delayed, asynchronous
roots.

Beyond the paper, as in both packages below: ``weight_decay`` (L2, added to the gradient,
or decoupled), and ``momentum``, which mixes the previous *preconditioned* step into the
gradient before it is preconditioned: ``g~_t = (1 - mu) g_t + mu d_{t-1}`` with ``d_0 =
g_1``; the statistics and the step use ``g~_t``, and ``d_t`` is the step's direction.

tests/test_reference_2020s_b.py runs this class beside pytorch-optimizer's Shampoo (the same
algorithm; it computes roots by SVD, equal to the eigendecomposition for these matrices up
to rounding) and its ScalableShampoo set up as the paper's algorithm, and shows three
differences. pytorch-optimizer refreshes the roots at t = f, 2f, ... starting from zero
matrices, so with ``precondition_frequency > 1`` its first ``f - 1`` steps do not move
the weights; coursekit refreshes at the first step, as torch-optimizer does. torch-optimizer
raises the statistics to ``-1/k`` instead of ``-1/(2k)`` (``inverse_root=k`` reproduces
that) and, for dimensions after the first, accumulates statistics of the gradient already
preconditioned along the earlier dimensions; coursekit follows the paper in both, since the
paper's exponent is the one its regret bound holds for.

References
----------
.. [1] Gupta, V., Koren, T. and Singer, Y. (2018). Shampoo: Preconditioned stochastic
   tensor optimization. ICML 2018, PMLR 80, 1842–1850. arXiv:1802.09568. [gupta2018shampoo]
.. [2] Duchi, J., Hazan, E. and Singer, Y. (2011). Adaptive subgradient methods for online
   learning and stochastic optimization. JMLR 12, 2121–2159. [duchi2011adaptive]
.. [3] Anil, R., Gupta, V., Koren, T., Regan, K. and Singer, Y. (2020). Scalable second
   order optimization for deep learning. arXiv:2002.09018. [anil2020scalable]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer, apply_weight_decay

__all__ = ["Shampoo", "matrix_power", "mode_product"]


def matrix_power(matrix: torch.Tensor, exponent: float) -> torch.Tensor:
    """``matrix ** exponent`` of a symmetric positive definite matrix, by eigendecomposition."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.pow(exponent)) @ eigenvectors.T


def mode_product(tensor: torch.Tensor, matrix: torch.Tensor, dim: int) -> torch.Tensor:
    """Multiply ``tensor`` by ``matrix`` along dimension ``dim`` (``x_dim`` in the paper)."""
    return torch.tensordot(matrix, tensor, dims=([1], [dim])).movedim(0, dim)


class Shampoo(Optimizer):
    """Shampoo (Gupta et al., 2018): Kronecker-factored full-matrix AdaGrad.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    momentum : float
        Mixes the previous step into the gradient, in [0, 1); 0 is the paper's algorithm.
    weight_decay : float
        Weight decay coefficient (L2 unless ``decoupled_weight_decay``).
    eps : float
        The statistics start at ``eps * I``, > 0.
    precondition_frequency : int
        Refresh the inverse roots every this many steps (1: every step, as in the paper).
    inverse_root : int, optional
        ``r`` in ``H^{-1/r}``; ``None`` is the paper's ``2k`` for a tensor of order ``k``.
    decoupled_weight_decay : bool
        Shrink the weights directly instead of adding an L2 gradient.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Gupta, V., Koren, T. and Singer, Y. (2018). Shampoo: Preconditioned stochastic
       tensor optimization. ICML 2018, PMLR 80, 1842–1850. arXiv:1802.09568.
       [gupta2018shampoo]
    """

    def __init__(self, params, lr: float = 1e-1, momentum: float = 0.0,
                 weight_decay: float = 0.0, eps: float = 1e-4, *,
                 precondition_frequency: int = 1, inverse_root: int | None = None,
                 decoupled_weight_decay: bool = False, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.beta("momentum", momentum)
        checks.nonnegative("weight_decay", weight_decay)
        checks.positive("eps", eps)
        checks.integer("precondition_frequency", precondition_frequency, minimum=1)
        if inverse_root is not None:
            checks.integer("inverse_root", inverse_root, minimum=1)
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps,
                        precondition_frequency=precondition_frequency,
                        inverse_root=inverse_root,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param)             # d
        eye = [torch.eye(n, dtype=param.dtype, device=param.device) for n in param.shape]
        state["preconditioners"] = [group["eps"] * i for i in eye]         # H^i, from eps I
        state["inverse_roots"] = [i.clone() for i in eye]                  # (H^i)^{-1/r}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        momentum = group["momentum"]
        if momentum > 0:
            d = state["momentum_buffer"]
            if t == 1:
                d.copy_(grad)                                                  # d_0 = g_1
            grad = grad.lerp(d, momentum)                    # (1 - mu) g + mu d_{t-1}
        grad = apply_weight_decay(param, grad, group, group["decoupled_weight_decay"])

        root = group["inverse_root"] or 2 * grad.ndim
        refresh = (t - 1) % group["precondition_frequency"] == 0
        step = grad
        for dim, (h, inverse_root) in enumerate(zip(state["preconditioners"],
                                                    state["inverse_roots"], strict=True)):
            unfolded = grad.movedim(dim, 0).reshape(grad.shape[dim], -1)       # G_(i)
            h.addmm_(unfolded, unfolded.T)                                     # H += G G^T
            if refresh:
                inverse_root.copy_(matrix_power(h, -1 / root))
            step = mode_product(step, inverse_root, dim)
        if momentum > 0:
            state["momentum_buffer"].copy_(step)
        param.add_(step, alpha=-group["lr"])
