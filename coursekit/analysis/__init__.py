"""The lectures' analysis tools, each built on ``train``, ``optim`` and the core.

``stochastic``      mini-batch gradient noise, vectorised SGD on noisy landscapes (lecture 2)
``monitor``         per-layer gradient norms and update-to-weight ratios of a run (lecture 3)
``dynamics``        convergence rates of gradient descent and momentum (lecture 4)
``cost``            optimizer memory and step time against the roofline (lecture 5)
``second_order``    Newton's method, Hessian-vector products, L-BFGS (lecture 6)
``hypergradients``  hypergradients checked, hyper-optimizer stacks trained (lecture 7)

A new lecture adds at most one module here.
"""

from coursekit._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__, submodules=("cost", "dynamics", "hypergradients", "monitor", "second_order",
                          "stochastic"))
