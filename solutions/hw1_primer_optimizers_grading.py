"""Grading tests of Homework 1: momentum and Adam for the primer graph.

The notebook defines two primer optimizers, ``SGDPlus`` and ``Adam`` (subclasses of
``coursekit.primer.Optimizer`` that write ``init_state`` and ``update``), a
function ``compare_with_torch`` that trains a primer model and its torch twin side
by side, and a ``RESULTS`` dict with its experiments.

Probes run in the student's process: they build the student's optimizers over
primer Tensors the way any primer optimizer is built, feed them given gradients
and read the parameters and the state back. References run here, in float64,
independently of the solution notebook: ``torch.optim.SGD`` (momentum,
dampening 0) and ``torch.optim.Adam`` for the steps; the torch twin
(``model.to_torch()``) trained with ``torch.optim`` for the runs on a model; and
a side-by-side run written out below for the verification function.

The results are checked for where they came from, not for what they are: the results
probes re-run part of the experiments with the student's own optimizers and the
homework's seeds, and return the re-run minus the numbers in ``RESULTS``, which the
grader compares with zero (see Question 4 below).

Points: 19 in all, 4 on public tests and 15 on hidden ones. Public tests ship with the
homework, inputs and expected values included, so a notebook could recognise them;
hidden tests carry the majority of the points (issue 24). The written answers of Parts 4
and 5 (``results/lr`` and ``results/betas``, 5 points each) add 10 points, graded by hand
with the rubrics below: the homework is worth 29.
"""

import numpy as np
import torch

from coursekit import primer
from coursekit.grading import Assignment, Item, Question, Test, Written, probe

ONE_NEURON = [["xw = ab*xa + bc*xb + cd*xc + ac*xd"]]
MULTI_NEURON = [["xw = ap*xp + aq*xq + ar*xr + as*xs", "xz = bp*xp + bq*xq + br*xr + bs*xs"],
                ["xo = cp*xw + cq*xz"]]
SHAPES = {"W": (3, 2), "b": (2,), "c": ()}  # a matrix, a vector and a scalar parameter


def _tensor(x):
    return torch.tensor(np.asarray(x, dtype=np.float64))


def _torch_steps(make_optimizer, params, grads):
    """torch Parameters holding ``params``, stepped once per entry of ``grads``."""
    tensors = {name: torch.nn.Parameter(_tensor(value)) for name, value in params.items()}
    optimizer = make_optimizer(list(tensors.values()))
    for step in grads:
        for name, tensor in tensors.items():
            tensor.grad = _tensor(step[name])
        optimizer.step()
    return tensors, optimizer


def _random_params(rng, steps, scale=1.0):
    params = {name: rng.normal(size=shape) for name, shape in SHAPES.items()}
    grads = [{name: scale * rng.normal(size=shape) for name, shape in SHAPES.items()}
             for _ in range(steps)]
    return params, grads


# Question 1: SGD with momentum ----------------------------------------------------------

@probe
def sgd_plus_steps(student, params, grads, lr, mu, report):
    """The student's SGDPlus over primer Tensors, one step() per entry of grads."""
    from coursekit.primer import Tensor

    tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
    optimizer = student["SGDPlus"](list(tensors.values()), lr=lr, mu=mu)
    for step in grads:
        for name, tensor in tensors.items():
            tensor.grad = np.array(step[name], dtype=np.float64)
        optimizer.step()

    def read(field):
        if field == "params":
            return {name: tensor.value for name, tensor in tensors.items()}
        return {name: state[field] for name, state in zip(tensors, optimizer.state, strict=True)}

    return {field: read(field) for field in report}


def sgd_plus_reference(params, grads, lr, mu, report):
    """torch.optim.SGD(momentum=mu, dampening=0): v = mu v + g; p -= lr v."""
    tensors, optimizer = _torch_steps(
        lambda ps: torch.optim.SGD(ps, lr=lr, momentum=mu, dampening=0), params, grads)
    fields = {"params": {name: t.detach().numpy() for name, t in tensors.items()},
              "v": {name: optimizer.state[t]["momentum_buffer"].numpy()
                    for name, t in tensors.items()}}
    return {field: fields[field] for field in report}


def random_sgd_plus(rng, steps, report):
    params, grads = _random_params(rng, steps)
    return {"params": params, "grads": grads, "lr": rng.uniform(0.01, 0.2),
            "mu": rng.uniform(0.5, 0.95), "report": report}


SGD_PLUS_TWO_STEPS = {"params": {"w": np.array([0.5, -1.0, 2.0]), "b": np.array(0.25)},
                      "grads": [{"w": np.array([0.2, -0.4, 1.5]), "b": np.array(-0.5)},
                                {"w": np.array([0.1, 0.3, -1.0]), "b": np.array(0.5)}],
                      "lr": 0.1, "mu": 0.9, "report": ["params", "v"]}


# Question 2: Adam ------------------------------------------------------------------------

@probe
def adam_steps(student, params, grads, lr, betas, eps, report):
    """The student's Adam over primer Tensors, one step() per entry of grads."""
    from coursekit.primer import Tensor

    tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
    optimizer = student["Adam"](list(tensors.values()), lr=lr, betas=tuple(betas), eps=eps)
    for step in grads:
        for name, tensor in tensors.items():
            tensor.grad = np.array(step[name], dtype=np.float64)
        optimizer.step()

    def read(field):
        if field == "params":
            return {name: tensor.value for name, tensor in tensors.items()}
        return {name: state[field] for name, state in zip(tensors, optimizer.state, strict=True)}

    return {field: read(field) for field in report}


def adam_reference(params, grads, lr, betas, eps, report):
    """torch.optim.Adam: bias-corrected moments, eps added outside the square root."""
    tensors, optimizer = _torch_steps(
        lambda ps: torch.optim.Adam(ps, lr=lr, betas=tuple(betas), eps=eps), params, grads)
    states = {name: optimizer.state[t] for name, t in tensors.items()}
    fields = {"params": {name: t.detach().numpy() for name, t in tensors.items()},
              "m": {name: s["exp_avg"].numpy() for name, s in states.items()},
              "v": {name: s["exp_avg_sq"].numpy() for name, s in states.items()},
              "t": {name: int(s["step"].item()) for name, s in states.items()}}
    return {field: fields[field] for field in report}


def random_adam(rng, steps, report, eps=1e-8, grad_scale=1.0, betas=None):
    params, grads = _random_params(rng, steps, grad_scale)
    if betas is None:
        betas = [rng.uniform(0.5, 0.95), rng.uniform(0.8, 0.999)]
    return {"params": params, "grads": grads, "lr": rng.uniform(1e-3, 1e-1), "betas": betas,
            "eps": eps, "report": report}


def random_adam_scales(rng):
    """Three steps with gradients from 0.1 to 10 in size: the bias correction dominates."""
    inputs = random_adam(rng, 3, ["params"], betas=[0.9, 0.999])
    inputs["grads"] = [{name: g * np.exp(rng.uniform(np.log(0.1), np.log(10.0)))
                        for name, g in step.items()} for step in inputs["grads"]]
    return inputs


ADAM_FIRST_STEP = {"params": {"w": np.array([0.5, -1.0, 2.0]), "b": np.array(0.25)},
                   "grads": [{"w": np.array([0.2, -0.4, 1.5]), "b": np.array(-0.5)}],
                   "lr": 0.1, "betas": [0.9, 0.999], "eps": 1e-8,
                   "report": ["params", "m", "v", "t"]}


# Question 3: verification against the torch twin ----------------------------------------

@probe
def student_comparison(student, layers, model_seed, n, data_seed, kind, ours, theirs,
                       iterations, batch_size, batch_seed):
    """The student's compare_with_torch on the library's primer optimizer and torch's."""
    import torch

    from coursekit import primer

    def plain(kwargs):
        return {key: tuple(value) if isinstance(value, list) else value
                for key, value in kwargs.items()}

    torch_class = {"SGDMomentum": torch.optim.SGD, "Adam": torch.optim.Adam}[kind]
    model = primer.MultiNeuronClassifier(layers, seed=model_seed)
    data = primer.make_two_gaussians(n, dim=4, seed=data_seed)
    result = student["compare_with_torch"](
        model, lambda ps: getattr(primer, kind)(ps, **plain(ours)),
        lambda ps: torch_class(ps, **plain(theirs)), data, iterations, batch_size,
        seed=batch_seed)
    return {"loss": float(result["loss"]), "params": float(result["params"])}


def comparison_reference(layers, model_seed, n, data_seed, kind, ours, theirs, iterations,
                         batch_size, batch_seed):
    """The largest loss and final-parameter differences of a side-by-side run."""
    torch_class = {"SGDMomentum": torch.optim.SGD, "Adam": torch.optim.Adam}[kind]
    ours = {k: tuple(v) if isinstance(v, list) else v for k, v in ours.items()}
    theirs = {k: tuple(v) if isinstance(v, list) else v for k, v in theirs.items()}
    model = primer.MultiNeuronClassifier(layers, seed=model_seed)
    twin = model.to_torch()
    optimizer = getattr(primer, kind)(model.parameters(), **ours)
    torch_optimizer = torch_class(twin.parameters(), **theirs)
    X, y = primer.make_two_gaussians(n, dim=4, seed=data_seed)
    batches = primer.BatchIterator(X, y, batch_size, seed=batch_seed)
    largest = 0.0
    for _ in range(iterations):
        xb, yb = next(batches)
        optimizer.zero_grad()
        loss = model.forward_backward(xb, yb)
        optimizer.step()
        torch_optimizer.zero_grad()
        torch_loss = torch.nn.functional.mse_loss(twin(_tensor(xb)), _tensor(yb))
        torch_loss.backward()
        torch_optimizer.step()
        largest = max(largest, abs(loss - torch_loss.item()))
    ours_final, theirs_final = model.named_parameters(), twin.named_scalars()
    return {"loss": largest,
            "params": max(abs(ours_final[name] - theirs_final[name]) for name in ours_final)}


@probe
def student_optimizer_on_model(student, layers, model_seed, n, data_seed, optimizer, hyper,
                               iterations, batch_size, batch_seed):
    """primer.train with the student's optimizer: the losses and the final parameters."""
    from coursekit import primer

    model = primer.MultiNeuronClassifier(layers, seed=model_seed)
    data = primer.make_two_gaussians(n, dim=4, seed=data_seed)
    kwargs = {key: tuple(value) if isinstance(value, list) else value
              for key, value in hyper.items()}
    history = primer.train(model, student[optimizer](model.parameters(), **kwargs), data,
                           iterations, batch_size, seed=batch_seed)
    return {"losses": history.losses, "params": model.named_parameters()}


def twin_training_reference(layers, model_seed, n, data_seed, optimizer, hyper, iterations,
                            batch_size, batch_seed):
    """The torch twin of the same initial model, trained with torch.optim on the same batches."""
    twin = primer.MultiNeuronClassifier(layers, seed=model_seed).to_torch()
    if optimizer == "SGDPlus":
        torch_optimizer = torch.optim.SGD(twin.parameters(), lr=hyper["lr"],
                                          momentum=hyper["mu"], dampening=0)
    else:
        torch_optimizer = torch.optim.Adam(twin.parameters(), lr=hyper["lr"],
                                           betas=tuple(hyper["betas"]), eps=hyper["eps"])
    X, y = primer.make_two_gaussians(n, dim=4, seed=data_seed)
    batches = primer.BatchIterator(X, y, batch_size, seed=batch_seed)
    losses = []
    for _ in range(iterations):
        xb, yb = next(batches)
        torch_optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(twin(_tensor(xb)), _tensor(yb))
        loss.backward()
        torch_optimizer.step()
        losses.append(loss.item())
    return {"losses": np.array(losses), "params": twin.named_scalars()}


def _run_inputs(rng, layers):
    return {"layers": layers, "model_seed": int(rng.integers(0, 1000)), "n": 400,
            "data_seed": int(rng.integers(0, 1000)), "batch_seed": int(rng.integers(0, 1000))}


def random_mismatch(rng, kind):
    """Our optimizer against a torch one with a different momentum or betas."""
    lr = float(rng.uniform(0.01, 0.1))
    if kind == "SGDMomentum":
        ours = {"lr": lr, "mu": 0.9}
        theirs = {"lr": lr, "momentum": float(rng.uniform(0.5, 0.8)), "dampening": 0.0}
    else:
        ours = {"lr": lr, "betas": [0.9, 0.999]}
        theirs = {"lr": lr, "betas": [float(rng.uniform(0.5, 0.8)), 0.99]}
    return {**_run_inputs(rng, MULTI_NEURON), "kind": kind, "ours": ours, "theirs": theirs,
            "iterations": 100, "batch_size": 8}


def random_adam_run(rng):
    hyper = {"lr": float(rng.uniform(5e-3, 5e-2)),
             "betas": [float(rng.uniform(0.7, 0.95)), float(rng.uniform(0.9, 0.999))],
             "eps": 1e-8}
    return {**_run_inputs(rng, MULTI_NEURON), "optimizer": "Adam", "hyper": hyper,
            "iterations": 200, "batch_size": 8}


MATCHED = {"layers": MULTI_NEURON, "model_seed": 1, "n": 400, "data_seed": 2, "batch_seed": 3,
           "kind": "SGDMomentum", "ours": {"lr": 0.05, "mu": 0.9},
           "theirs": {"lr": 0.05, "momentum": 0.9, "dampening": 0.0},
           "iterations": 100, "batch_size": 8}
SGD_PLUS_RUN = {"layers": ONE_NEURON, "model_seed": 4, "n": 400, "data_seed": 5,
                "batch_seed": 6, "optimizer": "SGDPlus", "hyper": {"lr": 0.05, "mu": 0.9},
                "iterations": 200, "batch_size": 8}


# Question 4: the experiments' results ---------------------------------------------------
#
# The grader runs the notebook from the top in CI mode (COURSEKIT_FAST=1, one CPU thread),
# so RESULTS holds what the notebook's own cells computed there. These tests check where
# those numbers came from: each re-runs, in the student's process, with the student's
# optimizers and the seeds, data and sizes the homework prescribes, part of the experiments
# and returns the re-run minus the reported numbers; the grader compares those differences
# with zero. Numbers typed in, copied or edited after the run do not match a re-run.
#
# Tolerance, from measured run-to-run differences: the re-run happens in the same process,
# on the same machine and with the same float64 NumPy code as the run that filled RESULTS.
# Measured on the solution run as the grader runs it (CI mode, one thread; AMD EPYC, Python
# 3.11, NumPy 2.4): every curve of the lr grid re-run whole and compared at each of its
# 2,000 iterations, and all 18 cells of the beta grid, in two separate processes, and the
# tests' own hidden inputs for three seeds: every difference was exactly 0. RESULTS_ATOL =
# 1e-9, on losses of 0.05 to 0.25, leaves room for a platform whose float64 kernels are not
# bitwise repeatable: these runs do not amplify rounding (a one-ulp change of every initial
# weight moved the 2,000 losses by at most 4e-16, measured at lr = 1e-2 for both models and
# the three optimizers), while numbers rounded to 6 significant digits (off by up to 5e-7),
# typed from a table, copied from another run or scaled by 1.01 (over 5e-4 off) are caught.
# Wall-clock times cannot be re-run: only their signs are compared (+1: positive).

MODELS = ["one_neuron", "multi_neuron"]
OPTIMIZERS = ["SGD", "SGD+", "Adam"]
LEARNING_RATES = [1e-2, 1e-3, 1e-4]
BATCH_SIZES = [8, 32]
BETA1S = [0.7, 0.9, 0.99]
BETA2S = [0.8, 0.9, 0.99]
# The notebook's prescribed set-up: its settings cell in CI mode, as the grader runs it.
PRESCRIBED = {"one_neuron": "xw = ab*xa + bc*xb + cd*xc + ac*xd", "multi_neuron": MULTI_NEURON,
              "n_samples": 5_000, "seed": 0, "batch_size": 8, "iterations": 2_000, "mu": 0.9}
RESULTS_ATOL = 1e-9


def _picks(rng, stop, count):
    """``count`` sorted iteration indices below ``stop``, the last one always included."""
    return np.sort(np.append(rng.choice(stop - 1, size=count - 1, replace=False), stop - 1))


@probe
def lr_grid_rerun(student, cells, one_neuron, multi_neuron, n_samples, seed, batch_size,
                  iterations, mu, prefix, picks, full, full_picks):
    """Re-run the first ``prefix`` iterations of every lr-grid curve, and all of one curve,
    with the student's optimizers; the re-run minus RESULTS["lr_curves"] at ``picks``."""
    from coursekit import primer

    data = primer.make_two_gaussians(n_samples, dim=4, seed=seed)
    models = {"one_neuron": lambda: primer.OneNeuronClassifier(one_neuron, seed=seed),
              "multi_neuron": lambda: primer.MultiNeuronClassifier(multi_neuron, seed=seed)}
    optimizers = {"SGD": lambda params, lr: primer.SGD(params, lr=lr),
                  "SGD+": lambda params, lr: student["SGDPlus"](params, lr=lr, mu=mu),
                  "Adam": lambda params, lr: student["Adam"](params, lr=lr)}
    curves = student["RESULTS"]["lr_curves"]

    def reported(model_name, name, lr):
        curve = np.asarray(curves[model_name][name][lr], dtype=np.float64)
        if curve.ndim != 1:
            raise ValueError(f"RESULTS['lr_curves'][{model_name!r}][{name!r}][{lr:g}] must be "
                             f"a 1-D array of losses, got shape {curve.shape}")
        return curve

    def gap(model_name, name, lr, steps, at):
        model = models[model_name]()
        history = primer.train(model, optimizers[name](model.parameters(), lr), data, steps,
                               batch_size, seed=seed)
        return history.losses[at] - reported(model_name, name, lr)[at]

    prefixes = {f"{m}/{name}/lr={lr:g}": {"length": len(reported(m, name, lr)),
                                          "gap": gap(m, name, lr, prefix, picks)}
                for m, name, lr in cells}
    return {"prefixes": prefixes, "full": gap(*full, iterations, full_picks)}


def lr_grid_expected(cells, one_neuron, multi_neuron, n_samples, seed, batch_size, iterations,
                     mu, prefix, picks, full, full_picks):
    """Every curve ``iterations`` long; every difference from the re-run zero."""
    return {"prefixes": {f"{m}/{name}/lr={lr:g}": {"length": iterations,
                                                   "gap": np.zeros(len(picks))}
                         for m, name, lr in cells},
            "full": np.zeros(len(full_picks))}


def random_lr_grid_rerun(rng):
    """All 18 curves' first 150 to 300 iterations (16 of them compared), and one whole curve
    (32 iterations compared): about 5,000 primer iterations, a second or so."""
    cells = [[m, name, lr] for m in MODELS for name in OPTIMIZERS for lr in LEARNING_RATES]
    prefix = int(rng.integers(150, 301))
    return {**PRESCRIBED, "cells": cells, "prefix": prefix, "picks": _picks(rng, prefix, 16),
            "full": cells[int(rng.integers(len(cells)))],
            "full_picks": _picks(rng, PRESCRIBED["iterations"], 32)}


@probe
def beta_grid_rerun(student, batch_sizes, beta1s, beta2s, cells):
    """The beta grid's runs and the signs of their times, and for each of ``cells``
    (batch size, row, column) the student's adam_run again minus the reported losses.

    RESULTS["beta_grid"] is the DataFrame ``sweep`` returns: one row per run, with the
    columns batch_size, beta1, beta2, time and adam_run's fields (read by duck typing, so
    this probe needs no pandas). Anything else, a missing column, a run that failed or a
    grid point without exactly one row fails the test with a message saying which.
    """
    name = "RESULTS['beta_grid']"
    grid = student["RESULTS"]["beta_grid"]
    if not (hasattr(grid, "pivot_table") and hasattr(grid, "columns")):
        raise TypeError(f"{name} must be the pandas DataFrame that sweep returns (one row per "
                        f"run), got {type(grid).__name__}: keep RESULTS['beta_grid'] = grid in "
                        f"the cell that runs the sweep")
    columns = ["batch_size", "beta1", "beta2", "time", "final_loss", "min_loss"]
    present = [str(column) for column in grid.columns]
    missing = [column for column in columns if column not in present]
    if missing:
        raise ValueError(f"{name} has no column {', '.join(repr(c) for c in missing)}; it needs "
                         f"{', '.join(columns)} (it has {', '.join(present[:12])})")
    table = {}
    for column in columns:
        try:
            table[column] = np.asarray(list(grid[column]), dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{column!r}] must hold numbers") from None

    def label(batch_size, beta1, beta2):
        return f"batch_size={batch_size:g}, beta1={beta1:g}, beta2={beta2:g}"

    if "error" in present:
        for i, error in enumerate(list(grid["error"])):
            if isinstance(error, str):
                where = label(table["batch_size"][i], table["beta1"][i], table["beta2"][i])
                raise ValueError(f"{name}: the run {where} failed ({error}); fix adam_run and "
                                 f"run the sweep again")

    def row(batch_size, beta1, beta2):
        hits = np.flatnonzero(np.isclose(table["batch_size"], batch_size)
                              & np.isclose(table["beta1"], beta1)
                              & np.isclose(table["beta2"], beta2))
        if len(hits) != 1:
            raise ValueError(f"{name} must have one row for {label(batch_size, beta1, beta2)}, "
                             f"it has {len(hits)}")
        return int(hits[0])

    report = {"rows": len(table["time"])}
    for batch_size in batch_sizes:
        report[f"batch_{batch_size}"] = {"time_sign": np.sign(
            [[table["time"][row(batch_size, b1, b2)] for b2 in beta2s] for b1 in beta1s])}
    for batch_size, i, j in cells:
        run = student["adam_run"](beta1s[i], beta2s[j], batch_size)
        at = row(batch_size, beta1s[i], beta2s[j])
        report[f"batch_{batch_size}/beta1={beta1s[i]:g}/beta2={beta2s[j]:g}"] = {
            field: float(run[field]) - table[field][at] for field in ("final_loss", "min_loss")}
    return report


def beta_grid_expected(batch_sizes, beta1s, beta2s, cells):
    """One row per run of the grid, positive times, every re-run difference zero."""
    report = {"rows": len(batch_sizes) * len(beta1s) * len(beta2s)}
    for batch_size in batch_sizes:
        report[f"batch_{batch_size}"] = {"time_sign": np.ones((len(beta1s), len(beta2s)))}
    for batch_size, i, j in cells:
        report[f"batch_{batch_size}/beta1={beta1s[i]:g}/beta2={beta2s[j]:g}"] = {
            "final_loss": 0.0, "min_loss": 0.0}
    return report


def random_beta_grid_rerun(rng):
    """Two cells of the grid at each batch size, each a whole adam_run (2,000 iterations in
    CI mode): about two seconds."""
    cells = [[batch_size, int(i // len(BETA2S)), int(i % len(BETA2S))]
             for batch_size in BATCH_SIZES
             for i in rng.choice(len(BETA1S) * len(BETA2S), size=2, replace=False)]
    return {"batch_sizes": BATCH_SIZES, "beta1s": BETA1S, "beta2s": BETA2S, "cells": cells}


# Written answers, graded by hand (Parts 4 and 5) ----------------------------------------
# A grader ticks the rubric items an answer earns (`coursekit review`); the rubrics stay in
# this file and never reach the released notebook. The items describe what a correct answer
# contains, taken from the solution's reasoning; its numbers differ from run to run, so the
# items ask for the student's own numbers, never for ours.

LR_ANSWER = Written("lr", "Part 4: SGD, SGD+ and Adam at three learning rates", points=5, rubric=[
    Item("same_curves", 1, "(a) sees that SGD+ at each rate and SGD at ten times that rate reach "
                           "nearly the same losses (curves on top of each other), with numbers "
                           "from the run"),
    Item("factor", 1, "(a) explains the factor: v sums past gradients with weights 1, mu, mu^2, "
                      "..., so v ~ g / (1 - mu) = 10 g while the gradient changes slowly"),
    Item("adam_step", 2, "(b) names Adam as the least sensitive (its final losses across the "
                         "rates) and says why: its step lr * m_hat / (sqrt(v_hat) + eps) is about "
                         "lr per coordinate whatever the gradient's size, SGD's lr * g is tiny "
                         "with the primer's small gradients"),
    Item("floor", 1, "(c) once converged, the model and the data set the floor (overlapping "
                     "classes; one neuron draws one hyperplane, the hidden layer bends it); "
                     "where curves still fall, the number of iterations does"),
    Item("unsupported", -1, "ranks the optimizers or claims a difference that the run's numbers "
                            "do not show (e.g. from short runs still far from their floor)"),
])

BETAS_ANSWER = Written("betas", "Part 5: Adam's beta1 x beta2 grid", points=5, rubric=[
    Item("spread", 1, "(a) compares the spread of the nine settings' final losses with the final "
                      "loss's standard error, quoting both, and concludes only what that "
                      "supports (no setting breaks training; at convergence the betas matter "
                      "little)"),
    Item("old_columns", 1, "(a) explains that the original homework's last-batch and minimum "
                           "batch losses describe one unlucky or lucky batch, not the model"),
    Item("batch_size", 1, "(b) batch 32: less noisy batch losses (smaller standard errors), "
                          "lower losses early on; a run is far from 4x slower because the fixed "
                          "cost of a primer iteration's small NumPy calls dominates"),
    Item("betas", 2, "(c) beta1 sets the memory of the gradient average (about 1 / (1 - beta1) "
                     "steps, averaging out the batch noise), beta2 that of the squared gradients "
                     "that scale each step; describes the trend the table shows"),
    Item("overclaim", -1, "claims a difference between settings smaller than their standard "
                          "errors, or ranks the settings by their times"),
])


# Points: public 4 (sgd_plus/two_steps, adam/first_step, verify/matched,
# verify/sgd_plus_on_model), hidden 15; tests/test_hw1.py checks this against the plan.
# Written, graded by hand: 10 (results/lr 5, results/betas 5).
ASSIGNMENT = Assignment(seed=60146, questions=[
    Question("sgd_plus", "SGD with momentum (SGD+)", [
        Test("two_steps", sgd_plus_steps, reference=sgd_plus_reference, points=1,
             description="two steps from rest on a vector and a scalar parameter",
             inputs=SGD_PLUS_TWO_STEPS),
        Test("several_steps", sgd_plus_steps, reference=sgd_plus_reference, points=2,
             hidden=True, description="eight steps on three parameters: the parameters",
             inputs=lambda rng: random_sgd_plus(rng, 8, ["params"])),
        Test("velocity", sgd_plus_steps, reference=sgd_plus_reference, points=1, hidden=True,
             description="five steps: the velocity state",
             inputs=lambda rng: random_sgd_plus(rng, 5, ["v"])),
    ]),
    Question("adam", "Adam with bias correction", [
        Test("first_step", adam_steps, reference=adam_reference, points=1,
             description="the first step (t = 1): parameters and state",
             inputs=ADAM_FIRST_STEP),
        Test("moments", adam_steps, reference=adam_reference, points=1, hidden=True,
             description="six steps: the moments m and v",
             inputs=lambda rng: random_adam(rng, 6, ["m", "v"])),
        Test("bias_correction", adam_steps, reference=adam_reference, points=1, hidden=True,
             description="the first three steps, gradients of very different sizes",
             inputs=random_adam_scales),
        Test("several_steps", adam_steps, reference=adam_reference, points=2, hidden=True,
             description="twenty steps: the parameters and the step count",
             inputs=lambda rng: random_adam(rng, 20, ["params", "t"])),
        Test("eps", adam_steps, reference=adam_reference, points=1, hidden=True,
             description="a large eps, added to the square root of v_hat",
             inputs=lambda rng: random_adam(rng, 4, ["params"], eps=float(rng.uniform(0.05, 0.2)),
                                            grad_scale=0.03)),
    ]),
    Question("verify", "Verification against the torch twin", [
        Test("matched", student_comparison, reference=comparison_reference, points=1,
             rtol=0.0, atol=1e-9,
             description="compare_with_torch on primer.SGDMomentum and torch's SGD, same "
                         "hyperparameters: no difference",
             inputs=MATCHED),
        Test("mismatched_momentum", student_comparison, reference=comparison_reference,
             points=1, hidden=True, rtol=1e-6, atol=1e-12,
             description="compare_with_torch reports the differences of a wrong momentum",
             inputs=lambda rng: random_mismatch(rng, "SGDMomentum")),
        Test("mismatched_betas", student_comparison, reference=comparison_reference,
             points=1, hidden=True, rtol=1e-6, atol=1e-12,
             description="compare_with_torch reports the differences of wrong betas",
             inputs=lambda rng: random_mismatch(rng, "Adam")),
        Test("sgd_plus_on_model", student_optimizer_on_model,
             reference=twin_training_reference, points=1, rtol=1e-6, atol=1e-9,
             description="SGDPlus trains the one-neuron model as torch trains its twin",
             inputs=SGD_PLUS_RUN),
        Test("adam_on_model", student_optimizer_on_model, reference=twin_training_reference,
             points=1, hidden=True, rtol=1e-6, atol=1e-9,
             description="Adam trains the multi-neuron model as torch trains its twin",
             inputs=random_adam_run),
    ]),
    Question("results", "Experiment results", [
        Test("lr_grid", lr_grid_rerun, reference=lr_grid_expected, points=2, hidden=True,
             rtol=0.0, atol=RESULTS_ATOL,
             description="every loss curve is as long as the run and equals a re-run of its "
                         "first iterations with your optimizers; one whole curve re-run",
             inputs=random_lr_grid_rerun),
        Test("beta_grid", beta_grid_rerun, reference=beta_grid_expected, points=2, hidden=True,
             rtol=0.0, atol=RESULTS_ATOL,
             description="the sweep's DataFrame: one run per batch size, beta1 and beta2, none "
                         "failed, positive times, and final and minimum losses equal to your "
                         "adam_run re-run on cells the grader picks",
             inputs=random_beta_grid_rerun),
    ], written=[LR_ANSWER, BETAS_ANSWER]),
])
