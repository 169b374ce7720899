r"""Muon: momentum whose update matrix is orthogonalised by a Newton-Schulz iteration.

Jordan et al. (2024). For a weight *matrix* ``W`` (m x n), SGD with momentum steps along
the momentum ``B``, whose few largest singular directions dominate. Muon replaces ``B``
by the nearest semi-orthogonal matrix ``U V^T`` (``B = U S V^T``, its SVD): every
direction that the momentum moves in gets the same step, the rare ones as much as the
common ones. Computing ``U V^T`` exactly needs an SVD; Muon approximates it with five
matrix-multiply iterations, :func:`newton_schulz`::

    B_0 = 0
    for t = 1, 2, ...
        g_t = grad f(W_{t-1})                             (an m x n matrix)
        B_t = mu * B_{t-1} + (1 - mu) * g_t                momentum, as an average
        M_t = (1 - mu) * g_t + mu * B_t   if nesterov  else  B_t
        O_t = newton_schulz(M_t)                          ~ U V^T of M_t
        W_t = W_{t-1} * (1 - lr * wd) - lr_adj * O_t      decoupled weight decay

``lr_adj`` rescales the step by the matrix's shape (``adjust_lr_fn``, as torch.optim.Muon):

    None or "original"     lr * sqrt(max(1, m / n))            (Jordan et al., 2024)
    "match_rms_adamw"      lr * 0.2 * sqrt(max(m, n))          (Liu et al., 2025)
    "spectral_unclamped"   lr * sqrt(m / n)                    (Bernstein, 2025)

"match_rms_adamw" gives the update the root-mean-square size of an AdamW update, so
that AdamW's learning rate and weight decay carry over. ``B`` is an average (``lerp``),
as in the authors' code and torch's; torch's docstring writes ``B_t = mu B_{t-1} + g_t``,
the same direction ``(1 - mu)`` times larger, which the orthogonalisation cancels.

Muon is for the 2-D weights of hidden layers only. Biases, normalisation gains and
embedding or output layers go to AdamW, in a second optimizer (the reference gives
a clear error for any parameter that is not a matrix, and so does this class)::

    matrices = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim != 2]
    opts = [Muon(matrices, lr=0.02), AdamW(others, lr=3e-4)]

tests/test_reference_2020s_a.py runs this class beside ``torch.optim.Muon`` for 100 steps
in float64 over nesterov on and off, weight decay and every ``adjust_lr_fn``: the same
numbers. As there, the iteration runs in bfloat16 by default (``ns_dtype``); pass
``ns_dtype=None`` to run it in the parameter's own precision.

References
----------
.. [1] Jordan, K., Jin, Y., Boza, V., You, J., Cesista, F., Newhouse, L. and Bernstein, J.
   (2024). Muon: An optimizer for hidden layers in neural networks.
   https://kellerjordan.github.io/posts/muon/ [jordan2024muon]
.. [2] Liu, J. et al. (2025). Muon is scalable for LLM training. arXiv:2502.16982.
   [liu2025muon]
.. [3] Bernstein, J. (2025). Deriving Muon. https://jeremybernste.in/writing/deriving-muon
   [bernstein2025deriving]
"""

from __future__ import annotations

import math

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["Muon", "newton_schulz"]

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ADJUST_LR_FNS = (None, "original", "match_rms_adamw", "spectral_unclamped")
NS_DTYPES = (None, torch.bfloat16, torch.float16, torch.float32, torch.float64)


def newton_schulz(G: torch.Tensor, steps: int = 5, eps: float = 1e-7, *,
                  coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                  dtype: torch.dtype | None = torch.bfloat16) -> torch.Tensor:
    r"""Approximately orthogonalise a matrix: ``G = U S V^T`` in, roughly ``U V^T`` out.

    The quintic Newton-Schulz iteration of Jordan et al. (2024)::

        X_0 = G / max(||G||_F, eps)              every singular value now in [0, 1]
        X_{k+1} = a X_k + b (X_k X_k^T) X_k + c (X_k X_k^T)^2 X_k

    With ``X = U S V^T``, ``X X^T X = U S^3 V^T``: each step keeps the singular vectors
    and applies the odd polynomial ``phi(s) = a s + b s^3 + c s^5`` to every singular
    value separately. So ``steps`` iterations map ``G`` to ``U phi^steps(S / ||G||_F) V^T``,
    using nothing but matrix products, which is why it is fast on a GPU where an SVD is not.

    The coefficients ``(a, b, c) = (3.4445, -4.7750, 2.0315)`` trade accuracy for speed.
    ``phi'(0) = a = 3.4445``: a small singular value is multiplied by about 3.4 per step,
    so five steps lift everything between ``0.003 ||G||_F`` and ``||G||_F`` into the
    band ``[0.682, 1.203]`` (a value of ``0.001 ||G||_F`` reaches 0.47). The price is that 1 is
    not a fixed point: ``phi(1) = a + b + c = 0.701``, and the fixed point
    ``phi(s) = s`` at ``s = 0.868`` is repelling (``phi'(0.868) = -1.58``), so the
    iterates keep oscillating inside the band instead of converging to exactly 1. The
    classic cubic Newton-Schulz ``(1.5, -0.5, 0)`` does converge to 1
    (``phi(1) = 1, phi'(1) = 0``), but with slope 1.5 at zero it needs many more steps to
    lift the small singular values; Jordan et al. found that the band of values,
    ``U S' V^T`` with ``S'`` between about 0.7 and 1.2, trains as well as ``U V^T``.

    Parameters
    ----------
    G : torch.Tensor
        A 2-D matrix (m x n).
    steps : int
        Number of iterations, >= 0.
    eps : float
        Floor of the Frobenius norm in the first division (a zero matrix stays zero).
    coefficients : tuple of float
        ``(a, b, c)`` of the polynomial.
    dtype : torch.dtype or None
        Precision of the iteration: bfloat16 (default, as the authors' code and
        torch.optim.Muon) or ``None`` for ``G``'s own dtype.

    Returns
    -------
    torch.Tensor
        The orthogonalised matrix, of ``G``'s shape, in ``dtype``.
    """
    if G.ndim != 2:
        raise checks.invalid("G", "a 2-D matrix", tuple(G.shape))
    steps = checks.integer("steps", steps, minimum=0)
    checks.nonnegative("eps", eps)
    a, b, c = coefficients
    X = G if dtype is None else G.to(dtype)
    wide = X.size(0) <= X.size(1)
    if not wide:                      # iterate on the side whose Gram matrix X X^T is smaller
        X = X.T
    X = X.div(X.norm().clamp(min=eps))
    for _ in range(steps):
        A = X @ X.T
        B = torch.addmm(A, A, A, beta=b, alpha=c)       # b A + c A^2
        X = torch.addmm(X, B, X, beta=a)                 # a X + B X
    return X if wide else X.T


def _adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """The learning rate scaled by the matrix's shape (m, n) = (fan-out, fan-in)."""
    m, n = shape
    if adjust_lr_fn in (None, "original"):
        return lr * math.sqrt(max(1.0, m / n))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(m, n))
    return lr * math.sqrt(m / n)                          # "spectral_unclamped"


class Muon(Optimizer):
    """Muon (arguments and defaults as ``torch.optim.Muon``), for 2-D parameters only.

    Parameters
    ----------
    params : iterable
        Matrices, or parameter groups of matrices. Anything else is an error naming its
        shape: give vectors and other tensors to AdamW.
    lr : float
        Learning rate, >= 0.
    weight_decay : float
        Decoupled weight decay: ``W *= 1 - lr * weight_decay`` (the unadjusted lr).
    momentum : float
        ``mu`` in [0, 1).
    nesterov : bool
        Orthogonalise ``(1 - mu) g + mu B`` instead of ``B``.
    ns_coefficients : tuple of float
        ``(a, b, c)`` of the Newton-Schulz polynomial (see :func:`newton_schulz`).
    eps : float
        Floor of the Frobenius norm in :func:`newton_schulz`.
    ns_steps : int
        Newton-Schulz iterations, in [0, 100).
    adjust_lr_fn : str or None
        ``None``/"original", "match_rms_adamw" or "spectral_unclamped" (module docstring).
    ns_dtype : torch.dtype or None
        Precision of the iteration; bfloat16 as torch.optim.Muon, ``None`` for the
        parameter's own.

    References
    ----------
    .. [1] Jordan, K., Jin, Y., Boza, V., You, J., Cesista, F., Newhouse, L. and
       Bernstein, J. (2024). Muon: An optimizer for hidden layers in neural networks.
       https://kellerjordan.github.io/posts/muon/ [jordan2024muon]
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                 eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: str | None = None, *,
                 ns_dtype: torch.dtype | None = torch.bfloat16):
        checks.nonnegative("lr", lr)
        checks.nonnegative("weight_decay", weight_decay)
        checks.beta("momentum", momentum)
        checks.choice("nesterov", nesterov, (True, False))
        coefficients = tuple(float(x) for x in checks.vector("ns_coefficients",
                                                              ns_coefficients, length=3))
        checks.nonnegative("eps", eps)
        checks.integer("ns_steps", ns_steps, minimum=0, maximum=99)
        checks.choice("adjust_lr_fn", adjust_lr_fn, ADJUST_LR_FNS)
        checks.choice("ns_dtype", ns_dtype, NS_DTYPES)
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        nesterov=nesterov, ns_coefficients=coefficients, eps=eps,
                        ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn, ns_dtype=ns_dtype)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (torch's ``__init__`` calls this for every group): matrices only."""
        params = param_group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        group = len(self.param_groups)
        for i, p in enumerate(params):
            p = p[1] if isinstance(p, tuple) else p              # (name, parameter) pairs
            if p.ndim != 2:
                raise checks.invalid(
                    f"the shape of Muon's parameter {i} in group {group}",
                    "2-D (Muon orthogonalises matrices; optimise biases, gains, embeddings "
                    "and other non-matrix parameters with AdamW in a second optimizer, as "
                    "torch.optim.Muon advises)", tuple(p.shape))
        super().add_param_group({**param_group, "params": params})

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a ``state_dict()``, ours or ``torch.optim.Muon``'s (whose groups have no
        ``ns_dtype``: its iteration is always bfloat16)."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group.setdefault("ns_dtype", torch.bfloat16)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["momentum_buffer"] = torch.zeros_like(param)   # B

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        mu = group["momentum"]
        B = state["momentum_buffer"]
        B.lerp_(grad, 1 - mu)                                 # B = mu B + (1 - mu) g
        M = grad.lerp(B, mu) if group["nesterov"] else B      # (1 - mu) g + mu B
        O = newton_schulz(M, group["ns_steps"], group["eps"],
                          coefficients=group["ns_coefficients"], dtype=group["ns_dtype"])
        lr = group["lr"]
        param.mul_(1 - lr * group["weight_decay"])
        param.add_(O, alpha=-_adjusted_lr(lr, group["adjust_lr_fn"], param.shape))
