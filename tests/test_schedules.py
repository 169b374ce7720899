"""coursekit.schedules against torch.optim.lr_scheduler, against the formulas, and on bad input.

The schedulers PyTorch also has are run for 300 steps next to torch's on the same
kind of optimizer (two param groups with different rates), and must give the same
rates, momenta and betas to 1e-12 relative. Ours are also checkpointed through
``torch.save`` / ``torch.load(weights_only=True)`` at step 150, rebuilt on a fresh
optimizer, resumed, and must continue exactly as the uninterrupted run. The
lectures' schedules that torch lacks are checked against the formula written out
here, run through torch's own ``LambdaLR``.
"""

from __future__ import annotations

import functools
import inspect
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.optim.lr_scheduler as torch_sched

import coursekit.optim as ck_optim
import coursekit.schedules as ck

STEPS = 300
RESUME_AT = 150
RTOL, ATOL = 1e-12, 1e-16
BASE_LRS = (0.1, 0.03)


def _groups() -> list[dict]:
    """Two param groups with different rates and momenta, as a real model might have."""
    gen = torch.Generator().manual_seed(0)
    return [{"params": [torch.nn.Parameter(torch.randn(3, generator=gen))], "lr": BASE_LRS[0]},
            {"params": [torch.nn.Parameter(torch.randn(2, generator=gen))], "lr": BASE_LRS[1]}]


OPTIMIZERS: dict[str, Callable[[list[dict]], torch.optim.Optimizer]] = {
    "torch_sgd": lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9),
    "torch_adam": lambda groups: torch.optim.Adam(groups, lr=0.1, betas=(0.9, 0.99)),
    "torch_adagrad": lambda groups: torch.optim.Adagrad(groups, lr=0.1),
    "ck_sgd": lambda groups: ck_optim.SGD(groups, lr=0.1, momentum=0.9),
    "ck_adam": lambda groups: ck_optim.Adam(groups, lr=0.1, betas=(0.9, 0.99)),
}


def _snapshot(optimizer: torch.optim.Optimizer, scheduler: Any) -> list[float]:
    """Rates (from the groups and from get_last_lr), momenta and both betas of every group."""
    row = [float(group["lr"]) for group in optimizer.param_groups]
    row += [float(lr) for lr in scheduler.get_last_lr()]
    for group in optimizer.param_groups:
        row += [group.get("momentum", 0.0), *group.get("betas", (0.0, 0.0))]
    return row


def _checkpoint(state: dict) -> dict:
    """A save/load round trip through bytes, as a checkpoint on disk would make."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _trace(build: Callable[[torch.optim.Optimizer], Any], optimizer_name: str,
           resume_at: int | None = None, metrics: np.ndarray | None = None) -> np.ndarray:
    """Snapshots at steps 0..STEPS-1, optionally resuming from a checkpoint at ``resume_at``."""
    optimizer = OPTIMIZERS[optimizer_name](_groups())
    scheduler = build(optimizer)
    rows = [_snapshot(optimizer, scheduler)]
    for t in range(1, STEPS):
        if t == resume_at:
            saved = _checkpoint({"optimizer": optimizer.state_dict(),
                                 "scheduler": scheduler.state_dict()})
            optimizer = OPTIMIZERS[optimizer_name](_groups())
            scheduler = build(optimizer)
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
        if t == 1:  # torch warns unless the optimizer stepped first (no grads: a no-op)
            optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[t])
        rows.append(_snapshot(optimizer, scheduler))
    return np.asarray(rows, dtype=np.float64)


@dataclass
class Case:
    id: str
    build: Callable[[Any, torch.optim.Optimizer], Any]  # (module of schedulers, optimizer)
    optimizer: str = "torch_sgd"


def _simple(name: str, optimizer: str = "torch_sgd", **kwargs: Any) -> Case:
    label = ",".join(f"{k}={getattr(v, '__name__', v)}" for k, v in kwargs.items())
    return Case(f"{name}({label})-{optimizer}",
                lambda module, opt: getattr(module, name)(opt, **kwargs), optimizer)


def _scale_by_cycle(cycle: float) -> float:
    return 0.8**cycle


def _scale_by_iteration(t: float) -> float:
    return 1.0 / (1.0 + 0.01 * t)


TORCH_CASES = [
    _simple("StepLR", step_size=1, gamma=0.97),
    _simple("StepLR", "ck_sgd", step_size=30),
    _simple("StepLR", step_size=7, gamma=0.5),
    _simple("MultiStepLR", milestones=[30, 80, 80, 200]),
    _simple("MultiStepLR", "ck_adam", milestones=[250, 10], gamma=0.5),
    _simple("ExponentialLR", gamma=0.99),
    _simple("ExponentialLR", "ck_sgd", gamma=0.9),
    _simple("ExponentialLR", gamma=1.005),
    _simple("LinearLR"),
    _simple("LinearLR", start_factor=1.0, end_factor=0.0, total_iters=100),
    _simple("LinearLR", "ck_adam", start_factor=0.1, end_factor=1.0, total_iters=299),
    _simple("LinearLR", start_factor=0.5, end_factor=0.25, total_iters=400),
    _simple("ConstantLR"),
    _simple("ConstantLR", factor=0.5, total_iters=100),
    _simple("ConstantLR", factor=1.0, total_iters=10),
    _simple("PolynomialLR"),
    _simple("PolynomialLR", total_iters=100, power=2.0),
    _simple("PolynomialLR", "ck_sgd", total_iters=299, power=0.5),
    _simple("PolynomialLR", total_iters=400, power=3.0),
    _simple("CosineAnnealingLR", T_max=100),
    _simple("CosineAnnealingLR", T_max=50, eta_min=1e-3),
    _simple("CosineAnnealingLR", "ck_adam", T_max=299, eta_min=0.01),
    _simple("CosineAnnealingLR", T_max=7),
    _simple("CosineAnnealingWarmRestarts", T_0=10),
    _simple("CosineAnnealingWarmRestarts", T_0=10, T_mult=2, eta_min=1e-3),
    _simple("CosineAnnealingWarmRestarts", "ck_sgd", T_0=7, T_mult=3),
    _simple("CosineAnnealingWarmRestarts", T_0=300),
    _simple("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=20),
    _simple("CyclicLR", "ck_sgd", base_lr=0.01, max_lr=0.1, step_size_up=20),
    _simple("CyclicLR", "torch_adam", base_lr=[0.01, 0.001], max_lr=[0.1, 0.05],
            step_size_up=20, step_size_down=30, mode="triangular2"),
    _simple("CyclicLR", "ck_adam", base_lr=[0.01, 0.001], max_lr=[0.1, 0.05],
            step_size_up=20, step_size_down=30, mode="triangular2"),
    _simple("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=15, mode="exp_range",
            gamma=0.995, base_momentum=[0.85, 0.8], max_momentum=[0.95, 0.99]),
    _simple("CyclicLR", "torch_adagrad", base_lr=0.01, max_lr=0.1, step_size_up=25,
            step_size_down=5, cycle_momentum=False),
    _simple("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=10,
            scale_fn=_scale_by_cycle),
    _simple("CyclicLR", "torch_adam", base_lr=0.01, max_lr=0.1, step_size_up=10,
            scale_fn=_scale_by_iteration, scale_mode="iterations"),
    _simple("OneCycleLR", max_lr=0.1, total_steps=300),
    _simple("OneCycleLR", "ck_sgd", max_lr=0.1, total_steps=300),
    _simple("OneCycleLR", "torch_adam", max_lr=[0.1, 0.05], epochs=30, steps_per_epoch=10,
            anneal_strategy="linear"),
    _simple("OneCycleLR", "ck_adam", max_lr=[0.1, 0.05], epochs=30, steps_per_epoch=10,
            anneal_strategy="linear"),
    _simple("OneCycleLR", max_lr=0.1, total_steps=300, three_phase=True, pct_start=0.25,
            div_factor=10.0, final_div_factor=100.0),
    _simple("OneCycleLR", "torch_adam", max_lr=0.1, total_steps=299, three_phase=True,
            anneal_strategy="linear", base_momentum=0.8, max_momentum=[0.9, 0.95]),
    _simple("OneCycleLR", "torch_adagrad", max_lr=0.1, total_steps=320, cycle_momentum=False),
    Case("LambdaLR(two functions)",
         lambda module, opt: module.LambdaLR(
             opt, [lambda t: 0.95**t, functools.partial(ck.cosine_annealing, T_max=100)])),
    Case("LambdaLR(one function)-ck_adam",
         lambda module, opt: module.LambdaLR(opt, lambda t: 1.0 / (1.0 + t) ** 0.5), "ck_adam"),
    Case("SequentialLR(warmup, cosine)",
         lambda module, opt: module.SequentialLR(
             opt, [module.LinearLR(opt, 0.1, 1.0, 10), module.CosineAnnealingLR(opt, T_max=90)],
             milestones=[10])),
    Case("SequentialLR(constant, exponential, step)-ck_sgd",
         lambda module, opt: module.SequentialLR(
             opt, [module.ConstantLR(opt, 0.5, 20), module.ExponentialLR(opt, 0.98),
                   module.StepLR(opt, 25, 0.5)], milestones=[50, 120]), "ck_sgd"),
    Case("SequentialLR(step, multistep)",
         lambda module, opt: module.SequentialLR(
             opt, [module.StepLR(opt, 7, 0.5), module.MultiStepLR(opt, [10, 30])],
             milestones=[100])),
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_scheduler_matches_torch_and_resumes_from_a_checkpoint(case):
    theirs = _trace(functools.partial(case.build, torch_sched), case.optimizer)
    ours = _trace(functools.partial(case.build, ck), case.optimizer)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)

    resumed = _trace(functools.partial(case.build, ck), case.optimizer, resume_at=RESUME_AT)
    np.testing.assert_array_equal(resumed, ours)


@pytest.mark.parametrize("case", [c for c in TORCH_CASES if c.id.split("(")[0] in {
    "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "ConstantLR", "PolynomialLR",
    "CosineAnnealingLR", "CosineAnnealingWarmRestarts"}], ids=lambda case: case.id)
def test_scheduler_follows_its_pure_function(case):
    optimizer = OPTIMIZERS[case.optimizer](_groups())
    scheduler = case.build(ck, optimizer)
    curve = scheduler.schedule(np.arange(STEPS), BASE_LRS[1])
    stepped = [scheduler.get_last_lr()[1]]
    optimizer.step()
    for _ in range(1, STEPS):
        scheduler.step()
        stepped.append(scheduler.get_last_lr()[1])
    np.testing.assert_allclose(stepped, curve, rtol=1e-15, atol=0)
    assert scheduler.lr_at(123) == [scheduler.schedule(123, lr0) for lr0 in BASE_LRS]


# --------------------------------------------------------------- the lectures' other schedules

LECTURE_CASES = [
    ("ExponentialDecayLR", dict(k=0.02), lambda t: math.exp(-0.02 * t)),
    ("HalvingLR", dict(every=40), lambda t: 0.5 ** (t // 40)),
    ("InverseTimeLR", dict(k=0.05), lambda t: 1.0 / (1.0 + 0.05 * t)),
    ("OneOverTLR", {}, lambda t: 1.0 / (t + 1)),
    ("InverseSqrtLR", dict(k=0.5), lambda t: 1.0 / math.sqrt(1.0 + 0.5 * t)),
    ("LinearWarmupLR", dict(warmup_steps=25), lambda t: min(t, 25) / 25),
    ("TrapezoidalLR", dict(total_steps=250, warmup_steps=30, decay_steps=100,
                           start_factor=0.1, end_factor=0.05),
     lambda t: (0.1 + 0.9 * t / 30 if t < 30 else 1.0 if t < 150
                else 1.0 - 0.95 * (t - 150) / 100 if t < 250 else 0.05)),
    ("WarmupCosineLR", dict(total_steps=240, warmup_steps=40, start_factor=0.1),
     lambda t: (0.1 + 0.9 * t / 40 if t < 40
                else 0.5 * (1 + math.cos(math.pi * min(t - 40, 200) / 200)))),
]


@pytest.mark.parametrize(("name", "kwargs", "formula"), LECTURE_CASES,
                         ids=[case[0] for case in LECTURE_CASES])
def test_lecture_scheduler_matches_its_formula_through_torch_lambdalr(name, kwargs, formula):
    theirs = _trace(lambda opt: torch_sched.LambdaLR(opt, formula), "ck_sgd")
    ours = _trace(lambda opt: getattr(ck, name)(opt, **kwargs), "ck_sgd")
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    resumed = _trace(lambda opt: getattr(ck, name)(opt, **kwargs), "ck_sgd",
                     resume_at=RESUME_AT)
    np.testing.assert_array_equal(resumed, ours)


PURE_FUNCTIONS = [
    (ck.constant, dict(lr0=0.1)),
    (ck.step_decay, dict(lr0=0.1, step_size=30, gamma=0.5)),
    (ck.multistep_decay, dict(milestones=[10, 50, 50])),
    (ck.halving, dict(every=3)),
    (ck.exponential_decay, dict(k=0.01)),
    (ck.geometric_decay, dict(gamma=0.99)),
    (ck.inverse_time_decay, dict(k=0.1)),
    (ck.one_over_t, {}),
    (ck.inverse_sqrt_decay, {}),
    (ck.polynomial_decay, dict(total_iters=100, power=2.0)),
    (ck.linear_schedule, dict(start_factor=0.2, end_factor=0.8, total_iters=40)),
    (ck.linear_decay, dict(total_steps=100)),
    (ck.constant_factor, dict(factor=0.5, total_iters=10)),
    (ck.cosine_annealing, dict(T_max=100, eta_min=0.01)),
    (ck.cosine_warm_restarts, dict(T_0=5, T_mult=2)),
    (ck.linear_warmup, dict(warmup_steps=10)),
    (ck.trapezoidal, dict(total_steps=200, warmup_steps=20, decay_steps=50)),
    (ck.warmup_cosine, dict(total_steps=200, warmup_steps=20)),
    (ck.cyclical, dict(base_lr=0.01, max_lr=0.1, step_size_up=7, mode="triangular2")),
    (ck.cyclical_momentum, dict(base_momentum=0.8, max_momentum=0.9, step_size_up=7)),
    (ck.one_cycle, dict(max_lr=0.1, total_steps=300)),
    (ck.one_cycle_momentum, dict(total_steps=300, three_phase=True)),
    (ck.sequential, dict(schedules=[ck.constant, ck.one_over_t], milestones=[17])),
]


@pytest.mark.parametrize(("fn", "kwargs"), PURE_FUNCTIONS,
                         ids=[fn.__name__ for fn, _ in PURE_FUNCTIONS])
def test_pure_function_gives_floats_for_steps_and_the_same_values_for_arrays(fn, kwargs):
    steps = np.arange(STEPS)
    singles = [fn(int(t), **kwargs) for t in steps]
    assert all(type(value) is float for value in singles)
    curve = fn(steps, **kwargs)
    assert curve.shape == (STEPS,) and curve.dtype == np.float64
    np.testing.assert_allclose(curve, singles, rtol=1e-15, atol=0)   # SIMD may differ by an ulp
    np.testing.assert_array_equal(fn(steps.reshape(20, 15), **kwargs), curve.reshape(20, 15))


def test_one_over_t_meets_the_robbins_monro_conditions():
    # sum 1/k diverges like ln n + Euler's gamma; sum 1/k^2 converges to pi^2 / 6.
    n = 10**6
    eta = ck.one_over_t(np.arange(n), lr0=0.5)
    assert abs(eta.sum() / 0.5 - (math.log(n) + np.euler_gamma)) < 1.0 / n
    assert 0 < math.pi**2 / 6 - (eta**2).sum() / 0.25 < 1.0 / (n - 1)


def test_exponential_decay_is_geometric_decay_with_gamma_exp_minus_k():
    steps = np.arange(STEPS)
    np.testing.assert_allclose(ck.exponential_decay(steps, 0.1, k=0.03),
                               ck.geometric_decay(steps, 0.1, gamma=math.exp(-0.03)),
                               rtol=1e-12)


def test_cyclical_matches_smiths_published_triangle_formula():
    # Smith (2017): cycle = floor(1 + t / 2s), x = |t/s - 2 cycle + 1|,
    #               lr = base + (max - base) * max(0, 1 - x)
    s, low, high = 13, 0.001, 0.006
    steps = np.arange(STEPS)
    cycle = np.floor(1 + steps / (2 * s))
    x = np.abs(steps / s - 2 * cycle + 1)
    expected = low + (high - low) * np.maximum(0, 1 - x)
    np.testing.assert_allclose(ck.cyclical(steps, base_lr=low, max_lr=high, step_size_up=s),
                               expected, rtol=1e-12)


def _torch_rates(build: Callable[[torch.optim.Optimizer], Any]) -> np.ndarray:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build(opt)
    rates = [scheduler.get_last_lr()[0]]
    opt.step()
    for _ in range(1, STEPS):
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    return np.asarray(rates)


def test_with_warmup_composes_any_schedule_like_torch_sequentiallr():
    theirs = _torch_rates(lambda opt: torch_sched.SequentialLR(
        opt, [torch_sched.LinearLR(opt, 0.1, 1.0, 10), torch_sched.CosineAnnealingLR(opt, 90)],
        milestones=[10]))
    warmed = ck.with_warmup(functools.partial(ck.cosine_annealing, T_max=90), 10,
                            start_factor=0.1)
    np.testing.assert_allclose(warmed(np.arange(STEPS)), theirs, rtol=RTOL, atol=ATOL)
    assert warmed(3) == pytest.approx(theirs[3], rel=RTOL)
    ours = _trace(lambda opt: ck.SequentialLR(
        opt, [ck.LinearWarmupLR(opt, 10, start_factor=0.1), ck.CosineAnnealingLR(opt, 90)],
        milestones=[10]), "ck_sgd")
    np.testing.assert_allclose(ours[:, 0], 0.1 * theirs, rtol=RTOL, atol=ATOL)


def test_trapezoidal_is_torch_linear_constant_linear_in_sequence():
    theirs = _torch_rates(lambda opt: torch_sched.SequentialLR(
        opt, [torch_sched.LinearLR(opt, 0.2, 1.0, 40), torch_sched.ConstantLR(opt, 1.0, 1),
              torch_sched.LinearLR(opt, 1.0, 0.1, 80)], milestones=[40, 170]))
    ours = ck.trapezoidal(np.arange(STEPS), total_steps=250, warmup_steps=40, decay_steps=80,
                          start_factor=0.2, end_factor=0.1)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("total", "warmup", "start"), [(250, 40, 0.2), (250, 1, 0.5),
                                                        (120, 0, 1.0)])
def test_warmup_cosine_is_torch_linear_then_cosine_in_sequence_and_then_zero(total, warmup, start):
    cosine = lambda opt: torch_sched.CosineAnnealingLR(opt, total - warmup)  # noqa: E731
    theirs = _torch_rates(lambda opt: torch_sched.SequentialLR(
        opt, [torch_sched.LinearLR(opt, start, 1.0, warmup), cosine(opt)], milestones=[warmup])
        if warmup else cosine(opt))
    ours = ck.warmup_cosine(np.arange(STEPS), total_steps=total, warmup_steps=warmup,
                            start_factor=start)
    np.testing.assert_allclose(ours[:total], theirs[:total], rtol=RTOL, atol=ATOL)
    assert not ours[total:].any()     # zero at the end of the budget and after it, where
    assert theirs[total + 10] > 0     # PyTorch's cosine climbs back


def test_linear_decay_is_torch_linearlr_to_zero():
    theirs = _torch_rates(lambda opt: torch_sched.LinearLR(opt, 1.0, 0.0, 120))
    np.testing.assert_allclose(ck.linear_decay(np.arange(STEPS), total_steps=120), theirs,
                               rtol=RTOL, atol=ATOL)


def test_per_epoch_holds_the_schedule_within_each_epoch():
    staircase = ck.per_epoch(functools.partial(ck.exponential_decay, k=1.0), steps_per_epoch=10)
    np.testing.assert_allclose(staircase(np.arange(50)),
                               [math.exp(-(t // 10)) for t in range(50)], rtol=1e-15)
    assert staircase(25) == pytest.approx(math.exp(-2), rel=1e-15)


# ------------------------------------------------------------------------- reduce on plateau


def _metrics(mode: str) -> np.ndarray:
    """A noisy validation loss that improves, then plateaus; ties and a NaN included."""
    rng = np.random.default_rng(7)
    t = np.arange(STEPS)
    loss = np.round(0.5 + 2.0 / (1.0 + 0.1 * t) + 0.01 * rng.standard_normal(STEPS), 2)
    loss[120] = np.nan
    return loss if mode == "min" else 1.0 - loss


PLATEAU_CASES = [
    dict(mode="min"),
    dict(mode="min", threshold_mode="abs", threshold=0.01, patience=3),
    dict(mode="max", patience=2, cooldown=3, factor=0.5),
    dict(mode="max", threshold_mode="abs", threshold=0.005, patience=0, min_lr=[1e-3, 1e-4]),
    dict(mode="min", patience=1, factor=0.7, min_lr=0.01, eps=1e-3),
    dict(mode="min", patience=4, cooldown=2, threshold=0.0),
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES, ids=lambda kw: str(kw))
@pytest.mark.parametrize("optimizer", ["torch_sgd", "ck_adam"])
def test_reduce_on_plateau_matches_torch_and_its_pure_function(kwargs, optimizer):
    metrics = _metrics(kwargs["mode"])
    theirs = _trace(lambda opt: torch_sched.ReduceLROnPlateau(opt, **kwargs), optimizer,
                    metrics=metrics)
    ours = _trace(lambda opt: ck.ReduceLROnPlateau(opt, **kwargs), optimizer, metrics=metrics)
    np.testing.assert_array_equal(ours, theirs)
    assert len(np.unique(ours[:, 0])) > 2                     # the rate was cut several times
    resumed = _trace(lambda opt: ck.ReduceLROnPlateau(opt, **kwargs), optimizer,
                     resume_at=RESUME_AT, metrics=metrics)
    np.testing.assert_array_equal(resumed, ours)

    pure_kwargs = dict(kwargs)
    min_lr = pure_kwargs.pop("min_lr", 0.0)
    first_min_lr = min_lr[0] if isinstance(min_lr, list) else min_lr
    pure = ck.reduce_on_plateau(metrics[1:], BASE_LRS[0], min_lr=first_min_lr, **pure_kwargs)
    np.testing.assert_array_equal(pure, ours[1:, 0])


# ------------------------------------------------------------ schedules for other hyperparameters


def test_hyperparameter_scheduler_decays_adams_beta1_per_epoch_as_in_the_csl4020_report():
    model = torch.nn.Linear(3, 1)
    adam = ck_optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.999))
    lr_scheduler = ck.CosineAnnealingLR(adam, T_max=50)
    beta1 = ck.HyperparameterScheduler(
        adam, "betas", ck.per_epoch(functools.partial(ck.exponential_decay, k=1.0), 10), index=0)
    for t in range(50):
        group = adam.param_groups[0]
        assert group["betas"] == (0.9 * math.exp(-(t // 10)), 0.999)
        assert beta1.get_last_value() == [group["betas"][0]]
        assert group["lr"] == pytest.approx(0.005 * (1 + math.cos(math.pi * t / 50)), rel=1e-12)
        model(torch.ones(1, 3)).sum().backward()
        adam.step()
        lr_scheduler.step()
        beta1.step()


def test_hyperparameter_scheduler_sets_each_groups_value_from_its_own_start():
    sgd = torch.optim.SGD(_groups(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    sgd.param_groups[1]["momentum"] = 0.5
    momentum = ck.HyperparameterScheduler(sgd, "momentum",
                                          functools.partial(ck.exponential_decay, k=0.05))
    weight_decay = ck.HyperparameterScheduler(
        sgd, "weight_decay", [functools.partial(ck.linear_warmup, warmup_steps=20), ck.constant])
    for t in range(40):
        assert [g["momentum"] for g in sgd.param_groups] == pytest.approx(
            [0.9 * math.exp(-0.05 * t), 0.5 * math.exp(-0.05 * t)], rel=1e-14)
        assert [g["weight_decay"] for g in sgd.param_groups] == pytest.approx(
            [1e-3 * min(t, 20) / 20, 1e-3], rel=1e-14)
        momentum.step()
        weight_decay.step()


def test_hyperparameter_scheduler_resumes_from_a_checkpoint():
    def build(opt):
        return ck.HyperparameterScheduler(opt, "betas",
                                          functools.partial(ck.inverse_time_decay, k=0.01),
                                          index=1)

    def run(resume_at):
        opt = OPTIMIZERS["torch_adam"](_groups())
        scheduler = build(opt)
        values = []
        for t in range(1, 60):
            if t == resume_at:
                saved = _checkpoint({"optimizer": opt.state_dict(),
                                     "scheduler": scheduler.state_dict()})
                opt = OPTIMIZERS["torch_adam"](_groups())
                scheduler = build(opt)
                opt.load_state_dict(saved["optimizer"])
                scheduler.load_state_dict(saved["scheduler"])
            scheduler.step()
            values.append([g["betas"] for g in opt.param_groups])
        return values

    uninterrupted = run(None)
    assert uninterrupted[-1][0] == (0.9, pytest.approx(0.99 / (1 + 0.01 * 59), rel=1e-14))
    assert run(30) == uninterrupted


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(name="beta1", schedule=ck.constant), "name must be .*, got 'beta1'"),
    (dict(name="betas", schedule=ck.constant), "index must be .*, got None"),
    (dict(name="betas", schedule=ck.constant, index=2), "index must be .*, got 2"),
    (dict(name="lr", schedule=ck.constant, index=0), "index must be .*, got 0"),
    (dict(name="eps", schedule=[ck.constant]), "schedule"),
    (dict(name="eps", schedule=lambda t: math.nan), "schedule.*nan"),
])
def test_hyperparameter_scheduler_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ck.HyperparameterScheduler(OPTIMIZERS["ck_adam"](_groups()), **kwargs)


# ------------------------------------------------------------------------------- bad arguments


def _sgd() -> torch.optim.Optimizer:
    return OPTIMIZERS["torch_sgd"](_groups())


BAD_ARGUMENTS = [
    (lambda: ck.step_decay(1, -0.1, step_size=3), r"lr0 must be .*, got -0\.1"),
    (lambda: ck.StepLR(_sgd(), step_size=0), "step_size must be .*, got 0"),
    (lambda: ck.ExponentialLR(_sgd(), gamma=-0.5), r"gamma must be .*, got -0\.5"),
    (lambda: ck.StepLR(_sgd(), 10, gamma=-1.0), r"gamma must be .*, got -1\.0"),
    (lambda: ck.CosineAnnealingLR(_sgd(), T_max=0), r"T_max must be .*, got 0"),
    (lambda: ck.warmup_cosine(0, total_steps=10, warmup_steps=10),
     r"warmup_steps must be < total_steps = 10 \(some steps must be left for the decay\), got 10"),
    (lambda: ck.WarmupCosineLR(_sgd(), total_steps=0), "total_steps must be .*, got 0"),
    (lambda: ck.CosineAnnealingLR(_sgd(), T_max=-5), r"T_max must be .*, got -5"),
    (lambda: ck.CosineAnnealingLR(_sgd(), T_max=10, eta_min=-1e-3),
     "eta_min must be .*, got -0.001"),
    (lambda: ck.CosineAnnealingWarmRestarts(_sgd(), T_0=0), "T_0 must be .*, got 0"),
    (lambda: ck.CosineAnnealingWarmRestarts(_sgd(), T_0=5, T_mult=0), "T_mult must be .*, got 0"),
    (lambda: ck.MultiStepLR(_sgd(), milestones=[-3]), "milestones must be .*, got -3"),
    (lambda: ck.LinearLR(_sgd(), start_factor=-0.1), r"start_factor must be .*, got -0\.1"),
    (lambda: ck.ConstantLR(_sgd(), factor=2.0), r"factor must be .*, got 2\.0"),
    (lambda: ck.PolynomialLR(_sgd(), total_iters=0), "total_iters must be .*, got 0"),
    (lambda: ck.trapezoidal(0, total_steps=100, warmup_steps=80, decay_steps=30),
     "warmup_steps must be .*, got 80"),
    (lambda: ck.TrapezoidalLR(_sgd(), 100, 80, 30), "warmup_steps must be .*, got 80"),
    (lambda: ck.linear_warmup(0, warmup_steps=0), "warmup_steps must be .*, got 0"),
    (lambda: ck.with_warmup(ck.constant, warmup_steps=-2), "warmup_steps must be .*, got -2"),
    (lambda: ck.cosine_annealing(-1, T_max=10), r"t must be .*, got -1\.0"),
    (lambda: ck.cosine_annealing(np.array([0.0, np.nan]), T_max=10),
     r"t\[1\] must be finite, got nan"),
    (lambda: ck.CyclicLR(_sgd(), 0.01, 0.1, mode="triangle"), "mode must be .*, got 'triangle'"),
    (lambda: ck.CyclicLR(_sgd(), 0.01, 0.1, step_size_up=0), "step_size_up must be .*, got 0"),
    (lambda: ck.CyclicLR(_sgd(), -0.01, 0.1), r"base_lr must be .*, got -0\.01"),
    (lambda: ck.CyclicLR(OPTIMIZERS["torch_adagrad"](_groups()), 0.01, 0.1), "cycle_momentum"),
    (lambda: ck.CyclicLR(_sgd(), 0.01, 0.1, max_momentum=1.5),
     r"max_momentum must be .*, got 1\.5"),
    (lambda: ck.OneCycleLR(_sgd(), max_lr=0.1), "total_steps must be .*, got None"),
    (lambda: ck.OneCycleLR(_sgd(), 0.1, 100, anneal_strategy="cosine"),
     "anneal_strategy must be .*, got 'cosine'"),
    (lambda: ck.OneCycleLR(_sgd(), 0.1, 100, pct_start=1.5), r"pct_start must be .*, got 1\.5"),
    (lambda: ck.OneCycleLR(_sgd(), 0.1, 3, pct_start=0.3), r"pct_start must be .*, got 0\.3"),
    (lambda: ck.OneCycleLR(_sgd(), 0.1, epochs=0, steps_per_epoch=10), "epochs must be .*, got 0"),
    (lambda: ck.one_cycle(11, max_lr=0.1, total_steps=10), r"t must be .*, got 11\.0"),
    (lambda: ck.ReduceLROnPlateau(_sgd(), mode="minimum"), "mode must be .*, got 'minimum'"),
    (lambda: ck.ReduceLROnPlateau(_sgd(), threshold_mode="relative"),
     "threshold_mode must be .*, got 'relative'"),
    (lambda: ck.ReduceLROnPlateau(_sgd(), factor=1.5), r"factor must be .*, got 1\.5"),
    (lambda: ck.ReduceLROnPlateau(_sgd(), patience=-1), "patience must be .*, got -1"),
    (lambda: ck.ReduceLROnPlateau(_sgd(), min_lr=[0.1]), r"min_lr must be .*, got \[0\.1\]"),
    (lambda: ck.LambdaLR(_sgd(), [ck.constant]), "lr_lambda"),
    (lambda: ck.sequential(3, [ck.constant, ck.constant], [0]),
     r"milestones\[0\] must be .*, got 0"),
]


@pytest.mark.parametrize(("make", "match"), BAD_ARGUMENTS,
                         ids=[match for _, match in BAD_ARGUMENTS])
def test_bad_argument_raises_value_error_naming_it(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_failed_construction_leaves_the_optimizer_untouched():
    optimizer = _sgd()
    with pytest.raises(ValueError):
        ck.CosineAnnealingLR(optimizer, T_max=0)
    assert all("initial_lr" not in group for group in optimizer.param_groups)
    assert [group["lr"] for group in optimizer.param_groups] == list(BASE_LRS)


def test_sequentiallr_rejects_bad_milestones_and_foreign_schedulers():
    optimizer = _sgd()
    first, second = ck.StepLR(optimizer, 5), ck.ExponentialLR(optimizer, 0.9)
    with pytest.raises(ValueError, match="milestones"):
        ck.SequentialLR(optimizer, [first, second], milestones=[])
    with pytest.raises(ValueError, match=r"milestones\[1\] must be .*, got 10"):
        ck.SequentialLR(optimizer, [first, second, first], milestones=[10, 10])
    with pytest.raises(TypeError, match=r"schedulers\[1\] must be .*ExponentialLR"):
        ck.SequentialLR(optimizer, [first, torch_sched.ExponentialLR(optimizer, 0.9)], [10])
    with pytest.raises(ValueError, match=r"schedulers\[1\]"):
        ck.SequentialLR(optimizer, [first, ck.ExponentialLR(_sgd(), 0.9)], [10])


def test_one_cycle_refuses_to_step_past_total_steps_like_torch():
    optimizer = _sgd()
    scheduler = ck.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    optimizer.step()
    for _ in range(10):
        scheduler.step()
    with pytest.raises(ValueError, match="total_steps=10"):
        scheduler.step()


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
                                  "ConstantLR", "PolynomialLR", "CosineAnnealingLR",
                                  "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
                                  "ReduceLROnPlateau", "LambdaLR", "SequentialLR"])
def test_constructor_has_torchs_argument_names_order_and_defaults(name):
    def arguments(cls):
        return [(p.name, p.default) for p in inspect.signature(cls).parameters.values()]

    assert arguments(getattr(ck, name)) == arguments(getattr(torch_sched, name))
