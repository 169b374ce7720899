"""Many training runs at once: grids over hyperparameters and seeds, honest comparisons.

``sweep``    one function over a grid, on a process pool or a Dask cluster
``compare``  optimizers compared with tuned learning rates over several seeds
"""

from coursekit._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, submodules=("compare", "sweep"))
