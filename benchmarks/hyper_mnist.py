"""Hyper-optimizer stacks and running-mean clipping on MNIST (or digits), reproduced.

The set-up of "Gradient Descent: The Ultimate Optimizer" (Chandra et al., 2022)
as a student presentation of the paper presents it: an MLP with one hidden layer
of 128 tanh units, batch size 256, 30 epochs when SGD or AdaGrad is at the bottom
of the stack, 5 when Adam or RMSProp is. Two kinds of tables, test error in percent
(mean +- standard deviation over ``--seeds`` runs):

1. ``stacks``: each family's plain optimizer, its stacks (``SGD / SGD(0.01)``,
   ``Adam / SGD(1e-05)``, ``Adam^alpha / Adam``, ...) and, after every stack, the
   plain optimizer restarted from the hyperparameters the stack ended with (the
   paper's control rows, e.g. ``SGD(0.0769)``). ``time x`` is the run's wall
   time over the family's plain optimizer: the stack's overhead, measured in
   this run.
2. ``sgd``, ``adam``, ``adagrad``, ``rmsprop``: the presentation's sweeps of the top step
   size alpha of ``X / SGD(alpha)``, without and with the running-mean clipping
   rule (:class:`coursekit.optim.clip.RunningMeanClip`), applied to the network's
   gradients (``--clip-level params``, the presentation's "g_t across a minibatch") or
   to the hypergradients (``--clip-level hyper``).

Data: MNIST when its files are on disk (``coursekit.data``, looked for under
``$COURSEKIT_DATA`` or ``~/.coursekit/data``), otherwise scikit-learn's 8x8
digits, which ship with the library; the script prints which. Every run is one
:func:`coursekit.analysis.hypergradients.train_stack` (through
:func:`coursekit.train.fit`): a run whose loss turns non-finite stops at that step
(marked ``!``), and when its weights are no longer finite every test example
counts as an error.

    python benchmarks/hyper_mnist.py                    # full size (a GPU is best)
    python benchmarks/hyper_mnist.py --reduced          # CPU, digits, ~1-2 minutes
    COURSEKIT_FAST=1 python benchmarks/hyper_mnist.py   # same as --reduced
    python benchmarks/hyper_mnist.py --tables stacks,sgd --seeds 3

``--reduced``: the digits (6 steps per epoch instead of MNIST's 235, so the
paper's epochs take seconds), every other alpha of each sweep, one seed, one CPU
thread.

References
----------
.. [1] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient descent: The
   ultimate optimizer. NeurIPS 2022. arXiv:1909.13371. [chandra2022gradient]
.. [2] A student presentation of Chandra et al. (2022): final presentation on "Gradient
   Descent: The Ultimate Optimizer", with a running-mean gradient-norm clipping rule for the
   top-level step size. [chandra2022presentation]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import statistics
import time
from collections.abc import Callable, Iterable

import torch

import coursekit
from coursekit import data as ckdata
from coursekit import models
from coursekit.analysis import hypergradients
from coursekit.optim import clip, hyper

EPOCHS = {"SGD": 30, "AdaGrad": 30, "Adam": 5, "RMSProp": 5}
BATCH_SIZE = 256
HIDDEN = 128

# The presentation's sweeps of the top-level step size (its Tables 1-4, MNIST).
SWEEPS = {
    "sgd": ("SGD", [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50, 75, 100, 250, 500, 1000]),
    "adam": ("Adam", [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1]),
    "adagrad": ("AdaGrad", [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 7.5, 10, 50, 100]),
    "rmsprop": ("RMSProp", [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 7.5e-2,
                            1e-1, 5e-1]),
}
TABLES = ("stacks", *SWEEPS)

# make(params) -> optimizer: a fresh stack (and fresh clippers) per run
Make = Callable[[Iterable[torch.Tensor]], hyper.ModuleWrapper]


@dataclasses.dataclass
class Stack:
    """One row of a table: how to make the optimizer, and what to call it."""

    label: str
    family: str
    make: Make
    control: bool = False  # follow it with the plain optimizer at the learned values


def _stacks() -> list[Stack]:
    """The presentation's optimizer tables (a)-(d): plain optimizers, their stacks, in order."""
    sgd, adam, adagrad, rmsprop = hyper.SGD, hyper.Adam, hyper.AdaGrad, hyper.RMSProp
    adam_a, rmsprop_a, wrap = hyper.AdamAlpha, hyper.RMSPropAlpha, hyper.ModuleWrapper
    return [
        Stack("SGD(0.01)", "SGD", lambda p: wrap(p, sgd(0.01))),
        Stack("SGD / SGD(0.01)", "SGD", lambda p: wrap(p, sgd(0.01, optimizer=sgd(0.01))), True),
        Stack("SGD / Adam(0.1)", "SGD", lambda p: wrap(p, sgd(0.01, optimizer=adam(0.1))), True),
        Stack("SGD / AdaGrad(0.01)", "SGD",
              lambda p: wrap(p, sgd(0.01, optimizer=adagrad(0.01))), True),
        Stack("SGD / RMSProp(0.1)", "SGD",
              lambda p: wrap(p, sgd(0.01, optimizer=rmsprop(0.1))), True),
        Stack("Adam(0.001)", "Adam", lambda p: wrap(p, adam(1e-3))),
        Stack("Adam / SGD(1e-05)", "Adam",
              lambda p: wrap(p, adam(1e-3, optimizer=sgd(1e-5))), True),
        Stack("Adam^alpha / SGD(1e-05)", "Adam",
              lambda p: wrap(p, adam_a(1e-3, optimizer=sgd(1e-5))), True),
        Stack("Adam / Adam(0.001)", "Adam",
              lambda p: wrap(p, adam(1e-3, optimizer=adam(1e-3))), True),
        Stack("Adam^alpha / Adam(0.001)", "Adam",
              lambda p: wrap(p, adam_a(1e-3, optimizer=adam(1e-3))), True),
        Stack("AdaGrad(0.01)", "AdaGrad", lambda p: wrap(p, adagrad(0.01))),
        Stack("AdaGrad / SGD(0.01)", "AdaGrad",
              lambda p: wrap(p, adagrad(0.01, optimizer=sgd(0.01))), True),
        Stack("AdaGrad / AdaGrad(0.01)", "AdaGrad",
              lambda p: wrap(p, adagrad(0.01, optimizer=adagrad(0.01))), True),
        Stack("RMSProp(0.01, 0.99)", "RMSProp", lambda p: wrap(p, rmsprop(0.01))),
        Stack("RMSProp^alpha / SGD(1e-04)", "RMSProp",
              lambda p: wrap(p, rmsprop_a(0.01, optimizer=sgd(1e-4))), True),
        Stack("RMSProp^alpha,gamma / SGD(1e-04)", "RMSProp",
              lambda p: wrap(p, rmsprop(0.01, optimizer=sgd(1e-4))), True),
        Stack("RMSProp^alpha / RMSProp(1e-04)", "RMSProp",
              lambda p: wrap(p, rmsprop_a(0.01, optimizer=rmsprop(1e-4))), True),
        Stack("RMSProp^alpha,gamma / RMSProp(1e-04)", "RMSProp",
              lambda p: wrap(p, rmsprop(0.01, optimizer=rmsprop(1e-4))), True),
    ]


# The plain optimizers, with the presentation's defaults, by family.
PLAIN = {"SGD": hyper.SGD, "Adam": hyper.Adam, "AdaGrad": hyper.AdaGrad, "RMSProp": hyper.RMSProp}
DEFAULT_ALPHA = {"SGD": 0.01, "Adam": 1e-3, "AdaGrad": 0.01, "RMSProp": 0.01}


def _sweep_stack(family: str, alpha: float, clip_params: bool, clip_hyper: bool) -> Make:
    """``X / SGD(alpha)`` with every hyperparameter of X learned, optionally clipped."""
    def make(params: Iterable[torch.Tensor]) -> hyper.ModuleWrapper:
        top = hyper.SGD(alpha, clip=clip.RunningMeanClip() if clip_hyper else None)
        return hyper.ModuleWrapper(params, PLAIN[family](
            DEFAULT_ALPHA[family], optimizer=top,
            clip=clip.RunningMeanClip() if clip_params else None))
    return make


def _plain(family: str, values: dict[str, float]) -> Make:
    """The bottom optimizer alone, at ``values`` (the paper's control rows)."""
    return lambda p: hyper.ModuleWrapper(p, PLAIN[family](**{"alpha": DEFAULT_ALPHA[family],
                                                             **values}))


@dataclasses.dataclass
class Run:
    error: float                 # test error, in [0, 1]
    seconds: float
    diverged: bool
    final: dict[str, float]      # the bottom level's hyperparameters at the end
    learn: tuple[str, ...]       # the bottom level's learned hyperparameters


@dataclasses.dataclass
class Setting:
    data: ckdata.Dataset
    device: torch.device
    epochs: dict[str, int]
    seeds: int
    clip_level: str


def train(make: Make, family: str, seed: int, s: Setting) -> Run:
    """Train the MLP once with the optimizer ``make`` makes; return its test error."""
    made = []

    def keep(params: Iterable[torch.Tensor]) -> hyper.ModuleWrapper:
        made.append(make(params))
        return made[-1]

    net = functools.partial(models.MLP, s.data.input_shape, s.data.num_classes, hidden=HIDDEN,
                            activation="tanh")
    run = hypergradients.train_stack(keep, s.data, net, s.epochs[family], batch_size=BATCH_SIZE,
                                     seed=seed, device=s.device)
    return Run(run.test_error, run.seconds, run.diverged, run.final, made[0].stack.learn)


def repeat(make: Make, family: str, s: Setting) -> list[Run]:
    return [train(make, family, seed, s) for seed in range(s.seeds)]


def _error(runs: list[Run]) -> str:
    errors = [100 * r.error for r in runs]
    mark = "!" if any(r.diverged for r in runs) else " "
    if len(errors) == 1:
        return f"{errors[0]:6.2f}%{mark}"
    return f"{statistics.mean(errors):6.2f}% +- {statistics.stdev(errors):4.2f}%{mark}"


def _control(runs: list[Run], family: str) -> tuple[str, Make] | None:
    """Label and factory of the plain optimizer at the stack's mean final hyperparameters."""
    learned = runs[0].learn
    final = {name: statistics.mean(r.final[name] for r in runs) for name in runs[0].final}
    if not all(math.isfinite(v) for v in final.values()) or final["alpha"] < 0:
        return None
    values = ", ".join(f"{final[name]:.4g}" for name in learned)
    suffix = "^alpha" if learned == ("alpha",) and family in ("Adam", "RMSProp") else ""
    return f"  {family}{suffix}({values})", _plain(family, final)


def stacks_table(s: Setting) -> None:
    print(f"\nOptimizer stacks (bottom first; epochs: {_epochs_note(s)}); "
          "indented rows: the plain optimizer restarted at the stack's final values")
    print(f"{'optimizer':<40} {'test error':>18} {'time x':>7}")
    baseline_seconds: dict[str, float] = {}
    for row in _stacks():
        runs = repeat(row.make, row.family, s)
        seconds = statistics.mean(r.seconds for r in runs)
        baseline_seconds.setdefault(row.family, seconds)
        print(f"{row.label:<40} {_error(runs):>18} {seconds / baseline_seconds[row.family]:7.2f}",
              flush=True)
        if row.control:
            control = _control(runs, row.family)
            if control is None:
                print(f"  {'(no control: alpha < 0 or not finite)':<38}")
                continue
            label, make = control
            control_runs = repeat(make, row.family, s)
            print(f"{label:<40} {_error(control_runs):>18}", flush=True)


def sweep_table(name: str, alphas: list[float], s: Setting) -> None:
    family, _ = SWEEPS[name]
    baseline = repeat(_plain(family, {}), family, s)
    where = {"params": "the network's gradients", "hyper": "the hypergradients",
             "both": "both levels"}[s.clip_level]
    clip_at = (s.clip_level in ("params", "both"), s.clip_level in ("hyper", "both"))
    print(f"\n{family} / SGD(alpha), {s.epochs[family]} epochs, running-mean clipping on "
          f"{where}; {family} alone: {_error(baseline).strip()}")
    print(f"{'alpha':>10} {'no clipping':>18} {'clipping':>18}")
    for alpha in alphas:
        cells = [_error(repeat(_sweep_stack(family, alpha, on_params, on_hyper), family, s))
                 for on_params, on_hyper in ((False, False), clip_at)]
        print(f"{alpha:>10g} {cells[0]:>18} {cells[1]:>18}", flush=True)


def _warm_up(s: Setting) -> None:
    """One untimed epoch of a two-level stack, so that no row pays for first-call set-up
    (autograd's, or CUDA's context and kernels)."""
    once = dataclasses.replace(s, epochs=dict.fromkeys(s.epochs, 1), seeds=1)
    repeat(_sweep_stack("Adam", 1e-5, True, True), "Adam", once)


def _epochs_note(s: Setting) -> str:
    return ", ".join(f"{family} {n}" for family, n in s.epochs.items())


def _load(name: str | None, reduced: bool, device: torch.device) -> ckdata.Dataset:
    if name is None:
        if reduced:
            name = "digits"
            why = "reduced setting"
        elif ckdata.is_present("mnist"):
            name, why = "mnist", f"files found under {ckdata.data_root()}"
        else:
            name, why = "digits", f"MNIST files not found under {ckdata.data_root()}"
    else:
        why = "--data"
    data = ckdata.load(name, valid_fraction=0.0, device=device)
    print(f"data: {name} ({why}): {len(data.train)} train, {len(data.test)} test examples, "
          f"input {data.input_shape}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true",
                        help="digits, every other alpha, 1 seed, 1 thread (or COURSEKIT_FAST=1)")
    parser.add_argument("--tables", default=",".join(TABLES),
                        help=f"comma-separated subset of {','.join(TABLES)}")
    parser.add_argument("--seeds", type=int, default=None,
                        help="runs per row (default 3, or 1 when reduced)")
    parser.add_argument("--clip-level", choices=("params", "hyper", "both"), default="params")
    parser.add_argument("--data", choices=("mnist", "digits"), default=None,
                        help="default: mnist when present (digits when reduced)")
    parser.add_argument("--device", default=None, help="default: coursekit.device()")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 when reduced, else torch's choice)")
    args = parser.parse_args()
    reduced = args.reduced or coursekit.fast_mode()
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        parser.error(f"unknown table(s) {unknown}; choose from {list(TABLES)}")
    seeds = args.seeds if args.seeds is not None else (1 if reduced else 3)
    if seeds < 1:
        parser.error(f"--seeds must be >= 1, got {seeds}")
    threads = args.threads if args.threads is not None else (1 if reduced else None)
    if threads is not None:
        torch.set_num_threads(threads)
    device = torch.device(args.device) if args.device else coursekit.device()

    print(f"hyper_mnist: {'reduced' if reduced else 'full'} setting, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {seeds} seed(s)")
    setting = Setting(_load(args.data, reduced, device), device,
                      EPOCHS, seeds, args.clip_level)
    _warm_up(setting)
    start = time.perf_counter()
    for table in tables:
        if table == "stacks":
            stacks_table(setting)
        else:
            alphas = SWEEPS[table][1]
            sweep_table(table, alphas[::2] if reduced else alphas, setting)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
