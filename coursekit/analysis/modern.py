r"""What lecture 8 measures about the optimizers of the 2020s.

* :func:`muon_with_adamw`: the factory ``make(params, lr=lr)`` of Muon as its authors use
  it, on a model's matrices (all but the output layer's), with AdamW for the rest.
* :func:`factored_second_moment`: Adafactor's rank-1 estimate ``r c^T / mean(r)`` of a
  matrix of mean squared gradients (Shazeer and Stern, 2018).
* :class:`UpdateSize`: an ``on_step`` hook of :func:`coursekit.train.fit` recording the
  root-mean-square of each step divided by the learning rate (Lion against Adam).
* :func:`newton_schulz_map`: the scalar polynomial that Muon's iteration applies to every
  singular value, iterated.
* :func:`preconditioners`: full-matrix AdaGrad's, Shampoo's Kronecker-factored and the
  diagonal preconditioner built from the same gradients of one matrix; and
  :func:`soap_versus_rotated_adam`: SOAP with its eigenbasis held fixed is Adam run on
  the rotated weights.
* Lecture 8's training runs go through :mod:`coursekit.experiments.compare` (tuned rates,
  repeated seeds, a per-step schedule over the budget, validation after every epoch).

References
----------
.. [1] Shazeer, N. and Stern, M. (2018). Adafactor: Adaptive learning rates with sublinear
   memory cost. ICML 2018. arXiv:1804.04235. [shazeer2018adafactor]
.. [2] Jordan, K., Jin, Y., Boza, V., You, J., Cesista, F., Newhouse, L. and Bernstein, J.
   (2024). Muon: An optimizer for hidden layers in neural networks.
   https://kellerjordan.github.io/posts/muon/ [jordan2024muon]
.. [3] Gupta, V., Koren, T. and Singer, Y. (2018). Shampoo: Preconditioned stochastic
   tensor optimization. ICML 2018, PMLR 80, 1842–1850. arXiv:1802.09568. [gupta2018shampoo]
.. [4] Vyas, N., Morwani, D., Zhao, R., Kwun, M., Shapira, I., Brandfonbrener, D., Janson,
   L. and Kakade, S. (2024). SOAP: Improving and stabilizing Shampoo using Adam.
   arXiv:2409.11321 (ICLR 2025). [vyas2024soap]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from coursekit import _checks as checks
from coursekit.optim.adam import Adam, AdamW
from coursekit.optim.combined import Combined
from coursekit.optim.muon import NS_COEFFICIENTS, Muon
from coursekit.optim.shampoo import matrix_power
from coursekit.optim.soap import SOAP
from coursekit.train import StepInfo

__all__ = ["UpdateSize", "factored_second_moment", "muon_with_adamw", "newton_schulz_map",
           "preconditioners", "soap_versus_rotated_adam"]


# --------------------------------------------------------------------------- Muon + AdamW

def muon_with_adamw(params: Sequence[torch.Tensor], lr: float, *, adamw_lr: float = 1e-3,
                    momentum: float = 0.95, weight_decay: float = 0.0) -> Combined:
    """Muon (at ``lr``) on every matrix but the last, AdamW (at ``adamw_lr``) on the rest.

    ``params`` in the model's order (``model.parameters()``): the last matrix is the output
    layer's, which Jordan et al. (2024) leave to AdamW, as they do biases, gains and
    convolution kernels (tensors that are not matrices). Muon's rate is adjusted to the
    matrix's shape (``adjust_lr_fn=None``, the authors' rule); its Newton-Schulz iteration
    runs in the parameters' precision.
    """
    params = list(params)
    matrices = [p for p in params if p.ndim == 2][:-1]
    if not matrices:
        raise checks.invalid("params", "parameters with at least two matrices (Muon takes "
                             "all but the output layer's)", f"{len(params)} tensors")
    chosen = {id(p) for p in matrices}
    others = [p for p in params if id(p) not in chosen]
    return Combined(Muon(matrices, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         ns_dtype=None),
                    AdamW(others, lr=adamw_lr, weight_decay=weight_decay))


# --------------------------------------------------------------------------- Adafactor

def factored_second_moment(second_moment: torch.Tensor) -> torch.Tensor:
    """Adafactor's rank-1 rebuild ``r c^T / mean(r)`` of an m x n matrix of mean squared
    gradients, from its row means ``r`` and column means ``c`` (m + n numbers).

    Exact when ``second_moment`` has rank 1; the best rank-1 fit in the I-divergence
    otherwise (Shazeer and Stern, 2018).
    """
    if second_moment.ndim != 2:
        raise checks.invalid("second_moment", "a matrix", tuple(second_moment.shape))
    rows, cols = second_moment.mean(dim=1), second_moment.mean(dim=0)
    return torch.outer(rows, cols) / rows.mean()


# --------------------------------------------------------------------------- update sizes

class UpdateSize:
    """``on_step`` hook: the RMS of every step's change of the weights, divided by the lr.

    Adam's ``m_hat / (sqrt(v_hat) + eps)`` and Lion's ``sign(.)`` are what ``lr``
    multiplies; this measures that factor from the weights themselves (so with weight
    decay 0 it is exactly the update's RMS). ``sizes`` holds one number per step. The
    rate is ``StepInfo.lr``, the first parameter group's: use it on an optimizer with one
    rate for every parameter (a step at rate 0, as at the start of a warm-up, gives NaN).

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained, as it is before the first step.
    """

    def __init__(self, model: nn.Module):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.before = [p.detach().clone() for p in self.params]
        self.sizes: list[float] = []

    @torch.no_grad()
    def __call__(self, info: StepInfo) -> None:
        change = torch.cat([(p - b).flatten() for p, b in zip(self.params, self.before,
                                                                strict=True)])
        rms = float(change.pow(2).mean().sqrt())
        self.sizes.append(rms / info.lr if info.lr else math.nan)
        for p, b in zip(self.params, self.before, strict=True):
            b.copy_(p)


# --------------------------------------------------------------------------- Newton-Schulz

def newton_schulz_map(s: np.ndarray, steps: int,
                      coefficients: tuple[float, float, float] = NS_COEFFICIENTS) -> np.ndarray:
    """``phi^steps(s)``, with ``phi(s) = a s + b s^3 + c s^5``: what ``steps`` iterations of
    :func:`coursekit.optim.muon.newton_schulz` do to a singular value ``s`` (of the matrix
    divided by its Frobenius norm)."""
    checks.integer("steps", steps, minimum=0)
    a, b, c = coefficients
    s = np.asarray(s, dtype=float)
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return s


# --------------------------------------------------------------------------- Shampoo, SOAP

def preconditioners(grads: Sequence[torch.Tensor], eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """Three inverse-root preconditioners for the gradients ``G_1..G_T`` of one m x n matrix.

    With ``g = vec(G)`` (row-major, ``mn`` numbers):

    * ``"full-matrix AdaGrad"``: ``(eps I + sum g g^T)^{-1/2}`` (Duchi et al., 2011);
    * ``"Shampoo"``: ``L^{-1/4} kron R^{-1/4}``, with ``L = eps I + sum G G^T`` (m x m) and
      ``R = eps I + sum G^T G`` (n x n), so that ``(L^{-1/4} kron R^{-1/4}) vec(G) =
      vec(L^{-1/4} G R^{-1/4})``, Shampoo's step (Gupta et al., 2018);
    * ``"diagonal AdaGrad"``: ``diag(eps + sum g^2)^{-1/2}``.

    Each is an ``mn x mn`` matrix: the first two feasible only for a small ``mn``.
    """
    stacked = torch.stack([g.detach() for g in grads])        # T x m x n
    _, m, n = stacked.shape
    flat = stacked.reshape(len(grads), m * n)
    full = eps * torch.eye(m * n, dtype=flat.dtype) + flat.T @ flat
    left = eps * torch.eye(m, dtype=flat.dtype) + torch.einsum("tij,tkj->ik", stacked, stacked)
    right = eps * torch.eye(n, dtype=flat.dtype) + torch.einsum("tji,tjk->ik", stacked, stacked)
    return {"full-matrix AdaGrad": matrix_power(full, -0.5),
            "Shampoo": torch.kron(matrix_power(left, -0.25), matrix_power(right, -0.25)),
            "diagonal AdaGrad": torch.diag((eps + flat.pow(2).sum(0)).rsqrt())}


def soap_versus_rotated_adam(loss_fn: Callable[[torch.Tensor], torch.Tensor],
                             start: torch.Tensor, steps: int, lr: float = 0.01,
                             betas: tuple[float, float] = (0.9, 0.99)) -> dict[str, Any]:
    """Run SOAP with its eigenbasis never refreshed beside Adam on the rotated weights.

    SOAP's first step only computes the eigenbases ``Q_L, Q_R`` of ``G G^T`` and ``G^T G``
    (``G`` the first gradient); Adam starts from those very matrices (read from SOAP's
    state: where ``G G^T`` has repeated eigenvalues, another eigensolver call could return
    another basis of their eigenspace, and Adam in another basis is another algorithm).
    With ``precondition_frequency`` beyond ``steps`` they stay fixed, and SOAP should then
    be exactly Adam on ``W' = Q_L^T W Q_R``, whose gradient is ``Q_L^T G Q_R``. Both run
    in float64, without weight decay, with ``eps`` where Adam puts it
    (``eps_placement="v_hat"``).

    Returns
    -------
    dict
        ``"SOAP"`` and ``"rotated Adam"`` (the losses after every step) and ``"largest
        difference"`` (the largest absolute difference of the weights over the run).
    """
    w_soap = start.detach().clone().double().requires_grad_(True)
    soap = SOAP([w_soap], lr=lr, betas=betas, weight_decay=0.0, eps_placement="v_hat",
                precondition_frequency=steps + 10)
    losses: dict[str, list[float]] = {"SOAP": [], "rotated Adam": []}
    largest = 0.0
    for t in range(steps + 1):
        soap.zero_grad()
        loss_fn(w_soap).backward()
        soap.step()                               # t = 0: sets the bases, does not move
        if t == 0:                                # Adam starts in the bases SOAP computed
            q_left, q_right = soap.state[w_soap]["Q"]
            w_rot = (q_left.T @ start.double() @ q_right).requires_grad_(True)
            adam = Adam([w_rot], lr=lr, betas=betas)
            continue
        adam.zero_grad()
        loss_fn(q_left @ w_rot @ q_right.T).backward()
        adam.step()
        with torch.no_grad():
            back = q_left @ w_rot @ q_right.T
            largest = max(largest, float((back - w_soap).abs().max()))
            losses["SOAP"].append(float(loss_fn(w_soap)))
            losses["rotated Adam"].append(float(loss_fn(back)))
    return {**losses, "largest difference": largest}
