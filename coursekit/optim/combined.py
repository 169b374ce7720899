"""Several optimizers over disjoint parameters, stepped as one ``torch.optim.Optimizer``.

Muon updates matrices only; the biases, normalisation gains and output layer of the same
model go to AdamW (Jordan et al., 2024). Training code drives one optimizer, so
:class:`Combined` puts the two (or more) behind the one protocol::

    matrices, others = ..., ...
    opt = Combined(Muon(matrices, lr=0.02), AdamW(others, lr=1e-3))
    opt.zero_grad(); loss.backward(); opt.step()

``param_groups`` are the inner optimizers' own group dicts (as :class:`~coursekit.optim.
Lookahead` shares its inner groups), so a learning-rate scheduler scales every group
alike, and ``state`` is the union of the inner states, so
:func:`coursekit.analysis.cost.optimizer_state_bytes` counts all of it. ``state_dict()``
holds one entry per inner optimizer.

References
----------
.. [1] Jordan, K., Jin, Y., Boza, V., You, J., Cesista, F., Newhouse, L. and Bernstein, J.
   (2024). Muon: An optimizer for hidden layers in neural networks.
   https://kellerjordan.github.io/posts/muon/ [jordan2024muon]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from coursekit import _checks as checks

__all__ = ["Combined"]


class Combined(torch.optim.Optimizer):
    """Step several optimizers, each over its own parameters, as one optimizer.

    Parameters
    ----------
    *optimizers : torch.optim.Optimizer
        At least one; no parameter may belong to two of them.
    """

    def __init__(self, *optimizers: torch.optim.Optimizer):
        if not optimizers:
            raise checks.invalid("optimizers", "at least one torch.optim.Optimizer", optimizers)
        for i, optimizer in enumerate(optimizers):
            checks.instance(f"optimizers[{i}]", optimizer, torch.optim.Optimizer,
                            what="a torch.optim.Optimizer")
        seen: set[int] = set()
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if id(p) in seen:
                        raise checks.invalid("optimizers", "optimizers over disjoint parameters "
                                             "(a tensor appears in two of them)",
                                             f"a parameter of shape {tuple(p.shape)}")
                    seen.add(id(p))
        self.optimizers = list(optimizers)
        self._built = False
        super().__init__([g for o in self.optimizers for g in o.param_groups], {})
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]
        self._built = True

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused once built: a group belongs to one of the inner optimizers, so add it
        there (``combined.optimizers[i].add_param_group(...)``) and build a new Combined."""
        if getattr(self, "_built", False):
            raise ValueError("Combined cannot take a parameter group of its own: add it to one "
                             "of its optimizers (combined.optimizers[i].add_param_group) and "
                             "build the Combined again")
        super().add_param_group(param_group)

    def train(self) -> Combined:
        """Switch every inner optimizer that has a training mode (Schedule-Free) to it."""
        for optimizer in self.optimizers:
            if callable(getattr(optimizer, "train", None)):
                optimizer.train()
        return self

    def eval(self) -> Combined:
        """Switch every inner optimizer that has an evaluation mode (Schedule-Free's
        averaged weights) to it."""
        for optimizer in self.optimizers:
            if callable(getattr(optimizer, "eval", None)):
                optimizer.eval()
        return self

    @property
    def state(self) -> dict:                      # the union of the inner states
        return {p: s for o in self.optimizers for p, s in o.state.items()}

    @state.setter
    def state(self, value: Any) -> None:          # torch's constructor assigns it once
        pass

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Evaluate ``closure`` once (if given), then step every inner optimizer."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """``{"optimizers": [inner state_dict, ...]}``."""
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a Combined over the same optimizers."""
        inner = state_dict.get("optimizers") if isinstance(state_dict, dict) else None
        if not isinstance(inner, list) or len(inner) != len(self.optimizers):
            got = (f"{len(inner)} optimizers" if isinstance(inner, list)
                   else "a dict without 'optimizers'" if isinstance(state_dict, dict)
                   else type(state_dict).__name__)
            raise checks.invalid("state_dict", f"a Combined state_dict of "
                                 f"{len(self.optimizers)} optimizers", got)
        for optimizer, saved in zip(self.optimizers, inner, strict=True):
            optimizer.load_state_dict(saved)
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]
