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

import coursekit
from coursekit import data, models, train
from coursekit.experiments import compare
from coursekit.optim import transforms


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
        compare.tune({"SGD": _sgd, "broken": broken}, {"SGD": [0.1], "broken": [0.1]},
                     _model_fn(digits), digits, epochs=1)
