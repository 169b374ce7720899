"""Verdicts: whether a returned value matches its reference, and what became of a submission.

Everything here runs in the grader's process, on plain values rebuilt by
:func:`coursekit.grading.child.decode`, so nothing a submission patches in its
own process can change a verdict.

- :func:`compare` says whether a value matches a reference, and if not, what differs;
- :func:`judge` turns a probe's outcome into a :class:`TestResult`;
- :func:`run_status` names how a submission's run went, one of :data:`STATUSES`.

Statuses, from most to least severe:

================  ==============================================================
``invalid``       not a readable notebook (bad JSON, not nbformat, too large); scores 0
``wrong_assignment`` the notebook's metadata names another assignment; scores 0
``empty``         no code cells; scores 0
``timeout``       stopped at the wall-clock or CPU-time limit; what ran before counts
``crashed``       the process died (exit, signal) before finishing; what ran counts
``cell_timeout``  a cell or a graded call ran past the per-cell limit and was interrupted
``errors``        some cells raised; the later cells still ran
``ok``            every cell ran without error
================  ==============================================================
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coursekit.grading.runner import CellProblem, RunResult
from coursekit.grading.sandbox import Limits
from coursekit.grading.spec import PlannedTest

__all__ = [
    "STATUSES",
    "SubmissionResult",
    "TestResult",
    "compare",
    "judge",
    "judge_value",
    "run_status",
]

STATUSES = ("invalid", "wrong_assignment", "empty", "timeout", "crashed", "cell_timeout",
            "errors", "ok")


# Comparing values ----------------------------------------------------------------------

def _label(path: str, part: str) -> str:
    """The name of a part of a result: ``theta``, ``theta.m``, ``result[2]``."""
    if part.startswith("["):
        return f"{path}{part}"
    return part if path == "result" else f"{path}.{part}"


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, list):
        return f"a list of length {len(value)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}"
    return f"a {type(value).__name__}"


def _all_numbers(value: Any) -> bool:
    if isinstance(value, list):
        return all(_all_numbers(item) for item in value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    return type(value) in (bool, int, float)


def _numeric(value: Any) -> np.ndarray | None:
    """``value`` as an array if it is a number, an array or (nested) lists of them."""
    if not _all_numbers(value):
        return None
    try:
        return np.asarray(value)
    except ValueError:  # ragged lists
        return None


def compare(got: Any, expected: Any, *, rtol: float, atol: float,
            path: str = "result") -> str | None:
    """``None`` when ``got`` matches ``expected``, else a message saying what differs.

    Both are plain data (numbers, strings, ``None``, arrays, lists, dicts).
    Numbers and arrays (or lists of numbers) match when they have the same shape
    and every entry satisfies ``|got - expected| <= atol + rtol * |expected|``
    (NaN matches NaN; booleans must be equal); strings and ``None`` must be
    equal; other lists and dicts are compared item by item. The message names
    the first part that differs and, for arrays, how many values differ and
    where the largest difference is.
    """
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path}: expected a dict with keys {sorted(expected)}, got {_kind(got)}"
        if sorted(got) != sorted(expected):
            return f"{path}: expected keys {sorted(expected)}, got {sorted(got)}"
        for key in sorted(expected):
            message = compare(got[key], expected[key], rtol=rtol, atol=atol,
                              path=_label(path, key))
            if message:
                return message
        return None
    if expected is None or isinstance(expected, str):
        if type(got) is type(expected) and got == expected:
            return None
        return f"{path}: expected {expected!r}, got {_kind(got)}"
    exp = _numeric(expected)
    if exp is None:
        if not isinstance(got, list) or len(got) != len(expected):
            return f"{path}: expected {_kind(expected)}, got {_kind(got)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            message = compare(g, e, rtol=rtol, atol=atol, path=_label(path, f"[{i}]"))
            if message:
                return message
        return None
    g = _numeric(got)
    if g is None:
        return f"{path}: expected numbers of shape {exp.shape}, got {_kind(got)}"
    if g.shape != exp.shape:
        return f"{path}: expected shape {exp.shape}, got shape {g.shape}"
    if exp.dtype == bool:
        bad = g != exp
    else:
        bad = ~np.isclose(g.astype(np.float64), exp.astype(np.float64), rtol=rtol, atol=atol,
                          equal_nan=True)
    if not bad.any():
        return None
    if exp.ndim == 0:
        return f"{path}: got {g.item()!r}, expected {exp.item()!r} (rtol={rtol:g}, atol={atol:g})"
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(g.astype(np.float64) - exp.astype(np.float64))
    difference[np.isnan(difference)] = np.inf  # NaN where a number was expected
    worst = np.unravel_index(int(np.argmax(np.where(bad, difference, -1.0))), exp.shape)
    index = tuple(int(i) for i in worst)
    return (f"{path}: {int(bad.sum())} of {bad.size} values differ; the largest difference "
            f"is at index {index}: got {g[worst].item()!r}, expected {exp[worst].item()!r} "
            f"(rtol={rtol:g}, atol={atol:g})")


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

    ``reused`` is True when :func:`coursekit.grading.grade` took the result from
    an earlier run's record; ``isolation`` is what the sandbox reported (empty
    when reused or when the notebook never ran).
    """

    name: str
    status: str
    detail: str
    tests: tuple[TestResult, ...]
    cell_problems: tuple[CellProblem, ...] = ()
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
        return TestResult(test, False, outcome.error)
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


def run_status(run: RunResult, timeout: float, limits: Limits) -> tuple[str, str, str]:
    """``(status, detail, why tests did not run)`` for a submission that ran."""
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
        return ("timeout", "; ".join([f"stopped after {timeout:g} s{where}", *notes]),
                "the submission ran out of time first")
    if run.cpu_limited:
        cpu = limits.cpu_seconds or timeout
        return ("timeout", "; ".join([f"used up its {cpu:g} s of CPU time{where}", *notes]),
                "the submission ran out of CPU time first")
    if not run.finished:
        return ("crashed", "; ".join([f"the process {how}{where}", *notes]),
                "the process died first")
    if slow or slow_calls:
        return "cell_timeout", "; ".join(notes), ""
    if errors:
        return "errors", "; ".join(notes), ""
    return "ok", "every cell ran without error", ""
