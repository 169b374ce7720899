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
- the results against a re-run: the probes train again, in the student's process and
  with the student's optimizers and the prescribed seeds, part of every reported run and
  return the re-run minus the reported numbers, which must be zero (see Question 3);
  our Adam's reported curve must also equal torch's to 1e-3.

Points: 20 in all, 5 on public tests and 15 on hidden ones. Public tests ship with the
homework, inputs and expected values included, so a notebook could recognise them;
hidden tests carry the majority of the points (issue 24). The written answers, Questions
2a and 2b (``schedule/betas``, ``schedule/bias``, 3 points each), 3 and 4
(``experiment/comparison``, 4, ``experiment/moments``, 3), add 13 points, graded by hand
with the rubrics below: the homework is worth 33.
"""

import copy

import numpy as np
import torch

from coursekit.grading import Assignment, Item, Question, Test, Written, probe
from coursekit.schedules import exponential_decay


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
#
# The grader runs the notebook from the top in CI mode (COURSEKIT_FAST=1: the digits, 10
# epochs; one CPU thread, no GPU), so RESULTS and EXPLORATION hold what the notebook's own
# cells computed there. These tests check where the numbers came from: the probe trains
# again, in the student's process, part of each reported run, with the notebook's
# train_once, the student's optimizers (OPTIMIZERS, MyAdam, HigherMomentAdam), the seeds,
# epochs and batch size the homework prescribes and the learning rate the record reports;
# it returns the re-run minus the reported numbers, which the grader compares with zero.
# Numbers typed in, copied or edited after the run do not match a re-run. Every record's
# first one or two epochs are re-run (the batch losses, training losses and validation
# accuracies), and one record whole, on SEEDS[0] and one other seed (its test accuracies,
# those seeds' entries of train_loss_per_seed and valid_acc_per_seed, and its entry of
# valid_acc_per_lr). Wall-clock seconds cannot be re-run: only their
# signs are compared (+1: positive). The learning-rate search itself is not re-run (all
# its candidates, 10 epochs each, would take seconds per optimizer).
#
# Tolerance, from measured run-to-run differences: the re-run happens in the same process,
# on the same machine and with the same float32 torch code (one thread, fixed seeds) as
# the run that filled RESULTS. Measured on the solution run as the grader runs it (AMD EPYC,
# Python 3.11, torch 2.14): every record of RESULTS and EXPLORATION re-run whole (all seeds)
# and both skewness measurements, in two separate processes, and the tests' own hidden
# inputs for three seeds: every difference was exactly 0 (the ratio of MyAdam's curve to
# torch's, compared with rtol = 1e-3, was within 2.8e-7 of 1). RESULTS_ATOL = 1e-6 is about
# four float32 rounding steps of the largest loss (about 2.3), room for a platform whose
# kernels are not bitwise repeatable: these runs do not amplify rounding (a one-ulp change
# of every initial weight moved the batch losses of a 10-epoch Adam run by at most 1.2e-7
# and no accuracy, measured), while a number rounded to 4 significant digits, typed from a
# table, copied or scaled by 1.01 is off by far more.

COMPARISON = ["adam_torch", "rmsprop", "adagrad", "adam_seed_schedule", "adam_gentle_schedule",
              "adam_ours"]
ORDERS = ["p2", "p3", "p4"]
ADAM_LRS = [1e-3, 3e-3, 1e-2]
ADAGRAD_LRS = [1e-2, 3e-2, 1e-1]
SCHEDULE_LRS = [3e-3, 1e-2, 3e-2, 1e-1]
# The learning rates each run's search tried (adam_ours is not searched: it runs at the rate
# chosen for adam_torch); p2 is adam_torch's record.
GRIDS = {"adam_torch": ADAM_LRS, "rmsprop": ADAM_LRS, "adagrad": ADAGRAD_LRS,
         "adam_seed_schedule": SCHEDULE_LRS, "adam_gentle_schedule": SCHEDULE_LRS,
         "adam_ours": None,
         "p2": ADAM_LRS, "p3": ADAM_LRS, "p4": ADAM_LRS}
# The notebook's settings in CI mode, as the grader runs it (21 = STEPS_PER_EPOCH).
PRESCRIBED = {"dataset": "digits", "seeds": [0, 1, 2], "epochs": 10, "batch_size": 64,
              "steps_per_epoch": 21}
RESULTS_ATOL = 1e-6
SKEWNESS = ["per_example", "minibatch", "predicted_minibatch", "share_per_example_above_1"]


@probe
def experiment_reruns(student, dataset, seeds, epochs, batch_size, steps_per_epoch, names,
                      grids, prefix_epochs, full, other_seed, skewness, ours_vs_torch):
    """Re-run the first ``prefix_epochs`` epochs of each record in ``names`` (and all of
    ``full``'s, on seeds[0] and seeds[other_seed]); the re-run minus the reported numbers."""
    import torch

    import coursekit
    from coursekit.models import MLP

    data = student["DATA"][dataset]
    runs = student["RESULTS"][dataset]["runs"]
    explored = student["EXPLORATION"][dataset]

    def record(name):
        rec = explored["runs"][name] if name in ("p2", "p3", "p4") else runs[name]
        missing = [key for key in ("batch_loss", "train_loss", "valid_acc", "test_acc",
                                   "test_acc_per_seed", "train_loss_per_seed",
                                   "valid_acc_per_seed", "seconds", "lr") if key not in rec]
        if missing:
            raise KeyError(f"the record of {name!r} has no {', '.join(missing)}: "
                           f"tune_and_repeat (and repeat_at) return train_once's record "
                           f"extended with the keys Part 3 lists")
        return rec

    def factory(name):
        if name == "adam_ours":
            return lambda params, lr, steps: student["MyAdam"](params, lr=lr)
        if name in ("p3", "p4"):
            p = float(name[1:])
            return lambda params, lr, steps: student["HigherMomentAdam"](params, lr=lr, p=p)
        return student["OPTIMIZERS"]["adam_torch" if name == "p2" else name][0]

    def rate(name):
        return float(record("adam_torch" if name == "adam_ours" else name)["lr"])

    def rerun(name, seed, length):
        return student["train_once"](factory(name), data, rate(name), seed, length, batch_size)

    def gap(again, reported, length=None):
        again = np.asarray(again, dtype=np.float64)
        reported = np.asarray(reported, dtype=np.float64)
        return again - reported[:len(again) if length is None else length]

    report = {"runs": {}}
    for name in names:
        rec, again = record(name), rerun(name, seeds[0], prefix_epochs)
        report["runs"][name] = {
            "lengths": [len(rec["batch_loss"]), len(rec["train_loss"]), len(rec["valid_acc"]),
                        len(rec["test_acc_per_seed"]), len(rec["train_loss_per_seed"]),
                        len(rec["valid_acc_per_seed"])],
            "batch_loss": gap(again["batch_loss"], rec["batch_loss"]),
            "train_loss": gap(again["train_loss"], rec["train_loss"]),
            "valid_acc": gap(again["valid_acc"], rec["valid_acc"]),
            "seconds_sign": float(np.sign(float(rec["seconds"]))),
            "test_acc_minus_mean_of_seeds": float(rec["test_acc"])
            - float(np.mean(np.asarray(rec["test_acc_per_seed"], dtype=np.float64))),
        }
    if full is not None:
        rec = record(full)
        first, other = rerun(full, seeds[0], epochs), rerun(full, seeds[other_seed], epochs)
        per_seed = np.asarray(rec["test_acc_per_seed"], dtype=np.float64)
        report["full"] = {
            "batch_loss": gap(first["batch_loss"], rec["batch_loss"]),
            "train_loss": gap(first["train_loss"], rec["train_loss"]),
            "valid_acc": gap(first["valid_acc"], rec["valid_acc"]),
            "test_acc_per_seed": [float(first["test_acc"]) - per_seed[0],
                                  float(other["test_acc"]) - per_seed[other_seed]],
            "train_loss_per_seed": [gap(first["train_loss"], rec["train_loss_per_seed"][0]),
                                    gap(other["train_loss"],
                                        rec["train_loss_per_seed"][other_seed])],
            "valid_acc_per_seed": [gap(first["valid_acc"], rec["valid_acc_per_seed"][0]),
                                   gap(other["valid_acc"], rec["valid_acc_per_seed"][other_seed])]}
        if grids[full] is not None:
            searched = np.asarray(rec["valid_acc_per_lr"], dtype=np.float64)
            report["full"]["valid_acc_at_chosen_lr"] = (
                float(first["valid_acc"][-1]) - searched[grids[full].index(rate(full))])
    if skewness is not None:
        if skewness == "init":
            coursekit.seed(seeds[0])
            model = MLP(data.input_shape, data.num_classes).to(student["DEVICE"])
        else:
            model = student["trained_model"](lambda params, lr: torch.optim.Adam(params, lr=lr),
                                             data, rate("adam_torch"), epochs, batch_size)
        stats = student["skewness_stats"](model, data, batch_size)
        reported = explored["skewness"][skewness]
        report["skewness"] = {key: float(stats[key]) - float(reported[key])
                              for key in ("per_example", "minibatch", "predicted_minibatch",
                                          "share_per_example_above_1")}
    if ours_vs_torch:
        ours, theirs = runs["adam_ours"], runs["adam_torch"]
        report["ours_over_torch"] = {
            "lr": float(ours["lr"]) / float(theirs["lr"]),
            "train_loss": np.asarray(ours["train_loss"], dtype=np.float64)
            / np.asarray(theirs["train_loss"], dtype=np.float64)}
    return report


def experiment_expected(dataset, seeds, epochs, batch_size, steps_per_epoch, names, grids,
                        prefix_epochs, full, other_seed, skewness, ours_vs_torch):
    """Records of the prescribed lengths; every difference from a re-run zero; MyAdam's
    curve over torch's 1 (the test's rtol) at the same rate."""
    def zeros(count):
        return np.zeros(count)

    report = {"runs": {name: {"lengths": [epochs * steps_per_epoch, epochs, epochs, len(seeds),
                                          len(seeds), len(seeds)],
                              "batch_loss": zeros(prefix_epochs * steps_per_epoch),
                              "train_loss": zeros(prefix_epochs),
                              "valid_acc": zeros(prefix_epochs),
                              "seconds_sign": 1.0, "test_acc_minus_mean_of_seeds": 0.0}
                       for name in names}}
    if full is not None:
        report["full"] = {"batch_loss": zeros(epochs * steps_per_epoch),
                          "train_loss": zeros(epochs), "valid_acc": zeros(epochs),
                          "test_acc_per_seed": [0.0, 0.0],
                          "train_loss_per_seed": [zeros(epochs), zeros(epochs)],
                          "valid_acc_per_seed": [zeros(epochs), zeros(epochs)]}
        if grids[full] is not None:
            report["full"]["valid_acc_at_chosen_lr"] = 0.0
    if skewness is not None:
        report["skewness"] = dict.fromkeys(SKEWNESS, 0.0)
    if ours_vs_torch:
        report["ours_over_torch"] = {"lr": 1.0, "train_loss": np.ones(epochs)}
    return report


def _reruns(rng, names, full_from=None, skewness=False, ours_vs_torch=False):
    return {**PRESCRIBED, "names": names, "grids": GRIDS,
            "prefix_epochs": int(rng.integers(1, 3)),
            "full": None if full_from is None else full_from[int(rng.integers(len(full_from)))],
            "other_seed": int(rng.integers(1, len(PRESCRIBED["seeds"]))),
            "skewness": ["init", "trained"][int(rng.integers(2))] if skewness else None,
            "ours_vs_torch": ours_vs_torch}


def comparison_reruns(rng):
    """Every comparison record's first 1-2 epochs, one record whole: about two seconds."""
    return _reruns(rng, COMPARISON, full_from=COMPARISON)


def ours_against_torch(rng):
    """adam_ours and adam_torch re-run for 1-2 epochs, and their reported curves' ratio."""
    return _reruns(rng, ["adam_ours", "adam_torch"], ours_vs_torch=True)


def exploration_reruns(rng):
    """p2, p3, p4 re-run for 1-2 epochs, p3 or p4 whole, and one skewness measurement."""
    return _reruns(rng, ORDERS, full_from=["p3", "p4"], skewness=True)


# Written answers, graded by hand (Questions 2a to 4) ----------------------------------------
# A grader ticks the rubric items an answer earns (`coursekit review`); the rubrics stay in
# this file and never reach the released notebook. The items describe what a correct answer
# contains, taken from the solution's reasoning; its numbers differ from run to run, so the
# items ask for the student's own numbers, never for ours.

BETAS_ANSWER = Written("betas", "Question 2a: the report's schedule", points=3, rubric=[
    Item("values", 1, "gives beta1 and beta2 in epochs 0 to 3 (beta * e^-epoch: about (0.9, "
                      "0.999), (0.33, 0.37), (0.12, 0.14), (0.05, 0.05)): little memory left "
                      "after two epochs"),
    Item("sign_descent", 1, "with both betas near 0, m ~ g and v ~ g^2 (corrections ~ 1), so "
                            "m_hat / sqrt(v_hat) ~ sign(g): sign descent (signSGD) on single "
                            "minibatches, each coordinate moving by about lr"),
    Item("per_step", 1, "t counting steps: the betas collapse within a few steps, so the whole "
                        "run is sign descent (per epoch: Adam for one epoch, then sign descent)"),
])

BIAS_ANSWER = Written("bias", "Question 2b: the bias correction when the betas move", points=3,
                      rubric=[
    Item("induction", 1, "the induction: t = 1 has the one weight 1 - beta_{1,1}; the step "
                         "beta_{1,t} (1 - P_{t-1}) + 1 - beta_{1,t} = 1 - P_t"),
    Item("normaliser", 1, "at the first step of epoch 1 the product's 1 - prod(beta) is right "
                          "(it is what v holds) and torch's 1 - beta_t^t ~ 1 is not: v_hat too "
                          "small, torch's step too large by the table's factor"),
    Item("duration", 1, "the discrepancy fades within a few steps and is negligible at later "
                        "epoch boundaries: a one-off at the first boundary"),
    Item("no_induction", -1, "checks the sum for a few t instead of proving the step"),
])

COMPARISON_ANSWER = Written("comparison", "Question 3: the tuned, repeated comparison",
                            points=4, rubric=[
    Item("ranking", 1, "ranks the optimizers by mean test accuracy with the spread over seeds "
                       "(standard errors), numbers from the run"),
    Item("resolved", 1, "says which differences exceed the seed spread and that the others are "
                        "not resolved (best compared seed by seed, on the same initial weights "
                        "and batches)"),
    Item("schedule", 1, "says what scheduling the betas does, with numbers (training loss and "
                        "accuracy), and ties it to 2a: after the first epoch sign descent on "
                        "single minibatches, no averaging of their noise"),
    Item("verdict", 1, "judges the report's conclusion against the tuned, repeated numbers (in "
                       "the solution's runs its schedule is below Adam beyond the spread, and "
                       "no better than a tuned Adagrad)"),
    Item("overclaim", -1, "claims a ranking or difference that the standard errors do not "
                          "support"),
])

MOMENTS_ANSWER = Written("moments", "Question 4: a higher moment?", points=3, rubric=[
    Item("skewness", 1, "per-example gradients strongly skewed (more after training), minibatch "
                        "gradients far less, about by 1/sqrt(B): measured against predicted "
                        "values and the noise floor"),
    Item("no_gain", 1, "compares p = 3 and p = 4 with Adam against the seed spread and concludes "
                       "no gain beyond it (a larger p makes u_hat^(1/p) larger, the steps "
                       "smaller)"),
    Item("evidence", 1, "what would convince: a gain beyond the spread over many seeds, on more "
                        "data sets (MNIST, CIFAR-10), at small batch sizes, with the same "
                        "learning-rate search for every variant"),
    Item("overclaim", -1, "claims that p = 3 or 4 helps on a difference within the seed spread"),
])


# Points: public 5 (adam/torch_contract, adam/bad_hyperparameters, adam/first_steps,
# schedule/seed_form, schedule/no_decay_is_adam), hidden 15; tests/test_hw2.py checks this.
# Written, graded by hand: 13 (schedule/betas 3, schedule/bias 3, experiment/comparison 4,
# experiment/moments 3).
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
    ], written=[BETAS_ANSWER, BIAS_ANSWER]),
    Question("experiment", "Results of the comparison and the exploration", [
        Test("comparison_runs", experiment_reruns, reference=experiment_expected, points=2,
             hidden=True, rtol=0.0, atol=RESULTS_ATOL,
             description="RESULTS['digits'] holds every run, each as your code computes it "
                         "again: its first epochs re-run, and one run whole on two seeds",
             inputs=comparison_reruns),
        Test("ours_matches_torch", experiment_reruns, reference=experiment_expected, points=1,
             hidden=True, rtol=1e-3, atol=RESULTS_ATOL,
             description="adam_ours ran at adam_torch's rate and its training loss matches "
                         "torch's to 1e-3; both re-run for their first epochs",
             inputs=ours_against_torch),
        Test("exploration_runs", experiment_reruns, reference=experiment_expected, points=2,
             hidden=True, rtol=0.0, atol=RESULTS_ATOL,
             description="EXPLORATION['digits'] holds the p2, p3, p4 runs and the skewness "
                         "measurements as your code computes them again",
             inputs=exploration_reruns),
    ], written=[COMPARISON_ANSWER, MOMENTS_ANSWER]),
])
