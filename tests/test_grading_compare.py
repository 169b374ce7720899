"""The wire format, the comparison, and the grading-file definitions."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from grading_helpers import GRADING, full_plan

from coursekit.grading import (
    Assignment,
    GradingSpecError,
    Question,
    Test,
    build_plan,
    compare,
    load_assignment,
    plan_from_json,
    plan_to_json,
    probe,
)
from coursekit.grading.child import WireError, decode, encode


def _through_json(value):
    return decode(json.loads(json.dumps(encode(value))))


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int8", "uint8",
                                   "bool"])
def test_arrays_cross_the_wire_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4)) * 100).astype(dtype)
    if dtype.startswith("float"):
        array[0, :3] = [np.nan, np.inf, -np.inf]
    back = _through_json(array)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert array.tobytes() == back.tobytes()


def test_nested_values_and_tensors_come_back_as_plain_data():
    value = {"theta": torch.tensor([1.5, -2.0], dtype=torch.float32),
             "steps": (3, 4.5, True, None, "done"),
             "half": torch.tensor([1.0], dtype=torch.bfloat16)}
    back = _through_json(value)
    assert back["theta"].dtype == np.float32 and back["theta"].tolist() == [1.5, -2.0]
    assert back["steps"] == [3, 4.5, True, None, "done"]
    assert back["half"].dtype == np.float32 and back["half"].tolist() == [1.0]
    assert type(_through_json(np.float64(0.1))) is float


@pytest.mark.parametrize(("value", "problem"), [
    (lambda: 1, "cannot send a function"),
    ({1, 2}, "cannot send a set"),
    (np.array([1 + 2j]), "dtype complex128"),
    (np.array(["a"], dtype=object), "dtype object"),
    ({1: 2.0}, "string keys"),
])
def test_encode_refuses_anything_but_plain_data(value, problem):
    with pytest.raises(WireError, match=problem):
        encode(value)


@pytest.mark.parametrize("data", [
    {"array": {"dtype": "float64", "shape": [3], "data": [1.0, 2.0]}},
    {"array": {"dtype": "object", "shape": [1], "data": [1]}},
    {"array": {"dtype": "float64", "shape": [-1], "data": []}},
    {"array": {"dtype": "int64", "shape": [1], "data": [1.5]}},
    {"array": {"dtype": "float64", "shape": [1], "data": ["1.0"]}},
    {"array": {"dtype": "int8", "shape": [1], "data": [1000]}},
    {"array": {"dtype": "float64", "shape": [2], "data": [[1.0], [2.0]]}},
    {"pickle": "gASVAAAAAAAAAAA="},
    {"dict": {"a": 1.0}, "array": {}},
])
def test_decode_refuses_malformed_values(data):
    with pytest.raises(WireError):
        decode(data)


def test_compare_uses_the_stated_tolerance_entry_by_entry():
    rng = np.random.default_rng(1)
    expected = rng.normal(size=50)
    rtol, atol = 1e-6, 1e-8
    got = expected + rng.choice([0.5, 2.0], size=50) * (atol + rtol * np.abs(expected))
    within = np.abs(got - expected) <= atol + rtol * np.abs(expected)
    assert 0 < within.sum() < 50
    message = compare(got, expected, rtol=rtol, atol=atol)
    assert message.startswith(f"result: {int((~within).sum())} of 50 values differ")
    assert compare(np.where(within, got, expected), expected, rtol=rtol, atol=atol) is None


def test_compare_names_the_field_and_the_worst_entry():
    expected = {"theta": np.array([1.0, 2.0, 3.0]), "v": np.zeros(3)}
    got = {"theta": np.array([1.0, 2.5, 3.1]), "v": np.zeros(3)}
    assert compare(got, expected, rtol=1e-6, atol=1e-8) == (
        "theta: 2 of 3 values differ; the largest difference is at index (1,): got 2.5, "
        "expected 2.0 (rtol=1e-06, atol=1e-08)")


@pytest.mark.parametrize(("got", "problem"), [
    (np.zeros((3, 1)), "theta: expected shape (3,), got shape (3, 1)"),
    ("nothing", "theta: expected numbers of shape (3,), got a str"),
    (["1.0", "2.0", "3.0"], "theta: expected numbers of shape (3,), got a list of length 3"),
    ([1.0, float("nan"), 3.0], "theta: 1 of 3 values differ"),
])
def test_compare_reports_shape_type_and_nan_mismatches(got, problem):
    message = compare({"theta": got}, {"theta": np.array([1.0, 2.0, 3.0])}, rtol=0, atol=0)
    assert message.startswith(problem)


def test_compare_matches_nan_with_nan_and_lists_with_arrays():
    assert compare([1.0, math.nan], np.array([1.0, math.nan]), rtol=0, atol=0) is None
    assert compare({"a": [1, {"b": 2.0}]}, {"a": [1, {"b": 2.0}]}, rtol=0, atol=0) is None
    assert compare({"a": 1}, {"b": 1}, rtol=0, atol=0) == "result: expected keys ['b'], got ['a']"


GLOBAL_CONSTANT = 3.0


def test_probe_refuses_names_that_do_not_exist_in_the_student_process():
    def uses_a_global(student, x):
        return student["f"](x) * GLOBAL_CONSTANT

    with pytest.raises(GradingSpecError, match="uses GLOBAL_CONSTANT"):
        probe(uses_a_global)

    def not_student(x):
        return x

    with pytest.raises(GradingSpecError, match="first parameter must be 'student'"):
        probe(not_student)


@probe
def double(student, x):
    import math

    return student["f"](x) * 2 + math.floor(np.float64(0.5))


def _reference(x):
    return 2 * x


def test_public_tests_need_fixed_inputs():
    with pytest.raises(GradingSpecError, match="public test needs fixed inputs"):
        Test("t", double, inputs=lambda rng: {"x": 1.0}, reference=_reference)


def test_hidden_inputs_depend_on_seed_and_test_not_on_order():
    def assignment(*names):
        tests = [Test(n, double, inputs=lambda rng: {"x": rng.normal()}, reference=_reference,
                      hidden=True) for n in names]
        return Assignment(questions=[Question("q", "Q", tests)], seed=5, name="demo")

    forward = {t.key: t.inputs["x"] for t in build_plan(assignment("a", "b")).tests}
    backward = {t.key: t.inputs["x"] for t in build_plan(assignment("b", "a")).tests}
    other = {t.key: t.inputs["x"] for t in build_plan(assignment("a", "b"), seed=6).tests}
    assert forward == backward
    assert forward["q/a"] != forward["q/b"]
    assert set(forward.values()).isdisjoint(other.values())
    assert [t.expected for t in build_plan(assignment("a")).tests] == [2 * forward["q/a"]]


def test_plan_survives_its_json_form():
    plan = full_plan()
    again = plan_from_json(plan_to_json(plan))
    assert plan_to_json(again) == plan_to_json(plan)
    assert [t.key for t in again.tests] == [t.key for t in plan.tests]


def test_load_assignment_names_it_after_the_file_and_reports_broken_files(tmp_path):
    assert load_assignment(GRADING).name == "example"
    broken = tmp_path / "bad_grading.py"
    broken.write_text("import numpy\nASSIGNMENT = 1 / 0\n")
    with pytest.raises(GradingSpecError,
                       match=re.escape("bad_grading.py failed to import: ZeroDivisionError")):
        load_assignment(broken)
    with pytest.raises(GradingSpecError, match=re.escape("named <hw>_grading.py")):
        load_assignment(tmp_path / "grading.py")
