"""The wire format, the comparison (property-based too: it never raises on what can cross
the wire), what is stored of a value, and the grading-file definitions."""

from __future__ import annotations

import json
import math
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from grading_helpers import GRADING, full_plan
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from coursekit.grading import (
    Assignment,
    GradingSpecError,
    Plan,
    PlannedTest,
    Question,
    SubmissionResult,
    Test,
    TestResult,
    build_plan,
    compare,
    load_assignment,
    plan_from_json,
    plan_to_json,
    probe,
)
from coursekit.grading.child import (
    DTYPES,
    MAX_DEPTH,
    MAX_STRING,
    MAX_TEXT,
    WireError,
    decode,
    encode,
)
from coursekit.grading.report import (
    MAX_SUBMISSION_BYTES,
    feedback,
    fit,
    record,
    reuse,
    to_json,
    write_atomic,
)
from coursekit.grading.verdict import judge_value


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


# Property-based: the comparison and what is stored never fail on any value that can
# cross the wire, however a submission builds it -------------------------------------

HUGE_INTS = [10**400, -(10**400), 2**64, 2**63, -(2**63) - 1, 2**53 + 1, 10**20, 10**4000]
CHARS = st.characters(codec=None, exclude_categories=())  # lone surrogates included
TEXT = st.text(CHARS, max_size=12) | st.sampled_from(["", "x" * MAX_STRING, "\ud800",
                                                      "é" * 3000])
NUMBERS = st.booleans() | st.integers() | st.sampled_from(HUGE_INTS) | st.floats() \
    | st.floats(width=16)
ARRAYS = arrays(dtype=st.sampled_from(sorted(DTYPES)).map(np.dtype),
                shape=array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
LEAVES = st.none() | NUMBERS | TEXT | ARRAYS


def _nested(value, depth):
    for _ in range(depth):
        value = [value]
    return value


VALUES = st.recursive(
    LEAVES | st.tuples(LEAVES, st.integers(0, MAX_DEPTH)).map(lambda p: _nested(*p)),
    lambda items: st.lists(items, max_size=5)
    | st.dictionaries(st.text(CHARS, max_size=6), items, max_size=5),
    max_leaves=20)
# what the grader holds: a value after its trip through the wire format
WIRE = VALUES.filter(lambda v: _depth(v) <= MAX_DEPTH).map(_through_json)
TOLERANCES = st.sampled_from([(0.0, 0.0), (1e-6, 1e-8), (1.0, 0.0), (0.0, 1e300)])


def _depth(value):
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@st.composite
def _variants(draw, expected):
    """What a submission may return where ``expected`` is due: anything, or ``expected``
    with another dtype, shape, nesting or an integer too large for a float."""
    kind = draw(st.sampled_from(["any", "same", "dtype", "shape", "list", "huge", "keys"]))
    if kind == "any":
        return draw(WIRE)
    if isinstance(expected, np.ndarray):
        if kind == "dtype":
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return expected.astype(draw(st.sampled_from(sorted(DTYPES))))
        if kind == "shape":
            return expected.reshape(-1) if expected.ndim != 1 else expected.reshape(1, -1)
        if kind == "list":
            return expected.tolist()
        if kind == "huge":
            return [draw(st.sampled_from(HUGE_INTS))] * max(expected.size, 1)
    if isinstance(expected, dict) and kind == "keys":
        return {**expected, draw(st.text(CHARS, max_size=6)): draw(WIRE)}
    return expected


def _planned(expected, rtol=1e-6, atol=1e-8, hidden=False):
    return PlannedTest("q", "hidden" if hidden else "public", "", 1.0, hidden, "p", {},
                       expected, rtol, atol)


@given(st.data(), WIRE, TOLERANCES)
def test_compare_never_raises_and_its_message_is_short(data, expected, tolerances):
    got = data.draw(_variants(expected))
    rtol, atol = tolerances
    message = compare(got, expected, rtol=rtol, atol=atol)
    assert message is None or 0 < len(message) <= MAX_TEXT
    verdict = judge_value(_planned(expected, rtol, atol), got)
    assert verdict.passed == (message is None)


@given(WIRE)
def test_every_value_matches_itself_exactly(value):
    assert compare(value, _through_json(value), rtol=0, atol=0) is None


@given(st.lists(st.integers() | st.sampled_from(HUGE_INTS), min_size=1, max_size=20),
       st.data())
def test_integers_that_floats_would_round_are_compared_exactly(integers, data):
    i = data.draw(st.integers(0, len(integers) - 1))
    changed = [*integers[:i], integers[i] + 1, *integers[i + 1:]]
    assert compare(list(integers), integers, rtol=0, atol=0) is None
    assert compare(changed, integers, rtol=0, atol=0).startswith(
        f"result: 1 of {len(integers)} values differ; the largest difference is at index ({i},)")


@given(WIRE, WIRE)
def test_whatever_a_probe_returns_is_stored_within_bounds_and_read_back_the_same(got,
                                                                                 expected):
    plan = Plan("demo", (("q", "Q"),), (_planned(expected), _planned(expected, hidden=True)),
                {"p": "def p(student):\n    return None\n"})
    result = SubmissionResult("s", "ok", "every cell ran without error",
                              tuple(judge_value(t, got) for t in plan.tests))
    stored = fit(result, plan)
    with tempfile.TemporaryDirectory() as tmp:
        feedback_file, record_file = Path(tmp) / "feedback.json", Path(tmp) / "record.json"
        write_atomic(feedback_file, to_json(feedback(stored, plan)))
        write_atomic(record_file, to_json(record(stored, "f" * 64)))
        size = feedback_file.stat().st_size + record_file.stat().st_size
        again = reuse(record_file, "s", "f" * 64, plan)
        assert again is not None
        # (a lone surrogate is in the file as its JSON escape: compare what the files say)
        assert json.loads(to_json(feedback(again, plan))) == \
            json.loads(feedback_file.read_text(encoding="utf-8"))
    # beyond the bound only what the assignment puts there: a silent submission's feedback
    silent = SubmissionResult("s", "ok", "", tuple(TestResult(t, False, "") for t in plan.tests))
    assert size <= MAX_SUBMISSION_BYTES + len(to_json(feedback(silent, plan)))
    assert [r.passed for r in again.tests] == [r.passed for r in result.tests]
