"""Reproducibility and hardware: one call to seed everything, one to pick a device.

``seed(n)`` seeds Python's ``random``, NumPy's global generator and torch (CPU and
every CUDA device), so a notebook that calls it once at the top is repeatable.
``device()`` returns the fastest backend present: CUDA, then Apple's MPS, then CPU.
``fast_mode()`` tells whether the course runs in CI mode (``COURSEKIT_FAST=1``),
where notebooks shrink their experiments to finish in seconds, and ``banner()`` says
in one line which mode and device a notebook runs with.
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

from coursekit import _checks as checks

__all__ = ["banner", "device", "environment", "fast_mode", "seed"]


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
    n = checks.integer("seed", n, minimum=0, maximum=2**32 - 1)
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


def _hardware(chosen: torch.device) -> str:
    """What stands behind a device: the GPU's name for CUDA, else the processor."""
    if chosen.type == "cuda":
        return torch.cuda.get_device_name(chosen)
    if chosen.type == "mps":
        return "Apple GPU"
    return platform.processor() or platform.machine()


def banner() -> str:
    """One line saying where this notebook runs: coursekit's version, the mode, the device.

    ::

        coursekit 0.1.0 | full mode | device cuda (Tesla T4)
        coursekit 0.1.0 | CI mode (COURSEKIT_FAST=1) | device cpu (x86_64, 2 threads)

    Full mode is the default: it is on wherever ``COURSEKIT_FAST`` is unset (or not a
    true value; see :func:`fast_mode`), so a Colab runtime with a GPU runs every
    experiment at full size on ``cuda``. CI mode is what the test suite sets. The
    device is the one :func:`device` picks; on the CPU the line gives torch's thread
    count too, which bounds how fast the CPU runs.
    """
    from coursekit import __version__

    mode = "CI mode (COURSEKIT_FAST=1)" if fast_mode() else "full mode"
    chosen = device()
    hardware = _hardware(chosen)
    if chosen.type == "cpu":
        threads = torch.get_num_threads()
        hardware = f"{hardware}, {threads} thread{'s' * (threads != 1)}"
    return f"coursekit {__version__} | {mode} | device {chosen.type} ({hardware})"


def environment() -> list[dict[str, str]]:
    """What this machine offers the course, as ``{"item": ..., "value": ...}`` records.

    Versions of Python and the libraries, the device :func:`device` picks, torch's
    thread count, whether CI mode is on, where datasets are looked for and which of
    them are present. ``pandas.DataFrame(environment())`` shows it as a table.
    """
    import matplotlib
    import torchvision

    from coursekit import __version__, data

    chosen = device()
    hardware = _hardware(chosen)
    records = [
        ("python", platform.python_version()),
        ("coursekit", __version__),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("numpy", np.__version__),
        ("matplotlib", matplotlib.__version__),
        ("device", f"{chosen.type} ({hardware})"),
        ("torch threads", str(torch.get_num_threads())),
        ("CI mode (COURSEKIT_FAST)", "on" if fast_mode() else "off"),
        ("data root", str(data.data_root())),
    ]
    for name in data.TORCHVISION:
        records.append((f"dataset {name}", "present" if data.is_present(name) else "missing"))
    records.append(("dataset digits", "present (bundled with scikit-learn)"))
    return [{"item": item, "value": value} for item, value in records]
