r"""The learning-rate range test: sweep the rate upwards and watch the loss.

The advice of the Optimization II slides on choosing a rate ("loss not going down:
too low; loss exploding: too high"; Soleymani, 2024) made systematic by the range
test of Smith (2017): train for a few hundred steps while the rate grows
geometrically,

.. math:: \eta_k = \eta_{start} \left(\frac{\eta_{end}}{\eta_{start}}\right)^{k / (n - 1)},
          \qquad k = 0, \dots, n - 1,

record the loss of every step and its bias-corrected exponential moving average

.. math:: a_k = \beta a_{k-1} + (1 - \beta) L_k, \qquad \bar L_k = a_k / (1 - \beta^{k+1}),

and stop as soon as the loss is NaN/inf or :math:`\bar L_k` exceeds
``diverge_factor`` times the best :math:`\bar L` so far. Too low a rate leaves the
loss flat; too high makes it explode; good rates lie where it falls fastest.

**Suggestion.** :func:`lr_find` suggests the rate where the smoothed loss falls
most steeply per unit of :math:`\log \eta` (the most negative
:math:`d\bar L / d\log\eta`), looking only at the rates before the minimum of
:math:`\bar L`. The other common rule, a tenth of the rate at the minimum, is
``result.min_loss_lr / 10``.

The model's parameters, buffers, gradients and train/eval mode are restored
afterwards, bit for bit, and a given optimizer gets its ``state_dict`` back. The
random number generators are not rewound (a shuffling DataLoader or dropout
draws from them as usual).

References
----------
.. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture slides,
   Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and Stanford
   cs231n). [soleymani2024training]
.. [2] Smith, L. N. (2017). Cyclical learning rates for training neural networks. IEEE
   Winter Conference on Applications of Computer Vision (WACV 2017), 464–472.
   doi:10.1109/WACV.2017.58. arXiv:1506.01186. [smith2017cyclical]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from coursekit import _checks as checks

__all__ = ["LRFindResult", "lr_find"]


@dataclass(frozen=True)
class LRFindResult:
    """What a range test saw.

    Attributes
    ----------
    lrs, losses, smoothed_losses : np.ndarray
        One entry per step taken (the last one is the explosion when ``stopped_early``).
    suggestion : float or None
        The rate of steepest descent of the smoothed loss (None if it never fell).
    min_loss_lr : float
        The rate at the lowest smoothed loss.
    stopped_early : bool
        True if the test stopped because the loss exploded or became NaN/inf.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestion: float | None
    min_loss_lr: float
    stopped_early: bool


def _batches(data: Any) -> Iterator[tuple[Any, Any]]:
    """Endless batches: a single ``(inputs, targets)`` pair repeated, or an iterable cycled."""
    if (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(part, torch.Tensor) for part in data)):
        while True:
            yield tuple(data)
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise checks.invalid("data", "an iterable that yields batches (not a used-up "
                                 "iterator)", data)


def _suggest(lrs: np.ndarray, smoothed: np.ndarray) -> float | None:
    """The rate of steepest descent of the smoothed loss, among rates before its minimum."""
    lowest = int(np.argmin(smoothed))
    if lowest < 2:
        return None
    slopes = np.gradient(smoothed[: lowest + 1], np.log(lrs[: lowest + 1]))
    steepest = int(np.argmin(slopes))
    return float(lrs[steepest]) if slopes[steepest] < 0 else None


def lr_find(model: torch.nn.Module, loss_fn: Callable[[Any, Any], torch.Tensor],
            data: Iterable[Any],
            optimizer: torch.optim.Optimizer | Callable[[Iterable[torch.nn.Parameter]],
                                                        torch.optim.Optimizer],
            start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100, *,
            smoothing: float = 0.98, diverge_factor: float = 4.0) -> LRFindResult:
    """Run the learning-rate range test on ``model`` and restore it afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place during the test, then restored exactly.
    loss_fn : callable
        ``loss_fn(model(inputs), targets)`` -> scalar loss tensor.
    data : iterable or pair of tensors
        Batches ``(inputs, targets)`` (a DataLoader, a list; cycled as needed) or
        one ``(inputs, targets)`` pair of tensors used at every step (full batch).
    optimizer : torch.optim.Optimizer or callable
        An optimizer over ``model``'s parameters (its state is saved and restored),
        or a factory ``params -> optimizer`` such as ``partial(torch.optim.SGD, lr=1.0)``.
        Its rate is overwritten at every step.
    start_lr, end_lr : float
        The first and last rate of the geometric sweep, ``0 < start_lr < end_lr``.
    num_steps : int
        Steps of the sweep (at least 2).
    smoothing : float
        :math:`\\beta` of the moving average of the loss, in [0, 1).
    diverge_factor : float
        Stop once the smoothed loss exceeds this multiple of its best value (> 1).

    Returns
    -------
    LRFindResult
    """
    start_lr = checks.positive("start_lr", start_lr)
    end_lr = checks.positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise checks.invalid("end_lr", f"> start_lr = {start_lr}", end_lr)
    num_steps = checks.integer("num_steps", num_steps, minimum=2)
    smoothing = checks.in_unit_interval("smoothing", smoothing, open_high=True)
    diverge_factor = checks.real("diverge_factor", diverge_factor, above=1)

    if isinstance(optimizer, torch.optim.Optimizer):
        opt, saved_optimizer = optimizer, copy.deepcopy(optimizer.state_dict())
    else:
        checks.function("optimizer", optimizer, what="a torch.optim.Optimizer or a factory "
                        "make(params) -> optimizer")
        opt, saved_optimizer = optimizer(model.parameters()), None
    saved_model = copy.deepcopy(model.state_dict())
    saved_grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    was_training = model.training
    device = next(model.parameters()).device

    lrs = np.geomspace(start_lr, end_lr, num_steps)
    losses: list[float] = []
    smoothed: list[float] = []
    average, best, stopped_early = 0.0, math.inf, False
    try:
        model.train()
        batches = _batches(data)
        for k, lr in enumerate(lrs):
            inputs, targets = next(batches)
            for group in opt.param_groups:
                group["lr"] = float(lr)
            opt.zero_grad()
            loss = loss_fn(model(inputs.to(device)), targets.to(device))
            loss.backward()
            opt.step()
            value = loss.item()
            average = smoothing * average + (1.0 - smoothing) * value
            losses.append(value)
            smoothed.append(average / (1.0 - smoothing ** (k + 1)))
            if not math.isfinite(value) or smoothed[-1] > diverge_factor * best:
                stopped_early = True
                break
            best = min(best, smoothed[-1])
    finally:
        model.load_state_dict(saved_model)
        for param, grad in zip(model.parameters(), saved_grads, strict=True):
            param.grad = grad
        model.train(was_training)
        if saved_optimizer is not None:
            opt.load_state_dict(saved_optimizer)

    lrs = lrs[: len(losses)]
    finite = np.isfinite(smoothed)
    smoothed_arr = np.asarray(smoothed, dtype=np.float64)
    usable = int(np.argmin(finite)) if not finite.all() else len(smoothed)
    return LRFindResult(
        lrs=lrs,
        losses=np.asarray(losses, dtype=np.float64),
        smoothed_losses=smoothed_arr,
        suggestion=_suggest(lrs[:usable], smoothed_arr[:usable]) if usable else None,
        min_loss_lr=float(lrs[int(np.nanargmin(smoothed_arr))]) if usable else math.nan,
        stopped_early=stopped_early,
    )
