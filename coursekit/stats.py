"""Numeric summaries of series the course records: smoothing a noisy loss curve.

NumPy only, so that every layer (the primer included) can use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coursekit import _checks as checks

__all__ = ["running_mean"]






def running_mean(x: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    r"""Trailing mean of the last ``window`` values, the same length as ``x``.

    .. math::
        \bar x_i = \frac{1}{i - s_i + 1} \sum_{j = s_i}^{i} x_j, \qquad
        s_i = \max(0,\, i - \mathrm{window} + 1)

    The first ``window - 1`` entries average the values seen so far. Every entry
    is the mean of its own window (not a difference of cumulative sums, which
    loses precision on long runs); a NaN spoils only the windows containing it.

    Parameters
    ----------
    x : sequence of float
        The series, e.g. per-iteration losses.
    window : int
        Number of values averaged, >= 1.

    Returns
    -------
    numpy.ndarray
        Float64 array with ``len(x)`` entries.
    """
    window = checks.integer("window", window, minimum=1)
    x = checks.series("x", x)
    head = np.cumsum(x[: window - 1]) / np.arange(1, min(window - 1, len(x)) + 1)
    if len(x) < window:
        return head
    full = np.lib.stride_tricks.sliding_window_view(x, window).mean(axis=1)
    return np.concatenate([head, full])
