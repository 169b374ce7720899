"""One training loop: second_order and compare give the numbers they gave before they ran on fit.

The references are the loops as they were before the move (commit 3b03e84,
``coursekit/second_order.py`` and ``coursekit/compare.py``), written out here
verbatim except for names: their own batch orders, closures, budget accounting,
grid-over-seeds loops and lockstep stepping. The library's versions now go
through ``train.fit`` (closure mode, gradient budget, step hooks) and
``experiments.sweep``; on fixed seeds every recorded number must agree to 1e-12
(in float64 where the code allows it).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit
from coursekit import data, models, train
from coursekit.analysis import second_order
from coursekit.experiments import compare
from coursekit.optim import transforms

TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0)


@pytest.fixture(scope="module")
def digits64(digits):
    return data.Split(digits.train.x.double(), digits.train.y, "digits", "train", digits.classes)


# ----------------------------------------------------------------------------- second_order


@torch.no_grad()
def _old_full_loss(model, x, y, loss):
    was_training = model.training
    model.eval()
    value = float(loss(model(x), y))
    model.train(was_training)
    return value


def _old_train_for_passes(model, optimizer, train_split, passes, *, batch_size=None,
                          loss=F.cross_entropy, seed=0, max_records=400):
    """``second_order.train_for_passes`` at 3b03e84: (passes, losses, steps, diverged)."""
    n = len(train_split)
    size = n if batch_size is None else min(batch_size, n)
    x, y = train_split.x, train_split.y
    budget = passes * n
    steps_per_pass = math.ceil(n / size)
    stride = max(1, math.ceil(passes * steps_per_pass / max_records))
    generator = torch.Generator().manual_seed(seed)
    seen, steps, diverged = 0, 0, False
    records = [(0.0, _old_full_loss(model, x, y, loss))]
    while seen < budget and not diverged:
        order = torch.randperm(n, generator=generator).to(x.device) if batch_size else None
        for i in range(0, n, size):
            xb, yb = (x, y) if order is None else (x[order[i:i + size]], y[order[i:i + size]])

            def closure(xb=xb, yb=yb):
                nonlocal seen
                optimizer.zero_grad()
                value = loss(model(xb), yb)
                value.backward()
                seen += len(yb)
                return value

            optimizer.step(closure)
            steps += 1
            last = seen >= budget
            if steps % stride == 0 or last:
                current = _old_full_loss(model, x, y, loss)
                records.append((seen / n, current))
                if not math.isfinite(current):
                    diverged = True
            if last or diverged:
                break
    done, values = zip(*records, strict=True)
    return np.asarray(done), np.asarray(values), steps, diverged


def _lbfgs(line_search="strong_wolfe", max_iter=1):
    return lambda p: torch.optim.LBFGS(p, lr=1, max_iter=max_iter, history_size=10,
                                       line_search_fn=line_search)


PASSES_CASES = {
    "SGD full batch": (lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9), None, 6, 400),
    "Adam batch 128, stride 3": (lambda p: torch.optim.Adam(p, lr=3e-3), 128, 5, 16),
    "SGD batch 500 (uneven)": (lambda p: torch.optim.SGD(p, lr=0.1), 500, 4.5, 400),
    "L-BFGS full batch": (_lbfgs(), None, 15, 400),
    "L-BFGS full batch, 5 inner iterations": (_lbfgs(max_iter=5), None, 15, 400),
    "L-BFGS batch 128": (_lbfgs(), 128, 4, 400),
    "L-BFGS batch 128, no line search": (_lbfgs(None), 128, 4, 400),
}


@pytest.mark.parametrize("case", list(PASSES_CASES))
@pytest.mark.parametrize("problem", ["logistic regression", "MLP"])
def test_train_for_passes_gives_the_curves_of_the_loop_before_the_move(digits, digits64, case,
                                                                        problem):
    make, batch_size, passes, max_records = PASSES_CASES[case]
    coursekit.seed(3)
    if problem == "MLP":
        model = models.MLP(digits.input_shape, digits.num_classes, hidden=32).double()
    else:
        model = models.LogisticRegression(digits.input_shape, digits.num_classes).double()
    twin = copy.deepcopy(model)
    curve = second_order.train_for_passes(model, make(model.parameters()), digits64, passes,
                                          batch_size=batch_size, seed=5,
                                          max_records=max_records)
    done, losses, steps, diverged = _old_train_for_passes(
        twin, make(twin.parameters()), digits64, passes, batch_size=batch_size, seed=5,
        max_records=max_records)
    assert (curve.steps, curve.diverged) == (steps, diverged)
    np.testing.assert_allclose(curve.passes, done, **TOLERANCE)
    np.testing.assert_allclose(curve.loss, losses, **TOLERANCE)
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **TOLERANCE)


def test_a_run_that_blows_up_ends_where_the_old_loop_ended(digits64):
    """Recording every step, fit's rule (stop before stepping on a non-finite batch loss)
    ends the curve at the step the old loop's full-loss check ended it."""
    coursekit.seed(0)
    model = models.MLP((1, 8, 8), 10, hidden=16).double()
    twin = copy.deepcopy(model)
    quartic = lambda outputs, targets: outputs.pow(4).mean()  # noqa: E731
    with pytest.warns(RuntimeWarning, match="diverged"):
        curve = second_order.train_for_passes(model, torch.optim.SGD(model.parameters(), lr=100),
                                              digits64, 3, batch_size=256, loss=quartic)
    done, losses, steps, diverged = _old_train_for_passes(
        twin, torch.optim.SGD(twin.parameters(), lr=100), digits64, 3, batch_size=256,
        loss=quartic)
    assert diverged and curve.diverged and curve.steps == steps < 15
    np.testing.assert_allclose(curve.passes, done, **TOLERANCE)
    np.testing.assert_array_equal(np.isfinite(curve.loss), np.isfinite(losses))
    np.testing.assert_allclose(curve.loss[np.isfinite(losses)], losses[np.isfinite(losses)],
                               **TOLERANCE)


# ----------------------------------------------------------------------------- compare


def _old_run(model_fn, phases, dataset, *, seed=0, batch_size=128, name="run"):
    """``compare.run`` at 3b03e84 (builders called ``build(params, lr)``)."""
    coursekit.seed(seed)
    model = model_fn()
    history = train.History(seed=seed)
    start = time.perf_counter()
    for build, lr, epochs in phases:
        optimizer = build([p for p in model.parameters() if p.requires_grad], lr)
        train.fit(model, optimizer, dataset.train, epochs, valid=dataset.valid,
                  batch_size=batch_size, progress=False, history=history)
        if history.diverged:
            break
    seconds = time.perf_counter() - start
    on_train, on_test = train.evaluate(model, dataset.train), train.evaluate(model, dataset.test)
    record = {
        "optimizer": name,
        "seed": seed,
        "lr": phases[0][1],
        "train accuracy": on_train["accuracy"],
        "train loss": on_train["loss"],
        "valid accuracy": history.valid_acc[-1] if history.valid_acc else math.nan,
        "valid loss": history.valid_loss[-1] if history.valid_loss else math.nan,
        "test accuracy": on_test["accuracy"],
        "test loss": on_test["loss"],
        "diverged": history.diverged,
        "seconds": seconds,
    }
    return record, history


def _old_tune(builders, lrs, model_fn, dataset, epochs, *, seed=0, batch_size=128):
    """``compare.tune`` at 3b03e84: its own loop over optimizers and learning rates."""
    chosen, records = {}, []
    for name, build in builders.items():
        best = None
        for lr in lrs[name]:
            record, _ = _old_run(model_fn, [(build, lr, epochs)], dataset, seed=seed,
                                 batch_size=batch_size, name=name)
            records.append(record)
            score = (record["valid accuracy"], -record["valid loss"])
            if not record["diverged"] and all(math.isfinite(s) for s in score) \
                    and (best is None or score > best[0]):
                best = (score, lr)
        chosen[name] = best[1]
    return chosen, records


def _old_repeat(recipes, model_fn, dataset, seeds, *, batch_size=128):
    """``compare.repeat`` at 3b03e84: its own loop over recipes and seeds."""
    records, histories = [], {}
    for name, phases in recipes.items():
        for seed in seeds:
            record, history = _old_run(model_fn, phases, dataset, seed=seed,
                                       batch_size=batch_size, name=name)
            records.append(record)
            histories[(name, seed)] = history
    return records, histories


def _old_lockstep(builders, model_fn, x, y, steps=50, *, batch_size=64, dtype=torch.float64,
                  loss=F.cross_entropy, seed=0):
    """``compare.lockstep`` at 3b03e84: every optimizer stepped side by side by hand."""
    coursekit.seed(seed)
    template = model_fn().to(dtype)
    models_ = {name: copy.deepcopy(template) for name in builders}
    optimizers = {name: build(list(models_[name].parameters()))
                  for name, build in builders.items()}
    x = x.to(dtype) if x.is_floating_point() else x
    y = y.to(dtype) if y.is_floating_point() else y
    reference = next(iter(builders))
    drift = {name: 0.0 for name in builders if name != reference}
    n = len(x)
    for step in range(steps):
        index = torch.arange(step * batch_size, (step + 1) * batch_size) % n
        for name, optimizer in optimizers.items():
            optimizer.zero_grad()
            loss(models_[name](x[index]), y[index]).backward()
            optimizer.step()
        for name in drift:
            for p, q in zip(models_[reference].parameters(), models_[name].parameters(),
                            strict=True):
                drift[name] = max(drift[name], (p - q).abs().max().item())
    return drift


def _model_fn(d):
    return lambda: models.MLP(d.input_shape, d.num_classes, hidden=16)


# Factories that serve both call conventions: compare's make(params, lr=lr) and the old
# loops' build(params, lr). SGD's learning rate 1e30 diverges, so tuning must skip it.
FACTORIES = {
    "SGD + momentum": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "Adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
}
LRS = {"SGD + momentum": [0.03, 0.3, 1e30], "Adam": [1e-3, 1e-2]}


def _same_records(table, theirs):
    ours = table.to_dict("records")
    assert [list(r) for r in ours] == [list(r) for r in theirs]  # same columns, same order
    for mine, old in zip(ours, theirs, strict=True):
        for key, value in old.items():
            if key == "seconds":
                continue
            if isinstance(value, float):
                np.testing.assert_allclose(mine[key], value, **TOLERANCE, err_msg=key)
            else:
                assert mine[key] == value, key


def test_tune_as_a_sweep_gives_the_records_and_choices_of_the_old_loop(digits):
    with pytest.warns(RuntimeWarning, match="diverged"):
        chosen, records = compare.tune(FACTORIES, LRS, _model_fn(digits), digits, epochs=2,
                                       seed=4, batch_size=128)
    with pytest.warns(RuntimeWarning, match="diverged"):
        old_chosen, old_records = _old_tune(FACTORIES, LRS, _model_fn(digits), digits, epochs=2,
                                            seed=4, batch_size=128)
    assert records["diverged"].any()  # the grid exercises the divergence rule
    assert chosen == old_chosen
    _same_records(records, old_records)


def test_repeat_as_a_sweep_gives_the_records_and_histories_of_the_old_loop(digits):
    recipes = {
        "Adam": [(FACTORIES["Adam"], 1e-2, 2)],
        "Adam -> SGD": [(FACTORIES["Adam"], 1e-2, 1), (FACTORIES["SGD + momentum"], 0.05, 1)],
    }
    result = compare.repeat(recipes, _model_fn(digits), digits, seeds=[0, 7], batch_size=128)
    old_records, old_histories = _old_repeat(recipes, _model_fn(digits), digits, seeds=[0, 7],
                                             batch_size=128)
    _same_records(result.runs, old_records)
    assert list(result.histories) == list(old_histories)
    for key, history in old_histories.items():
        np.testing.assert_allclose(result.histories[key].batch_loss, history.batch_loss,
                                   **TOLERANCE)
        np.testing.assert_allclose(result.histories[key].valid_acc, history.valid_acc,
                                   **TOLERANCE)


def test_compare_gives_the_numbers_of_the_old_tune_then_repeat(digits):
    lrs = {"SGD + momentum": [0.03, 0.3], "Adam": [1e-3, 1e-2]}
    result = compare.compare(FACTORIES, lrs, _model_fn(digits), digits, epochs=1, seeds=[1, 2],
                             tune_seed=3, batch_size=128)
    old_chosen, old_tuning = _old_tune(FACTORIES, lrs, _model_fn(digits), digits, epochs=1,
                                       seed=3, batch_size=128)
    old_records, _ = _old_repeat({name: [(build, old_chosen[name], 1)]
                                  for name, build in FACTORIES.items()},
                                 _model_fn(digits), digits, [1, 2], batch_size=128)
    assert result.lrs == old_chosen
    _same_records(result.tuning, old_tuning)
    _same_records(result.runs, old_records)


def test_lockstep_through_fit_measures_the_drift_of_the_old_side_by_side_loop(digits):
    builders = {
        "torch Adam": lambda p: torch.optim.Adam(p, lr=1e-2),
        "chain Adam": lambda p: transforms.TransformOptimizer(p, transforms.adam(), lr=1e-2),
        "ours Adam": lambda p: coursekit.optim.Adam(p, lr=1e-2),
        "SGD + momentum": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9),
    }
    x, y = digits.train.x[:300], digits.train.y[:300]  # 20 steps of 64 wrap around 300
    drift = compare.lockstep(builders, _model_fn(digits), x, y, steps=20, seed=2)
    old = _old_lockstep(builders, _model_fn(digits), x, y, steps=20, seed=2)
    assert list(drift) == list(old) == ["chain Adam", "ours Adam", "SGD + momentum"]
    np.testing.assert_allclose([drift[name] for name in old], list(old.values()), **TOLERANCE)
    assert drift["SGD + momentum"] > 1e-3


def test_lockstep_reports_infinite_drift_when_only_one_diverges(digits):
    builders = {"SGD": lambda p: torch.optim.SGD(p, lr=1e-3),
                "SGD, lr 100": lambda p: torch.optim.SGD(p, lr=100)}
    with pytest.warns(RuntimeWarning, match="diverged"):
        drift = compare.lockstep(builders, _model_fn(digits), digits.train.x, digits.train.y,
                                 steps=20, loss=lambda out, target: out.pow(4).mean())
    assert drift == {"SGD, lr 100": math.inf}
    with pytest.warns(RuntimeWarning, match="diverged"):  # the other way round
        drift = compare.lockstep(dict(reversed(builders.items())), _model_fn(digits),
                                 digits.train.x, digits.train.y, steps=20,
                                 loss=lambda out, target: out.pow(4).mean())
    assert drift == {"SGD": math.inf}


def test_lockstep_builders_take_params_alone(digits):
    with pytest.raises(TypeError):
        compare.lockstep({"a": lambda p, lr: torch.optim.SGD(p, lr=lr),
                          "b": lambda p, lr: torch.optim.SGD(p, lr=lr)},
                         _model_fn(digits), digits.train.x, digits.train.y, steps=1)


class _LinearRegression(nn.Module):
    """A model whose targets are floats (exercises lockstep's dtype conversion of y)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 1)

    def forward(self, x):
        return self.linear(x.flatten(1)).squeeze(1)


def test_lockstep_with_float_targets_matches_the_old_loop(digits):
    builders = {"SGD": lambda p: torch.optim.SGD(p, lr=1e-3),
                "SGD + momentum": lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.5)}
    y = digits.train.y.float()
    drift = compare.lockstep(builders, _LinearRegression, digits.train.x, y, steps=15,
                             loss=F.mse_loss)
    old = _old_lockstep(builders, _LinearRegression, digits.train.x, y, steps=15,
                        loss=F.mse_loss)
    np.testing.assert_allclose(drift["SGD + momentum"], old["SGD + momentum"], **TOLERANCE)
    assert drift["SGD + momentum"] > 0
