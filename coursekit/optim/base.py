"""The contract every coursekit optimizer follows, written once.

An optimizer here is a ``torch.optim.Optimizer`` whose subclass writes only two
things, both for *one* parameter tensor:

``init_state(param, state, group)``
    Fill the empty per-parameter ``state`` dict (moment buffers, step count).
``update(param, grad, state, group)``
    Apply one step in place to ``param`` given its gradient ``grad``; the
    hyperparameters come from ``group`` (``group["lr"]``, ``group["betas"]``...).

``update_group(group, params, mode)``
    Optional: the multi-tensor (``foreach``) and fused fast paths, which update a
    whole group at once and must give the same numbers (:mod:`coursekit.optim.fast`).

``step(closure=None)`` below does the rest exactly as torch.optim does: it
evaluates the closure with gradients enabled, skips parameters whose ``grad`` is
``None``, creates state lazily on the first step, and runs the updates under
``torch.no_grad()``. Because state lives in ``self.state[param]`` and
hyperparameters in ``self.param_groups``, parameter groups, ``state_dict()`` /
``load_state_dict()``, ``zero_grad()`` and torch's learning-rate schedulers all
work unchanged.

The ``check_*`` helpers validate hyperparameters in ``__init__`` so that a typo
like ``lr=-1e-3`` fails at once with a message naming the argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from coursekit.optim.fast import group_mode

__all__ = [
    "Optimizer",
    "apply_weight_decay",
]


class Optimizer(torch.optim.Optimizer):
    """Base class: subclasses implement ``init_state`` and ``update`` for one tensor."""

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        """Create the per-parameter state on the first step (default: none)."""

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        """Update ``param`` in place from ``grad``; must be overridden."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def update_group(self, group: dict, params: list[torch.Tensor], mode: str) -> None:
        """Update all ``params`` of ``group`` at once: the ``foreach``/``fused`` paths.

        Optimizers with a fast path override this (see :mod:`coursekit.optim.fast`);
        the default simply runs the readable per-tensor ``update``.
        """
        for param in params:
            self.update(param, param.grad, self.state[param], group)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step; return the closure's loss, if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            mode = group_mode(group, params)
            for param in params:
                state = self.state[param]
                if not state:
                    if param.grad.is_sparse:
                        raise RuntimeError(
                            f"{type(self).__name__} does not support sparse gradients")
                    self.init_state(param, state, group)
                if mode == "single":
                    self.update(param, param.grad, state, group)
            if mode != "single":
                self.update_group(group, params, mode)
        return loss


def apply_weight_decay(param: torch.Tensor, grad: torch.Tensor, group: dict,
                       decoupled: bool) -> torch.Tensor:
    """Weight decay in either of its two forms; return the gradient to use.

    L2 (coupled): ``g <- g + weight_decay * theta``, so adaptive methods rescale
    the penalty along with the gradient. Decoupled (AdamW; Loshchilov and Hutter, 2019):
    ``theta <- theta * (1 - lr * weight_decay)`` before the step, independent of
    the gradient's scale.
    """
    wd = group["weight_decay"]
    if wd == 0:
        return grad
    if decoupled:
        param.mul_(1 - group["lr"] * wd)
        return grad
    return grad.add(param, alpha=wd)
