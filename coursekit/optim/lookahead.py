r"""Lookahead: k steps forward with any optimizer, then one step back toward the slow weights.

Zhang et al. (2019). Two copies of the weights: the *fast*
weights ``theta`` are trained by an inner optimizer (SGD, Adam, ...); the *slow*
weights ``phi`` move only every ``k`` steps, part of the way toward where the fast
weights ended up, and the fast weights restart from there::

    phi = theta_0
    for t = 1, 2, ...
        theta = inner_step(theta)                       (the wrapped optimizer)
        if t % k == 0:
            phi   = phi + alpha * (theta - phi)
            theta = phi

The inner optimizer's state (momentum, Adam moments) is kept as it is at the
synchronisation, as in the authors' code (michaelrzhang/lookahead, whose default is
``pullback_momentum="none"``); its other options, zeroing (``"reset"``) or interpolating
(``"pullback"``) the SGD momentum like the weights, are not offered here. The defaults
``k=5, alpha=0.5`` are those of pytorch-optimizer and torch-optimizer (the authors' code
defaults to ``la_alpha=0.8``). ``state_dict()`` saves the slow weights with the inner
optimizer's state (the authors' code saves only the latter), so a resumed run continues
exactly.

tests/test_reference_optimizers.py checks this class against pytorch-optimizer's Lookahead
(``pullback_momentum="none"``: the same numbers) and torch-optimizer's. torch-optimizer
copies the slow weights *after* the first inner step and synchronises at steps 1, k + 1,
2k + 1, ...: that is this class wrapped around the inner optimizer after one plain step
(and its ``state_dict()`` fails under torch 2, which the test records).

References
----------
.. [1] Zhang, M. R., Lucas, J., Hinton, G. and Ba, J. (2019). Lookahead optimizer: k steps
   forward, 1 step back. NeurIPS 2019. arXiv:1907.08610. [zhang2019lookahead]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from coursekit import _checks as checks

__all__ = ["Lookahead"]


class Lookahead(torch.optim.Optimizer):
    """Wrap ``optimizer`` in Lookahead with period ``k`` and slow step size ``alpha``.

    ``param_groups`` are shared with the inner optimizer, so learning-rate
    schedulers and ``zero_grad()`` act on both.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The inner ("fast") optimizer, ours or torch's; not a Schedule-Free one (an
        optimizer with ``train()``/``eval()`` modes), which is refused: its weights in
        train mode are an interpolation it rebuilds its average from.
    k : int
        Number of inner steps between synchronisations, >= 1.
    alpha : float
        Slow-weight step size in [0, 1] (1 makes Lookahead a no-op).

    References
    ----------
    .. [1] Zhang, M. R., Lucas, J., Hinton, G. and Ba, J. (2019). Lookahead optimizer: k
       steps forward, 1 step back. NeurIPS 2019. arXiv:1907.08610. [zhang2019lookahead]
    """

    def __init__(self, optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5):
        self.optimizer = checks.instance("optimizer", optimizer, torch.optim.Optimizer,
                                         what="a torch.optim.Optimizer")
        if callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval",
                                                                            None)):
            raise checks.invalid(
                "optimizer", "an optimizer without train() and eval() modes: a Schedule-Free "
                "optimizer keeps its averaged weights in its state and rebuilds them from the "
                "weights it trains at, so Lookahead's pull-back would corrupt that average",
                type(optimizer).__name__)
        self.k = checks.integer("k", k, minimum=1)
        self.alpha = checks.in_unit_interval("alpha", alpha)
        self.lookahead_steps = 0
        # Passing the inner groups makes torch register the very same dicts.
        super().__init__(optimizer.param_groups, {})

    def _params(self):
        for group in self.param_groups:
            yield from group["params"]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One inner step; every ``k``-th call also pulls toward the slow weights."""
        for p in self._params():
            if "slow_param" not in self.state[p]:
                self.state[p]["slow_param"] = p.detach().clone()  # phi = theta_0
        loss = self.optimizer.step(closure)
        self.lookahead_steps += 1
        if self.lookahead_steps % self.k == 0:
            for p in self._params():
                phi = self.state[p]["slow_param"]
                phi.lerp_(p, self.alpha)  # phi += alpha * (theta - phi)
                p.copy_(phi)
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's state, the slow weights, ``k``, ``alpha`` and the step count."""
        return {
            "inner": self.optimizer.state_dict(),
            "slow": super().state_dict(),
            "k": self.k,
            "alpha": self.alpha,
            "lookahead_steps": self.lookahead_steps,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``; the inner optimizer is restored too."""
        missing = {"inner", "slow", "k", "alpha", "lookahead_steps"} - set(state_dict)
        if missing:
            raise ValueError(f"state_dict must be a Lookahead state_dict, got one without "
                             f"{sorted(missing)}")
        self.optimizer.load_state_dict(state_dict["inner"])
        super().load_state_dict(state_dict["slow"])
        self.param_groups = self.optimizer.param_groups  # keep sharing the inner groups
        self.k = state_dict["k"]
        self.alpha = state_dict["alpha"]
        self.lookahead_steps = state_dict["lookahead_steps"]
