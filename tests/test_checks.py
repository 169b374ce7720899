"""coursekit._checks: every check names the argument, the rule and the bad value.

The one message style is ``<name> must be <rule>, got <value>``; these tests pin it
for each helper, and check what each helper accepts and returns.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coursekit import _checks as checks

REJECTED = [
    (lambda: checks.nonnegative("lr", -1), ValueError, "lr must be >= 0, got -1"),
    (lambda: checks.positive("gamma", 0.0), ValueError, "gamma must be > 0, got 0.0"),
    (lambda: checks.real("lr", "0.1"), ValueError, "lr must be a real number, got '0.1'"),
    (lambda: checks.real("lr", True), ValueError, "lr must be a real number, got True"),
    (lambda: checks.real("lr", math.nan), ValueError, "lr must be finite, got nan"),
    (lambda: checks.real("lr", math.inf), ValueError, "lr must be finite, got inf"),
    (lambda: checks.real("p", math.nan, allow_inf=True), ValueError,
     "p must be a real number, not NaN, got nan"),
    (lambda: checks.real("kappa", 0.5, at_least=1), ValueError, "kappa must be >= 1, got 0.5"),
    (lambda: checks.real("f", 1, above=1), ValueError, "f must be > 1, got 1"),
    (lambda: checks.real("f", 2, at_most=1), ValueError, "f must be <= 1, got 2"),
    (lambda: checks.real("tail", 0, above=0, at_most=1), ValueError,
     "tail must be in (0, 1], got 0"),
    (lambda: checks.in_unit_interval("factor", 1.5), ValueError,
     "factor must be in [0, 1], got 1.5"),
    (lambda: checks.in_unit_interval("f", 0.0, open_low=True, open_high=True), ValueError,
     "f must be in (0, 1), got 0.0"),
    (lambda: checks.beta("momentum", np.float64(1.0)), ValueError,
     "momentum must be in [0, 1), got 1.0"),
    (lambda: checks.betas(0.9), ValueError, "betas must be a pair (beta1, beta2), got 0.9"),
    (lambda: checks.betas((0.9, 1.0)), ValueError, "betas[1] must be in [0, 1), got 1.0"),
    (lambda: checks.integer("window", 2.5, minimum=1), ValueError,
     "window must be an integer >= 1, got 2.5"),
    (lambda: checks.integer("k", True, minimum=0), ValueError,
     "k must be an integer >= 0, got True"),
    (lambda: checks.integer("seed", 2**32, minimum=0, maximum=2**32 - 1), ValueError,
     "seed must be an integer in [0, 4294967295], got 4294967296"),
    (lambda: checks.optional_integer("batch_size", 0, minimum=1), ValueError,
     "batch_size must be None or an integer >= 1, got 0"),
    (lambda: checks.integers("widths", [16, 32], minimum=1, length=3), ValueError,
     "widths must be a sequence of 3 integers >= 1, got [16, 32]"),
    (lambda: checks.integers("shape", (), minimum=1), ValueError,
     "shape must be a non-empty sequence of integers >= 1, got ()"),
    (lambda: checks.integers("shape", (1, 0), minimum=1), ValueError,
     "shape[1] must be an integer >= 1, got 0"),
    (lambda: checks.choice("mode", "x", ("min", "max")), ValueError,
     "mode must be one of 'min', 'max', got 'x'"),
    (lambda: checks.choice("fused", 1, (None, True, False)), ValueError,
     "fused must be one of None, True, False, got 1"),
    (lambda: checks.instance("fn", 3, (str, list)), TypeError, "fn must be a str or a list, got 3"),
    (lambda: checks.instance("opt", 3, str, what="an optimizer"), TypeError,
     "opt must be an optimizer, got 3"),
    (lambda: checks.function("scheduler", 3), TypeError, "scheduler must be callable, got 3"),
    (lambda: checks.function("f", None, what="a function of t"), TypeError,
     "f must be a function of t, got None"),
    (lambda: checks.per_group("min_lr", [0.1], 2), ValueError,
     "min_lr must be one value or a list of 2 (one per parameter group), got [0.1]"),
    (lambda: checks.vector("lrs", []), ValueError,
     "lrs must be a non-empty sequence of numbers, got []"),
    (lambda: checks.vector("start", (1, 2, 3), length=2), ValueError,
     "start must be a sequence of 2 numbers, got (1, 2, 3)"),
    (lambda: checks.vector("start", (1, math.inf), length=2), ValueError,
     "start[1] must be finite, got inf"),
    (lambda: checks.vector("lrs", [0.1, -0.2], at_least=0), ValueError,
     "lrs[1] must be >= 0, got -0.2"),
    (lambda: checks.vector("lrs", "abc"), ValueError,
     "lrs must be a non-empty sequence of numbers, got 'abc'"),
    (lambda: checks.array("momentum", [[0.5, 1.2]], at_least=0, below=1), ValueError,
     "momentum[0, 1] must be in [0, 1), got 1.2"),
    (lambda: checks.array("lr", -1, at_least=0), ValueError, "lr must be >= 0, got -1.0"),
    (lambda: checks.series("losses", [[1.0]]), ValueError,
     "losses must be a 1-D sequence of numbers, got shape (1, 1)"),
    (lambda: checks.shape("xy", np.zeros((5, 3)), (..., 2)), ValueError,
     "xy must be of shape (..., 2), got shape (5, 3)"),
    (lambda: checks.shape("rates", np.zeros((2, 3)), (3, 2)), ValueError,
     "rates must be of shape (3, 2), got shape (2, 3)"),
    (lambda: checks.length("y", [1, 2], 3, "targets, one per row of x"), ValueError,
     "y must have 3 targets, one per row of x, got 2"),
    (lambda: checks.flat_tensor("w", torch.zeros(2, 2)), ValueError,
     "w must be a 1-D floating-point tensor, got Tensor of shape (2, 2)"),
    (lambda: checks.flat_tensor("w", torch.zeros(3, dtype=torch.int64)), ValueError,
     "w must be a 1-D floating-point tensor, got tensor([0, 0, 0])"),
    (lambda: checks.flat_tensor("w", [0.0, 1.0]), ValueError,
     "w must be a 1-D floating-point tensor, got [0.0, 1.0]"),
]


@pytest.mark.parametrize(("call", "error", "message"), REJECTED,
                         ids=[message for _, _, message in REJECTED])
def test_each_check_names_the_argument_the_rule_and_the_bad_value(call, error, message):
    with pytest.raises(error) as excinfo:
        call()
    assert type(excinfo.value) is error
    assert str(excinfo.value) == message


def test_checks_return_the_value_converted():
    assert checks.nonnegative("lr", 1) == 1.0 and isinstance(checks.nonnegative("lr", 1), float)
    assert checks.real("lr", torch.tensor(0.5)) == 0.5  # a one-element tensor
    assert checks.real("p", math.inf, above=0, allow_inf=True) == math.inf
    assert checks.betas([0.9, 0.99]) == (0.9, 0.99)
    assert checks.integer("k", np.int64(3), minimum=1) == 3
    assert type(checks.integer("k", np.int64(3), minimum=1)) is int
    assert checks.optional_integer("b", None, minimum=1) is None
    assert checks.integers("shape", np.array([1, 8, 8]), minimum=1) == (1, 8, 8)
    assert checks.choice("fused", None, (None, True, False)) is None
    assert checks.choice("mode", np.str_("max"), ("min", "max")) == "max"
    assert checks.per_group("lr", 0.1, 3) == [0.1, 0.1, 0.1]
    np.testing.assert_array_equal(checks.vector("start", (1, 2), length=2), [1.0, 2.0])
    np.testing.assert_array_equal(checks.series("x", [1.0, math.nan]), [1.0, math.nan])
    grid = checks.array("momentum", [[0.0, 0.5]], at_least=0, below=1)
    assert grid.dtype == np.float64 and grid.shape == (1, 2)
    xy = torch.zeros(4, 5, 2)
    assert checks.shape("xy", xy, (..., 2)) is xy
    w = torch.zeros(3, dtype=torch.float64)
    assert checks.flat_tensor("w", w) is w


def test_invalid_builds_the_same_message_for_rules_no_helper_covers():
    error = checks.invalid("depth", "6n + 2 with n >= 1", 10)
    assert type(error) is ValueError
    assert str(error) == "depth must be 6n + 2 with n >= 1, got 10"
    error = checks.invalid("records", "a list of dicts", "abc", TypeError)
    assert type(error) is TypeError and str(error) == "records must be a list of dicts, got 'abc'"


def test_long_values_are_shortened_and_big_arrays_shown_by_shape():
    message = str(checks.invalid("data", "a pair", np.zeros((50, 2))))
    assert message == "data must be a pair, got ndarray of shape (50, 2)"
    message = str(checks.invalid("name", "short", "x" * 1000))
    assert len(message) < 120 and message.startswith("name must be short, got 'xxx")
    message = str(checks.invalid("sizes", "short", list(range(100))))
    assert message.endswith("got [0, 1, 2, 3, 4, 5, ...]")
