"""Verdicts: whether a returned value matches its reference, and what became of a submission.

Everything here runs in the grader's process, on plain values rebuilt by
:func:`coursekit.grading.child.decode`, so nothing a submission patches in its
own process can change a verdict.

- :func:`compare` says whether a value matches a reference, and if not, what differs;
- :func:`judge` turns a probe's outcome into a :class:`TestResult`;
- :func:`run_status` names how a submission's run went, one of :data:`STATUSES`.

Statuses, from most to least severe:

====================  ============================================================
``grader_error``      the grader itself failed on this submission (a bug, or a full
                      disk): the reason is in the detail and the gradebook; scores 0,
                      and the next run grades it again
``invalid``           not a readable notebook (bad JSON, not nbformat, too large,
                      too many code cells); scores 0
``wrong_assignment``  the notebook's metadata names another assignment; scores 0
``empty``             no code cells; scores 0
``timeout``           stopped at the wall-clock or CPU-time limit; what ran before counts
``crashed``           the process died (exit, signal) before finishing; what ran counts
``cell_timeout``      a cell or a graded call ran past the per-cell limit and was interrupted
``errors``            some cells raised; the later cells still ran
``ok``                every cell ran without error
====================  ============================================================

:func:`compare` never raises on values the wire format can carry, and every
message here is at most ``MAX_TEXT`` characters.
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from coursekit.grading.child import MAX_TEXT, clip
from coursekit.grading.runner import CellProblem, RunResult
from coursekit.grading.sandbox import Limits
from coursekit.grading.spec import PlannedTest

__all__ = [
    "NOT_GRADED",
    "STATUSES",
    "SubmissionResult",
    "TestResult",
    "compare",
    "differing",
    "judge",
    "judge_value",
    "kind_of",
    "run_status",
]

STATUSES = ("grader_error", "invalid", "wrong_assignment", "empty", "timeout", "crashed",
            "cell_timeout", "errors", "ok")
NOT_GRADED = ("grader_error", "invalid", "wrong_assignment", "empty")  # nothing of it ran


# Comparing values ----------------------------------------------------------------------

def _label(path: str, part: str) -> str:
    """The name of a part of a result: ``theta``, ``theta.m``, ``result[2]``."""
    if part.startswith("["):
        return f"{path}{part}"
    return part if path == "result" else f"{path}.{part}"


def kind_of(value: Any) -> str:
    """What ``value`` is, in a few words: ``"an array of shape (3,)"``, ``"a str"``."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, list):
        return f"a list of length {len(value)}"
    if isinstance(value, dict):
        if len(value) > 10:
            return f"a dict with {len(value)} keys"
        return f"a dict with keys {sorted(value)}"
    return f"a {type(value).__name__}"


def _all_numbers(value: Any) -> bool:
    if isinstance(value, list):
        return all(_all_numbers(item) for item in value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    return type(value) in (bool, int, float)


def _big_integers(value: Any) -> bool:
    """Whether ``value`` holds integers that a float64 does not represent exactly."""
    if isinstance(value, list):
        return any(_big_integers(item) for item in value)
    if isinstance(value, np.ndarray):
        return _beyond_floats(value)
    return type(value) is int and abs(value) > 2**53


def _beyond_floats(array: np.ndarray) -> bool:
    if array.dtype == object:  # integers beyond 64 bits
        return True
    return array.dtype.kind in "iu" and array.dtype.itemsize == 8 and bool(
        np.any(array > 2**53) or np.any(array < -(2**53)))


def _numeric(value: Any) -> np.ndarray | None:
    """``value`` as an array if it is a number, an array or (nested) lists of them; its
    dtype is ``object`` when it holds integers a float64 would round and no integer
    dtype holds them all."""
    if not _all_numbers(value):
        return None
    try:
        array = np.asarray(value)
        if array.dtype.kind == "f" and not isinstance(value, np.ndarray) \
                and _big_integers(value):
            exact = np.array(value, dtype=object)
            return exact if exact.shape == array.shape else array
        return array
    except (ValueError, OverflowError, TypeError):  # ragged lists, more than 32 levels
        return None


def _python(number: Any) -> Any:
    """A NumPy scalar (held by an array of dtype object) as the Python number it is."""
    return number.item() if isinstance(number, np.generic) else number


def _close(x: Any, y: Any, rtol: float, atol: float) -> bool:
    """``|x - y| <= atol + rtol * |y|`` for Python numbers, exactly, as np.isclose
    decides it for float64 (NaN matches NaN, an infinity only itself)."""
    if (isinstance(x, float) and math.isnan(x)) or (isinstance(y, float) and math.isnan(y)):
        return isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
    if (isinstance(x, float) and math.isinf(x)) or (isinstance(y, float) and math.isinf(y)):
        return x == y
    try:
        return abs(x - y) <= atol + rtol * abs(y)
    except OverflowError:  # an integer beyond the floats' range
        return abs(Fraction(x) - Fraction(y)) <= Fraction(atol) + Fraction(rtol) * abs(Fraction(y))


def _gap(x: Any, y: Any) -> float:
    """``|x - y|`` as a float (infinite when it does not fit one)."""
    try:
        return float(abs(x - y))
    except OverflowError:
        return math.inf


def _mismatches(got: np.ndarray, expected: np.ndarray, rtol: float,
                atol: float) -> tuple[np.ndarray, np.ndarray]:
    """Which entries differ (same shapes), and by how much (NaN counts as infinite)."""
    if not _beyond_floats(got) and not _beyond_floats(expected):
        g, e = got.astype(np.float64), expected.astype(np.float64)
        with np.errstate(all="ignore"):
            if expected.dtype == bool:
                bad = got != expected
            else:
                bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
            difference = np.abs(g - e)
    else:  # integers that floats would round: entry by entry, exactly
        pairs = [(_python(x), _python(y))
                 for x, y in zip(got.ravel().tolist(), expected.ravel().tolist(), strict=True)]
        bad = np.array([not _close(x, y, rtol, atol) for x, y in pairs],
                       dtype=bool).reshape(expected.shape)
        difference = np.array([_gap(x, y) for x, y in pairs],
                              dtype=np.float64).reshape(expected.shape)
    return bad, np.where(np.isnan(difference), np.inf, difference)


def _show(number: Any) -> str:
    """A number as a message shows it (an integer of more than 20 digits by its size)."""
    if isinstance(number, int) and not isinstance(number, bool) and abs(number) >= 10**20:
        return f"an integer of {len(str(abs(number)))} digits"
    return repr(number)


def compare(got: Any, expected: Any, *, rtol: float, atol: float,
            path: str = "result") -> str | None:
    """``None`` when ``got`` matches ``expected``, else a message saying what differs.

    Both are plain data (numbers, strings, ``None``, arrays, lists, dicts).
    Numbers and arrays (or lists of numbers) match when they have the same shape
    and every entry satisfies ``|got - expected| <= atol + rtol * |expected|``
    (NaN matches NaN; booleans must be equal; integers beyond 2**53, which floats
    would round, are compared exactly); strings and ``None`` must be equal; other lists and dicts
    are compared item by item. The message names the first part that differs
    and, for arrays, how many values differ and where the largest difference is;
    it is at most ``MAX_TEXT`` characters. Never raises for values the wire
    format (:func:`coursekit.grading.child.decode`) can carry.
    """
    message = _compare(got, expected, rtol=rtol, atol=atol, path=path)
    return None if message is None else clip(message)


def differing(got: Any, expected: Any, *, rtol: float, atol: float) -> np.ndarray | None:
    """Which entries of ``got`` differ from ``expected`` as :func:`compare` decides it: a
    boolean array of their shape, or ``None`` when they are not numbers of the same shape
    (then :func:`compare`'s message says what differs)."""
    exp, g = _numeric(expected), _numeric(got)
    if exp is None or g is None or g.shape != exp.shape:
        return None
    return _mismatches(g, exp, rtol, atol)[0]


def _compare(got: Any, expected: Any, *, rtol: float, atol: float, path: str) -> str | None:
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path}: expected {kind_of(expected)}, got {kind_of(got)}"
        if sorted(got) != sorted(expected):
            return f"{path}: expected keys {sorted(expected)}, got {sorted(got)}"
        for key in sorted(expected):
            message = _compare(got[key], expected[key], rtol=rtol, atol=atol,
                               path=_label(path, key))
            if message:
                return message
        return None
    if expected is None or isinstance(expected, str):
        if type(got) is type(expected) and got == expected:
            return None
        return f"{path}: expected {expected!r}, got {kind_of(got)}"
    exp = _numeric(expected)
    if exp is None:
        if not isinstance(got, list) or len(got) != len(expected):
            return f"{path}: expected {kind_of(expected)}, got {kind_of(got)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            message = _compare(g, e, rtol=rtol, atol=atol, path=_label(path, f"[{i}]"))
            if message:
                return message
        return None
    g = _numeric(got)
    if g is None:
        return f"{path}: expected numbers of shape {exp.shape}, got {kind_of(got)}"
    if g.shape != exp.shape:
        return f"{path}: expected shape {exp.shape}, got shape {g.shape}"
    bad, difference = _mismatches(g, exp, rtol, atol)
    if not bad.any():
        return None
    tolerance = f"(rtol={rtol:g}, atol={atol:g})"
    if exp.ndim == 0:
        return f"{path}: got {_show(g.item())}, expected {_show(exp.item())} {tolerance}"
    worst = np.unravel_index(int(np.argmax(np.where(bad, difference, -1.0))), exp.shape)
    index = tuple(int(i) for i in worst)
    return (f"{path}: {int(bad.sum())} of {bad.size} values differ; the largest difference "
            f"is at index {index}: got {_show(g.item(index))}, expected "
            f"{_show(exp.item(index))} {tolerance}")


# Verdicts on tests and submissions --------------------------------------------------------

@dataclass(frozen=True)
class TestResult:
    """The verdict on one planned test for one submission."""

    __test__ = False  # not a pytest test class

    test: PlannedTest
    passed: bool
    message: str
    got: Any = None

    @property
    def points(self) -> float:
        """Points earned: all of the test's points if it passed, else none."""
        return self.test.points if self.passed else 0.0


@dataclass(frozen=True)
class SubmissionResult:
    """Everything the grader concluded about one submission.

    ``note`` is for the instructor only (the record and the gradebook, never the
    feedback): for a ``grader_error``, the grader's own error message, which
    could quote a hidden input. ``reused`` is True when
    :func:`coursekit.grading.grade` took the result from an earlier run's
    record; ``isolation`` is what the sandbox reported (empty when reused or
    when the notebook never ran).
    """

    name: str
    status: str
    detail: str
    tests: tuple[TestResult, ...]
    cell_problems: tuple[CellProblem, ...] = ()
    note: str = ""
    reused: bool = field(default=False, compare=False)
    isolation: dict = field(default_factory=dict, compare=False)

    def score(self, question: str | None = None) -> float:
        """Points earned (on one question when given), rounded to 1e-6."""
        return round(math.fsum(r.points for r in self.tests
                               if question is None or r.test.question == question), 6)


def judge_value(test: PlannedTest, value: Any) -> TestResult:
    """The verdict on ``test`` for a probe that returned ``value``."""
    message = compare(value, test.expected, rtol=test.rtol, atol=test.atol)
    return TestResult(test, message is None, message or "matches the reference", value)


def judge(test: PlannedTest, run: RunResult | None, not_run: str) -> TestResult:
    """The verdict on ``test`` from a submission's ``run`` (None: it never ran, because
    of ``not_run``, which is also the message when the test's probe was not called)."""
    outcome = run.outputs.get(test.key) if run is not None else None
    if outcome is None:
        return TestResult(test, False, f"not run: {not_run}")
    if not outcome.ok:
        return TestResult(test, False, clip(outcome.error))
    return judge_value(test, outcome.value)


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _hint(error: str, limits: Limits) -> str:
    """Which limit an error message points to, if any."""
    hints = (("MemoryError", f"memory is limited to {limits.memory_mb} MiB"),
             ("[Errno 27]", f"files are limited to {limits.file_mb} MiB"),
             ("[Errno 28]", f"scratch space is limited to {limits.disk_mb} MiB"),
             ("[Errno 11]", f"at most {limits.processes} processes and threads"),
             ("can't start new thread", f"at most {limits.processes} processes and threads"),
             ("[Errno 101]", "grading runs without network"))
    found = [hint for pattern, hint in hints if pattern in error]
    return f" ({found[0]})" if found else ""


def _join(notes: list[str]) -> str:
    """``notes`` joined by ``"; "``, as many as fit in ``MAX_TEXT`` characters, then how
    many more there are."""
    text = ""
    for i, note in enumerate(notes):
        longer = f"{text}; {note}" if text else note
        if len(longer) > MAX_TEXT - 30 and text:
            return f"{text}; and {len(notes) - i} more"
        text = longer
    return clip(text)


def run_status(run: RunResult, timeout: float, limits: Limits) -> tuple[str, str, str]:
    """``(status, detail, why tests did not run)`` for a submission that ran, or that
    its process found it could not run (``run.problem``)."""
    if run.problem is not None:
        status, detail = run.problem
        return status, detail, detail
    errors = [p for p in run.cell_problems if p.status == "error"]
    slow = [p for p in run.cell_problems if p.status == "timeout"]
    slow_calls = sorted(key for key, o in run.outputs.items() if o.timed_out)
    notes = [f"cell {p.cell} raised {p.error}{_hint(p.error, limits)}" for p in errors]
    notes += [f"cell {p.cell} {p.error}" for p in slow]
    notes += [f"test {key} was stopped at the per-cell limit" for key in slow_calls]
    if run.hidden_started:
        # how it stopped could carry what it saw of the hidden inputs: say only when
        where, how = " during the hidden tests", "stopped"
    else:
        where = (f" while running cell {run.last_cell}" if run.last_cell is not None else
                 f" while running test {run.last_test}" if run.last_test is not None else "")
        code = run.returncode
        how = (f"was killed by {_signal_name(code)}" if code is not None and code < 0
               else f"exited with status {code}")
    if run.timed_out:
        return ("timeout", _join([f"stopped after {timeout:g} s{where}", *notes]),
                "the submission ran out of time first")
    if run.cpu_limited:
        cpu = limits.cpu_seconds or timeout
        return ("timeout", _join([f"used up its {cpu:g} s of CPU time{where}", *notes]),
                "the submission ran out of CPU time first")
    if not run.finished:
        return ("crashed", _join([f"the process {how}{where}", *notes]),
                "the process died first")
    if slow or slow_calls:
        return "cell_timeout", _join(notes), ""
    if errors:
        return "errors", _join(notes), ""
    return "ok", "every cell ran without error", ""
