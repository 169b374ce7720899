r"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner.

Vyas et al. (2024). Shampoo (:mod:`coursekit.optim.shampoo`) preconditions a weight's
gradient ``G`` with ``L^{-1/4} G R^{-1/4}``. Write ``L = Q_L diag Q_L^T`` and ``R = Q_R diag
Q_R^T``: Shampoo rotates ``G`` into the eigenbasis, scales it there by fixed powers of the
eigenvalues, and rotates it back. SOAP keeps the rotation and replaces the fixed scaling by
Adam's, with second moments kept in the rotated coordinates, so the basis can be refreshed
rarely (every ``precondition_frequency`` steps) while Adam adapts in between. The
algorithm for a matrix (the paper's Algorithm 3; a tensor of order k has one ``Q`` per
dimension, and a dimension larger than ``max_precondition_dim``, or a vector unless
``precondition_1d``, keeps the identity: plain Adam there)::

    t = 0:  L = (1 - shampoo_beta) G G^T,  R = (1 - shampoo_beta) G^T G,
            Q_L, Q_R = eigenvectors of L and R (largest eigenvalue first); no step
    t = 1, 2, ...
        G'    = Q_L^T G Q_R                              gradient in the eigenbasis
        m     = beta1 * m + (1 - beta1) * G              first moment, original basis
        v     = beta2 * v + (1 - beta2) * G' * G'        second moment, eigenbasis
        N     = Q_L [ (Q_L^T m Q_R) / (sqrt(v) + eps) ] Q_R^T
        W     = W - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * N        (bias correction)
        W     = W * (1 - lr * weight_decay)                           (decoupled decay)
        L     = shampoo_beta * L + (1 - shampoo_beta) G G^T,  R likewise
        if t % precondition_frequency == 0:                            (one power step)
            Q_L = QR(L Q_L) with columns sorted by the estimate diag(Q_L^T L Q_L),
            and v's rows permuted to match; R, Q_R likewise

The details (skipping the first step, ``eps`` added to ``sqrt(v)`` with the bias correction
folded into the step size, weight decay after the step, the refresh of ``Q`` by one QR
power step) follow the authors' code (nikhilvyas/SOAP), which pytorch-optimizer transcribes;
``merge_dims`` (reshaping convolution kernels before preconditioning) is left out.

Where the packages differ (tests/test_reference_2020s_b.py shows each). pytorch-optimizer
computes the QR in float32 whatever the parameter's dtype (the authors' code computes
eigenvectors and QR in float32 throughout); coursekit computes in the parameter's dtype,
and ``float32_qr=True`` reproduces pytorch-optimizer. heavyball floors the bias-corrected
``sqrt(v_hat)`` at ``eps`` (``max(sqrt(v_hat), eps)``) where Adam adds ``eps`` to it
(``eps_placement="v_hat"`` is the nearer); it decays the weights before the step, not after;
it refreshes ``Q`` at t = f - 1, 2f - 1, ... rather than at t = f, 2f, ... (the same when
f = 1); it takes the power step on ``L + 1e-8 max|eig| I``; and it keeps its statistics
bias-corrected, ``L / (1 - shampoo_beta^t)``, so its first ``L`` is ``G G^T``. That scale
moves no eigenvector, but where the first statistic is singular (a matrix's larger side when
the gradient's rank is below it) any orthonormal basis of its null space is an eigenbasis,
eigh's pick there depends on rounding, and SOAP's step depends on the pick (Adam's scaling is
coordinate-wise): heavyball's runs differ from the first rotated step on (about 1e-3) and
end about 1e-2 from the authors'. Given heavyball's first bases, its floor and shifted
power step, and its lr and shampoo_beta as float64 tensors (as Python floats it computes
them in float32 against its step counter), the updates agree to 1e-12. By default coursekit
follows the authors' code, which the paper's results were produced with.

References
----------
.. [1] Vyas, N., Morwani, D., Zhao, R., Kwun, M., Shapira, I., Brandfonbrener, D., Janson,
   L. and Kakade, S. (2024). SOAP: Improving and stabilizing Shampoo using Adam.
   arXiv:2409.11321 (ICLR 2025). [vyas2024soap]
.. [2] Gupta, V., Koren, T. and Singer, Y. (2018). Shampoo: Preconditioned stochastic
   tensor optimization. ICML 2018, PMLR 80, 1842–1850. arXiv:1802.09568. [gupta2018shampoo]
"""

from __future__ import annotations

import math

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["SOAP", "project"]


def project(tensor: torch.Tensor, bases: list[torch.Tensor | None],
            back: bool = False) -> torch.Tensor:
    """Rotate ``tensor`` into the eigenbases (``Q_L^T G Q_R``), or ``back`` out of them.

    Each step contracts dimension 0 and appends the result as the last dimension, so after
    one pass over the dimensions they are in their original order again; a ``None`` basis
    (the identity) only moves its dimension to the end.
    """
    for basis in bases:
        if basis is None:
            tensor = tensor.permute(*range(1, tensor.ndim), 0)
        else:
            tensor = torch.tensordot(tensor, basis, dims=([0], [1 if back else 0]))
    return tensor


def _eigenbasis(matrix: torch.Tensor) -> torch.Tensor:
    """Eigenvectors of a symmetric matrix, largest eigenvalue first."""
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    return torch.linalg.eigh(matrix + 1e-30 * eye)[1].flip(1)


class SOAP(Optimizer):
    """SOAP (Vyas et al., 2024), defaults as the authors' code.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        Adam's ``(beta1, beta2)`` in [0, 1).
    shampoo_beta : float, optional
        Decay of the statistics ``L`` and ``R`` in [0, 1); ``None`` uses ``beta2``.
    eps : float
        Added to ``sqrt(v)`` (see ``eps_placement``).
    weight_decay : float
        Decoupled weight decay, applied after the step.
    precondition_frequency : int
        Refresh the eigenbases every this many steps, >= 1.
    max_precondition_dim : int
        Dimensions larger than this keep the identity basis.
    precondition_1d : bool
        Rotate vectors too (a full ``n x n`` statistic per bias).
    bias_correction : bool
        Adam's bias correction (the authors' ``correct_bias``).
    eps_placement : str
        ``"v"``: ``sqrt(v) + eps`` with the correction in the step size (the authors');
        ``"v_hat"``: ``sqrt(v_hat) + eps``, as ``torch.optim.Adam`` (heavyball takes
        ``max(sqrt(v_hat), eps)``).
    float32_qr : bool
        Compute the power step's QR in float32 (pytorch-optimizer).
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] Vyas, N., Morwani, D., Zhao, R., Kwun, M., Shapira, I., Brandfonbrener, D.,
       Janson, L. and Kakade, S. (2024). SOAP: Improving and stabilizing Shampoo using
       Adam. arXiv:2409.11321 (ICLR 2025). [vyas2024soap]
    """

    def __init__(self, params, lr: float = 3e-3, betas: tuple[float, float] = (0.95, 0.95),
                 shampoo_beta: float | None = None, eps: float = 1e-8,
                 weight_decay: float = 0.01, *, precondition_frequency: int = 10,
                 max_precondition_dim: int = 10000, precondition_1d: bool = False,
                 bias_correction: bool = True, eps_placement: str = "v",
                 float32_qr: bool = False, maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        if shampoo_beta is not None:
            checks.beta("shampoo_beta", shampoo_beta)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        checks.integer("precondition_frequency", precondition_frequency, minimum=1)
        checks.integer("max_precondition_dim", max_precondition_dim, minimum=1)
        checks.choice("eps_placement", eps_placement, ("v", "v_hat"))
        defaults = dict(lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, eps=eps,
                        weight_decay=weight_decay,
                        precondition_frequency=precondition_frequency,
                        max_precondition_dim=max_precondition_dim,
                        precondition_1d=precondition_1d, bias_correction=bias_correction,
                        eps_placement=eps_placement, float32_qr=float32_qr,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)      # m, original basis
        state["exp_avg_sq"] = torch.zeros_like(param)   # v, eigenbasis
        rotate = param.ndim > 1 or group["precondition_1d"]
        state["GG"] = [torch.zeros(n, n, dtype=param.dtype, device=param.device)
                       if rotate and n <= group["max_precondition_dim"] else None
                       for n in param.shape]          # L, R (None: identity)
        state["Q"] = [None] * param.ndim

    @staticmethod
    def _accumulate(statistics: list, grad: torch.Tensor, shampoo_beta: float) -> None:
        """``L = shampoo_beta L + (1 - shampoo_beta) G_(i) G_(i)^T`` for every dimension i."""
        for dim, gg in enumerate(statistics):
            if gg is not None:
                others = [d for d in range(grad.ndim) if d != dim]
                gg.lerp_(torch.tensordot(grad, grad, dims=(others, others)), 1 - shampoo_beta)

    def _refresh(self, state: dict, group: dict) -> None:
        """One power step per basis, ``Q = QR(L Q)``, columns sorted by eigenvalue estimate."""
        v = state["exp_avg_sq"]
        for dim, (gg, q) in enumerate(zip(state["GG"], state["Q"], strict=True)):
            if gg is None:
                continue
            power = gg @ q
            order = torch.argsort((q * power).sum(dim=0), descending=True)
            v.copy_(v.index_select(dim, order))
            power = power.index_select(1, order)
            if group["float32_qr"]:
                state["Q"][dim] = torch.linalg.qr(power.float())[0].to(power.dtype)
            else:
                state["Q"][dim] = torch.linalg.qr(power)[0]

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        beta1, beta2 = group["betas"]
        shampoo_beta = beta2 if group["shampoo_beta"] is None else group["shampoo_beta"]
        state["step"] += 1
        if state["step"] == 1:                     # t = 0: statistics and bases only
            self._accumulate(state["GG"], grad, shampoo_beta)
            state["Q"] = [None if gg is None else _eigenbasis(gg) for gg in state["GG"]]
            return
        t = state["step"] - 1
        lr, eps = group["lr"], group["eps"]
        m, v, bases = state["exp_avg"], state["exp_avg_sq"], state["Q"]

        m.lerp_(grad, 1 - beta1)
        v.lerp_(project(grad, bases).square(), 1 - beta2)
        correction1 = 1 - beta1**t if group["bias_correction"] else 1.0
        correction2 = 1 - beta2**t if group["bias_correction"] else 1.0
        if group["eps_placement"] == "v":
            denom = v.sqrt().add_(eps)
            step_size = lr * (math.sqrt(correction2) / correction1)
        else:
            denom = (v / correction2).sqrt_().add_(eps)
            step_size = lr / correction1
        direction = project(project(m, bases) / denom, bases, back=True)
        param.add_(direction, alpha=-step_size)
        if group["weight_decay"] != 0:
            param.mul_(1 - lr * group["weight_decay"])

        self._accumulate(state["GG"], grad, shampoo_beta)
        if t % group["precondition_frequency"] == 0:
            self._refresh(state, group)
