"""Argument checks shared across coursekit: each names the argument and the bad value.

``Invalid lr: -0.1 (must be >= 0)`` at the call, instead of a NaN or a division by
zero twenty lines further down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

__all__ = ["choice", "in_unit_interval", "integer", "nonnegative", "positive", "real"]


def real(name: str, value: Any) -> float:
    """``value`` as a float; it must be a real, non-NaN number (finite unless inf is allowed)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
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
