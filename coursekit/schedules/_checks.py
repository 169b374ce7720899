"""Argument checks shared by the schedule functions and classes, and the step vectorizer.

Each raises ``ValueError`` with the argument's name and the bad value, so that
``cosine_annealing(t, T_max=0)`` fails with ``Invalid T_max: 0 (must be > 0)``
instead of a division by zero twenty lines further down.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from coursekit._checks import choice, in_unit_interval, integer, nonnegative, positive, real

__all__ = [
    "choice",
    "in_unit_interval",
    "integer",
    "nonnegative",
    "over_steps",
    "per_group",
    "positive",
    "real",
]


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
