"""coursekit: the library behind an open course on optimization for deep learning.

Import the pieces by what they are::

    import coursekit
    coursekit.seed(0)
    opt = coursekit.optim.Adam(model.parameters(), lr=1e-3)
"""

from coursekit import (
    compare,
    data,
    dynamics,
    hypergradients,
    landscapes,
    memory,
    models,
    optim,
    plot,
    primer,
    schedules,
    second_order,
    stochastic,
    sweep,
    train,
    widgets,
)
from coursekit.runtime import device, environment, fast_mode, seed

__all__ = [
    "compare",
    "data",
    "device",
    "dynamics",
    "environment",
    "fast_mode",
    "hypergradients",
    "landscapes",
    "memory",
    "models",
    "optim",
    "plot",
    "primer",
    "schedules",
    "second_order",
    "seed",
    "stochastic",
    "sweep",
    "train",
    "widgets",
]
__version__ = "0.1.0"
