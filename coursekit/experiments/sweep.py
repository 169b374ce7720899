"""Hyperparameter sweeps: run one function over a grid, on this machine or a cluster.

The ECE 60146 homework report (ECE 60146, 2024) compares three learning rates for
three optimizers and a beta1 x beta2 grid with the time, final loss and minimum loss
of each run; a student presentation of Chandra et al. (2022) sweeps the hyper-step
size alpha. Each is one call::

    def run(optimizer, lr, seed):            # a top-level function (it is pickled)
        ...train...
        return {"final_loss": losses[-1], "min_loss": min(losses)}

    table = sweep(run, {"optimizer": ["sgd", "sgd_plus", "adam"], "lr": [1e-3, 1e-2, 1e-1]})
    table                                    # a pandas DataFrame, one row per run
    table.pivot_table(index="optimizer", columns="lr", values="final_loss")
    table.groupby("optimizer")["final_loss"].agg(["mean", "sem"])
    plot.heatmap(table.pivot_table(index="optimizer", columns="lr", values="final_loss"),
                 highlight="min")            # coursekit.viz.plot

The result is an ordinary :class:`pandas.DataFrame`, so everything a table needs
(selecting, grouping, pivoting, exporting to CSV or LaTeX) is pandas'; what this
module adds is running the grid, seeding it and capturing failures.

The grid. A dict of lists is expanded into its cartesian product in a fixed
order (the first key varies slowest, as in nested for-loops written in the
dict's order); a list of dicts is taken as given, so points drawn at random make a
random search, which covers the few hyperparameters that matter better than a grid
of the same size (Bergstra and Bengio, 2012). Each point runs ``repeats`` times.
Every run becomes one row of the table, in grid order (point-major, repeat-minor):
the columns ``point`` (index of the grid point), ``repeat``, the parameters,
``seed`` (when ``fn`` takes one), the fields ``fn`` returned (a dict, or a number
stored as ``value``), ``time`` (seconds) and ``error``.

Seeds. When ``fn`` has a parameter named ``seed`` (and the grid does not set
it), each run receives one derived with ``numpy.random.SeedSequence`` from
``(seed, repeat)``: repeat ``r`` of every point sees the same seed, so the points
are compared on the same initial weights and minibatch order (common random
numbers), and the repeats differ. ``seed_per_point=True`` derives it from
``(seed, point index, repeat)`` instead. Neither depends on ``hash()``, so the
seeds are the same in every process and on every machine.

Failures. An exception inside ``fn`` (or a worker lost by the executor) is
recorded in that run's ``error`` as ``"TypeName: message"`` (None for a run that
succeeded), with the traceback in ``table.attrs["tracebacks"][row]``, and the sweep
carries on: ``table[table.error.isna()]`` keeps the runs that succeeded.

Where it runs (``executor``):

- ``None`` (default): a ``ProcessPoolExecutor`` with one worker per CPU core (at
  most one per run), each limited to one torch thread so they do not compete.
  ``fn`` must be picklable: a function defined at the top level of a module or a
  notebook, not a lambda or a nested function. Workers are forked where the
  platform allows it (Linux, unless CUDA is already initialised), so notebook
  functions work; elsewhere they are spawned and ``fn`` must live in a module.
- ``"serial"``: one run after the other in this process (debugging, notebooks
  on any platform).
- any ``concurrent.futures.Executor``: a thread pool, a process pool of your own,
  or a cluster. The cluster path is Dask distributed (``pip install
  coursekit[cluster]``)::

      from distributed import Client
      client = Client("tcp://scheduler-address:8786")   # or Client() for a local cluster
      result = sweep(run, grid, executor=client.get_executor(pure=False))

  (``pure=False`` stops Dask from merging runs whose arguments are equal, such as
  the repeats of a function without a ``seed`` parameter.)

  An executor passed in is left running; the caller shuts it down.

References
----------
.. [1] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for Avi Kak's
   ComputationalGraphPrimer. Student homework report, ECE 60146 Deep Learning, Purdue
   University, Spring 2024. [ece60146hw2]
.. [2] A student presentation of Chandra et al. (2022): final presentation on "Gradient
   Descent: The Ultimate Optimizer", with a running-mean gradient-norm clipping rule for the
   top-level step size. [chandra2022presentation]
.. [3] Bergstra, J. and Bengio, Y. (2012). Random search for hyper-parameter optimization.
   Journal of Machine Learning Research, 13, 281–305. [bergstra2012random]
"""

from __future__ import annotations

import concurrent.futures
import inspect
import itertools
import math
import multiprocessing
import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from coursekit import _checks as checks
from coursekit.train import _show_progress

__all__ = ["grid_points", "sweep"]

RESERVED = ("point", "repeat", "seed", "time", "error")


def grid_points(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
                ) -> list[dict[str, Any]]:
    """The points of ``grid`` in sweep order.

    ``{"a": [1, 2], "b": ["x", "y"]}`` gives ``a=1,b=x``, ``a=1,b=y``, ``a=2,b=x``,
    ``a=2,b=y``; a list of dicts is returned as a list of copies.
    """
    if isinstance(grid, Mapping) and grid:
        axes = {}
        for key, values in grid.items():
            _check_param_name(key)
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise checks.invalid(f"grid[{key!r}]", "a non-empty list of values", values)
            axes[key] = list(values)
            if not axes[key]:
                raise checks.invalid(f"grid[{key!r}]", "a non-empty list of values", values)
        return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    if isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)) and grid:
        points = []
        for index, point in enumerate(grid):
            if not isinstance(point, Mapping):
                raise checks.invalid(f"grid[{index}]", "a dict of parameters", point)
            for key in point:
                _check_param_name(key)
            points.append(dict(point))
        return points
    raise checks.invalid("grid", "a non-empty dict of lists or a non-empty list of dicts", grid)


def _check_param_name(key: Any) -> None:
    if not isinstance(key, str) or not key.isidentifier() or (key in RESERVED and key != "seed"):
        columns = ", ".join(column for column in RESERVED if column != "seed")
        raise checks.invalid("grid parameter names", f"identifiers other than the results "
                             f"table's columns {columns}", key)


def sweep(fn: Callable[..., Any],
          grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
          executor: concurrent.futures.Executor | str | None = None, repeats: int = 1,
          seed: int = 0, seed_per_point: bool = False, progress: bool | None = None,
          ) -> pd.DataFrame:
    """Run ``fn(**point)`` for every point of ``grid``, ``repeats`` times; tabulate.

    Parameters
    ----------
    fn : callable
        Takes the grid's parameters as keyword arguments (and ``seed``, if it has
        such a parameter); returns a dict of result fields, a number, or None.
    grid : dict of lists or list of dicts
        The hyperparameters (see the module notes for the order).
    executor : None, "serial" or concurrent.futures.Executor
        Where the runs go (module notes); default a local process pool.
    repeats : int
        Runs per point, each with its own seed.
    seed : int
        The base seed the per-run seeds are derived from.
    seed_per_point : bool
        Derive seeds from the point index too, instead of sharing them across points.
    progress : bool, optional
        Show a progress bar (default: in a notebook or terminal, not in CI).

    Returns
    -------
    pandas.DataFrame
        One row per run in grid order (point-major, repeat-minor), whatever order
        the runs finished in; the columns as in the module notes. ``attrs`` holds
        ``params`` and ``fields`` (the column names of each kind, in order) and
        ``tracebacks`` (row -> traceback of each failed run).
    """
    checks.function("fn", fn)
    if not (executor in (None, "serial") or isinstance(executor, concurrent.futures.Executor)):
        raise checks.invalid("executor", "None, 'serial' or a concurrent.futures.Executor",
                             executor, TypeError)
    repeats = checks.integer("repeats", repeats, minimum=1)
    seed = checks.integer("seed", seed, minimum=0)
    points = grid_points(grid)
    params = tuple(dict.fromkeys(key for point in points for key in point))
    passes_seed = _takes_seed(fn) and "seed" not in params

    runs = []
    for index, point in enumerate(points):
        for repeat in range(repeats):
            kwargs = dict(point)
            if passes_seed:
                keys = (seed, index, repeat) if seed_per_point else (seed, repeat)
                kwargs["seed"] = int(np.random.SeedSequence(keys).generate_state(1)[0])
            runs.append((index, repeat, kwargs))

    outcomes = _execute(fn, [kwargs for _, _, kwargs in runs], executor, progress)

    records, tracebacks, fields = [], [], []
    for (index, repeat, kwargs), outcome in zip(runs, outcomes, strict=True):
        clash = [name for name in outcome["fields"] if name in (*RESERVED, *params)]
        if clash and outcome["error"] is None:
            outcome = {**outcome, "fields": {}, "traceback": None,
                       "error": f"ValueError: fn returned field(s) {clash} that clash with "
                                f"the table's columns; rename them"}
        fields += [name for name in outcome["fields"] if name not in fields]
        records.append({"point": index, "repeat": repeat, **kwargs, **outcome["fields"],
                        "time": outcome["time"], "error": outcome["error"]})
        tracebacks.append(outcome["traceback"])
    columns = ["point", "repeat", *params, *(["seed"] if passes_seed else []), *fields,
               "time", "error"]
    table = pd.DataFrame.from_records(records, columns=columns)
    table["error"] = table["error"].astype(object).where(table["error"].notna(), None)
    table.attrs = {"params": params, "fields": tuple(fields),
                   "tracebacks": {row: trace for row, trace in enumerate(tracebacks) if trace}}
    return table


def _execute(fn: Callable[..., Any], calls: list[dict[str, Any]],
             executor: concurrent.futures.Executor | str | None,
             progress: bool | None) -> list[dict[str, Any]]:
    """Run ``_call(fn, kwargs)`` for every entry of ``calls``; outcomes in input order."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(calls), disable=not _show_progress(progress), unit="run",
               desc="sweep", leave=False)
    if executor == "serial":
        outcomes = []
        for kwargs in calls:
            outcomes.append(_call(fn, kwargs))
            bar.update()
        bar.close()
        return outcomes
    if executor is None:
        _check_picklable(fn)
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=min(_cpu_count(), len(calls)), mp_context=_pool_context(),
            initializer=_limit_threads)
        with pool:
            return _gather(pool, fn, calls, bar)
    return _gather(executor, fn, calls, bar)


def _gather(executor: concurrent.futures.Executor, fn: Callable[..., Any],
            calls: list[dict[str, Any]], bar: Any) -> list[dict[str, Any]]:
    futures = [executor.submit(_call, fn, kwargs) for kwargs in calls]
    for _ in concurrent.futures.as_completed(futures):
        bar.update()
    bar.close()
    outcomes = []
    for future in futures:
        error = future.exception()
        if error is None:
            outcomes.append(future.result())
        else:  # the executor itself failed: a lost worker, an unpicklable argument...
            outcomes.append({"fields": {}, "time": math.nan, "error": _describe(error),
                             "traceback": "".join(traceback.format_exception(error))})
    return outcomes


def _call(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run one grid point (in a worker): its fields, time, and error if any."""
    start = time.perf_counter()
    try:
        fields = _as_fields(fn(**kwargs))
    except Exception as error:  # recorded, so that one bad point does not end the sweep
        return {"fields": {}, "time": time.perf_counter() - start, "error": _describe(error),
                "traceback": traceback.format_exc()}
    return {"fields": fields, "time": time.perf_counter() - start, "error": None,
            "traceback": None}


def _as_fields(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, Mapping) and all(isinstance(key, str) for key in result):
        return {key: _plain(value) for key, value in result.items()}
    if _is_number(_plain(result)):
        return {"value": _plain(result)}
    raise checks.invalid("fn's result", "a dict with str keys, a number or None", result,
                         TypeError)


def _plain(value: Any) -> Any:
    """0-d tensors and NumPy scalars as Python numbers; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _takes_seed(fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in parameters


def _check_picklable(fn: Callable[..., Any]) -> None:
    try:
        pickle.dumps(fn)
    except Exception as error:
        raise checks.invalid("fn", f"picklable, to be sent to the worker processes "
                             f"({_describe(error)}): define it with def at the top level of a "
                             f"module or notebook (not a lambda or a function inside a "
                             f"function), or pass executor='serial'", fn, TypeError) from error


def _cpu_count() -> int:
    counter = getattr(os, "process_cpu_count", os.cpu_count)
    return counter() or 1


def _pool_context() -> multiprocessing.context.BaseContext:
    """Fork where possible (notebook functions work); spawn once CUDA is initialised."""
    if "fork" in multiprocessing.get_all_start_methods() and not torch.cuda.is_initialized():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _limit_threads() -> None:
    """Worker initialiser: one torch thread per process, as many processes as cores."""
    torch.set_num_threads(1)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
