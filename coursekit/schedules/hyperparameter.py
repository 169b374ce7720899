r"""Schedule any hyperparameter of an optimizer's param groups, not only the learning rate.

The CSL4020 project report replaced Adam's :math:`\beta_1` and :math:`\beta_2` by
:math:`\beta e^{-t}`, giving the current gradient more weight as training goes on.
The same machinery decays SGD's momentum or ramps weight decay::

    from functools import partial
    from coursekit.schedules import HyperparameterScheduler, exponential_decay, per_epoch

    beta1 = HyperparameterScheduler(adam, "betas", partial(exponential_decay, k=0.01), index=0)
    mom = HyperparameterScheduler(sgd, "momentum", per_epoch(partial(exponential_decay, k=0.5),
                                                             steps_per_epoch=len(loader)))
    for batch in loader:
        ...; adam.step(); beta1.step()

The value of group :math:`g` at step :math:`t` is its initial value times the
schedule: :math:`h_{g,t} = h_{g,0} \, f(t)`, exactly like ``LambdaLR`` for the
rate, so any function of :mod:`coursekit.schedules.functions` (with ``lr0=1``)
is a schedule here. The report's form is ``exponential_decay`` with ``k=1`` per
epoch, which is very aggressive: :math:`\beta_1 = 0.9` falls to 0.33 after one
step and 0.12 after two; ``k = 0.01`` to ``0.1`` per epoch are gentler choices.

References
----------
.. [1] CSL4020 (n.d.). Intermediate project report 2: a hand-written Adam with scheduled
   betas. Student project report, CSL4020 Deep Learning. [csl4020project]
.. [2] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
   ICLR 2015. arXiv:1412.6980. [kingma2015adam]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from coursekit import _checks as checks

__all__ = ["HyperparameterScheduler"]


class HyperparameterScheduler:
    """Set ``group[name]`` (or its ``index``-th entry) to its initial value times ``schedule(t)``.

    Follows the ``LRScheduler`` contract: construction applies step 0, ``step()``
    advances ``last_epoch`` and applies the next value, ``get_last_value()`` reads
    the values set, ``state_dict()`` / ``load_state_dict()`` save and restore it.
    Several of these (and an lr scheduler) can drive one optimizer at once.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Ours or torch's.
    name : str
        The param-group key, e.g. ``"betas"``, ``"momentum"``, ``"weight_decay"``.
    schedule : callable or list of callables
        Multiplier as a function of the step; one for all groups or one per group.
        Not saved by ``state_dict()``; rebuild it when loading.
    index : int, optional
        For tuple-valued hyperparameters (``betas``), which entry to schedule.
    last_epoch : int
        The last step taken; -1 starts a fresh schedule. When resuming, the
        groups must hold ``"initial_<name>"`` (the optimizer's ``state_dict`` does).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, name: str,
                 schedule: Callable[[int], float] | Sequence[Callable[[int], float]],
                 index: int | None = None, last_epoch: int = -1) -> None:
        checks.instance("optimizer", optimizer, torch.optim.Optimizer,
                        what="a torch.optim.Optimizer")
        groups = optimizer.param_groups
        for group in groups:
            checks.choice("name", name, sorted(key for key in group if key != "params"))
            self._check_index(name, group[name], index)
        self.schedules = checks.per_group("schedule", schedule, len(groups))
        for i, fn in enumerate(self.schedules):
            checks.function(f"schedule[{i}]", fn, what="a function of the step")
        self.optimizer, self.name, self.index = optimizer, name, index
        self.initial_key = f"initial_{name}"
        if last_epoch == -1:
            for group in groups:
                group.setdefault(self.initial_key, group[name])
        elif any(self.initial_key not in group for group in groups):
            raise KeyError(f"param groups lack {self.initial_key!r}, needed to resume at "
                           f"last_epoch={last_epoch}; load the optimizer's state_dict first")
        self.base_values = [self._get(group[self.initial_key]) for group in groups]
        self.last_epoch = last_epoch
        self.step()

    @staticmethod
    def _check_index(name: str, value: Any, index: int | None) -> None:
        if isinstance(value, (tuple, list)):
            checks.integer("index", index, minimum=0, maximum=len(value) - 1)
        elif index is not None:
            raise checks.invalid("index", f"None ({name} is a single number)", index)

    def _get(self, value: Any) -> float:
        return float(value if self.index is None else value[self.index])

    def _set(self, group: dict, value: float) -> None:
        if self.index is None:
            group[self.name] = value
        else:
            entries = list(group[self.name])
            entries[self.index] = value
            group[self.name] = type(group[self.name])(entries)

    def value_at(self, t: int) -> list[float]:
        """The value of the hyperparameter in each param group at step ``t``."""
        values = []
        for i, (fn, base) in enumerate(zip(self.schedules, self.base_values, strict=True)):
            value = float(base * fn(t))
            if not math.isfinite(value):
                raise ValueError(f"schedule[{i}] must give a finite {self.name}, got {value} "
                                 f"at step {t}")
            values.append(value)
        return values

    def step(self) -> None:
        """Advance one step and write the new values into the param groups."""
        self.last_epoch += 1
        values = self.value_at(self.last_epoch)
        for group, value in zip(self.optimizer.param_groups, values, strict=True):
            self._set(group, value)
        self._last_values = values

    def get_last_value(self) -> list[float]:
        """The values set by the latest ``step()``, one per param group."""
        return list(self._last_values)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer and the schedule functions."""
        return {key: value for key, value in self.__dict__.items()
                if key not in ("optimizer", "schedules")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` of a scheduler of the same hyperparameter."""
        for key in ("name", "index"):
            if state_dict[key] != getattr(self, key):
                raise checks.invalid(f"state_dict[{key!r}]", f"{getattr(self, key)!r} (what "
                                     "this scheduler schedules)", state_dict[key])
        self.__dict__.update(state_dict)
