"""From-scratch optimizers, each a ``torch.optim.Optimizer`` verified against a reference.

The classics (SGD and its momentum variants, Adagrad, RMSprop, Adadelta, the Adam
family, RAdam, AdaBelief, Lookahead) are checked against ``torch.optim`` or their
authors' code; the optimizers of the 2020s against ``torch.optim`` where PyTorch
has them (:class:`Muon` with :func:`newton_schulz`, :class:`Adafactor`) and otherwise
against their authors' package (:class:`ScheduleFreeSGD`, :class:`ScheduleFreeAdamW`)
or two maintained implementations (:class:`Lion`, :class:`LARS`, :class:`LAMB`,
:class:`Shampoo`, :class:`SOAP`; each module's docstring says where those differ and
which coursekit follows). Two of them change how they are driven: Muon takes
2-D weight matrices only (give the other parameters to AdamW, in a second optimizer),
and Schedule-Free starts in eval mode, so call ``optimizer.train()`` before training
and ``optimizer.eval()`` before evaluating (``coursekit.train.fit`` does both).

Submodules: :mod:`~coursekit.optim.hyper` (optimizers that learn their own
hyperparameters by gradient descent, stackable) and :mod:`~coursekit.optim.clip`
(global-norm and running-mean gradient clipping).

One module per family, each written from its equations (see the module
docstrings). Argument names and defaults match ``torch.optim`` wherever PyTorch
has the same algorithm, so ours and torch's are interchangeable.

The registry builds an optimizer from its name, which keeps experiment grids
declarative::

    opt = coursekit.optim.create("adam", model.parameters(), lr=1e-3)
    coursekit.optim.available()   # ['adabelief', 'adadelta', 'adagrad', ...]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from coursekit import _checks
from coursekit.optim import clip, hyper, transforms
from coursekit.optim.adabelief import AdaBelief
from coursekit.optim.adadelta import Adadelta
from coursekit.optim.adafactor import Adafactor
from coursekit.optim.adagrad import Adagrad
from coursekit.optim.adam import Adam, AdamW
from coursekit.optim.adamax import Adamax
from coursekit.optim.base import Optimizer
from coursekit.optim.layerwise import LAMB, LARS
from coursekit.optim.lion import Lion
from coursekit.optim.lookahead import Lookahead
from coursekit.optim.momentum import QianMomentum, SGDPlus
from coursekit.optim.muon import Muon, newton_schulz
from coursekit.optim.nadam import NAdam
from coursekit.optim.radam import RAdam
from coursekit.optim.rmsprop import RMSprop
from coursekit.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from coursekit.optim.sgd import SGD
from coursekit.optim.shampoo import Shampoo
from coursekit.optim.soap import SOAP

__all__ = [
    "LAMB",
    "LARS",
    "SGD",
    "SOAP",
    "AdaBelief",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Lookahead",
    "Muon",
    "NAdam",
    "Optimizer",
    "QianMomentum",
    "RAdam",
    "RMSprop",
    "SGDPlus",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "Shampoo",
    "available",
    "clip",
    "create",
    "hyper",
    "newton_schulz",
    "transforms",
]

_REGISTRY: dict[str, type[torch.optim.Optimizer]] = {
    "adabelief": AdaBelief,
    "adadelta": Adadelta,
    "adafactor": Adafactor,
    "adagrad": Adagrad,
    "adam": Adam,
    "adamax": Adamax,
    "adamw": AdamW,
    "lamb": LAMB,
    "lars": LARS,
    "lion": Lion,
    "muon": Muon,
    "nadam": NAdam,
    "qian_momentum": QianMomentum,
    "radam": RAdam,
    "rmsprop": RMSprop,
    "schedule_free_adamw": ScheduleFreeAdamW,
    "schedule_free_sgd": ScheduleFreeSGD,
    "sgd": SGD,
    "sgd_plus": SGDPlus,
    "shampoo": Shampoo,
    "soap": SOAP,
}


def available() -> list[str]:
    """Names accepted by :func:`create`, sorted. ``lookahead`` wraps another optimizer."""
    return sorted([*_REGISTRY, "lookahead"])


def create(name: str, params: Iterable[Any], **kwargs: Any) -> torch.optim.Optimizer:
    """Build an optimizer by name: ``create("adam", model.parameters(), lr=1e-3)``.

    ``create("lookahead", params, inner="adam", k=5, alpha=0.5, **inner_kwargs)``
    builds Lookahead around the inner optimizer named by ``inner``. ``create("muon",
    ...)`` accepts matrices only, and ``"schedule_free_sgd"`` / ``"schedule_free_adamw"``
    return an optimizer in eval mode: call its ``train()`` before the first step.
    """
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    if key == "lookahead":
        inner = kwargs.pop("inner", "sgd")
        k = kwargs.pop("k", 5)
        alpha = kwargs.pop("alpha", 0.5)
        return Lookahead(create(inner, params, **kwargs), k=k, alpha=alpha)
    _checks.choice("name", key, available())
    return _REGISTRY[key](params, **kwargs)
