"""Grade submissions: compare probe outputs with references, here in the grader.

:func:`grade_notebook` grades one notebook against a :class:`Plan`; :func:`grade`
grades a folder of them in parallel and writes

``gradebook.csv``
    One row per submission, sorted by name: a column per question, ``total`` and
    ``status``. No times or dates, so grading twice gives the same file.
``feedback/<submission>.json``
    Per submission: public tests in detail (inputs, expected, got, what differs);
    hidden tests only as pass/fail with their points.
``summary.json``
    Counts per status, score statistics and each question's mean score.

Every comparison happens in this process, on values rebuilt from plain data, so
nothing a submission patches in its own process can change a verdict.

Statuses, from most to least severe:

================  ==============================================================
``invalid``       not a readable notebook (bad JSON, not nbformat); scores 0
``wrong_assignment`` the notebook's metadata names another assignment; scores 0
``empty``         no code cells; scores 0
``timeout``       stopped at the submission's wall-clock limit; what ran before counts
``crashed``       the process died (exit, signal) before finishing; what ran counts
``cell_timeout``  a cell or a graded call ran past the per-cell limit and was interrupted
``errors``        some cells raised; the later cells still ran
``ok``            every cell ran without error
================  ==============================================================
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import statistics
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coursekit.grading.runner import RunResult, read_submission, run_submission
from coursekit.grading.spec import Plan, PlannedTest, build_plan, load_assignment

__all__ = [
    "DEFAULT_CELL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "STATUSES",
    "SubmissionResult",
    "TestResult",
    "compare",
    "feedback",
    "grade",
    "grade_notebook",
]

DEFAULT_TIMEOUT = 600.0
DEFAULT_CELL_TIMEOUT = 120.0
STATUSES = ("invalid", "wrong_assignment", "empty", "timeout", "crashed", "cell_timeout",
            "errors", "ok")


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
    """Everything the grader concluded about one submission."""

    name: str
    status: str
    detail: str
    tests: tuple[TestResult, ...]
    cell_problems: tuple = ()

    def score(self, question: str | None = None) -> float:
        """Points earned (on one question when given), rounded to 1e-6."""
        return round(math.fsum(r.points for r in self.tests
                               if question is None or r.test.question == question), 6)


def _judge(test: PlannedTest, run: RunResult | None, not_run: str) -> TestResult:
    outcome = run.outputs.get(test.key) if run is not None else None
    if outcome is None:
        return TestResult(test, False, f"not run: {not_run}")
    if not outcome.ok:
        return TestResult(test, False, outcome.error)
    message = compare(outcome.value, test.expected, rtol=test.rtol, atol=test.atol)
    return TestResult(test, message is None, message or "matches the reference", outcome.value)


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _status(run: RunResult, timeout: float) -> tuple[str, str, str]:
    """``(status, detail, why tests did not run)`` for a submission that ran."""
    errors = [p for p in run.cell_problems if p.status == "error"]
    slow = [p for p in run.cell_problems if p.status == "timeout"]
    slow_calls = sorted(key for key, o in run.outputs.items() if o.timed_out)
    notes = [f"cell {p.cell} raised {p.error}" for p in errors]
    notes += [f"cell {p.cell} {p.error}" for p in slow]
    notes += [f"test {key} was stopped at the per-cell limit" for key in slow_calls]
    where = f" while running cell {run.last_cell}" if run.last_cell is not None else ""
    if run.timed_out:
        return ("timeout", "; ".join([f"stopped after {timeout:g} s{where}", *notes]),
                "the submission ran out of time first")
    if not run.finished:
        code = run.returncode
        how = (f"was killed by {_signal_name(code)}" if code is not None and code < 0
               else f"exited with status {code}")
        return ("crashed", "; ".join([f"the process {how}{where}", *notes]),
                "the process died first")
    if slow or slow_calls:
        return "cell_timeout", "; ".join(notes), ""
    if errors:
        return "errors", "; ".join(notes), ""
    return "ok", "every cell ran without error", ""


def grade_notebook(path: str | Path, plan: Plan, *, name: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                   cwd: str | Path | None = None) -> SubmissionResult:
    """Run one notebook in its own process and grade it against ``plan``.

    Never raises for a broken notebook: the result's ``status`` and ``detail``
    say what happened, and every test gets a verdict.
    """
    path = Path(path)
    submission = read_submission(path, plan.assignment)
    if submission.problem is not None:
        tests = tuple(_judge(t, None, submission.detail) for t in plan.tests)
        return SubmissionResult(name or path.stem, submission.problem, submission.detail, tests)
    run = run_submission(submission, plan, timeout=timeout, cell_timeout=cell_timeout, cwd=cwd)
    status, detail, not_run = _status(run, timeout)
    tests = tuple(_judge(t, run, not_run) for t in plan.tests)
    return SubmissionResult(name or path.stem, status, detail, tests, run.cell_problems)


def _readable(value: Any) -> Any:
    """Plain data as a person reads JSON: arrays as nested lists, NaN as ``"nan"``."""
    if isinstance(value, np.ndarray):
        return _readable(value.tolist())
    if isinstance(value, dict):
        return {key: _readable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_readable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def feedback(result: SubmissionResult, plan: Plan) -> dict:
    """The JSON-safe feedback for one submission.

    Public tests carry their description, inputs, expected and returned values
    and the comparison's message; hidden tests carry only their name, points
    and whether they passed, never inputs, references or messages.
    """
    questions = []
    for qid, title in plan.questions:
        tests = []
        for r in result.tests:
            if r.test.question != qid:
                continue
            entry = {"name": r.test.name, "visibility": "hidden" if r.test.hidden else "public",
                     "passed": r.passed, "points": r.points, "max_points": r.test.points}
            if not r.test.hidden:
                entry.update(description=r.test.description, message=r.message,
                             inputs=_readable(r.test.inputs),
                             expected=_readable(r.test.expected), got=_readable(r.got))
            tests.append(entry)
        questions.append({"id": qid, "title": title, "score": result.score(qid),
                          "max_score": plan.max_points(qid), "tests": tests})
    return {
        "assignment": plan.assignment,
        "submission": result.name,
        "status": result.status,
        "detail": result.detail,
        "score": result.score(),
        "max_score": plan.max_points(),
        "questions": questions,
        "cells": [{"cell": p.cell, "status": p.status, "error": p.error}
                  for p in result.cell_problems],
    }


def _fmt(points: float) -> str:
    return f"{points:.6g}"


def _gradebook(results: list[SubmissionResult], plan: Plan) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["submission", *(qid for qid, _ in plan.questions), "total", "status"])
    for r in results:
        writer.writerow([r.name, *(_fmt(r.score(qid)) for qid, _ in plan.questions),
                         _fmt(r.score()), r.status])
    return out.getvalue()


def _summary(results: list[SubmissionResult], plan: Plan) -> dict:
    totals = [r.score() for r in results]

    def stats(values: list[float]) -> dict:
        if not values:
            return {}
        return {"mean": round(statistics.fmean(values), 6),
                "median": round(statistics.median(values), 6),
                "min": min(values), "max": max(values)}

    return {
        "assignment": plan.assignment,
        "submissions": len(results),
        "max_score": plan.max_points(),
        "statuses": {s: n for s in STATUSES if (n := sum(r.status == s for r in results))},
        "score": stats(totals),
        "questions": {qid: {"max_score": plan.max_points(qid),
                            **stats([r.score(qid) for r in results])}
                      for qid, _ in plan.questions},
    }


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _json(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _submissions(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for path in folder.rglob("*.ipynb"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .ipynb_checkpoints and other hidden folders
        found.append((relative.with_suffix("").as_posix(), path))
    return sorted(found)


def grade(assignment: str | Path, submissions: str | Path, out: str | Path, *,
          workers: int = 1, timeout: float = DEFAULT_TIMEOUT,
          cell_timeout: float = DEFAULT_CELL_TIMEOUT, seed: int | None = None,
          progress: bool = True,
          on_result: Callable[[SubmissionResult], None] | None = None) -> list[SubmissionResult]:
    """Grade every notebook under ``submissions`` and write the results to ``out``.

    Parameters
    ----------
    assignment : path
        The assignment's grading file, ``solutions/<hw>_grading.py``.
    submissions : path
        A folder of ``.ipynb`` files, searched recursively (hidden folders such as
        ``.ipynb_checkpoints`` skipped). A submission is named by its path in the
        folder without ``.ipynb``: ``alice.ipynb`` is ``alice``, ``bob/hw1.ipynb``
        is ``bob/hw1``.
    out : path
        Where ``gradebook.csv``, ``feedback/`` and ``summary.json`` go (created).
    workers : int
        Submissions graded at once, each in its own process.
    timeout, cell_timeout : float
        Wall-clock seconds per submission and per cell (or graded call).
    seed : int, optional
        Secret seed for hidden inputs, overriding the grading file's.
    progress : bool
        Show a progress bar on stderr.
    on_result : callable, optional
        Called in the main thread with each result as it completes.

    Returns
    -------
    list of SubmissionResult
        Sorted by submission name.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    for arg, value in (("timeout", timeout), ("cell_timeout", cell_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{arg} must be a positive number of seconds, got {value!r}")
    folder = Path(submissions)
    if not folder.is_dir():
        raise ValueError(f"submissions must be a folder, got {str(folder)!r}")
    plan = build_plan(load_assignment(assignment), seed=seed)
    out = Path(out)
    found = _submissions(folder)
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(found), desc=f"grading {plan.assignment}", unit="notebook",
                 disable=not progress, file=sys.stderr) as bar:
        futures = [pool.submit(grade_notebook, path, plan, name=name, timeout=timeout,
                               cell_timeout=cell_timeout) for name, path in found]
        for future in as_completed(futures):
            result = future.result()
            _write_atomic(out / "feedback" / f"{result.name}.json",
                          _json(feedback(result, plan)))
            results.append(result)
            if on_result is not None:
                on_result(result)
            bar.update()
    results.sort(key=lambda r: r.name)
    _write_atomic(out / "gradebook.csv", _gradebook(results, plan))
    _write_atomic(out / "summary.json", _json(_summary(results, plan)))
    return results
