"""coursekit.experiments.compare: the comparison protocol, checked against fit() run by hand.

Small digits runs (a logistic regression, a few epochs) keep it to seconds. The
numbers against the loops as they were before compare ran on fit and sweep are
in tests/test_one_loop.py.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit
from coursekit import data, models, schedules, train
from coursekit.experiments import compare
from coursekit.optim import SGD, Adam, ScheduleFreeAdamW, transforms


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def _model_fn(d):
    return lambda: models.LogisticRegression(d.input_shape, d.num_classes)


def _sgd(params, lr):
    return torch.optim.SGD(params, lr=lr)


def _adam(params, lr):
    return torch.optim.Adam(params, lr=lr)


def test_a_switching_run_equals_two_fits_by_hand(digits):
    record, history = compare.run(_model_fn(digits), [(_adam, 1e-2, 2), (_sgd, 0.1, 1)], digits,
                                  seed=3, batch_size=64, name="Adam -> SGD")
    coursekit.seed(3)
    model = _model_fn(digits)()
    by_hand = train.History(seed=3)
    train.fit(model, _adam(list(model.parameters()), 1e-2), digits.train, 2, valid=digits.valid,
              batch_size=64, progress=False, history=by_hand)
    train.fit(model, _sgd(list(model.parameters()), 0.1), digits.train, 1, valid=digits.valid,
              batch_size=64, progress=False, history=by_hand)
    assert history.batch_loss == by_hand.batch_loss
    assert history.lr[-1] == 0.1 and history.lr[0] == 1e-2
    assert record["test accuracy"] == train.evaluate(model, digits.test)["accuracy"]
    assert record["train accuracy"] == train.evaluate(model, digits.train)["accuracy"]
    assert record["optimizer"] == "Adam -> SGD" and record["seed"] == 3


def test_tuning_never_picks_a_learning_rate_that_cannot_learn(digits):
    chosen, tuning = compare.tune({"SGD": _sgd}, {"SGD": [0.0, 0.1]}, _model_fn(digits), digits,
                                  epochs=2, batch_size=64)
    assert chosen == {"SGD": 0.1}
    assert len(tuning) == 2
    (frozen,) = tuning.loc[tuning["lr"] == 0.0, "valid accuracy"]
    assert frozen < 0.5


def test_compare_runs_every_optimizer_on_every_seed_with_its_chosen_lr(digits):
    result = compare.compare({"SGD": _sgd, "Adam": _adam}, {"SGD": [0.1], "Adam": [1e-2]},
                             _model_fn(digits), digits, epochs=1, seeds=[0, 1], batch_size=128)
    assert result.names == ["SGD", "Adam"]
    assert result.lrs == {"SGD": 0.1, "Adam": 1e-2}
    runs = result.runs
    assert list(zip(runs["optimizer"], runs["seed"], runs["lr"], strict=True)) == [
        ("SGD", 0, 0.1), ("SGD", 1, 0.1), ("Adam", 0, 1e-2), ("Adam", 1, 1e-2)]
    # Same seed, same start: the two seeds of one optimizer differ, reruns do not.
    rerun, _ = compare.run(_model_fn(digits), [(_sgd, 0.1, 1)], digits, seed=1, batch_size=128)
    assert rerun["test loss"] == runs.at[1, "test loss"]
    assert runs.at[0, "test loss"] != runs.at[1, "test loss"]
    table = result.summary()
    assert list(table.index) == ["SGD", "Adam"]
    assert list(table["seeds"]) == [2, 2] and list(table["lr"]) == [0.1, 1e-2]
    accuracies = 100 * runs["test accuracy"].to_numpy()[:2]
    assert table.loc["SGD", ("test accuracy %", "mean")] == pytest.approx(accuracies.mean())
    assert table.loc["SGD", ("test accuracy %", "sem")] == pytest.approx(
        accuracies.std(ddof=1) / math.sqrt(2))
    assert table.loc["SGD", ("test loss", "mean")] == pytest.approx(
        runs["test loss"][:2].mean())


def test_difference_is_welch_standard_error():
    records = [{"optimizer": name, "test accuracy": value, "lr": 0.1}
               for name, values in (("a", [0.9, 0.92, 0.94]), ("b", [0.8, 0.85]))
               for value in values]
    result = compare.Comparison(pd.DataFrame(records), {})
    a, b = np.array([0.9, 0.92, 0.94]), np.array([0.8, 0.85])
    expected = math.sqrt(a.var(ddof=1) / 3 + b.var(ddof=1) / 2)
    out = result.difference("a", "b")
    assert out["difference"] == pytest.approx(a.mean() - b.mean(), rel=1e-12)
    assert out["standard error"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match=r"^a must be one of 'a', 'b', got 'c'"):
        result.difference("c", "a")
    one_seed = compare.Comparison(pd.DataFrame(records[:4]), {})
    with pytest.raises(ValueError, match=r"^b must be an optimizer run with at least two seeds"):
        one_seed.difference("a", "b")


def test_lockstep_sees_equal_algorithms_as_equal_and_different_ones_drift(digits):
    drift = compare.lockstep({
        "torch Adam": lambda p: torch.optim.Adam(p, lr=1e-2),
        "chain Adam": lambda p: transforms.TransformOptimizer(p, transforms.adam(), lr=1e-2),
        "SGD": lambda p: torch.optim.SGD(p, lr=1e-2),
    }, _model_fn(digits), digits.train.x, digits.train.y, steps=10)
    assert drift["chain Adam"] < 1e-12
    assert drift["SGD"] > 1e-3


def test_bad_arguments_raise_clear_errors(digits):
    with pytest.raises(ValueError, match=r"^phases must be a non-empty list"):
        compare.run(_model_fn(digits), [], digits)
    with pytest.raises(ValueError, match=r"^phases\[0\] must be a phase"):
        compare.run(_model_fn(digits), [(_sgd, 0.1)], digits)
    with pytest.raises(ValueError, match=r"^epochs of phases\[0\] must be an integer >= 0"):
        compare.run(_model_fn(digits), [(_sgd, 0.1, -1)], digits)
    with pytest.raises(ValueError, match=r"^epochs of recipes\['SGD'\]\[0\] must be"):
        compare.repeat({"SGD": [(_sgd, 0.1, 1.5)]}, _model_fn(digits), digits, seeds=[0])
    with pytest.raises(ValueError, match=r"^seeds must be"):
        compare.repeat({"SGD": [(_sgd, 0.1, 1)]}, _model_fn(digits), digits, seeds=[])
    with pytest.raises(ValueError, match=r"^lrs must be .*'SGD' included"):
        compare.tune({"SGD": _sgd}, {}, _model_fn(digits), digits, epochs=1)
    with pytest.raises(ValueError, match=r"^lrs\['SGD'\] must be a non-empty sequence"):
        compare.tune({"SGD": _sgd}, {"SGD": []}, _model_fn(digits), digits, epochs=1)
    no_valid = data.load("digits", valid_fraction=0.0)
    with pytest.raises(ValueError, match=r"^data must be a Dataset with a validation split"):
        compare.tune({"SGD": _sgd}, {"SGD": [0.1]}, _model_fn(digits), no_valid, epochs=1)
    with pytest.raises(ValueError, match=r"^builders must be a mapping of at least two"):
        compare.lockstep({"SGD": _sgd}, _model_fn(digits), digits.train.x, digits.train.y)


def _keyword_only_sgd(params, *, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def test_any_factory_of_the_form_make_params_lr_works(digits):
    records = [compare.run(_model_fn(digits), [(make, 0.05, 1)], digits, seed=2)[0]
               for make in (functools.partial(torch.optim.SGD, momentum=0.9),
                            _keyword_only_sgd,
                            lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9))]
    assert records[0]["test loss"] == records[1]["test loss"] == records[2]["test loss"]
    result = compare.repeat({"Adam": [(torch.optim.Adam, 1e-2, 1)]}, _model_fn(digits), digits,
                            seeds=[0])
    assert (result.runs.at[0, "optimizer"], result.runs.at[0, "lr"]) == ("Adam", 1e-2)


def test_a_failing_run_in_the_sweep_is_raised_with_its_point(digits):
    def broken(params, lr):
        raise ArithmeticError("no optimizer today")

    with pytest.raises(RuntimeError, match=r"'optimizer': 'broken'.*no optimizer today"):
        compare.tune({"SGD": _sgd, "broken": broken}, {"SGD": [0.1], "broken": [0.1, 0.2]},
                     _model_fn(digits), digits, epochs=1)


# --------------------------------------------------------------- schedules and curves (lecture 8)


def _dataset(n_train: int = 40) -> data.Dataset:
    g = torch.Generator().manual_seed(8)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64)

    def split(n, part):
        x = torch.randn(n, 5, generator=g, dtype=torch.float64)
        y = (x @ w + 0.5 * torch.randn(n, 3, generator=g, dtype=torch.float64)).argmax(1)
        return data.Split(x, y, "toy", part, ("a", "b", "c"))

    return data.Dataset("toy", split(n_train, "train"), split(30, "valid"), split(30, "test"),
                        ("a", "b", "c"), (0.0,), (1.0,))


def _toy_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def test_a_schedule_free_run_is_evaluated_at_its_averaged_weights_after_every_epoch():
    """The reference trains in train mode throughout and averages the z's itself: at a
    constant rate, no warmup and r = 0, x after T steps is the mean of z_2 .. z_{T+1}."""
    dataset, epochs, batch, seed = _dataset(), 3, 16, 2

    def make(params, lr):
        return ScheduleFreeAdamW(params, lr=lr, betas=(0.8, 0.99))

    record, history = compare.run(_toy_model, [(make, 0.05, epochs)], dataset, seed=seed,
                                  batch_size=batch)

    model = _toy_model()
    optimizer = make(model.parameters(), 0.05)
    optimizer.train()
    z_sum = [torch.zeros_like(p) for p in model.parameters()]
    steps, curve, at_y = 0, [], []
    for epoch in range(epochs):
        batches = data.Batches(dataset.train.x, dataset.train.y, batch, seed=seed)
        batches.set_epoch(epoch)
        for x, y in batches:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            steps += 1
            for total, p in zip(z_sum, model.parameters(), strict=True):
                total += optimizer.state[p]["z"]
        average = {name: total / steps for (name, _), total
                   in zip(model.named_parameters(), z_sum, strict=True)}
        with torch.no_grad():
            logits = torch.func.functional_call(model, average, (dataset.valid.x,))
            curve.append(float((logits.argmax(1) == dataset.valid.y).double().mean()))
            test_logits = torch.func.functional_call(model, average, (dataset.test.x,))
            at_y.append(F.cross_entropy(model(dataset.test.x), dataset.test.y).item())
    expected_test_loss = F.cross_entropy(test_logits, dataset.test.y).item()

    assert history.steps == steps == epochs * data.steps_per_epoch(len(dataset.train), batch)
    assert history.valid_acc == curve and record["valid accuracy"] == curve[-1]
    assert record["test loss"] == pytest.approx(expected_test_loss, rel=1e-10)
    assert abs(at_y[-1] - expected_test_loss) > 1e-6, "y and x differ, so the test can tell"


def test_each_phase_follows_the_schedule_over_its_own_budget():
    dataset, batch = _dataset(), 16
    per_epoch = data.steps_per_epoch(len(dataset.train), batch)

    def linear(t, *, total_steps):
        return 1 - t / total_steps

    _, history = compare.run(_toy_model, [(SGD, 0.3, 2), (SGD, 0.1, 1)], dataset,
                             batch_size=batch, schedule=linear)
    first, second = 2 * per_epoch, per_epoch
    np.testing.assert_allclose(history.lr, [0.3 * (1 - t / first) for t in range(first)]
                               + [0.1 * (1 - t / second) for t in range(second)], rtol=1e-12)


def test_a_comparison_tunes_and_repeats_each_optimizer_with_its_schedule():
    dataset, batch = _dataset(), 16
    total = 2 * data.steps_per_epoch(len(dataset.train), batch)
    warm = functools.partial(schedules.warmup_cosine, warmup_steps=2)
    result = compare.compare({"SGD": SGD, "Adam": Adam}, {"SGD": [1e-3, 0.3], "Adam": [0.01]},
                             _toy_model, dataset, 2, [0, 1], batch_size=batch,
                             schedules={"SGD": warm})
    # one rate has nothing to choose: Adam is not tuned
    assert list(result.tuning["optimizer"]) == ["SGD", "SGD"]
    best = result.tuning.sort_values(["valid accuracy", "valid loss"],
                                     ascending=[False, True]).iloc[0]
    assert result.lrs == {"SGD": best["lr"], "Adam": 0.01}
    lr = result.lrs["SGD"]
    np.testing.assert_allclose(result.histories[("SGD", 1)].lr,
                               [warm(t, lr, total_steps=total) for t in range(total)], rtol=1e-12)
    assert result.histories[("Adam", 0)].lr == [0.01] * total
    curves = result.curves()
    assert list(curves) == ["SGD", "Adam"]
    np.testing.assert_array_equal(curves["Adam"][1], result.histories[("Adam", 1)].valid_acc)
    assert curves["SGD"].shape == (2, 2)


class _Cube(nn.Module):
    def forward(self, x):
        return x**3


def test_a_diverged_run_stops_and_its_curve_is_padded_with_nan():
    def exploding():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 3), _Cube()).double()

    with pytest.warns(RuntimeWarning, match="diverged"):
        result = compare.repeat({"SGD": [(SGD, 1e10, 4)], "calm": [(SGD, 1e-3, 4)]}, exploding,
                                _dataset(), [0], batch_size=16)
    assert result.runs["diverged"].tolist() == [True, False]
    curves = result.curves()
    assert curves["SGD"].shape == (1, 1) and math.isfinite(curves["SGD"][0, 0])
    assert curves["calm"].shape == (1, 4)
    mixed = compare.Comparison(pd.concat([result.runs, result.runs.iloc[[0]].assign(seed=1)]),
                               {**result.histories, ("SGD", 1): result.histories[("calm", 0)]})
    padded = mixed.curves()["SGD"]
    assert padded.shape == (2, 4) and np.isnan(padded[0, 1:]).all()


def test_schedules_must_name_the_optimizers_and_be_functions(digits):
    with pytest.raises(ValueError, match=r"^schedules must be one of 'SGD', got 'Adam'"):
        compare.tune({"SGD": _sgd}, {"SGD": [0.1, 0.2]}, _model_fn(digits), digits, epochs=1,
                     schedules={"Adam": schedules.warmup_cosine})
    with pytest.raises(ValueError, match=r"^schedules\['SGD'\] must be a function f\(t"):
        compare.repeat({"SGD": [(_sgd, 0.1, 1)]}, _model_fn(digits), digits, seeds=[0],
                       schedules={"SGD": 0.5})
    with pytest.raises(ValueError, match=r"^lrs must be one of 'SGD', got 'Adam'"):
        compare.tune({"SGD": _sgd}, {"SGD": [0.1], "Adam": [0.1]}, _model_fn(digits), digits,
                     epochs=1)
    with pytest.raises(ValueError, match=r"^metric must be one of"):
        compare.Comparison(pd.DataFrame({"optimizer": ["a"], "seed": [0]}), {}).curves("acc")
