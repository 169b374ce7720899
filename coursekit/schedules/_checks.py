"""Argument checks shared by the schedule functions and classes, and the step vectorizer.

Each raises ``ValueError`` with the argument's name and the bad value, so that
``cosine_annealing(t, T_max=0)`` fails with ``Invalid T_max: 0 (must be > 0)``
instead of a division by zero twenty lines further down.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch


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


def per_group(name: str, value: Any, n_groups: int) -> list[Any]:
    """A scalar repeated for every parameter group, or a list with one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(f"Invalid {name}: {value!r} (expected one value per parameter "
                             f"group: {n_groups}, got {len(value)})")
        return list(value)
    return [value] * n_groups


def over_steps(formula: Callable[..., Any]) -> Callable[..., Any]:
    """Let ``formula(t, ...)`` accept an int, a float or an array of steps ``t >= 0``.

    The wrapped formula always receives ``t`` as a float64 NumPy array (0-d for a
    single step) and may use NumPy operations freely; the caller gets a Python
    ``float`` back for a single step and a float64 array of ``t``'s shape otherwise.
    """

    @functools.wraps(formula)
    def evaluate(t: Any, *args: Any, **kwargs: Any) -> float | np.ndarray:
        steps = np.asarray(t, dtype=np.float64)
        bad = steps[~(np.isfinite(steps) & (steps >= 0))]
        if bad.size:
            raise ValueError(f"Invalid t: {bad.flat[0]} (steps must be finite and >= 0)")
        value = np.broadcast_to(formula(steps, *args, **kwargs), steps.shape)
        return float(value) if steps.ndim == 0 else value.astype(np.float64)

    return evaluate
