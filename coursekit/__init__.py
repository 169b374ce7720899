"""coursekit: the library behind an open course on optimization for deep learning.

Import the pieces by what they are::

    import coursekit
    coursekit.seed(0)
    opt = coursekit.optim.Adam(model.parameters(), lr=1e-3)

The layers (``docs/architecture.md``), each importing only from those below it:

- ``grading``, ``cli``: assignments and the autograder; stand alone;
- ``analysis``, ``experiments``: the lectures' tools, built on ``train`` and ``optim``;
- ``viz``: figures and widgets (the only place that draws);
- ``train``: the training loop;
- ``optim``, ``schedules``, ``primer``: the algorithms;
- ``runtime``, ``data``, ``models``, ``landscapes``, ``stats``: the core.

Every name loads on first use, so ``import coursekit`` imports neither torch nor
matplotlib.
"""

from coursekit._lazy import attach

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = attach(
    __name__,
    submodules=("analysis", "data", "experiments", "grading", "landscapes", "models", "optim",
                "primer", "runtime", "schedules", "stats", "train", "viz"),
    names={"banner": "runtime", "device": "runtime", "environment": "runtime",
           "fast_mode": "runtime", "seed": "runtime"},
)
