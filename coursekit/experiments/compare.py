"""Optimizers compared on a real task, honestly: tuned learning rates, several seeds, test data.

A claim such as "adaptive methods generalise worse than SGD" (Wilson et al., 2017)
is only as good as the comparison behind it. This module runs the comparison the careful way::

    result = compare.compare(
        {"SGD + momentum": functools.partial(optim.SGD, momentum=0.9), "Adam": optim.Adam},
        lrs={"SGD + momentum": [0.01, 0.03, 0.1], "Adam": [3e-4, 1e-3, 3e-3]},
        model_fn=lambda: models.MLP(data.input_shape, data.num_classes),
        data=data, epochs=20, seeds=[0, 1, 2])
    result.summary()                     # per optimizer: lr, seeds, mean and sem of each metric
    result.runs                          # a pandas DataFrame, one row per (optimizer, seed)
    result.difference("Adam", "SGD + momentum")     # mean difference and its standard error

Every optimizer is given by a factory of the course's one signature,
``make(params, **hyper)``, and is built here as ``make(params, lr=lr)``.

The protocol:

1. *Tuning.* Every learning rate in an optimizer's grid trains once (seed
   ``tune_seed``); the one with the best final **validation** accuracy wins (ties:
   lower validation loss). The test split plays no part in any choice.
2. *Repeats.* The winner trains once per seed; the seed fixes the initial weights
   and the order of the mini-batches, and every optimizer sees the same seeds.
3. *Report.* After training, accuracy and loss on the whole training split and
   on the test split (both in ``eval()`` mode); per optimizer the mean over seeds
   and its standard error, and for two optimizers the difference of the means
   with its standard error, so that a gap can be told from seed noise.

A run may have several *phases*, each a fresh optimizer on the same weights for
some epochs: ``[(adam, 1e-3, 5), (sgd, 0.05, 15)]`` switches from Adam to SGD after
five epochs (Keskar and Socher, 2017, as on the STAT 453 slides; Raschka, 2021).
:func:`repeat` runs any set of such recipes.

A run may also follow a per-step learning-rate *schedule* fixed by its budget:
``schedules={"AdamW": warmup_cosine}`` multiplies AdamW's rate at step ``t`` by
``warmup_cosine(t, total_steps=T)``, with ``T`` the steps of the phase (epochs times
batches per epoch), so the rate is tuned and compared *with* its schedule. Any function
``f(t, *, total_steps)`` of :mod:`coursekit.schedules` (a ``functools.partial`` for its
other arguments) is such a schedule. Validation accuracy is recorded after every epoch,
at the weights the optimizer reports (:func:`coursekit.train.fit` puts a Schedule-Free
optimizer in eval mode for it); :meth:`Comparison.curves` gathers those curves.

Every run trains with :func:`coursekit.train.fit`, and the grids of tuning runs
(optimizer x learning rate) and of repeats (optimizer x seed) are run by
:func:`coursekit.experiments.sweep.sweep`, one run after the other in this
process.

:func:`lockstep` is the other kind of comparison: two optimizers that should be
the *same* algorithm, stepped from identical weights on identical batches, with
the largest parameter difference they reach.

References
----------
.. [1] Wilson, A. C., Roelofs, R., Stern, M., Srebro, N. and Recht, B. (2017). The marginal
   value of adaptive gradient methods in machine learning. NIPS 2017, 4148–4158.
   arXiv:1705.08292. [wilson2017marginal]
.. [2] Keskar, N. S. and Socher, R. (2017). Improving generalization performance by
   switching from Adam to SGD. arXiv:1712.07628. [keskar2017improving]
.. [3] Raschka, S. (2021). Lecture 12: Improving gradient descent-based optimization.
   Lecture slides, STAT 453: Introduction to Deep Learning and Generative Models, University
   of Wisconsin–Madison, Spring 2021. [raschka2021stat453]
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from coursekit import _checks as checks
from coursekit.data import Dataset, steps_per_epoch
from coursekit.experiments.sweep import sweep
from coursekit.runtime import seed as seed_everything
from coursekit.schedules import LambdaLR
from coursekit.train import History, StepInfo, evaluate, fit

__all__ = ["Comparison", "Schedule", "compare", "lockstep", "repeat", "run", "tune"]

Builder = Callable[..., torch.optim.Optimizer]
"""An optimizer factory ``make(params, **hyper)``, called here as ``make(params, lr=lr)``."""
Phase = tuple[Builder, float, int]
"""``(build, lr, epochs)``: train with ``build(params, lr=lr)`` for ``epochs`` epochs."""
EPOCH_METRICS = ("valid_acc", "valid_loss", "train_acc", "train_loss")
"""The per-epoch lists of a History that :meth:`Comparison.curves` gathers."""
Schedule = Callable[..., Any]
"""A learning-rate multiplier ``f(t, *, total_steps)`` of the step ``t`` within a phase of
``total_steps`` steps, e.g. :func:`coursekit.schedules.warmup_cosine`."""


def _check_phases(argument: str, phases: Sequence[Phase]) -> None:
    """``phases`` (the argument named ``argument``): a non-empty list of (build, lr, epochs)."""
    if not isinstance(phases, (list, tuple)) or not phases:
        raise checks.invalid(argument, "a non-empty list of phases (build, lr, epochs)", phases)
    for i, phase in enumerate(phases):
        if not (isinstance(phase, tuple) and len(phase) == 3 and callable(phase[0])):
            raise checks.invalid(f"{argument}[{i}]", "a phase (build, lr, epochs) where "
                                 "build(params, lr=lr) makes the optimizer", phase)
        checks.integer(f"epochs of {argument}[{i}]", phase[2], minimum=0)


def _check_schedules(schedules: Mapping[str, Schedule] | None, names: Sequence[str]
                     ) -> dict[str, Schedule]:
    """``schedules`` as a dict whose keys are among ``names`` and whose values are callable."""
    schedules = dict(schedules or {})
    for name, schedule in schedules.items():
        checks.choice("schedules", name, list(names))
        if not callable(schedule):
            raise checks.invalid(f"schedules[{name!r}]", "a function f(t, *, total_steps) of "
                                 "the step, e.g. coursekit.schedules.warmup_cosine", schedule)
    return schedules


def run(model_fn: Callable[[], nn.Module], phases: Sequence[Phase], data: Dataset, *,
        seed: int = 0, batch_size: int = 128, device: torch.device | str | None = None,
        name: str = "run", schedule: Schedule | None = None) -> tuple[dict[str, Any], History]:
    """Train one model through its phases; return its record and its History.

    ``coursekit.seed(seed)`` is called before the model is built, and the
    mini-batch order comes from ``seed``, so two runs with the same seed start
    from the same weights and see the same batches whatever their optimizers.
    With a ``schedule``, each phase's rate at its step ``t`` is ``lr * schedule(t,
    total_steps=T)``, ``T`` being the phase's epochs times its batches per epoch
    (stepped after every batch).

    Returns
    -------
    (dict, History)
        The record: ``optimizer`` (``name``), ``seed``, ``lr`` (of the first
        phase), ``train accuracy``, ``train loss``, ``valid accuracy``,
        ``test accuracy``, ``test loss``, ``diverged``, ``seconds``. The History
        covers every phase (validation accuracy per epoch, lr per step).
    """
    _check_phases("phases", phases)
    seed_everything(seed)
    model = model_fn()
    if device is not None:
        model = model.to(device)
    history = History(seed=seed)
    start = time.perf_counter()
    for build, lr, epochs in phases:
        optimizer = build([p for p in model.parameters() if p.requires_grad], lr=lr)
        scheduler = None
        if schedule is not None and epochs > 0:
            total = epochs * steps_per_epoch(len(data.train), batch_size)
            scheduler = LambdaLR(optimizer, functools.partial(schedule, total_steps=total))
        fit(model, optimizer, data.train, epochs, valid=data.valid, batch_size=batch_size,
            scheduler=scheduler, scheduler_on="batch", device=device, progress=False,
            history=history)
        if history.diverged:
            break
    seconds = time.perf_counter() - start
    train, test = evaluate(model, data.train), evaluate(model, data.test)
    record = {
        "optimizer": name,
        "seed": seed,
        "lr": phases[0][1],
        "train accuracy": train["accuracy"],
        "train loss": train["loss"],
        "valid accuracy": history.valid_acc[-1] if history.valid_acc else math.nan,
        "valid loss": history.valid_loss[-1] if history.valid_loss else math.nan,
        "test accuracy": test["accuracy"],
        "test loss": test["loss"],
        "diverged": history.diverged,
        "seconds": seconds,
    }
    return record, history


@dataclasses.dataclass
class Comparison:
    """The runs of a comparison, with the learning rates chosen and the tuning runs.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per (optimizer, seed), with the columns of :func:`run`'s record.
    histories : dict
        ``histories[(optimizer, seed)]`` is that run's :class:`~coursekit.train.History`.
    lrs : dict
        The learning rate each optimizer ran with (chosen by :func:`tune`).
    tuning : pandas.DataFrame
        The tuning runs (one row per optimizer and candidate learning rate).
    """

    runs: pd.DataFrame
    histories: dict[tuple[str, int], History]
    lrs: dict[str, float] = dataclasses.field(default_factory=dict)
    tuning: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    @property
    def names(self) -> list[str]:
        """The optimizers (recipes), in the order they ran."""
        return list(dict.fromkeys(self.runs["optimizer"]))

    def summary(self, metrics: Sequence[str] = ("train accuracy", "test accuracy", "test loss")
                ) -> pd.DataFrame:
        """Per optimizer: its lr, the number of seeds, and the mean and sem of each metric.

        ``runs.groupby("optimizer").agg(["mean", "sem"])`` over ``metrics``, with
        accuracies in percent (columns ``"<metric> %"``); ``sem`` is the standard
        error of the mean over seeds, ``std(ddof=1) / sqrt(seeds)``. Rows in the order
        the optimizers ran.
        """
        for metric in metrics:
            checks.choice("metrics", metric, list(self.runs.columns))
        shown = self.runs[["optimizer", "lr", *metrics]].copy()
        percent = {m: f"{m} %" for m in metrics if "accuracy" in m}
        for metric, name in percent.items():
            shown[name] = 100.0 * shown.pop(metric)
        groups = shown.groupby("optimizer", sort=False)
        table = groups[[percent.get(m, m) for m in metrics]].agg(["mean", "sem"])
        table.insert(0, ("seeds", ""), groups.size())
        table.insert(0, ("lr", ""), groups["lr"].first())
        return table

    def curves(self, metric: str = "valid_acc") -> dict[str, np.ndarray]:
        """Per optimizer, one row per seed of the per-epoch ``metric`` of its runs' Histories.

        ``metric`` is a per-epoch list of :class:`~coursekit.train.History`
        (``"valid_acc"``, ``"valid_loss"``, ``"train_acc"``, ``"train_loss"``). A run that
        diverged stops early; its row is padded with NaN to the longest run's length, so
        the arrays go straight to :func:`coursekit.viz.plot.band`.
        """
        checks.choice("metric", metric, list(EPOCH_METRICS))
        curves = {}
        for name in self.names:
            rows = [getattr(self.histories[(name, seed)], metric)
                    for seed in self.runs.loc[self.runs["optimizer"] == name, "seed"]]
            width = max(map(len, rows))
            curves[name] = np.array([[*row, *[math.nan] * (width - len(row))] for row in rows],
                                    dtype=np.float64)
        return curves

    def difference(self, a: str, b: str, metric: str = "test accuracy") -> dict[str, float]:
        """Mean of ``a`` minus mean of ``b`` for ``metric``, with the standard error of that gap.

        The standard error is ``sqrt(s_a^2 / n_a + s_b^2 / n_b)`` (Welch): a gap
        smaller than about two of them is within what the seeds alone produce.
        """
        checks.choice("metric", metric, list(self.runs.columns))
        values = {}
        for argument, name in (("a", a), ("b", b)):
            checks.choice(argument, name, self.names)
            values[name] = self.runs.loc[self.runs["optimizer"] == name, metric]
            if len(values[name]) < 2:
                raise checks.invalid(argument, "an optimizer run with at least two seeds", name)
        xa, xb = values[a], values[b]
        return {"difference": float(xa.mean() - xb.mean()),
                "standard error": math.sqrt(xa.var() / len(xa) + xb.var() / len(xb))}


def tune(builders: Mapping[str, Builder], lrs: Mapping[str, Sequence[float]],
         model_fn: Callable[[], nn.Module], data: Dataset, epochs: int, *, seed: int = 0,
         batch_size: int = 128, device: torch.device | str | None = None,
         schedules: Mapping[str, Schedule] | None = None
         ) -> tuple[dict[str, float], pd.DataFrame]:
    """Choose each optimizer's learning rate by final validation accuracy (one seed each).

    A sweep over the points (optimizer, lr) of ``lrs``, each one :func:`run` with
    ``seed`` (and the optimizer's schedule, if ``schedules`` has one); the best final
    validation accuracy wins (ties: the lower validation loss), and runs that diverged
    or ended without a finite score never do. An optimizer given a single rate has
    nothing to choose: it keeps that rate without a tuning run.

    Returns
    -------
    (dict, pandas.DataFrame)
        The chosen lr per optimizer, and the tuning runs (one row each).
    """
    for name in builders:
        if name not in lrs:
            raise checks.invalid("lrs", f"a mapping with learning rates for every optimizer, "
                                 f"{name!r} included", lrs)
        checks.vector(f"lrs[{name!r}]", lrs[name], at_least=0)
    for name in lrs:
        checks.choice("lrs", name, list(builders))
    schedules = _check_schedules(schedules, list(builders))
    if data.valid is None or len(data.valid) == 0:
        raise checks.invalid("data", "a Dataset with a validation split (load it with "
                             "valid_fraction > 0)", data)

    def one(optimizer: str, lr: float, seed: int) -> dict[str, Any]:
        record, _ = run(model_fn, [(builders[optimizer], lr, epochs)], data, seed=seed,
                        batch_size=batch_size, device=device, name=optimizer,
                        schedule=schedules.get(optimizer))
        return _fields(record, "optimizer", "lr")

    grid = [{"optimizer": name, "lr": lr, "seed": seed}
            for name in builders if len(lrs[name]) > 1 for lr in lrs[name]]
    runs = _runs(_serial_sweep(one, grid)) if grid else pd.DataFrame(
        columns=["optimizer", "seed", "lr"])
    chosen = {}
    for name in builders:
        if len(lrs[name]) == 1:
            chosen[name] = float(lrs[name][0])
            continue
        usable = runs[(runs["optimizer"] == name) & ~runs["diverged"].astype(bool)
                      & np.isfinite(runs["valid accuracy"]) & np.isfinite(runs["valid loss"])]
        if usable.empty:
            raise RuntimeError(f"Every learning rate diverged for {name!r}: {list(lrs[name])}")
        best = usable.sort_values(["valid accuracy", "valid loss"], ascending=[False, True],
                                  kind="stable")
        chosen[name] = float(best["lr"].iloc[0])
    return chosen, runs


def repeat(recipes: Mapping[str, Sequence[Phase]], model_fn: Callable[[], nn.Module],
           data: Dataset, seeds: Sequence[int], *, batch_size: int = 128,
           device: torch.device | str | None = None,
           schedules: Mapping[str, Schedule] | None = None) -> Comparison:
    """Run every recipe (a list of phases) once per seed: a sweep over (recipe, seed).

    A recipe named in ``schedules`` runs each of its phases under that schedule
    (:func:`run`).
    """
    seeds = checks.integers("seeds", seeds, minimum=0)
    for name, phases in recipes.items():
        _check_phases(f"recipes[{name!r}]", phases)
    schedules = _check_schedules(schedules, list(recipes))
    histories = {}

    def one(optimizer: str, seed: int) -> dict[str, Any]:
        record, histories[(optimizer, seed)] = run(model_fn, recipes[optimizer], data,
                                                   seed=seed, batch_size=batch_size,
                                                   device=device, name=optimizer,
                                                   schedule=schedules.get(optimizer))
        return _fields(record, "optimizer")

    result = _serial_sweep(one, {"optimizer": list(recipes), "seed": list(seeds)})
    return Comparison(_runs(result), histories)


def _fields(record: dict[str, Any], *grid: str) -> dict[str, Any]:
    """A run's record without the columns the sweep's table has already (``grid``, seed)."""
    return {key: value for key, value in record.items() if key not in (*grid, "seed")}


def _serial_sweep(one: Callable[..., dict[str, Any]],
                  grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
                  ) -> pd.DataFrame:
    """``sweep(one, grid)`` in this process; the first failed run's error is raised."""
    table = sweep(one, grid, executor="serial", progress=False)
    for row, trace in table.attrs["tracebacks"].items():
        point = {name: table.at[row, name] for name in table.attrs["params"]}
        raise RuntimeError(f"The run {point} failed: {table.at[row, 'error']}\n{trace}")
    return table


def _runs(table: pd.DataFrame) -> pd.DataFrame:
    """The records of :func:`run` from a sweep's table: optimizer, seed, lr, then the fields."""
    columns = dict.fromkeys(["optimizer", "seed", "lr", *table.attrs["fields"]])
    return table[list(columns)].reset_index(drop=True)


def compare(builders: Mapping[str, Builder], lrs: Mapping[str, Sequence[float]],
            model_fn: Callable[[], nn.Module], data: Dataset, epochs: int,
            seeds: Sequence[int], *, tune_seed: int = 0, batch_size: int = 128,
            device: torch.device | str | None = None,
            schedules: Mapping[str, Schedule] | None = None) -> Comparison:
    """Tune each optimizer's learning rate on the validation split, then repeat over seeds.

    Parameters
    ----------
    builders : mapping of name to ``build(params, lr)``
        The optimizers.
    lrs : mapping of name to list of float
        The learning rates to try for each.
    model_fn : callable
        Returns a fresh model (called after seeding).
    data : Dataset
        With ``train``, ``valid`` and ``test`` splits.
    epochs : int
        Training length, for tuning and for the repeats.
    seeds : sequence of int
        One run per seed and optimizer.
    tune_seed : int
        The seed of the tuning runs.
    batch_size : int
        Mini-batch size.
    device : torch.device or str, optional
        Where to train.
    schedules : mapping of name to schedule, optional
        A per-step multiplier ``f(t, *, total_steps)`` of an optimizer's rate over the
        budget (e.g. :func:`coursekit.schedules.warmup_cosine`), used in its tuning runs
        and its repeats alike; optimizers not named here train at a constant rate.
    """
    chosen, tuning = tune(builders, lrs, model_fn, data, epochs, seed=tune_seed,
                          batch_size=batch_size, device=device, schedules=schedules)
    result = repeat({name: [(build, chosen[name], epochs)] for name, build in builders.items()},
                    model_fn, data, seeds, batch_size=batch_size, device=device,
                    schedules=schedules)
    result.lrs, result.tuning = chosen, tuning
    return result


def lockstep(builders: Mapping[str, Callable[..., torch.optim.Optimizer]],
             model_fn: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor,
             steps: int = 50, *, batch_size: int = 64, dtype: torch.dtype = torch.float64,
             loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
             seed: int = 0) -> dict[str, float]:
    """Step several optimizers from the same weights on the same batches; report how far they drift.

    Every optimizer (``make(params)``) gets a copy of one model (built by
    ``model_fn()`` after ``coursekit.seed(seed)``, converted to ``dtype``) and
    takes ``steps`` steps of :func:`coursekit.train.fit` on the same sequence of
    batches of ``(x, y)`` (consecutive slices of ``batch_size``, wrapping
    around). The first optimizer is the reference: a step hook keeps its
    parameters after every step, and the others' hooks measure their distance
    from them after the same step.

    Returns
    -------
    dict
        For each optimizer after the first, the largest absolute difference
        between its parameters and the first optimizer's, over all steps (inf
        when one of the two diverged before the other).
    """
    if len(builders) < 2:
        raise checks.invalid("builders", "a mapping of at least two optimizers to compare",
                             builders)
    checks.integer("steps", steps, minimum=1)
    seed_everything(seed)
    template = model_fn().to(dtype)
    x = x.to(dtype) if x.is_floating_point() else x
    y = y.to(dtype) if y.is_floating_point() else y
    indices = [torch.arange(step * batch_size, (step + 1) * batch_size) % len(x)
               for step in range(steps)]

    def train(make: Callable[..., torch.optim.Optimizer], hook: Callable[[StepInfo], None]
              ) -> int:
        """Train a copy of the template with ``make``; the steps it took."""
        model = copy.deepcopy(template)
        history = fit(model, make(list(model.parameters())),
                      ((x[index], y[index]) for index in indices), 1, loss=loss,
                      progress=False, on_step=hook)
        return history.steps - history.diverged

    reference, *others = builders
    snapshots: list[list[torch.Tensor]] = []
    train(builders[reference], lambda info: snapshots.append(
        [p.detach().clone() for p in info.model.parameters()]))
    drift = {}
    for name in others:
        worst = 0.0

        def measure(info: StepInfo) -> bool:
            nonlocal worst
            if info.step > len(snapshots):  # the reference diverged before this step
                return True
            for p, q in zip(snapshots[info.step - 1], info.model.parameters(), strict=True):
                worst = max(worst, (p - q).abs().max().item())
            return False

        taken = train(builders[name], measure)
        drift[name] = worst if taken == len(snapshots) else math.inf
    return drift
