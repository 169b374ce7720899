r"""The primer's data: two Gaussian classes, and mini-batches with explicit normalisation.

Class 0 is :math:`\mathcal N(0, I) + 2` and class 1 is :math:`2\,\mathcal N(0, I) + 4`
in ``dim`` dimensions: the second class is shifted further and spread twice as
wide, so the classes overlap a little and a sigmoid unit can separate most of
them.

:class:`BatchIterator` deals the data out in shuffled mini-batches. How the
inputs are normalised is an argument, not a hidden step: by default each
feature is standardised with the mean and standard deviation of the *whole*
data set, computed once (the attributes ``mean`` and ``std``), so every batch
is scaled the same way and :meth:`BatchIterator.transform` applies the same
scaling to new data.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from coursekit import _checks as checks

__all__ = ["BatchIterator", "make_two_gaussians"]


def make_two_gaussians(n: int = 5000, dim: int = 4,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Sample the primer's two-class data set, shuffled.

    .. math::
        x \mid (y = 0) \sim \mathcal N(0, I_{dim}) + 2, \qquad
        x \mid (y = 1) \sim 2\,\mathcal N(0, I_{dim}) + 4

    Parameters
    ----------
    n : int
        Number of samples: ``n // 2`` of class 1, the rest of class 0.
    dim : int
        Number of features.
    seed : int
        Seed of the ``numpy.random.Generator``; the same seed gives the same data.

    Returns
    -------
    X : ndarray, shape (n, dim)
        The samples (float64).
    y : ndarray, shape (n,)
        The labels, 0.0 or 1.0.
    """
    n = checks.integer("n", n, minimum=1)
    dim = checks.integer("dim", dim, minimum=1)
    rng = np.random.default_rng(seed)
    n1 = n // 2
    n0 = n - n1
    X = np.concatenate([rng.standard_normal((n0, dim)) + 2.0,
                        2.0 * rng.standard_normal((n1, dim)) + 4.0])
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    order = rng.permutation(n)
    return X[order], y[order]


class BatchIterator:
    """An endless stream of shuffled mini-batches ``(X_batch, y_batch)``.

    Each epoch is a fresh permutation of the data cut into ``len(X) //
    batch_size`` batches; the few samples left over wait for a later epoch, so
    every batch has exactly ``batch_size`` rows.

    Parameters
    ----------
    X : array_like, shape (n, dim)
        Inputs.
    y : array_like, shape (n,)
        Targets.
    batch_size : int
        Rows per batch, at most ``n``.
    seed : int
        Seed of the shuffling generator.
    normalize : {"standardize", "none"}
        ``"standardize"`` maps each feature to ``(x - mean) / std`` with the
        data set's mean and standard deviation; ``"none"`` leaves ``X`` as is.

    Attributes
    ----------
    mean, std : ndarray, shape (dim,)
        The normalisation applied (zeros and ones for ``"none"``).
    """

    def __init__(self, X, y, batch_size: int, *, seed: int = 0,
                 normalize: Literal["standardize", "none"] = "standardize"):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (samples x features), got shape {X.shape}")
        checks.shape("y", y, (len(X),))
        self.batch_size = checks.integer("batch_size", batch_size, minimum=1, maximum=len(X))
        checks.choice("normalize", normalize, ("standardize", "none"))
        if normalize == "standardize":
            self.mean = X.mean(axis=0)
            self.std = X.std(axis=0)
            if np.any(self.std == 0):
                raise ValueError("X must vary in every feature for normalize='standardize', got "
                                 f"constant features {np.flatnonzero(self.std == 0).tolist()}")
        else:
            self.mean = np.zeros(X.shape[1])
            self.std = np.ones(X.shape[1])
        self.normalize = normalize
        self._X = self.transform(X)
        self._y = y
        self._rng = np.random.default_rng(seed)
        self._shuffle()

    def transform(self, X) -> np.ndarray:
        """Apply this iterator's normalisation to ``X``."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.std

    def _shuffle(self) -> None:
        order = self._rng.permutation(len(self._X))
        self._X_epoch = self._X[order]
        self._y_epoch = self._y[order]
        self._start = 0

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        if self._start + self.batch_size > len(self._X_epoch):
            self._shuffle()
        stop = self._start + self.batch_size
        batch = self._X_epoch[self._start:stop], self._y_epoch[self._start:stop]
        self._start = stop
        return batch
