"""Grading tests of Homework 4 (``hw4_muon.ipynb``): Muon, orthogonalised momentum.

Probes run in the student's process: they call the notebook's ``newton_schulz`` on float64
matrices, its ``adjusted_lr`` on shapes, build its ``MyMuon`` on float64 matrices and feed
it given gradients, or re-run part of its experiment. References run in the grader,
independent of the solution notebook:

- ``newton_schulz`` against torch's own iteration, ``torch.optim._muon.
  _zeropower_via_newtonschulz``, run line by line in float64 (see "Precision" below);
- ``adjusted_lr`` against ``torch.optim._muon._adjust_lr``;
- ``MyMuon`` against ``torch.optim.Muon`` driven the same way, its iteration in float64;
- the parameter split against the rule of Part 3 written out on the MLP's layers;
- the results against a re-run: the probes run again, in the student's process and with
  the student's code, the first epoch of both reported runs, one run whole on another seed,
  and the singular-value study, and return the re-run minus the reported numbers, which
  must be zero.

Precision. ``torch.optim.Muon`` always runs Newton-Schulz in bfloat16 (``grad.bfloat16()``
in ``_zeropower_via_newtonschulz``): fast on a GPU, but with 8 bits of mantissa. The
homework asks for the iteration in the input's own dtype (as ``coursekit.optim.newton_schulz``
with ``dtype=None``, or ``Muon(ns_dtype=None)``), and the grader feeds float64. The
references run torch's own code in float64 by handing it a tensor whose ``.bfloat16()``
returns a float64 copy (``_KeepsFloat64``): every other line of torch's iteration and
optimizer runs as written. Measured differences (AMD EPYC, torch 2.14, Gaussian matrices of
shapes 4x6 to 32x16, scaled by 1e-3 to 1e3, five steps):

- float64 against float64 with the products in another order (``A @ (A @ X)`` instead of
  ``addmm``; no transpose of tall matrices): at most 7.3e-15;
- the authors' first normalisation ``G / (||G||_F + eps)`` instead of torch's
  ``G / max(||G||_F, eps)``: 4.5e-8 at scale 1, 1.2e-6 at 0.1, 7.2e-5 at 1e-3;
- torch's bfloat16 iteration against float64: 2.0e-2 to 2.8e-2 (entries of size 0.1 to 0.7).

So ``NS_RTOL = 1e-6, NS_ATOL = 1e-7`` on the matrices: the hidden inputs have Frobenius
norms of at least 3, where either normalisation passes; the mistakes differ by far more
(the cubic coefficients by 0.1 to 1, no normalisation by orders of magnitude, a bfloat16
cast by 2e-2). Comparing with torch's bfloat16 output instead would need a tolerance of
about 5e-2, which a mistake in the weight decay or the learning-rate adjustment can hide
under. The Muon runs compare parameters (of size 1) and momentum buffers with the default
``rtol = 1e-6, atol = 1e-8``: an update is ``lr_adj`` (0.01 to 0.3) times an iterate, so the
normalisation's 4.5e-8 becomes at most 1.4e-8 of a parameter, while dropping nesterov,
coupling the weight decay, or adjusting its rate moves parameters by 1e-4 or more per step
(tests/test_hw4.py checks each of these margins with torch).

Points: 20 in all, 4 on public tests and 16 on hidden ones. Public tests ship with the
homework, inputs and expected values included, so a notebook could recognise them; hidden
tests carry the majority of the points (issue 24). The written answers, Questions 1, 2 and 3
(``newton_schulz/spectrum`` 4 points, ``muon/scale`` 3, ``experiment/comparison`` 4), add 11
points, graded by hand with the rubrics below: the homework is worth 31.
"""

import numpy as np
import torch
from torch.optim import _muon as torch_muon

from coursekit.grading import Assignment, Item, Question, Test, Written, probe

QUINTIC = (3.4445, -4.7750, 2.0315)
NS_RTOL, NS_ATOL = 1e-6, 1e-7


class _KeepsFloat64(torch.Tensor):
    """A float64 tensor whose ``.bfloat16()`` is a float64 copy: torch.optim.Muon's
    iteration, run on it, keeps float64 and is otherwise torch's code line by line."""

    def bfloat16(self, *args, **kwargs):
        return self.clone()


def _tensor(x):
    return torch.tensor(np.asarray(x), dtype=torch.float64)


def _plain(x):
    return x.detach().as_subclass(torch.Tensor).numpy()


# Question 1: the Newton-Schulz iteration -------------------------------------------


@probe
def ns_values(student, G, steps):
    """newton_schulz(G) (steps=None: the default number of steps) on float64 G."""
    import torch

    matrix = torch.tensor(G, dtype=torch.float64)
    out = (student["newton_schulz"](matrix) if steps is None
           else student["newton_schulz"](matrix, steps=steps))
    return {"X": torch.as_tensor(out).detach().to(torch.float64).cpu().numpy()}


def ns_reference(G, steps):
    """torch's own iteration (torch.optim.Muon's) in float64."""
    matrix = _tensor(G).as_subclass(_KeepsFloat64)
    out = torch_muon._zeropower_via_newtonschulz(matrix, QUINTIC, 5 if steps is None else steps,
                                                 torch_muon.EPS)
    return {"X": _plain(out)}


def _matrix(rng, shape, scale=1.0):
    return scale * rng.normal(size=shape)


def _tall(rng):
    return {"G": _matrix(rng, (int(rng.integers(9, 15)), int(rng.integers(3, 7)))), "steps": None}


def _square(rng):
    n = int(rng.integers(4, 9))
    return {"G": _matrix(rng, (n, n)), "steps": None}


def _steps(rng):
    return {"G": _matrix(rng, (5, 8)), "steps": int(rng.choice([1, 2, 3, 8]))}


def _large(rng):
    # a gradient of norm ~1e4: without the Frobenius normalisation the iteration explodes
    return {"G": _matrix(rng, (6, 10), scale=float(rng.uniform(5e2, 2e3))), "steps": None}


def _zero(rng):
    return {"G": np.zeros((int(rng.integers(3, 6)), int(rng.integers(6, 9)))), "steps": None}


WIDE = {"G": np.array([[1.0, -0.5, 0.3, 2.0, 0.0, -1.2],
                       [0.4, 1.5, -0.7, 0.2, 0.9, 0.1],
                       [-0.3, 0.8, 1.1, -0.6, 0.5, 0.7],
                       [0.6, -1.0, 0.2, 0.4, -0.8, 1.3]]), "steps": None}


# Question 2: a Muon step as torch.optim.Muon -------------------------------------------


@probe
def lr_values(student, lr, cases):
    """adjusted_lr(lr, shape, adjust_lr_fn) for each (shape, adjust_lr_fn) in ``cases``."""
    return np.array([float(student["adjusted_lr"](lr, tuple(shape), fn)) for shape, fn in cases])


def lr_reference(lr, cases):
    return np.array([torch_muon._adjust_lr(lr, fn, torch.Size(shape)) for shape, fn in cases])


PUBLIC_LR = {"lr": 0.02, "cases": [[[8, 4], None], [[4, 8], None], [[8, 4], "original"],
                                   [[4, 8], "match_rms_adamw"], [[8, 8], "match_rms_adamw"]]}


def _lr_cases(rng):
    cases = []
    for fn in (None, "original", "match_rms_adamw"):
        for _ in range(3):
            m, n = (int(x) for x in rng.integers(2, 300, size=2))
            cases.append([[m, n], fn])
    return {"lr": float(rng.uniform(1e-3, 0.1)), "cases": cases}


@probe
def muon_run(student, params, grads, has_grad, groups, options, report_state):
    """Build MyMuon on float64 copies of ``params`` (grouped as ``groups``), feed ``grads``."""
    import torch

    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    spec = [{"params": [tensors[i] for i in group["params"]], **group["options"]}
            for group in groups]
    optimizer = student["MyMuon"](spec, **options)
    for step, present in enumerate(has_grad):
        for i, tensor in enumerate(tensors):
            tensor.grad = torch.tensor(grads[i][step], dtype=torch.float64) if present[i] else None
        optimizer.step()
    result = {"params": [t.detach().numpy() for t in tensors]}
    if report_state:
        result["momentum_buffer"] = [
            torch.as_tensor(optimizer.state[t]["momentum_buffer"]).detach().to(torch.float64)
            .numpy() for t in tensors]
    return result


def muon_run_reference(params, grads, has_grad, groups, options, report_state):
    """The same run with torch.optim.Muon, its iteration in float64 (_KeepsFloat64)."""
    tensors = [_tensor(p).requires_grad_() for p in params]
    spec = [{"params": [tensors[i] for i in group["params"]], **group["options"]}
            for group in groups]
    optimizer = torch.optim.Muon(spec, **options)
    for step, present in enumerate(has_grad):
        for i, tensor in enumerate(tensors):
            tensor.grad = (_tensor(grads[i][step]).as_subclass(_KeepsFloat64) if present[i]
                           else None)
        optimizer.step()
    result = {"params": [_plain(t) for t in tensors]}
    if report_state:
        result["momentum_buffer"] = [_plain(optimizer.state[t]["momentum_buffer"])
                                     for t in tensors]
    return result


def _muon_inputs(rng, *, steps, shapes=((5, 8), (9, 4)), skip=0.0, groups=None, **options):
    """Random matrices and gradients; ``skip`` is the chance a gradient is missing."""
    has_grad = rng.uniform(size=(steps, len(shapes))) >= skip
    has_grad[0] = True
    return {"params": [rng.normal(size=s) for s in shapes],
            "grads": [rng.normal(scale=rng.uniform(0.5, 3.0), size=(steps, *s)) for s in shapes],
            "has_grad": has_grad,
            "groups": groups or [{"params": list(range(len(shapes))), "options": {}}],
            "options": {"lr": float(rng.uniform(0.01, 0.05)),
                        "momentum": float(rng.uniform(0.8, 0.95)), "weight_decay": 0.0,
                        **options},
            "report_state": False}


def _nesterov_off(rng):
    return _muon_inputs(rng, steps=6, nesterov=False)


def _weight_decay(rng):
    # a tall matrix (lr_adj = sqrt(12/5) lr, not lr) and a wide one, a large decay
    return _muon_inputs(rng, steps=6, shapes=((12, 5), (4, 7)),
                        weight_decay=float(rng.uniform(0.5, 2.0)))


def _match_rms(rng):
    return _muon_inputs(rng, steps=5, shapes=((6, 16), (16, 6)), adjust_lr_fn="match_rms_adamw",
                        weight_decay=0.1)


def _many_steps(rng):
    return {**_muon_inputs(rng, steps=12, shapes=((7, 3), (6, 6), (3, 10)), weight_decay=0.1),
            "report_state": True}


def _groups(rng):
    groups = [{"params": [0, 1], "options": {}},
              {"params": [2], "options": {"lr": 0.1, "momentum": 0.5, "nesterov": False,
                                          "adjust_lr_fn": "match_rms_adamw"}}]
    return _muon_inputs(rng, steps=8, shapes=((8, 3), (4, 4), (3, 9)), skip=0.3, groups=groups,
                        weight_decay=0.05)


FIRST_STEPS = {"params": [np.array([[0.5, -1.0, 2.0, 0.1], [0.3, 0.7, -0.4, 1.1]]),
                          np.array([[1.0, 0.2], [-0.5, 0.3], [0.8, -1.2], [0.1, 0.4]])],
               "grads": [np.array([[[0.2, -0.4, 1.5, 0.3], [0.1, 0.3, -2.0, 0.5]],
                                   [[-0.5, 0.0, 0.7, 0.2], [0.4, -0.1, 0.3, 1.0]],
                                   [[0.3, 0.3, -0.2, 0.1], [-0.6, 0.2, 0.5, -0.3]]]),
                         np.array([[[0.5, -1.0], [0.2, 0.1], [-0.3, 0.8], [1.5, -0.2]],
                                   [[0.0, 0.4], [1.0, -2.0], [0.5, 0.5], [-1.0, 0.2]],
                                   [[0.3, 0.3], [2.0, -0.1], [0.2, 0.6], [-0.4, 0.9]]])],
               "has_grad": np.ones((3, 2), dtype=bool),
               "groups": [{"params": [0, 1], "options": {}}],
               "options": {"lr": 0.02}, "report_state": False}


# Question 3: the experiment ---------------------------------------------------------------
#
# The grader runs the notebook from the top in CI mode (COURSEKIT_FAST=1: the digits, 10
# epochs; one CPU thread), so RESULTS holds what the notebook's own cells computed there. The
# probes check where the numbers came from: they run again, in the student's process, with
# the notebook's train_once and OPTIMIZERS (the student's MyMuon and split_parameters), the
# first epoch of both reported runs at the reported rate on SEEDS[0], and one run whole on
# another seed, and the singular-value study with the notebook's spectrum_study; they return
# the re-run minus the reported numbers, which the grader compares with zero. Numbers typed
# in, copied or edited after the run do not match a re-run.
#
# Tolerance, from measured run-to-run differences: the re-run happens in the same process,
# on the same machine and with the same float32 torch code (one thread, fixed seeds) as the
# run that filled RESULTS: measured on the solution in CI mode (AMD EPYC, torch 2.14), both
# records and the study re-run in two processes, every difference was exactly 0.
# RESULTS_ATOL = 1e-6, about four float32 rounding steps of the largest loss (about 2.3),
# leaves room for a platform whose kernels are not bitwise repeatable; a number rounded to
# 4 digits, typed from a table or scaled by 1.01 is off by far more.

PRESCRIBED = {"seeds": [0, 1, 2], "epochs": 10, "steps_per_epoch": 21}
RUNS = ["adamw", "muon"]
RESULTS_ATOL = 1e-6
SPECTRUM_KEYS = ["before", "quintic", "cubic"]


@probe
def experiment_reruns(student, seeds, epochs, steps_per_epoch, names, full, other_seed):
    """The first epoch of each record in ``names`` and all of ``full`` on another seed, run
    again; the re-run minus the reported numbers."""
    runs = student["RESULTS"]["runs"]

    def record(name):
        rec = runs[name]
        missing = [key for key in ("lr", "batch_loss", "train_loss_per_seed",
                                   "valid_acc_per_seed", "test_acc_per_seed", "test_acc")
                   if key not in rec]
        if missing:
            raise KeyError(f"the record of {name!r} has no {', '.join(missing)}: "
                           f"tune_and_repeat returns them")
        return rec

    def gap(again, reported, length=None):
        again = np.asarray(again, dtype=np.float64)
        reported = np.asarray(reported, dtype=np.float64)
        return again - reported[:len(again) if length is None else length]

    report = {}
    for name in names:
        rec = record(name)
        again = student["train_once"](name, float(rec["lr"]), seeds[0], 1)
        report[name] = {
            "lengths": [len(rec["batch_loss"]), len(rec["train_loss_per_seed"]),
                        len(rec["train_loss_per_seed"][0]), len(rec["test_acc_per_seed"])],
            "batch_loss": gap(again["batch_loss"], rec["batch_loss"]),
            "train_loss": gap(again["train_loss"], rec["train_loss_per_seed"][0]),
            "valid_acc": gap(again["valid_acc"], rec["valid_acc_per_seed"][0]),
            "test_acc_minus_mean_of_seeds": float(rec["test_acc"])
            - float(np.mean(np.asarray(rec["test_acc_per_seed"], dtype=np.float64))),
        }
    rec = record(full)
    again = student["train_once"](full, float(rec["lr"]), seeds[other_seed], epochs)
    report["full"] = {
        "train_loss": gap(again["train_loss"], rec["train_loss_per_seed"][other_seed]),
        "valid_acc": gap(again["valid_acc"], rec["valid_acc_per_seed"][other_seed]),
        "test_acc": float(again["test_acc"]) - float(rec["test_acc_per_seed"][other_seed])}
    return report


def experiment_expected(seeds, epochs, steps_per_epoch, names, full, other_seed):
    """Records of the prescribed lengths; every difference from a re-run zero."""
    report = {name: {"lengths": [epochs * steps_per_epoch, len(seeds), epochs, len(seeds)],
                     "batch_loss": np.zeros(steps_per_epoch), "train_loss": np.zeros(1),
                     "valid_acc": np.zeros(1), "test_acc_minus_mean_of_seeds": 0.0}
              for name in names}
    report["full"] = {"train_loss": np.zeros(epochs), "valid_acc": np.zeros(epochs),
                      "test_acc": 0.0}
    return report


def _reruns(rng):
    return {**PRESCRIBED, "names": RUNS, "full": str(rng.choice(RUNS)),
            "other_seed": int(rng.integers(1, 3))}


@probe
def spectrum_rerun(student, keys):
    """spectrum_study(SPECTRUM_SEED) again, minus RESULTS["spectrum"]."""
    again = student["spectrum_study"](student["SPECTRUM_SEED"])
    reported = student["RESULTS"]["spectrum"]
    return {key: np.asarray(again[key], dtype=np.float64)
            - np.asarray(reported[key], dtype=np.float64) for key in keys}


def spectrum_expected(keys):
    return {key: np.zeros(64) for key in keys}


@probe
def split_shapes(student, hidden):
    """split_parameters on the course's MLP with these hidden widths: the shapes of each part."""
    from coursekit.models import MLP

    muon, adamw = student["split_parameters"](MLP((1, 8, 8), 10, hidden=tuple(hidden)))
    return {"muon": [list(p.shape) for p in muon], "adamw": [list(p.shape) for p in adamw]}


def split_reference(hidden):
    """Every weight matrix but the output layer's to Muon; the output layer and biases to
    AdamW (in the order of model.parameters())."""
    widths = [64, *hidden, 10]
    layers = list(zip(widths[1:], widths[:-1], strict=True))
    return {"muon": [[m, n] for m, n in layers[:-1]],
            "adamw": [x for m, n in layers for x in ([[m]] if (m, n) != layers[-1]
                                                      else [[m, n], [m]])]}


# Written answers, graded by hand (Questions 1 to 3) ---------------------------------------
# A grader ticks the rubric items an answer earns (`coursekit review`); the rubrics stay in
# this file and never reach the released notebook. The items ask for the student's own
# numbers, never for ours.

SPECTRUM_ANSWER = Written("spectrum", "Question 1: what Newton-Schulz does to the singular values",
                          points=4, rubric=[
    Item("polynomial", 1, "explains that each step keeps the singular vectors and applies the odd "
                          "polynomial a s + b s^3 + c s^5 to every singular value (X X^T X = "
                          "U S^3 V^T)"),
    Item("band", 1, "quotes the study's numbers: after five quintic steps the singular values lie "
                    "in a band around 1 (its own min and max, e.g. about 0.7 to 1.2) except the "
                    "smallest inputs, while five cubic steps leave small ones far below 1"),
    Item("slope", 1, "why: the quintic's slope at zero (a = 3.4445, against 1.5) lifts small "
                     "values about 3.4x per step; the price is that 1 is no fixed point "
                     "(a + b + c = 0.701), so values oscillate in the band rather than converge"),
    Item("bfloat16", 1, "says why the band is enough for training (the direction U V^T is what "
                        "matters, Jordan et al., 2024) and why bfloat16 (torch's choice) is fine "
                        "for training but too coarse to grade against (the notebook's measured "
                        "gap, about 1e-2)"),
    Item("unsupported", -1, "claims the iteration returns exactly U V^T, or that the cubic is "
                            "wrong rather than slower"),
])

SCALE_ANSWER = Written("scale", "Question 2: the learning-rate adjustment", points=3, rubric=[
    Item("rms", 1, "the RMS of an orthogonalised m x n update is 1/sqrt(max(m, n)) (min(m, n) "
                   "unit singular values spread over m n entries), checked against the "
                   "notebook's table"),
    Item("match", 1, "so 0.2 sqrt(max(m, n)) gives every matrix an update of RMS 0.2, about "
                     "AdamW's, which is why AdamW's rate and weight decay carry over (Liu et "
                     "al., 2025)"),
    Item("original", 1, "'original' scales only tall matrices, by sqrt(m/n): the update's RMS "
                        "becomes 1/sqrt(n) (per input), its spectral norm about sqrt(m/n), the "
                        "fan-out/fan-in scaling of Bernstein (2025); wide matrices keep lr"),
])

COMPARISON_ANSWER = Written("comparison", "Question 3: Muon + AdamW against AdamW", points=4,
                            rubric=[
    Item("numbers", 1, "quotes both test accuracies and final training losses with their "
                       "standard errors and the chosen learning rates"),
    Item("spread", 1, "says which differences exceed the seed spread (paired by seed) and which "
                      "do not, without ranking within the noise"),
    Item("training", 1, "compares the training curves (how fast each reaches a low training "
                        "loss) separately from test accuracy"),
    Item("limits", 1, "names what this small run cannot show (a 10-epoch MLP on 1797 images, "
                      "three seeds, a coarse rate grid) and what would: larger models, tuned "
                      "rates for both, more seeds, as Jordan et al. (2024) and Liu et al. "
                      "(2025) did"),
    Item("overclaim", -1, "claims Muon is better (or worse) on a gap within the seed spread"),
])


# Points: public 4 (newton_schulz/wide, muon/adjust_lr, muon/first_steps, experiment/split),
# hidden 16; tests/test_hw4.py checks this. Written, graded by hand: 11
# (newton_schulz/spectrum 4, muon/scale 3, experiment/comparison 4).
ASSIGNMENT = Assignment(seed=20250214, questions=[
    Question("newton_schulz", "The Newton-Schulz iteration", [
        Test("wide", ns_values, reference=ns_reference, points=1, rtol=NS_RTOL, atol=NS_ATOL,
             description="newton_schulz(G) of a 4 x 6 matrix, five quintic steps, as torch's "
                         "iteration in float64", inputs=WIDE),
        Test("tall", ns_values, reference=ns_reference, points=1, hidden=True, rtol=NS_RTOL,
             atol=NS_ATOL, inputs=_tall),
        Test("square", ns_values, reference=ns_reference, points=1, hidden=True, rtol=NS_RTOL,
             atol=NS_ATOL, inputs=_square),
        Test("steps", ns_values, reference=ns_reference, points=1, hidden=True, rtol=NS_RTOL,
             atol=NS_ATOL, inputs=_steps),
        Test("large_norm", ns_values, reference=ns_reference, points=1, hidden=True,
             rtol=NS_RTOL, atol=NS_ATOL, inputs=_large),
        Test("zero_matrix", ns_values, reference=ns_reference, points=1, hidden=True,
             rtol=NS_RTOL, atol=NS_ATOL, inputs=_zero),
    ], written=[SPECTRUM_ANSWER]),
    Question("muon", "A Muon step, as torch.optim.Muon", [
        Test("adjust_lr", lr_values, reference=lr_reference, points=1,
             description="adjusted_lr for tall, wide and square shapes, 'original' (the "
                         "default) and 'match_rms_adamw'", inputs=PUBLIC_LR),
        Test("first_steps", muon_run, reference=muon_run_reference, points=1,
             description="three steps on a wide and a tall matrix with the default flags",
             inputs=FIRST_STEPS),
        Test("adjust_lr_any", lr_values, reference=lr_reference, points=1, hidden=True,
             inputs=_lr_cases),
        Test("nesterov_off", muon_run, reference=muon_run_reference, points=1, hidden=True,
             inputs=_nesterov_off),
        Test("weight_decay", muon_run, reference=muon_run_reference, points=2, hidden=True,
             inputs=_weight_decay),
        Test("match_rms_adamw", muon_run, reference=muon_run_reference, points=1, hidden=True,
             inputs=_match_rms),
        Test("many_steps_state", muon_run, reference=muon_run_reference, points=2, hidden=True,
             inputs=_many_steps),
        Test("groups_and_missing_grads", muon_run, reference=muon_run_reference, points=1,
             hidden=True, inputs=_groups),
    ], written=[SCALE_ANSWER]),
    Question("experiment", "The singular values and Muon + AdamW on the digits", [
        Test("split", split_shapes, reference=split_reference, points=1,
             description="split_parameters(MLP(hidden=(32, 16))): the hidden weight matrices to "
                         "Muon, the output layer and the biases to AdamW",
             inputs={"hidden": [32, 16]}),
        Test("comparison_runs", experiment_reruns, reference=experiment_expected, points=2,
             hidden=True, rtol=0.0, atol=RESULTS_ATOL,
             description="RESULTS['runs'] holds both runs as your code computes them again: "
                         "their first epoch re-run, and one run whole on another seed",
             inputs=_reruns),
        Test("spectrum", spectrum_rerun, reference=spectrum_expected, points=1, hidden=True,
             rtol=0.0, atol=RESULTS_ATOL,
             description="RESULTS['spectrum'] is what spectrum_study computes again",
             inputs={"keys": SPECTRUM_KEYS}),
    ], written=[COMPARISON_ANSWER]),
])
