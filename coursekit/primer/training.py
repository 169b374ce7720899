"""The training loop for primer models: one function, numbers in, numbers out.

:func:`train` repeats ``zero_grad -> forward_backward -> step`` on mini-batches
and returns a :class:`History`. It draws nothing and logs nothing; plotting
``history.losses`` or ``history.running_loss`` is the caller's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from coursekit import _checks as checks
from coursekit.primer.data import BatchIterator
from coursekit.primer.models import MultiNeuronClassifier
from coursekit.primer.optimizers import Optimizer
from coursekit.stats import running_mean

__all__ = ["History", "train"]


@dataclass(frozen=True)
class History:
    """What a training run produced.

    Attributes
    ----------
    losses : ndarray, shape (iterations,)
        The loss of each iteration's batch, before that iteration's update.
    running_loss : ndarray, shape (iterations,)
        The trailing mean of ``losses`` over ``window`` iterations
        (:func:`coursekit.stats.running_mean`): the first points average the
        iterations seen so far.
    window : int
        The running mean's window, in iterations.
    wall_time : float
        Seconds spent in the loop.
    """

    losses: np.ndarray
    running_loss: np.ndarray
    window: int
    wall_time: float

    @property
    def iterations(self) -> int:
        """Number of iterations run."""
        return len(self.losses)

    @property
    def seconds_per_iteration(self) -> float:
        """Mean wall time of one iteration."""
        return self.wall_time / max(self.iterations, 1)


def train(model: MultiNeuronClassifier, optimizer: Optimizer,
          data: tuple[np.ndarray, np.ndarray], iterations: int, batch_size: int, *,
          seed: int = 0, normalize: Literal["standardize", "none"] = "standardize",
          window: int = 100) -> History:
    """Train ``model`` with ``optimizer`` on mini-batches of ``data``.

    Parameters
    ----------
    model : MultiNeuronClassifier
        A primer model (``OneNeuronClassifier`` included).
    optimizer : Optimizer
        An optimizer over ``model.parameters()``.
    data : tuple (X, y)
        Inputs of shape (n, d) and 0/1 targets of shape (n,).
    iterations : int
        Number of updates.
    batch_size : int
        Rows per mini-batch.
    seed : int
        Seed of the batch shuffling (see :class:`BatchIterator`).
    normalize : {"standardize", "none"}
        How the inputs are normalised (see :class:`BatchIterator`).
    window : int
        Window of the running mean of the loss.

    Returns
    -------
    History
    """
    iterations = checks.integer("iterations", iterations, minimum=0)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise checks.invalid("data", "a pair (X, y)", data)
    batches = BatchIterator(data[0], data[1], batch_size, seed=seed, normalize=normalize)
    losses = np.empty(iterations)
    start = time.perf_counter()
    for t in range(iterations):
        X, y = next(batches)
        optimizer.zero_grad()
        losses[t] = model.forward_backward(X, y)
        optimizer.step()
    wall_time = time.perf_counter() - start
    return History(losses, running_mean(losses, window), window, wall_time)
