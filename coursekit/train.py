"""One training loop for the whole course: ``fit``, ``evaluate`` and checkpoints.

``fit`` is the loop every lecture would otherwise write again::

    for epoch in range(epochs):
        for x, y in batches:                      # reshuffled every epoch
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            scheduler.step()                      # if scheduler_on == "batch"
            hook(StepInfo(...))                   # every on_step hook, after every step
        evaluate(model, valid)                    # then step the scheduler per epoch

and records everything a plot needs in a :class:`History`: the loss of every
minibatch, the learning rate of every step, per-epoch train and validation loss
and accuracy, the examples whose gradient was computed, and the wall time. Every
other trainer of the course (L-BFGS against gradient work in
``analysis.second_order``, the comparisons of ``experiments.compare``) is this
loop with some of its three options:

- ``closure=True`` calls ``optimizer.step(closure)``; the closure zeroes the
  gradients, computes the loss of the current batch, backpropagates it and
  returns it. ``torch.optim.LBFGS`` needs this (it calls the closure several
  times per step: its inner iterations and line search).
- ``max_examples`` is a gradient budget: every gradient computed charges its
  batch's examples (every closure call, in closure mode; a pass over the data
  costs ``len(train)``), and training stops after the step at which the charge
  reaches the budget, in the middle of an epoch if need be.
- ``on_step`` hooks are called after every step with a :class:`StepInfo`; a hook
  records what it likes (a full-data loss, a parameter snapshot) and may stop
  training by returning True or a reason.

**Divergence** has one rule: a batch loss that is NaN or infinite stops the run at
once, with a warning saying where and at what learning rate, and the History says
``status == "diverged"``; no step is taken on the non-finite loss. In closure mode
the loss is known only inside ``optimizer.step``: the closure checks its *first*
evaluation of a step (the loss at the step's starting weights, the one recorded
in ``batch_loss``) and, if it is not finite, raises before backpropagating it,
which ends ``optimizer.step`` before any update for every optimizer that
evaluates the closure before changing the weights (all of ``torch.optim``'s do).
Later evaluations within the same step (L-BFGS's line search) are the
optimizer's business and are not checked.

**Stopping early.** When the budget or a hook ends training, the History says
``status == "stopped"`` and why (``stopped_reason``). If that happens in the
middle of an epoch, the partial epoch is still recorded (its mean loss and
accuracy over the batches it took, the validation metrics at the weights it
stopped at, the wall time; no per-epoch scheduler step) and
``History.partial_epoch`` is True; such a history cannot be resumed.

**Optimizers with a train/eval switch.** An optimizer that has callable ``train()``
and ``eval()`` methods (Schedule-Free, ours and the authors' ``schedulefree``
package; ``torch.optim.Optimizer`` has neither) keeps two sets of weights: the point
where gradients are taken and the average that is evaluated. ``fit`` calls
``optimizer.train()`` before each epoch's first step and ``optimizer.eval()`` when
the epoch's training ends, before the validation set is evaluated, so the
validation metrics are those of the averaged weights. It leaves the optimizer in
eval mode: the model ``fit`` returns holds the averaged weights, ready to evaluate
or save, and a later ``fit`` (or a resumed one) switches back to training itself.
``on_step`` hooks run in train mode and see the gradient point.

``save_checkpoint`` / ``load_checkpoint`` store and restore the model, optimizer,
scheduler, history and every random number generator (Python, NumPy, torch on
the CPU and on each CUDA device). The order of the minibatches of epoch ``e`` is a
function of the seed and ``e`` alone (:class:`coursekit.data.Batches`), so a run
stopped after epoch 2, saved, loaded into fresh objects and continued with
``fit(..., history=history)`` takes exactly the steps of a run that never stopped.

Progress bars (``tqdm.auto``: a widget in Jupyter, text in a terminal) appear by
default in a notebook or terminal and stay out of CI logs (``CI`` or
``COURSEKIT_FAST`` set, or no terminal); ``progress=True`` or ``False`` decides
explicitly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import _checks as checks
from coursekit.data import Batches, Split
from coursekit.landscapes import learning_rate
from coursekit.runtime import fast_mode

__all__ = ["History", "StepInfo", "evaluate", "fit", "load_checkpoint", "save_checkpoint"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SCHEDULER_ON = ("epoch", "batch", "valid_loss", "valid_acc")
_CHECKPOINT_FORMAT = "coursekit-checkpoint-1"


@dataclasses.dataclass
class History:
    """What happened during training, as plain lists (one entry per step or per epoch).

    Attributes
    ----------
    batch_loss : list of float
        The loss of every minibatch at the weights before its step, in order (the
        last one is NaN/inf when training diverged).
    lr : list of float
        The learning rate of the first parameter group used at every step
        (:func:`coursekit.landscapes.learning_rate`; NaN for an optimizer without
        parameter groups).
    train_loss, train_acc : list of float
        Per epoch: the mean loss and accuracy over that epoch's minibatches,
        measured in training mode while the weights changed.
    valid_loss, valid_acc : list of float
        Per epoch: ``evaluate(model, valid)`` at the end of the epoch (NaN when
        there is no validation set; accuracy is NaN when the targets are not
        class labels).
    wall_time : list of float
        Seconds since the start of the first epoch (training and validation), at
        the end of each epoch; a resumed run continues the count.
    examples : int
        Training examples whose loss gradient was computed so far: each step
        charges its batch, each closure call in closure mode charges its batch
        again. The quantity ``fit(max_examples=...)`` budgets.
    status : str
        ``"new"``, ``"completed"``, ``"diverged"`` or ``"stopped"`` (by the gradient
        budget or a hook).
    stopped_reason : str or None
        Why training stopped early, in words.
    partial_epoch : bool
        True when training stopped in the middle of an epoch: the last per-epoch
        entries then cover only the batches that epoch took.
    seed : int
        Seed of the minibatch order.
    """

    batch_loss: list[float] = dataclasses.field(default_factory=list)
    lr: list[float] = dataclasses.field(default_factory=list)
    train_loss: list[float] = dataclasses.field(default_factory=list)
    train_acc: list[float] = dataclasses.field(default_factory=list)
    valid_loss: list[float] = dataclasses.field(default_factory=list)
    valid_acc: list[float] = dataclasses.field(default_factory=list)
    wall_time: list[float] = dataclasses.field(default_factory=list)
    examples: int = 0
    status: str = "new"
    stopped_reason: str | None = None
    partial_epoch: bool = False
    seed: int = 0

    @property
    def epochs(self) -> int:
        """Epochs recorded (a final partial one included, see ``partial_epoch``)."""
        return len(self.train_loss)

    @property
    def steps(self) -> int:
        """Minibatches seen, including one that diverged."""
        return len(self.batch_loss)

    @property
    def diverged(self) -> bool:
        """True when training stopped on a NaN or infinite loss."""
        return self.status == "diverged"

    def __repr__(self) -> str:
        last = ""
        if self.epochs:
            last = f", train loss {self.train_loss[-1]:.4g}, valid acc {self.valid_acc[-1]:.4g}"
        seconds = self.wall_time[-1] if self.wall_time else 0.0
        return (f"History({self.status}, {self.epochs} epochs, {self.steps} steps{last}, "
                f"{seconds:.1f} s)")

    def state_dict(self) -> dict[str, Any]:
        """The history as a dict of plain Python values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> History:
        """Rebuild a History from ``state_dict()``."""
        return cls(**state)


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What an ``on_step`` hook of :func:`fit` is told after every optimizer step.

    A hook is called as ``hook(info)`` after the step (and after a per-batch
    scheduler step), never for a batch whose loss diverged. It returns None or
    False to go on; anything else stops training after this step, and a string
    it returns becomes ``History.stopped_reason``.

    Attributes
    ----------
    step : int
        This step's number, counting from 1 over the whole history (a resumed
        run continues the count); ``history.steps`` equals it.
    epoch : int
        The epoch it belongs to, counting from 0.
    batch : int
        Its batch within the epoch, counting from 0.
    loss : float
        The batch loss at the weights before the step (``history.batch_loss[-1]``).
    lr : float
        The learning rate it used (``history.lr[-1]``).
    examples : int
        Examples whose gradient was computed so far, this step's included
        (``history.examples``).
    evaluations : int
        Gradient evaluations this step made: 1, or the number of closure calls
        in closure mode.
    model : torch.nn.Module
        The model, after the step.
    optimizer : torch.optim.Optimizer
        The optimizer, after the step.
    history : History
        The run so far.
    """

    step: int
    epoch: int
    batch: int
    loss: float
    lr: float
    examples: int
    evaluations: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History


Hook = Callable[[StepInfo], Any]


def fit(model: nn.Module, optimizer: torch.optim.Optimizer,
        train: Split | tuple[torch.Tensor, torch.Tensor] | Batches | Iterable, epochs: int,
        valid: Split | tuple[torch.Tensor, torch.Tensor] | None = None, scheduler: Any = None,
        scheduler_on: str = "epoch", loss: LossFn = F.cross_entropy,
        device: torch.device | str | None = None, batch_size: int = 128,
        progress: bool | None = None, seed: int | None = None,
        history: History | None = None, *, closure: bool = False,
        max_examples: float | None = None,
        on_step: Hook | Sequence[Hook] | None = None) -> History:
    """Train ``model`` for ``epochs`` epochs of minibatch steps; return the History.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs to outputs (logits for classification).
    optimizer : torch.optim.Optimizer
        Built on ``model.parameters()``. One with ``train()`` and ``eval()`` methods
        (Schedule-Free) is put in train mode for each epoch's steps and in eval mode
        for the validation and at the end, so the returned model holds its averaged
        weights (module notes).
    train : Split, (x, y) tuple, Batches or iterable of (x, y) batches
        A Split or tuple is moved to ``device`` once and iterated by
        :class:`~coursekit.data.Batches` (shuffled, ``batch_size``, ``seed``); a
        Batches or any other iterable (a ``DataLoader``) is used as given and
        iterated once per epoch.
    epochs : int
        Epochs to run in this call (a resumed run continues from ``history``).
    valid : Split or (x, y) tuple, optional
        Evaluated at the end of every epoch.
    scheduler : optional
        A learning-rate scheduler (``torch.optim.lr_scheduler`` contract).
    scheduler_on : {"epoch", "batch", "valid_loss", "valid_acc"}
        When to call ``scheduler.step()``: after every epoch, after every step, or
        after every epoch with the validation loss or accuracy as its metric
        (``ReduceLROnPlateau``; use ``mode="max"`` for accuracy).
    loss : callable
        ``loss(outputs, targets)``, a scalar averaged over the batch
        (default: cross entropy).
    device : torch.device or str, optional
        Where to train; the model and data are moved there once. Default: where
        the model's parameters already are.
    batch_size : int
        Examples per step when ``train`` is a Split or a tuple.
    progress : bool, optional
        Show a progress bar; ``None`` decides from the environment (module notes).
    seed : int, optional
        Seed of the minibatch order (default 0, or the seed of ``history``).
    history : History, optional
        Continue this run (from ``load_checkpoint``) instead of starting anew.
    closure : bool
        Step with ``optimizer.step(closure)`` (needed by ``torch.optim.LBFGS``);
        every call of the closure is a gradient evaluation charged to the budget.
        Divergence is checked on the closure's first call of each step (module
        notes).
    max_examples : float, optional
        Gradient budget of this call, in examples (``History.examples``): training
        stops after the step at which the examples charged since this call began
        reach it, possibly in the middle of an epoch. None: no budget.
    on_step : callable or sequence of callables, optional
        Hooks called as ``hook(StepInfo)`` after every step; one that returns
        True or a string stops training (see :class:`StepInfo`).

    Returns
    -------
    History
        ``history`` itself when given, updated.
    """
    checks.integer("epochs", epochs, minimum=0)
    checks.choice("scheduler_on", scheduler_on, SCHEDULER_ON)
    if scheduler_on.startswith("valid") and scheduler is not None and valid is None:
        raise checks.invalid("valid", f"a validation set when scheduler_on={scheduler_on!r}",
                             valid)
    if scheduler_on == "valid_acc" and getattr(scheduler, "mode", "max") != "max":
        raise checks.invalid("scheduler.mode", "'max' when scheduler_on='valid_acc' (the "
                             "accuracy is maximised: ReduceLROnPlateau(mode='max'))",
                             scheduler.mode)
    if max_examples is not None:
        checks.positive("max_examples", max_examples)
    hooks = _as_hooks(on_step)
    history = _start_history(history, seed)
    device = _model_device(model) if device is None else torch.device(device)
    model.to(device)
    batches = _as_batches(train, device, batch_size, history.seed)
    if valid is not None:
        valid = _as_split(valid, "valid").to(device)

    started = time.perf_counter() - (history.wall_time[-1] if history.wall_time else 0.0)
    total = epochs * len(batches) if hasattr(batches, "__len__") else None
    loop = _Loop(model, optimizer, loss, device, scheduler, scheduler_on, history,
                 _progress_bar(total, progress), closure, hooks, max_examples,
                 history.examples)
    for _ in range(epochs):
        epoch = history.epochs
        if isinstance(batches, Batches):
            batches.set_epoch(epoch)
        _set_mode(optimizer, train=True)
        stop = _train_one_epoch(loop, batches, epoch)
        _set_mode(optimizer, train=False)
        if history.diverged:
            break
        if valid is not None:
            metrics = evaluate(model, valid, loss=loss)
            history.valid_loss.append(metrics["loss"])
            history.valid_acc.append(metrics["accuracy"])
        else:
            history.valid_loss.append(math.nan)
            history.valid_acc.append(math.nan)
        history.wall_time.append(time.perf_counter() - started)
        if scheduler is not None and scheduler_on != "batch" and not history.partial_epoch:
            _step_scheduler(scheduler, scheduler_on, history)
        loop.bar.set_postfix(epoch=epoch + 1, loss=f"{history.train_loss[-1]:.4g}",
                             valid_acc=f"{history.valid_acc[-1]:.4g}")
        if stop is not None:
            history.status, history.stopped_reason = "stopped", stop
            break
    else:
        history.status = "completed"
    loop.bar.close()
    return history


@dataclasses.dataclass
class _Loop:
    """What the steps of one ``fit`` call share."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    device: torch.device
    scheduler: Any
    scheduler_on: str
    history: History
    bar: Any
    closure: bool
    hooks: tuple[Hook, ...]
    max_examples: float | None
    examples_at_start: int


class _Diverged(Exception):
    """Raised by fit's closure on a non-finite loss, before it is backpropagated."""


_END = object()


def _train_one_epoch(loop: _Loop, batches: Iterable, epoch: int) -> str | None:
    """One pass over ``batches``; the reason to stop training early, if any.

    Records the epoch's mean training loss and accuracy unless the run diverged
    (``history.diverged`` then says so).
    """
    history = loop.history
    loop.model.train()
    total_loss, correct, seen, labelled = 0.0, 0, 0, True
    iterator = iter(batches)
    for batch, (x, y) in enumerate(iterator):
        x, y = x.to(loop.device, non_blocking=True), y.to(loop.device, non_blocking=True)
        step = _closure_step if loop.closure else _plain_step
        try:
            value, outputs, evaluations = step(loop, x, y)
        except _Diverged:
            _stop_diverged(history, history.batch_loss[-1], batch, history.lr[-1])
            return None
        if loop.scheduler is not None and loop.scheduler_on == "batch":
            loop.scheduler.step()
        total_loss += value * len(y)
        seen += len(y)
        hits = _correct(outputs, y)
        labelled = labelled and hits is not None
        correct += hits or 0
        loop.bar.update()
        stop = _after_step(loop, epoch, batch, evaluations)
        if stop is not None:
            history.partial_epoch = next(iterator, _END) is not _END
            break
    else:
        stop = None
    if seen == 0:
        raise checks.invalid("train", "a training set that yields at least one batch (is it "
                             "empty, or smaller than batch_size with drop_last=True?)", batches)
    history.train_loss.append(total_loss / seen)
    history.train_acc.append(correct / seen if labelled else math.nan)
    return stop


def _plain_step(loop: _Loop, x: torch.Tensor, y: torch.Tensor
                ) -> tuple[float, torch.Tensor, int]:
    """forward, record, backward, ``optimizer.step()``: (batch loss, outputs, evaluations)."""
    outputs = loop.model(x)
    loss = loop.loss_fn(outputs, y)
    value = _record_loss(loop, loss)
    loop.optimizer.zero_grad()
    loss.backward()
    loop.history.examples += len(y)
    loop.optimizer.step()
    return value, outputs, 1


def _closure_step(loop: _Loop, x: torch.Tensor, y: torch.Tensor
                  ) -> tuple[float, torch.Tensor, int]:
    """``optimizer.step(closure)``, the first evaluation recorded and checked."""
    first: list[Any] = []
    calls = 0

    def closure() -> torch.Tensor:
        nonlocal calls
        loop.optimizer.zero_grad()
        outputs = loop.model(x)
        loss = loop.loss_fn(outputs, y)
        if not first:
            first.extend((_record_loss(loop, loss), outputs))
        loss.backward()
        calls += 1
        loop.history.examples += len(y)
        return loss

    loop.optimizer.step(closure)
    if not first:
        raise checks.invalid("optimizer", "one whose step(closure) calls the closure, as "
                             "closure=True needs", type(loop.optimizer), TypeError)
    return first[0], first[1], calls


def _record_loss(loop: _Loop, loss: torch.Tensor) -> float:
    """Append the batch loss and learning rate; raise _Diverged when the loss is not finite."""
    value = loss.item()
    loop.history.batch_loss.append(value)
    loop.history.lr.append(learning_rate(loop.optimizer))
    if not math.isfinite(value):
        raise _Diverged
    return value


def _after_step(loop: _Loop, epoch: int, batch: int, evaluations: int) -> str | None:
    """Call the hooks; the reason to stop after this step, if any (the budget's first)."""
    history = loop.history
    requests = []
    if loop.hooks:
        info = StepInfo(step=history.steps, epoch=epoch, batch=batch,
                        loss=history.batch_loss[-1], lr=history.lr[-1],
                        examples=history.examples, evaluations=evaluations, model=loop.model,
                        optimizer=loop.optimizer, history=history)
        requests = [hook(info) for hook in loop.hooks]
    where = f"step {history.steps}, epoch {epoch + 1}, batch {batch + 1}"
    used = history.examples - loop.examples_at_start
    if loop.max_examples is not None and used >= loop.max_examples:
        return (f"the gradient budget of {loop.max_examples:g} examples was reached "
                f"({where}, after {used} examples)")
    for request in requests:
        if request is not None and request is not False:
            reason = request if isinstance(request, str) else "a hook asked to stop"
            return f"{reason} ({where})"
    return None


def _stop_diverged(history: History, value: float, batch: int, lr: float) -> None:
    history.status = "diverged"
    history.stopped_reason = (
        f"the loss became {value} at epoch {history.epochs + 1}, batch {batch + 1} "
        f"(step {history.steps}) with learning rate {lr:g}; training stopped there, without "
        f"stepping on that loss. Try a smaller learning rate, gradient clipping, or check "
        f"the inputs for NaN.")
    warnings.warn(f"Training diverged: {history.stopped_reason}", RuntimeWarning, stacklevel=4)


def _step_scheduler(scheduler: Any, scheduler_on: str, history: History) -> None:
    if scheduler_on == "epoch":
        scheduler.step()
    elif scheduler_on == "valid_loss":
        scheduler.step(history.valid_loss[-1])
    else:
        scheduler.step(history.valid_acc[-1])


def _correct(outputs: torch.Tensor, y: torch.Tensor) -> int | None:
    """How many rows of ``outputs`` have their largest entry at the label ``y``."""
    if outputs.ndim != 2 or y.ndim != 1 or y.dtype.is_floating_point:
        return None
    return int((outputs.argmax(dim=1) == y).sum().item())


@torch.no_grad()
def evaluate(model: nn.Module, data: Split | tuple[torch.Tensor, torch.Tensor],
             loss: LossFn = F.cross_entropy, batch_size: int = 1024,
             device: torch.device | str | None = None) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on ``data``, in ``eval()`` mode.

    The loss is averaged over examples (``loss`` must average over its batch);
    the accuracy is the share of rows whose largest output is the label (NaN
    when the targets are not class labels). The model's train/eval mode is
    restored afterwards.

    Returns
    -------
    dict
        ``{"loss": float, "accuracy": float}``.
    """
    split = _as_split(data, "data")
    if len(split) == 0:
        raise checks.invalid("data", "a non-empty dataset", split)
    device = _model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, correct, labelled = 0.0, 0, True
    for x, y in Batches(split.x, split.y, batch_size, shuffle=False):
        x, y = x.to(device), y.to(device)
        outputs = model(x)
        total_loss += loss(outputs, y).item() * len(y)
        hits = _correct(outputs, y)
        labelled = labelled and hits is not None
        correct += hits or 0
    model.train(was_training)
    n = len(split)
    return {"loss": total_loss / n, "accuracy": correct / n if labelled else math.nan}


# ----------------------------------------------------------------------------- helpers


def _start_history(history: History | None, seed: int | None) -> History:
    if seed is not None:
        checks.integer("seed", seed, minimum=0)
    if history is None:
        return History(seed=0 if seed is None else seed)
    checks.instance("history", history, History, what="a History (from fit or load_checkpoint)")
    if history.diverged:
        raise checks.invalid("history", "a run that did not diverge, to be continued (start a "
                             "new run instead)", history.stopped_reason)
    if history.partial_epoch:
        raise checks.invalid("history", "a run that stopped at the end of an epoch, to be "
                             "continued (start a new run instead)", history.stopped_reason)
    if seed is not None and seed != history.seed:
        raise checks.invalid("seed", f"None or the resumed history's seed {history.seed}", seed)
    history.stopped_reason = None
    return history


def _as_hooks(on_step: Hook | Sequence[Hook] | None) -> tuple[Hook, ...]:
    if on_step is None:
        return ()
    many = isinstance(on_step, Iterable) and not callable(on_step)
    hooks = tuple(on_step) if many else (on_step,)
    for hook in hooks:
        checks.function("on_step", hook, what="a callable or a sequence of callables")
    return hooks


def _set_mode(optimizer: torch.optim.Optimizer, *, train: bool) -> None:
    """``optimizer.train()`` or ``.eval()``, for an optimizer that has both (Schedule-Free)."""
    switch = getattr(optimizer, "train" if train else "eval", None)
    other = getattr(optimizer, "eval" if train else "train", None)
    if callable(switch) and callable(other):
        switch()


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _as_split(data: Any, argument: str) -> Split:
    if isinstance(data, Split):
        return data
    if (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)):
        x, y = data
        return Split(x, y, name="tensors", part=argument, classes=())
    raise checks.invalid(argument, "a coursekit.data.Split or an (x, y) pair of tensors", data,
                         TypeError)


def _as_batches(train: Any, device: torch.device, batch_size: int, seed: int) -> Iterable:
    not_batches = (Split, tuple, list, torch.Tensor, str)  # data in memory, or a mistake
    if isinstance(train, Batches) or (isinstance(train, Iterable)
                                      and not isinstance(train, not_batches)):
        return train
    split = _as_split(train, "train").to(device)
    return Batches(split.x, split.y, batch_size, shuffle=True, seed=seed)


def _show_progress(progress: bool | None) -> bool:
    """``progress`` if given; otherwise on in a notebook or terminal, off in CI."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI") or fast_mode():
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    in_notebook = type(shell).__name__ == "ZMQInteractiveShell"
    return in_notebook or sys.stderr.isatty()


def _progress_bar(total: int | None, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not _show_progress(progress), unit="batch",
                desc="training", leave=False)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    history: History | None = None) -> None:
    """Save everything needed to resume training exactly, in one file.

    The file holds the ``state_dict()`` of the model, optimizer and scheduler, the
    history, and the states of Python's, NumPy's and torch's random number
    generators (CPU and every CUDA device), all as tensors and plain Python
    values, so ``load_checkpoint`` can read it with ``torch.load(weights_only=True)``.
    The file is written to a temporary name and renamed, so an interrupted save
    never leaves a half-written checkpoint.
    """
    state = {
        "format": _CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history.state_dict() if history is not None else None,
        "rng": _rng_state(),
    }
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def load_checkpoint(path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    restore_rng: bool = True) -> History | None:
    """Load a checkpoint from ``save_checkpoint`` into freshly built objects.

    The objects must be built as they were before saving (same architecture,
    optimizer and scheduler classes). Their state is replaced; with
    ``restore_rng`` the random number generators are set back too, so that
    ``fit(..., history=returned_history)`` continues exactly.

    As in PyTorch, the learning rate in use lives in the optimizer
    (``optimizer.param_groups[i]["lr"]``) and the scheduler's state is its step
    count: a scheduler loaded without its optimizer leaves the optimizer at its
    initial rate until the scheduler's next ``step()``.

    Returns
    -------
    History or None
        The saved history, if one was saved.
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise checks.invalid("path", "a coursekit checkpoint (written by save_checkpoint)",
                             str(path))
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler)):
        if target is not None and state[name] is None:
            raise checks.invalid("path", f"a checkpoint with {name} state, to load into the "
                                 f"{name} given", str(path))
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng:
        _set_rng_state(state["rng"])
    return History.from_state_dict(state["history"]) if state["history"] is not None else None


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002 - the global generator
    return {
        "python": random.getstate(),
        "numpy": {**numpy_state, "state": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": numpy_state["state"]["pos"]}},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    python_state = state["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    numpy_state = state["numpy"]
    np.random.set_state({**numpy_state, "state": {  # noqa: NPY002 - the global generator
        "key": numpy_state["state"]["key"].numpy().astype(np.uint32),
        "pos": numpy_state["state"]["pos"]}})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
