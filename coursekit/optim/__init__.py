"""From-scratch optimizers, each a ``torch.optim.Optimizer`` verified against PyTorch.

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
from coursekit.optim.adagrad import Adagrad
from coursekit.optim.adam import Adam, AdamW
from coursekit.optim.adamax import Adamax
from coursekit.optim.base import Optimizer
from coursekit.optim.lookahead import Lookahead
from coursekit.optim.momentum import QianMomentum, SGDPlus
from coursekit.optim.nadam import NAdam
from coursekit.optim.radam import RAdam
from coursekit.optim.rmsprop import RMSprop
from coursekit.optim.sgd import SGD

__all__ = [
    "SGD",
    "AdaBelief",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lookahead",
    "NAdam",
    "Optimizer",
    "QianMomentum",
    "RAdam",
    "RMSprop",
    "SGDPlus",
    "available",
    "clip",
    "create",
    "hyper",
    "transforms",
]

_REGISTRY: dict[str, type[torch.optim.Optimizer]] = {
    "adabelief": AdaBelief,
    "adadelta": Adadelta,
    "adagrad": Adagrad,
    "adam": Adam,
    "adamax": Adamax,
    "adamw": AdamW,
    "nadam": NAdam,
    "qian_momentum": QianMomentum,
    "radam": RAdam,
    "rmsprop": RMSprop,
    "sgd": SGD,
    "sgd_plus": SGDPlus,
}


def available() -> list[str]:
    """Names accepted by :func:`create`, sorted. ``lookahead`` wraps another optimizer."""
    return sorted([*_REGISTRY, "lookahead"])


def create(name: str, params: Iterable[Any], **kwargs: Any) -> torch.optim.Optimizer:
    """Build an optimizer by name: ``create("adam", model.parameters(), lr=1e-3)``.

    ``create("lookahead", params, inner="adam", k=5, alpha=0.5, **inner_kwargs)``
    builds Lookahead around the inner optimizer named by ``inner``.
    """
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    if key == "lookahead":
        inner = kwargs.pop("inner", "sgd")
        k = kwargs.pop("k", 5)
        alpha = kwargs.pop("alpha", 0.5)
        return Lookahead(create(inner, params, **kwargs), k=k, alpha=alpha)
    _checks.choice("name", key, available())
    return _REGISTRY[key](params, **kwargs)
