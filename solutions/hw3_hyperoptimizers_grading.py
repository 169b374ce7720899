"""Grading tests of Homework 3, hyperoptimizers and clipping (``hw3_hyperoptimizers.ipynb``).

Probes run in the student's process and call the notebook's functions on a
small logistic-regression problem, ``f(w) = mean(log(1 + exp(-y * X w)))`` with
labels ``y = +-1``, whose gradient they compute in NumPy. The references run in
the grader and never use the solution's code:

- hypergradient values: a central difference of the one-step-ahead loss
  ``a -> f(w_prev - a * u_prev)`` at ``a = alpha`` (``u_prev`` the previous
  step's direction: the previous gradient for SGD, Adam's ``m_hat / (sqrt(v_hat)
  + eps)`` for Adam), with the loss written with torch's ``softplus``;
- whole runs: ``coursekit.optim.hyper`` stacks (``SGD / SGD(kappa)``,
  ``Adam^alpha / SGD(kappa)``), which get their hypergradients from autograd;
- Adam's direction: ``torch.optim.Adam`` with ``lr = 1`` started from the same state;
- the clipping rule: ``coursekit.optim.clip.RunningMeanClip``.

The experiment question checks that ``RESULTS`` holds the required numbers, as
finite percentages, not their values (they depend on the data and the machine).
"""

import math

import numpy as np
import torch

from coursekit.grading import Assignment, Question, Test, probe
from coursekit.optim import clip, hyper

FINITE_DIFFERENCE_STEP = 1e-5
TABLE_ROWS = ["SGD", "SGD / SGD", "SGD, learned alpha", "Adam", "Adam^alpha / SGD",
              "Adam, learned alpha", "Adam / SGD"]


def _tensor(x):
    return torch.tensor(x, dtype=torch.float64)


def _loss(X, y, w):
    """The logistic loss in torch: mean(softplus(-y * X w))."""
    return torch.nn.functional.softplus(-_tensor(y) * (_tensor(X) @ w)).mean()


def _one_step_ahead_slope(X, y, w_prev, direction, alpha):
    """d/da f(w_prev - a * direction) at a = alpha, by a central difference."""
    h = FINITE_DIFFERENCE_STEP
    w_prev, direction = _tensor(w_prev), _tensor(direction)
    ahead = _loss(X, y, w_prev - (alpha + h) * direction)
    behind = _loss(X, y, w_prev - (alpha - h) * direction)
    return ((ahead - behind) / (2 * h)).item()


def _gradient(X, y, w):
    """The logistic loss's gradient by autograd (for inputs the grader derives)."""
    w = _tensor(w).requires_grad_()
    _loss(X, y, w).backward()
    return w.grad.numpy()


def _adam_direction(m, v, t, beta1, beta2, eps):
    """m_hat / (sqrt(v_hat) + eps) after t steps, written out (to build consistent inputs)."""
    return (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)


def _train_stack(stack, X, y, w0, steps):
    """Run a hyper-optimizer stack on the logistic loss; the bottom level's alphas and w."""
    w = torch.nn.Parameter(_tensor(w0))
    wrapper = hyper.ModuleWrapper([w], stack)
    for _ in range(steps):
        wrapper.zero_grad()
        _loss(X, y, w).backward()
        wrapper.step()
    return {"alpha": np.array(stack.history["alpha"]), "w": w.detach().numpy()}


def _logistic_problem(rng, n=24, d=5):
    X = rng.normal(size=(n, d))
    y = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    return X, y


FIXED_X = np.array([[1.0, -0.5, 0.3], [0.2, 1.5, -1.0], [-0.7, 0.4, 0.9], [1.2, 0.1, -0.3],
                    [-0.4, -1.1, 0.6], [0.8, 0.9, 0.2]])
FIXED_Y = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
FIXED_W = np.array([0.3, -0.2, 0.5])


# Question 1: SGD / SGD by hand --------------------------------------------------

@probe
def sgd_hypergradient_value(student, X, y, w_prev, alpha):
    """Take one SGD step from w_prev, then ask the student's sgd_hypergradient for
    d f(w_t) / d alpha at the new point."""
    def gradient(w):
        return -X.T @ (y / (1.0 + np.exp(y * (X @ w)))) / len(y)

    prev_grad = gradient(w_prev)
    w = w_prev - alpha * prev_grad
    return {"hypergradient": float(student["sgd_hypergradient"](gradient(w), prev_grad))}


def sgd_hypergradient_reference(X, y, w_prev, alpha):
    direction = _gradient(X, y, w_prev)
    return {"hypergradient": _one_step_ahead_slope(X, y, w_prev, direction, alpha)}


@probe
def sgd_sgd_run(student, X, y, w0, alpha, kappa, steps):
    """Train with the student's sgd_sgd_step; the alpha used at every step and the final w."""
    step = student["sgd_sgd_step"]
    w, prev_grad, alphas = np.array(w0, dtype=float), None, []
    for _ in range(steps):
        grad = -X.T @ (y / (1.0 + np.exp(y * (X @ w)))) / len(y)
        w, alpha = step(w, grad, prev_grad, alpha, kappa)
        prev_grad = grad
        alphas.append(float(alpha))
    return {"alpha": np.array(alphas), "w": np.asarray(w, dtype=float)}


def sgd_sgd_reference(X, y, w0, alpha, kappa, steps):
    return _train_stack(hyper.SGD(alpha, optimizer=hyper.SGD(kappa)), X, y, w0, steps)


def random_sgd_hypergradient_inputs(rng):
    X, y = _logistic_problem(rng)
    return {"X": X, "y": y, "w_prev": rng.normal(size=X.shape[1]),
            "alpha": float(rng.uniform(0.05, 1.0))}


def random_sgd_run_inputs(rng):
    X, y = _logistic_problem(rng)
    return {"X": X, "y": y, "w0": rng.normal(size=X.shape[1]),
            "alpha": float(rng.uniform(0.05, 0.5)), "kappa": float(rng.uniform(0.05, 0.5)),
            "steps": int(rng.integers(8, 15))}


# Question 2: Adam^alpha / SGD by hand ---------------------------------------------

@probe
def adam_direction_value(student, grad, m, v, t, beta1, beta2, eps):
    """The student's adam_direction for step t from moments (m, v)."""
    direction, m, v = student["adam_direction"](grad, m, v, t, beta1=beta1, beta2=beta2, eps=eps)
    return {"direction": np.asarray(direction, dtype=float), "m": np.asarray(m, dtype=float),
            "v": np.asarray(v, dtype=float)}


def adam_direction_reference(grad, m, v, t, beta1, beta2, eps):
    """torch.optim.Adam with lr = 1 from w = 0 after t - 1 steps: the step is -direction."""
    param = torch.nn.Parameter(torch.zeros(len(grad), dtype=torch.float64))
    optimizer = torch.optim.Adam([param], lr=1.0, betas=(beta1, beta2), eps=eps)
    optimizer.state[param].update(step=torch.tensor(float(t - 1)), exp_avg=_tensor(m),
                                  exp_avg_sq=_tensor(v))
    param.grad = _tensor(grad)
    optimizer.step()
    state = optimizer.state[param]
    return {"direction": -param.detach().numpy(), "m": state["exp_avg"].numpy(),
            "v": state["exp_avg_sq"].numpy()}


@probe
def adam_hypergradient_value(student, X, y, w_prev, direction, m, v, t, alpha, kappa, beta1,
                             beta2, eps):
    """One adam_sgd_step from a mid-training state whose last step was w_prev -> w_prev -
    alpha * direction; the hypergradient it used, read off its change of alpha."""
    w = w_prev - alpha * direction
    grad = -X.T @ (y / (1.0 + np.exp(y * (X @ w)))) / len(y)
    state = {"t": t, "m": np.array(m), "v": np.array(v), "direction": np.array(direction)}
    _, new_alpha, _ = student["adam_sgd_step"](w, grad, state, alpha, kappa, beta1=beta1,
                                               beta2=beta2, eps=eps)
    return {"hypergradient": (alpha - float(new_alpha)) / kappa}


def adam_hypergradient_reference(X, y, w_prev, direction, m, v, t, alpha, kappa, beta1, beta2,
                                 eps):
    return {"hypergradient": _one_step_ahead_slope(X, y, w_prev, direction, alpha)}


@probe
def adam_sgd_run(student, X, y, w0, alpha, kappa, beta1, beta2, eps, steps):
    """Train with the student's adam_sgd_step from a fresh state."""
    step = student["adam_sgd_step"]
    w = np.array(w0, dtype=float)
    state = {"t": 0, "m": np.zeros_like(w), "v": np.zeros_like(w), "direction": None}
    alphas = []
    for _ in range(steps):
        grad = -X.T @ (y / (1.0 + np.exp(y * (X @ w)))) / len(y)
        w, alpha, state = step(w, grad, state, alpha, kappa, beta1=beta1, beta2=beta2, eps=eps)
        alphas.append(float(alpha))
    return {"alpha": np.array(alphas), "w": np.asarray(w, dtype=float)}


def adam_sgd_reference(X, y, w0, alpha, kappa, beta1, beta2, eps, steps):
    stack = hyper.AdamAlpha(alpha, beta1, beta2, eps, optimizer=hyper.SGD(kappa))
    return _train_stack(stack, X, y, w0, steps)


def random_adam_state(rng, dim=6):
    t = int(rng.integers(2, 40))
    return {"grad": rng.normal(size=dim), "m": 0.1 * rng.normal(size=dim),
            "v": 0.1 * rng.uniform(0.01, 1.0, size=dim), "t": t,
            "beta1": float(rng.uniform(0.8, 0.95)), "beta2": float(rng.uniform(0.9, 0.999)),
            "eps": 1e-8}


def random_adam_hypergradient_inputs(rng):
    X, y = _logistic_problem(rng)
    d = X.shape[1]
    beta1, beta2, eps = float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.9, 0.999)), 1e-8
    t = int(rng.integers(2, 30))
    m, v = 0.1 * rng.normal(size=d), 0.01 * rng.uniform(0.1, 1.0, size=d)
    return {"X": X, "y": y, "w_prev": rng.normal(size=d),
            "direction": _adam_direction(m, v, t, beta1, beta2, eps), "m": m, "v": v, "t": t,
            "alpha": float(rng.uniform(0.01, 0.2)), "kappa": float(rng.uniform(1e-3, 1e-2)),
            "beta1": beta1, "beta2": beta2, "eps": eps}


def random_adam_run_inputs(rng):
    X, y = _logistic_problem(rng)
    return {"X": X, "y": y, "w0": rng.normal(size=X.shape[1]),
            "alpha": float(rng.uniform(0.01, 0.1)), "kappa": float(rng.uniform(1e-3, 1e-2)),
            "beta1": float(rng.uniform(0.8, 0.95)), "beta2": float(rng.uniform(0.95, 0.999)),
            "eps": 1e-8, "steps": int(rng.integers(8, 15))}


# Question 3: running-mean clipping ------------------------------------------------

@probe
def clip_sequence(student, first, second):
    """Feed step k's gradients [first[k], second[k]] (a matrix and a vector) to one
    RunningMeanClipper; return each step's clipped gradients, flattened and joined."""
    import torch

    clipper = student["RunningMeanClipper"]()
    rows = []
    for a, b in zip(first, second, strict=True):
        clipped = clipper([torch.tensor(a), torch.tensor(b)])
        rows.append(np.concatenate([np.asarray(torch.as_tensor(c).detach().cpu(),
                                               dtype=float).ravel() for c in clipped]))
    return np.stack(rows)


def clip_reference(first, second):
    clipper = clip.RunningMeanClip()
    rows = []
    for a, b in zip(first, second, strict=True):
        clipped = clipper([_tensor(a), _tensor(b)])
        rows.append(torch.cat([c.flatten() for c in clipped]).numpy())
    return np.stack(rows)


def gradients_with_norms(rng, norms):
    """Per step a (3, 4) matrix and a (4,) vector whose joint norm is ``norms[k]``."""
    first = rng.normal(size=(len(norms), 3, 4))
    second = rng.normal(size=(len(norms), 4))
    joint = np.sqrt((first**2).sum(axis=(1, 2)) + (second**2).sum(axis=1))
    scale = np.asarray(norms, dtype=float) / joint
    return {"first": first * scale[:, None, None], "second": second * scale[:, None]}


def random_norms(rng, steps, spikes):
    """Norms around 1 with ``spikes`` explosions (x5 to x50) after the first step."""
    norms = np.exp(rng.normal(0.0, 0.5, size=steps))
    where = rng.choice(np.arange(1, steps), size=spikes, replace=False)
    norms[where] *= rng.uniform(5.0, 50.0, size=spikes)
    return norms


def random_clip_inputs(rng):
    return gradients_with_norms(rng, random_norms(rng, steps=15, spikes=3))


def random_clip_inputs_with_zero(rng):
    """A zero gradient at step 4, an explosion at step 6 (after it)."""
    norms = np.exp(rng.normal(0.0, 0.5, size=10))
    norms[3] = 0.0
    norms[5] *= rng.uniform(5.0, 50.0)
    return gradients_with_norms(rng, norms)


# Question 4: the experiments -------------------------------------------------------

@probe
def results_table(student, rows):
    """Per required row of RESULTS["table"]: is it there, as a finite percentage?"""
    table = student["RESULTS"]["table"]
    present = {}
    for row in rows:
        value = float(table[row]) if row in table else math.nan
        present[row] = math.isfinite(value) and 0.0 <= value <= 100.0
    return present


def results_table_reference(rows):
    return dict.fromkeys(rows, True)


@probe
def results_sweep(student, min_points):
    """Shapes and ranges of RESULTS["sweep"]."""
    sweep = student["RESULTS"]["sweep"]
    kappa = np.asarray(sweep["kappa"], dtype=float)
    checks = {"kappa": bool(kappa.ndim == 1 and len(kappa) >= min_points
                            and np.all(kappa > 0) and np.all(np.diff(kappa) > 0))}
    for key in ("no_clip", "clip"):
        errors = np.asarray(sweep[key], dtype=float)
        checks[key] = bool(errors.shape == kappa.shape and np.all(np.isfinite(errors))
                           and np.all((errors >= 0) & (errors <= 100)))
    baseline = float(sweep["baseline"])
    checks["baseline"] = math.isfinite(baseline) and 0.0 <= baseline <= 100.0
    return checks


def results_sweep_reference(min_points):
    return {"kappa": True, "no_clip": True, "clip": True, "baseline": True}


@probe
def results_hand_check(student, tolerance):
    """Do the by-hand alphas follow coursekit's autograd stacks on the network?"""
    check = student["RESULTS"]["hand_check"]
    return {key: bool(float(check[key]) <= tolerance) for key in ("sgd", "adam")}


def results_hand_check_reference(tolerance):
    return {"sgd": True, "adam": True}


PUBLIC_CLIP = gradients_with_norms(np.random.default_rng(3), [1.0, 3.0, 1.8, 0.5, 10.0])

ASSIGNMENT = Assignment(seed=20250302, questions=[
    Question("sgd_sgd", "SGD / SGD: the hypergradient by hand", [
        Test("hypergradient", sgd_hypergradient_value, reference=sgd_hypergradient_reference,
             points=1, atol=1e-9,
             description="d f(w_t)/d alpha after one SGD step, against a central difference",
             inputs={"X": FIXED_X, "y": FIXED_Y, "w_prev": FIXED_W, "alpha": 0.5}),
        Test("hypergradient_random", sgd_hypergradient_value,
             reference=sgd_hypergradient_reference, points=1, hidden=True, atol=1e-9,
             inputs=random_sgd_hypergradient_inputs),
        Test("short_run", sgd_sgd_run, reference=sgd_sgd_reference, points=1,
             description="3 steps of SGD / SGD (alpha fixed at the first step) against "
                         "coursekit.optim.hyper",
             inputs={"X": FIXED_X, "y": FIXED_Y, "w0": FIXED_W, "alpha": 0.1, "kappa": 0.2,
                     "steps": 3}),
        Test("long_run", sgd_sgd_run, reference=sgd_sgd_reference, points=2, hidden=True,
             inputs=random_sgd_run_inputs),
    ]),
    Question("adam_sgd", "Adam^alpha / SGD: the hypergradient by hand", [
        Test("direction_first_step", adam_direction_value, reference=adam_direction_reference,
             points=1, description="Adam's direction and moments at t = 1 from zero moments",
             inputs={"grad": np.array([0.2, -0.4, 1.5, 0.0]), "m": np.zeros(4),
                     "v": np.zeros(4), "t": 1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
        Test("direction_later", adam_direction_value, reference=adam_direction_reference,
             points=1, hidden=True, inputs=random_adam_state),
        Test("hypergradient", adam_hypergradient_value, reference=adam_hypergradient_reference,
             points=1, hidden=True, atol=1e-9, inputs=random_adam_hypergradient_inputs),
        Test("short_run", adam_sgd_run, reference=adam_sgd_reference, points=1,
             description="3 steps of Adam^alpha / SGD against coursekit.optim.hyper",
             inputs={"X": FIXED_X, "y": FIXED_Y, "w0": FIXED_W, "alpha": 0.05, "kappa": 0.01,
                     "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "steps": 3}),
        Test("long_run", adam_sgd_run, reference=adam_sgd_reference, points=2, hidden=True,
             inputs=random_adam_run_inputs),
    ]),
    Question("clipping", "Running-mean gradient-norm clipping", [
        Test("short_sequence", clip_sequence, reference=clip_reference, points=1,
             description="5 steps with norms 1, 3, 1.8, 0.5, 10 (two tensors per step)",
             inputs=PUBLIC_CLIP),
        Test("sequence", clip_sequence, reference=clip_reference, points=2, hidden=True,
             inputs=random_clip_inputs),
        Test("zero_gradient", clip_sequence, reference=clip_reference, points=1, hidden=True,
             inputs=random_clip_inputs_with_zero),
    ]),
    Question("results", "The experiments' results", [
        Test("table", results_table, reference=results_table_reference, points=1,
             description="RESULTS['table'] has every required row as a test error in percent",
             inputs={"rows": TABLE_ROWS}),
        Test("sweep", results_sweep, reference=results_sweep_reference, points=1,
             description="RESULTS['sweep']: increasing kappas and finite errors with and "
                         "without clipping",
             inputs={"min_points": 5}),
        Test("hand_check", results_hand_check, reference=results_hand_check_reference,
             points=1,
             description="RESULTS['hand_check']: your alphas follow coursekit's on the network",
             inputs={"tolerance": 1e-6}),
    ]),
])
