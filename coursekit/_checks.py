"""Argument checks shared across coursekit: each names the argument and the bad value.

``Invalid lr: -0.1 (must be >= 0)`` at the call, instead of a NaN or a division by
zero twenty lines further down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "beta",
    "betas",
    "choice",
    "in_unit_interval",
    "integer",
    "nonnegative",
    "per_group",
    "positive",
    "real",
    "series",
    "vector",
]


def real(name: str, value: Any) -> float:
    """``value`` as a float; it must be a real, non-NaN number (finite unless inf is allowed)."""
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:
        value = value.item()  # a one-element torch tensor
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"Invalid {name}: {value!r} (expected a real number)")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Invalid {name}: {value} (must be finite)")
    return value


def nonnegative(name: str, value: Any) -> float:
    """A finite real number >= 0 (learning rates, eta_min, decay constants k)."""
    value = real(name, value)
    if value < 0:
        raise ValueError(f"Invalid {name}: {value} (must be >= 0)")
    return value


def positive(name: str, value: Any) -> float:
    """A finite real number > 0 (gamma, periods that may be fractional)."""
    value = real(name, value)
    if value <= 0:
        raise ValueError(f"Invalid {name}: {value} (must be > 0)")
    return value


def in_unit_interval(name: str, value: Any, *, open_low: bool = False,
                     open_high: bool = False) -> float:
    """A real number in [0, 1], with either end optionally excluded."""
    value = real(name, value)
    low_ok = value > 0 if open_low else value >= 0
    high_ok = value < 1 if open_high else value <= 1
    if not (low_ok and high_ok):
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise ValueError(f"Invalid {name}: {value} (must be in {interval})")
    return value


def integer(name: str, value: Any, *, minimum: int) -> int:
    """An integer (not a bool, not a float) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")
    if value < minimum:
        raise ValueError(f"Invalid {name}: {value} (must be an integer >= {minimum})")
    return int(value)


def choice(name: str, value: Any, options: Iterable[str]) -> str:
    """One of a fixed set of strings (modes)."""
    options = tuple(options)
    if value not in options:
        raise ValueError(f"Invalid {name}: {value!r} (expected one of {', '.join(options)})")
    return value


def vector(name: str, values: Any) -> np.ndarray:
    """A non-empty 1-D float64 array of finite numbers (a grid of learning rates, say)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"Invalid {name}: {values!r} (expected a non-empty 1-D sequence of "
                         "finite numbers)")
    return array


def per_group(name: str, value: Any, n_groups: int) -> list[Any]:
    """A scalar repeated for every parameter group, or a list with one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(f"Invalid {name}: {value!r} (expected one value per parameter "
                             f"group: {n_groups}, got {len(value)})")
        return list(value)
    return [value] * n_groups


def beta(name: str, value: Any) -> float:
    """A decay rate (beta, alpha, momentum) in [0, 1)."""
    value = real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid {name}: {value} (must be in [0, 1))")
    return value



def betas(value: Any) -> tuple[float, float]:
    """A pair ``(beta1, beta2)``, each in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"Invalid betas: {value!r} (expected a pair (beta1, beta2))")
    return beta("beta1 (betas[0])", value[0]), beta("beta2 (betas[1])", value[1])


def series(name: str, values: Any) -> np.ndarray:
    """A 1-D float64 array (a loss curve, say); NaN and inf are allowed."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Invalid {name}: expected a sequence of numbers ({error})") from None
    if array.ndim != 1:
        raise ValueError(f"Invalid {name}: expected a 1-D sequence, got shape {array.shape}")
    return array
