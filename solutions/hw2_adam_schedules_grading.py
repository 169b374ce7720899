"""Grading tests of Homework 2 (``hw2_adam_schedules.ipynb``): Adam, scheduled betas, results.

Probes run in the student's process: they build the student's optimizer on float64
parameters, feed it given gradients and return parameters and state, or read the
notebook's ``RESULTS`` and ``EXPLORATION``. References run in the grader, independent of
the solution notebook:

- ``MyAdam`` against ``torch.optim.Adam`` driven the same way (weight decay, AMSGrad,
  parameter groups, parameters without a gradient, closure, ``state_dict``);
- ``beta_schedule`` against ``coursekit.schedules.exponential_decay``;
- ``ScheduledAdam`` against ``torch.optim.Adam`` when ``k = 0``, and otherwise against
  its recursion written out below in NumPy (epoch ``(t - 1) // steps_per_epoch``, bias
  corrections ``1 - prod(beta)``);
- the results against their specification (every run present, one finite value per
  epoch, accuracies in [0, 1], our Adam's curve equal to torch's).
"""

import copy

import numpy as np
import torch

from coursekit.grading import Assignment, Question, Test, probe
from coursekit.schedules import exponential_decay

COMPARISON = ["adam_torch", "rmsprop", "adagrad", "adam_seed_schedule", "adam_gentle_schedule",
              "adam_ours"]
ORDERS = ["p2", "p3", "p4"]


def _tensor(x):
    return torch.tensor(np.asarray(x), dtype=torch.float64)


def _options(options):
    return {k: tuple(v) if k == "betas" else v for k, v in options.items()}


# Question 1: MyAdam against torch.optim.Adam ---------------------------------------


@probe
def adam_run(student, params, grads, has_grad, groups, options, report_state):
    """Build MyAdam on float64 copies of ``params`` (grouped as ``groups``), feed ``grads``."""
    import torch

    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    spec = [{"params": [tensors[i] for i in group["params"]],
             **{k: tuple(v) if k == "betas" else v for k, v in group["options"].items()}}
            for group in groups]
    betas = options.get("betas")
    defaults = dict(options, betas=tuple(betas)) if betas is not None else dict(options)
    optimizer = student["MyAdam"](spec, **defaults)
    for step, present in enumerate(has_grad):
        for i, tensor in enumerate(tensors):
            tensor.grad = torch.tensor(grads[i][step], dtype=torch.float64) if present[i] else None
        optimizer.step()
    result = {"params": [t.detach().numpy() for t in tensors]}
    if report_state:
        names = ["step", "exp_avg", "exp_avg_sq"]
        if defaults.get("amsgrad"):
            names.append("max_exp_avg_sq")
        result["state"] = [{name: np.asarray(torch.as_tensor(optimizer.state[t][name]),
                                             dtype=np.float64) for name in names}
                           for t in tensors]
    return result


def adam_run_reference(params, grads, has_grad, groups, options, report_state):
    """The same run with torch.optim.Adam."""
    tensors = [_tensor(p).requires_grad_() for p in params]
    spec = [{"params": [tensors[i] for i in group["params"]], **_options(group["options"])}
            for group in groups]
    optimizer = torch.optim.Adam(spec, **_options(options))
    for step, present in enumerate(has_grad):
        for i, tensor in enumerate(tensors):
            tensor.grad = _tensor(grads[i][step]) if present[i] else None
        optimizer.step()
    result = {"params": [t.detach().numpy() for t in tensors]}
    if report_state:
        names = ["step", "exp_avg", "exp_avg_sq"]
        if options.get("amsgrad"):
            names.append("max_exp_avg_sq")
        result["state"] = [{name: optimizer.state[t][name].numpy().astype(np.float64)
                            for name in names} for t in tensors]
    return result


def _adam_inputs(rng, *, steps, shapes=((4, 3), (3,)), skip=0.0, groups=None, **options):
    """Random parameters and gradients; ``skip`` is the chance a gradient is missing."""
    has_grad = rng.uniform(size=(steps, len(shapes))) >= skip
    has_grad[0] = True
    return {"params": [rng.normal(size=s) for s in shapes],
            "grads": [rng.normal(scale=rng.uniform(0.1, 3.0), size=(steps, *s)) for s in shapes],
            "has_grad": has_grad,
            "groups": groups or [{"params": list(range(len(shapes))), "options": {}}],
            "options": {"lr": rng.uniform(1e-3, 5e-2), "betas": [rng.uniform(0.6, 0.95),
                                                                  rng.uniform(0.9, 0.999)],
                        "eps": 1e-8, **options},
            "report_state": False}


def _many_steps(rng):
    return _adam_inputs(rng, steps=12)


def _state(rng):
    return {**_adam_inputs(rng, steps=7), "report_state": True}


def _weight_decay(rng):
    return _adam_inputs(rng, steps=10, weight_decay=rng.uniform(0.05, 0.5))


def _amsgrad(rng):
    # gradients that shrink make v fall below its running maximum, so the maximum matters
    inputs = {**_adam_inputs(rng, steps=10, amsgrad=True), "report_state": True}
    inputs["grads"] = [g * np.geomspace(3.0, 0.1, len(g)).reshape(-1, *[1] * (g.ndim - 1))
                       for g in inputs["grads"]]
    inputs["options"]["betas"][1] = 0.9
    return inputs


def _groups(rng):
    shapes = ((3, 2), (2,), (5,))
    groups = [{"params": [0, 1], "options": {}},
              {"params": [2], "options": {"lr": 0.2, "betas": [0.5, 0.8], "eps": 1e-6}}]
    return _adam_inputs(rng, steps=9, shapes=shapes, skip=0.3, groups=groups)


FIRST_STEPS = {"params": [np.array([0.5, -1.0, 2.0])],
               "grads": [np.array([[0.2, -0.4, 1.5], [0.1, 0.3, -2.0], [-0.5, 0.0, 0.7]])],
               "has_grad": np.ones((3, 1), dtype=bool),
               "groups": [{"params": [0], "options": {}}],
               "options": {"lr": 0.1}, "report_state": False}


@probe
def adam_contract(student, theta, grads, lr):
    """A torch optimizer: subclass, closure's loss returned, state_dict resumes exactly."""
    import copy

    import torch

    cls = student["MyAdam"]
    param = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    optimizer = cls([param], lr=lr)

    def closure():
        optimizer.zero_grad()
        loss = (param**2).sum()
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    for grad in grads[:-1]:
        param.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    saved = copy.deepcopy(optimizer.state_dict())
    twin = param.detach().clone().requires_grad_()
    resumed = cls([twin], lr=lr)
    resumed.load_state_dict(saved)
    for p, opt in ((param, optimizer), (twin, resumed)):
        p.grad = torch.tensor(grads[-1], dtype=torch.float64)
        opt.step()
    is_optimizer = isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)
    return {"is_a_torch_optimizer": is_optimizer,
            "closure_loss": float(loss.detach()), "continued": param.detach().numpy(),
            "resumed_from_state_dict": twin.detach().numpy()}


def adam_contract_reference(theta, grads, lr):
    param = _tensor(theta).requires_grad_()
    optimizer = torch.optim.Adam([param], lr=lr)

    def closure():
        optimizer.zero_grad()
        loss = (param**2).sum()
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    for grad in grads[:-1]:
        param.grad = _tensor(grad)
        optimizer.step()
    saved = copy.deepcopy(optimizer.state_dict())
    twin = param.detach().clone().requires_grad_()
    resumed = torch.optim.Adam([twin], lr=lr)
    resumed.load_state_dict(saved)
    for p, opt in ((param, optimizer), (twin, resumed)):
        p.grad = _tensor(grads[-1])
        opt.step()
    return {"is_a_torch_optimizer": True, "closure_loss": float(loss.detach()),
            "continued": param.detach().numpy(), "resumed_from_state_dict": twin.detach().numpy()}


@probe
def adam_rejects(student, cases):
    """What MyAdam does with each invalid hyperparameter: the exception's name, or 'accepted'."""
    import torch

    outcome = {}
    for label, options in cases.items():
        param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        options = {k: tuple(v) if k == "betas" else v for k, v in options.items()}
        try:
            student["MyAdam"]([param], **options)
        except Exception as exc:
            outcome[label] = type(exc).__name__
        else:
            outcome[label] = "accepted"
    return outcome


def adam_rejects_reference(cases):
    outcome = {}
    for label, options in cases.items():
        try:
            torch.optim.Adam([torch.zeros(2, requires_grad=True)], **_options(options))
        except Exception as exc:
            outcome[label] = type(exc).__name__
        else:
            outcome[label] = "accepted"
    return outcome


BAD_HYPERPARAMETERS = {"cases": {
    "lr=-0.001": {"lr": -1e-3},
    "eps=-1e-8": {"eps": -1e-8},
    "weight_decay=-0.1": {"weight_decay": -0.1},
    "betas=(1.0, 0.999)": {"betas": [1.0, 0.999]},
    "betas=(0.9, -0.1)": {"betas": [0.9, -0.1]},
}}


# Question 2: the beta schedule and ScheduledAdam -------------------------------------


@probe
def schedule_values(student, beta, t, k):
    """beta_schedule(beta, t_i, k) for each t_i (k=None: the default k)."""
    schedule = student["beta_schedule"]
    values = [schedule(beta, ti) if k is None else schedule(beta, ti, k) for ti in t]
    return np.array([float(v) for v in values])


def schedule_reference(beta, t, k):
    return np.array([float(exponential_decay(ti, lr0=beta, k=1.0 if k is None else k))
                     for ti in t])


def _schedule_inputs(rng):
    return {"beta": rng.uniform(0.5, 0.999), "t": [0, 1, 2, 3, 7, 0.5, 12.25],
            "k": rng.uniform(0.01, 2.0)}


@probe
def scheduled_run(student, params, grads, options, k, steps_per_epoch):
    """ScheduledAdam(k, steps_per_epoch) on float64 copies of ``params``, fed ``grads``."""
    import torch

    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    options = {key: tuple(v) if key == "betas" else v for key, v in options.items()}
    optimizer = student["ScheduledAdam"](tensors, **options, k=k, steps_per_epoch=steps_per_epoch)
    for step in range(len(grads[0])):
        for tensor, grad in zip(tensors, grads, strict=True):
            tensor.grad = torch.tensor(grad[step], dtype=torch.float64)
        optimizer.step()
    return {"params": [t.detach().numpy() for t in tensors]}


def scheduled_torch_reference(params, grads, options, k, steps_per_epoch):
    """With k = 0 the betas never move: torch.optim.Adam."""
    assert k == 0
    steps = len(grads[0])
    run = adam_run_reference(params, grads, np.ones((steps, len(params)), dtype=bool),
                             [{"params": list(range(len(params))), "options": {}}], options,
                             report_state=False)
    return {"params": run["params"]}


def scheduled_recursion_reference(params, grads, options, k, steps_per_epoch):
    """The scheduled-betas Adam written out: epoch (t-1)//n, betas * e^(-k epoch),
    bias corrections 1 - prod(betas so far), L2 weight decay as torch's Adam."""
    lr, (beta1, beta2) = options["lr"], options.get("betas", (0.9, 0.999))
    eps, weight_decay = options.get("eps", 1e-8), options.get("weight_decay", 0.0)
    out = []
    for theta, g_all in zip(params, grads, strict=True):
        theta = np.array(theta, dtype=np.float64)
        m, v = np.zeros_like(theta), np.zeros_like(theta)
        product1 = product2 = 1.0
        for t, g in enumerate(g_all, start=1):
            epoch = (t - 1) // steps_per_epoch
            b1, b2 = beta1 * np.exp(-k * epoch), beta2 * np.exp(-k * epoch)
            g = g + weight_decay * theta
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            product1, product2 = product1 * b1, product2 * b2
            theta = theta - lr * (m / (1 - product1)) / (np.sqrt(v / (1 - product2)) + eps)
        out.append(theta)
    return {"params": out}


def _scheduled_inputs(rng):
    steps = 11
    shapes = ((3, 2), (4,))
    return {"params": [rng.normal(size=s) for s in shapes],
            "grads": [rng.normal(size=(steps, *s)) for s in shapes],
            "options": {"lr": rng.uniform(1e-3, 5e-2),
                        "betas": [rng.uniform(0.8, 0.95), rng.uniform(0.95, 0.999)],
                        "eps": 1e-8},
            "k": rng.uniform(0.2, 1.5), "steps_per_epoch": 3}


NO_DECAY = {"params": [np.array([1.0, -0.5]), np.array([[0.3], [2.0]])],
            "grads": [np.array([[0.5, -1.0], [0.2, 0.1], [-0.3, 0.8], [1.5, -0.2], [0.0, 0.4]]),
                      np.array([[[1.0], [-2.0]], [[0.5], [0.5]], [[-1.0], [0.2]],
                                [[0.3], [0.3]], [[2.0], [-0.1]]])],
            "options": {"lr": 0.05, "betas": [0.9, 0.99]}, "k": 0.0, "steps_per_epoch": 2}


# Question 3: the experiments' results -------------------------------------------------


@probe
def comparison_summary(student, dataset, names):
    """For each required run: one finite value per epoch, accuracies in [0, 1]."""
    results = student["RESULTS"]
    if dataset not in results:
        raise KeyError(f"RESULTS has no {dataset!r} (it has {sorted(results)})")
    epochs, runs = results[dataset]["epochs"], results[dataset]["runs"]
    summary = {}
    for name in names:
        if name not in runs:
            raise KeyError(f"RESULTS[{dataset!r}]['runs'] has no {name!r} (it has {sorted(runs)})")
        run = runs[name]
        train_loss = np.asarray(run["train_loss"], dtype=np.float64)
        valid_acc = np.asarray(run["valid_acc"], dtype=np.float64)
        batch_loss = np.asarray(run["batch_loss"], dtype=np.float64)
        per_seed = np.asarray(run["test_acc_per_seed"], dtype=np.float64)
        accuracy = float(run["test_acc"])
        summary[name] = {
            "one_train_loss_per_epoch": train_loss.shape == (epochs,),
            "one_valid_acc_per_epoch": valid_acc.shape == (epochs,),
            "batch_losses_recorded": batch_loss.ndim == 1 and batch_loss.size >= epochs,
            "curves_finite": bool(np.isfinite(train_loss).all() and np.isfinite(valid_acc).all()
                                  and np.isfinite(batch_loss).all()),
            "test_acc_per_seed_in_0_1": bool(per_seed.size >= 1 and np.all(per_seed >= 0)
                                             and np.all(per_seed <= 1)),
            "test_acc_is_their_mean": bool(per_seed.size >= 1
                                           and abs(accuracy - per_seed.mean()) <= 1e-9),
        }
    return summary


def comparison_reference(dataset, names):
    fields = ["one_train_loss_per_epoch", "one_valid_acc_per_epoch", "batch_losses_recorded",
              "curves_finite", "test_acc_per_seed_in_0_1", "test_acc_is_their_mean"]
    return {name: dict.fromkeys(fields, True) for name in names}


@probe
def ours_matches_torch(student, dataset):
    """MyAdam and torch's Adam at the same rate from the same seed: the same training curve."""
    runs = student["RESULTS"][dataset]["runs"]
    ours, theirs = runs["adam_ours"], runs["adam_torch"]
    a = np.asarray(ours["train_loss"], dtype=np.float64)
    b = np.asarray(theirs["train_loss"], dtype=np.float64)
    return {"same_lr": float(ours["lr"]) == float(theirs["lr"]),
            "same_train_loss": bool(a.shape == b.shape and np.allclose(a, b, rtol=1e-3, atol=1e-6))}


def ours_matches_torch_reference(dataset):
    return {"same_lr": True, "same_train_loss": True}


@probe
def exploration_summary(student, dataset, orders):
    """The higher-moment runs (one finite value per epoch) and the skewness measurements."""
    exploration = student["EXPLORATION"][dataset]
    epochs = student["RESULTS"][dataset]["epochs"]
    summary = {}
    for name in orders:
        run = exploration["runs"][name]
        train_loss = np.asarray(run["train_loss"], dtype=np.float64)
        accuracy = float(run["test_acc"])
        summary[name] = {"one_finite_train_loss_per_epoch": train_loss.shape == (epochs,)
                         and bool(np.isfinite(train_loss).all()),
                         "test_acc_in_0_1": 0.0 <= accuracy <= 1.0}
    for where in ("init", "trained"):
        stats = exploration["skewness"][where]
        values = [float(stats[key]) for key in ("per_example", "minibatch", "predicted_minibatch")]
        summary[where] = {"skewness_finite_and_nonnegative":
                          all(np.isfinite(value) and value >= 0 for value in values)}
    return summary


def exploration_reference(dataset, orders):
    summary = {name: {"one_finite_train_loss_per_epoch": True, "test_acc_in_0_1": True}
               for name in orders}
    for where in ("init", "trained"):
        summary[where] = {"skewness_finite_and_nonnegative": True}
    return summary


ASSIGNMENT = Assignment(seed=20240501, questions=[
    Question("adam", "Adam from scratch, as torch.optim.Adam", [
        Test("torch_contract", adam_contract, reference=adam_contract_reference, points=1,
             description="a torch.optim.Optimizer: step(closure) returns the loss, "
                         "state_dict() resumes exactly",
             inputs={"theta": np.array([1.0, -2.0, 0.5]),
                     "grads": np.array([[0.3, -0.1, 2.0], [0.1, 0.4, -0.2], [-1.0, 0.5, 0.5]]),
                     "lr": 0.1}),
        Test("bad_hyperparameters", adam_rejects, reference=adam_rejects_reference, points=1,
             description="ValueError for a negative lr, eps or weight_decay and betas outside "
                         "[0, 1)", inputs=BAD_HYPERPARAMETERS),
        Test("first_steps", adam_run, reference=adam_run_reference, points=1,
             description="three steps with the default flags from a fresh state",
             inputs=FIRST_STEPS),
        Test("many_steps", adam_run, reference=adam_run_reference, points=1, hidden=True,
             inputs=_many_steps),
        Test("state", adam_run, reference=adam_run_reference, points=1, hidden=True,
             inputs=_state),
        Test("weight_decay", adam_run, reference=adam_run_reference, points=2, hidden=True,
             inputs=_weight_decay),
        Test("amsgrad", adam_run, reference=adam_run_reference, points=2, hidden=True,
             inputs=_amsgrad),
        Test("groups_and_missing_grads", adam_run, reference=adam_run_reference, points=1,
             hidden=True, inputs=_groups),
    ]),
    Question("schedule", "Scheduled betas", [
        Test("seed_form", schedule_values, reference=schedule_reference, points=1,
             description="beta_schedule(0.9, t) with the default k = 1 for t = 0, 1, 2, 5",
             inputs={"beta": 0.9, "t": [0, 1, 2, 5], "k": None}),
        Test("any_k", schedule_values, reference=schedule_reference, points=1, hidden=True,
             inputs=_schedule_inputs),
        Test("no_decay_is_adam", scheduled_run, reference=scheduled_torch_reference, points=1,
             description="ScheduledAdam with k = 0 takes torch.optim.Adam's steps",
             inputs=NO_DECAY),
        Test("per_epoch_steps", scheduled_run, reference=scheduled_recursion_reference,
             points=2, hidden=True, inputs=_scheduled_inputs),
    ]),
    Question("experiment", "Results of the comparison and the exploration", [
        Test("comparison_runs", comparison_summary, reference=comparison_reference, points=2,
             description="RESULTS['digits'] holds every run with one finite value per epoch and "
                         "test accuracies in [0, 1]",
             inputs={"dataset": "digits", "names": COMPARISON}),
        Test("ours_matches_torch", ours_matches_torch, reference=ours_matches_torch_reference,
             points=1, description="adam_ours ran at adam_torch's rate and its training loss "
                                   "matches torch's to 1e-3",
             inputs={"dataset": "digits"}),
        Test("exploration_runs", exploration_summary, reference=exploration_reference, points=2,
             description="EXPLORATION['digits'] holds the p2, p3, p4 runs and finite skewness "
                         "measurements", inputs={"dataset": "digits", "orders": ORDERS}),
    ]),
])
