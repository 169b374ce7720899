"""Reproducibility and hardware: one call to seed everything, one to pick a device.

``seed(n)`` seeds Python's ``random``, NumPy's global generator and torch (CPU and
every CUDA device), so a notebook that calls it once at the top is repeatable.
``device()`` returns the fastest backend present: CUDA, then Apple's MPS, then CPU.
``fast_mode()`` tells whether the course runs in CI mode (``COURSEKIT_FAST=1``),
where notebooks shrink their experiments to finish in seconds.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["device", "fast_mode", "seed"]


def seed(n: int) -> int:
    """Seed Python, NumPy and torch with ``n`` so that a run is repeatable.

    Parameters
    ----------
    n : int
        A non-negative integer below 2**32 (NumPy's limit for legacy seeding).

    Returns
    -------
    int
        The seed, so that ``SEED = coursekit.seed(0)`` reads naturally.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(n).__name__}: {n!r}")
    n = int(n)
    if not 0 <= n < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {n}")
    random.seed(n)
    np.random.seed(n)  # noqa: NPY002 - seeds the legacy global generator students use
    torch.manual_seed(n)  # also seeds every CUDA device
    return n


def device() -> torch.device:
    """The best available torch device: ``cuda``, then ``mps``, then ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def fast_mode() -> bool:
    """True when ``COURSEKIT_FAST`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("COURSEKIT_FAST", "").strip().lower() in {"1", "true", "yes", "on"}
