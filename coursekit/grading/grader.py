"""Grade submissions: compare probe outputs with references, here in the grader.

:func:`grade_notebook` grades one notebook against a :class:`Plan`; :func:`grade`
grades a folder of them in parallel (threads waiting on one child process per
submission, or tasks on a Dask cluster) and writes

``results/<submission>.json``
    The grader's own record of each submission, written atomically (a temporary
    file, fsync, rename) as soon as it is graded, with a fingerprint of what was
    graded: the notebook's bytes, every test's inputs and references, the limits.
    A run that is killed and started again keeps every record whose fingerprint
    still matches and grades only the rest; ``force=True`` grades everything.
``feedback/<submission>.json``
    Per submission: public tests in detail (inputs, expected, got, what differs);
    hidden tests only as pass/fail with their points.
``gradebook.csv``
    One row per submission, sorted by name: a column per question, ``total`` and
    ``status``. Regenerated from the records at the end of each run, atomically.
    No times or dates, so grading twice gives the same file.
``summary.json``
    Counts per status, score statistics and each question's mean score.

The output folder is made private to the grader (mode 0700) and locked while a
run writes to it. Every comparison happens in this process, on values rebuilt
from plain data, so nothing a submission patches in its own process can change
a verdict.

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

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coursekit.grading.child import WireError, decode, encode
from coursekit.grading.runner import (
    CellProblem,
    RunResult,
    parse_submission,
    read_notebook,
    run_submission,
)
from coursekit.grading.sandbox import Limits, SandboxError
from coursekit.grading.spec import Plan, PlannedTest, build_plan, load_assignment, plan_to_json

try:
    import fcntl
except ImportError:  # not POSIX: no lock on the output folder
    fcntl = None

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
RECORD_FORMAT = 1
DASK_CONNECT_TIMEOUT = "20s"
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
    """Everything the grader concluded about one submission.

    ``reused`` is True when :func:`grade` took the result from an earlier run's
    record; ``isolation`` is what the sandbox reported (empty when reused or
    when the notebook never ran).
    """

    name: str
    status: str
    detail: str
    tests: tuple[TestResult, ...]
    cell_problems: tuple = ()
    reused: bool = field(default=False, compare=False)
    isolation: dict = field(default_factory=dict, compare=False)

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


def _status(run: RunResult, timeout: float, limits: Limits) -> tuple[str, str, str]:
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


@dataclass(frozen=True)
class _Options:
    """How submissions are run (the same for every submission of a batch)."""

    timeout: float = DEFAULT_TIMEOUT
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    limits: Limits = field(default_factory=Limits)
    isolate: bool = True
    hide: tuple[str, ...] = ()
    cwd: str | None = None

    def identity(self) -> dict:
        """What, besides the notebook and the tests, can change a result."""
        return {"timeout": self.timeout, "cell_timeout": self.cell_timeout,
                "limits": asdict(self.limits), "isolate": self.isolate}


def _grade_bytes(data: bytes, name: str, plan: Plan, options: _Options) -> SubmissionResult:
    """Grade one notebook given as bytes (what :func:`grade` runs, locally or on Dask)."""
    submission = parse_submission(data, plan.assignment)
    if submission.problem is not None:
        tests = tuple(_judge(t, None, submission.detail) for t in plan.tests)
        return SubmissionResult(name, submission.problem, submission.detail, tests)
    run = run_submission(submission, plan, timeout=options.timeout,
                         cell_timeout=options.cell_timeout, cwd=options.cwd,
                         limits=options.limits, isolate=options.isolate, hide=options.hide)
    status, detail, not_run = _status(run, options.timeout, options.limits)
    tests = tuple(_judge(t, run, not_run) for t in plan.tests)
    return SubmissionResult(name, status, detail, tests, run.cell_problems,
                            isolation=run.isolation)


def grade_notebook(path: str | Path, plan: Plan, *, name: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                   cwd: str | Path | None = None, limits: Limits | None = None,
                   isolate: bool = True, hide: Sequence[str | Path] = ()) -> SubmissionResult:
    """Run one notebook in its own process and grade it against ``plan``.

    Never raises for a broken notebook: the result's ``status`` and ``detail``
    say what happened, and every test gets a verdict. ``limits``, ``isolate``
    and ``hide`` are those of :func:`coursekit.grading.runner.run_submission`.

    Raises
    ------
    SandboxError
        If the process for the notebook could not be set up.
    """
    path = Path(path)
    try:
        data = read_notebook(path)
    except OSError as exc:
        tests = tuple(_judge(t, None, str(exc)) for t in plan.tests)
        return SubmissionResult(name or path.stem, "invalid", f"cannot be read: {exc}", tests)
    options = _Options(timeout, cell_timeout, Limits() if limits is None else limits, isolate,
                       tuple(str(p) for p in hide), None if cwd is None else str(cwd))
    return _grade_bytes(data, name or path.stem, plan, options)


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
    """Replace ``path`` by ``text`` all at once: a crash leaves the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    if os.name == "posix":  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


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


def _fingerprint(plan_json: str, data: bytes, options: _Options) -> str:
    """What a record is valid for: the notebook, every test (inputs, references), the limits."""
    digest = hashlib.sha256()
    for part in (f"coursekit grade record {RECORD_FORMAT}".encode(), plan_json.encode(), data,
                 json.dumps(options.identity(), sort_keys=True).encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _record(result: SubmissionResult, fingerprint: str) -> dict:
    return {
        "format": RECORD_FORMAT, "submission": result.name, "fingerprint": fingerprint,
        "status": result.status, "detail": result.detail,
        "cells": [[p.cell, p.status, p.error] for p in result.cell_problems],
        "tests": {r.test.key: {"passed": r.passed, "message": r.message, "got": encode(r.got)}
                  for r in result.tests},
    }


def _reuse(path: Path, name: str, fingerprint: str, plan: Plan) -> SubmissionResult | None:
    """The result recorded at ``path``, if it is whole and its fingerprint matches."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if (record["format"] != RECORD_FORMAT or record["fingerprint"] != fingerprint
                or record["submission"] != name or sorted(record["tests"]) !=
                sorted(t.key for t in plan.tests)):
            return None
        tests = tuple(TestResult(t, bool(record["tests"][t.key]["passed"]),
                                 str(record["tests"][t.key]["message"]),
                                 decode(record["tests"][t.key]["got"])) for t in plan.tests)
        cells = tuple(CellProblem(int(c), str(s), str(e)) for c, s, e in record["cells"])
        return SubmissionResult(name, str(record["status"]), str(record["detail"]), tests,
                                cells, reused=True)
    except (OSError, ValueError, KeyError, TypeError, RecursionError, WireError):
        return None


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold a lock on ``out`` (released by the system even if this process is killed)."""
    if fcntl is None:
        yield
        return
    with open(out / ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another coursekit grade is writing to {str(out)!r}") from None
        yield


def _secret_paths(grading: Path, submissions: Path, out: Path,
                  extra: Sequence[str | Path]) -> tuple[str, ...]:
    """What submissions must not see: the grading file's folder and the repository's
    ``.git`` above it, the submissions (each other's), the results, and ``extra``."""
    folder = grading.resolve().parent
    paths = [folder, submissions, out, *extra]
    paths += [p / ".git" for p in (folder, *folder.parents) if (p / ".git").exists()][:1]
    return tuple(sorted({str(Path(p).resolve()) for p in paths}))


def _unrunnable(name: str, plan: Plan, status: str, detail: str) -> SubmissionResult:
    return SubmissionResult(name, status, detail,
                            tuple(_judge(t, None, detail) for t in plan.tests))


def grade(assignment: str | Path, submissions: str | Path, out: str | Path, *,
          workers: int = 1, timeout: float = DEFAULT_TIMEOUT,
          cell_timeout: float = DEFAULT_CELL_TIMEOUT, seed: int | None = None,
          progress: bool = True,
          on_result: Callable[[SubmissionResult], None] | None = None,
          limits: Limits | None = None, force: bool = False, dask: str | None = None,
          hide: Sequence[str | Path] = ()) -> list[SubmissionResult]:
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
        Where ``results/``, ``feedback/``, ``gradebook.csv`` and ``summary.json`` go
        (created, and made private to the grader).
    workers : int
        Submissions graded at once on this machine, each in its own process.
    timeout, cell_timeout : float
        Wall-clock seconds per submission and per cell (or graded call).
    seed : int, optional
        Secret seed for hidden inputs, overriding the grading file's.
    progress : bool
        Show a progress bar on stderr.
    on_result : callable, optional
        Called in the calling thread with each result as it completes (results
        kept from an earlier run first).
    limits : Limits, optional
        Memory, CPU time, processes, file size and scratch space per submission.
    force : bool
        Grade every submission again, even those an earlier run recorded.
    dask : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): grade there instead
        of here; ``workers`` is then unused. Workers need coursekit installed.
    hide : paths
        More paths submissions must not see, besides the grading file's folder,
        the repository's ``.git``, ``submissions`` and ``out``.

    Returns
    -------
    list of SubmissionResult
        Sorted by submission name.

    Raises
    ------
    SandboxError
        If submissions cannot be run safely here (nothing is recorded for the
        submission that found it; the records of the others are kept).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    for arg, value in (("timeout", timeout), ("cell_timeout", cell_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{arg} must be a positive number of seconds, got {value!r}")
    if limits is not None and not isinstance(limits, Limits):
        raise ValueError(f"limits must be a Limits, got {limits!r}")
    folder = Path(submissions)
    if not folder.is_dir():
        raise ValueError(f"submissions must be a folder, got {str(folder)!r}")
    plan = build_plan(load_assignment(assignment), seed=seed)
    plan_json = plan_to_json(plan)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    options = _Options(float(timeout), float(cell_timeout),
                       Limits() if limits is None else limits,
                       hide=_secret_paths(Path(assignment), folder, out, hide))
    with _exclusive(out):
        for partial in out.rglob(".*.partial"):  # left by a run that was killed
            partial.unlink()
        results, todo = [], []
        for name, path in _submissions(folder):
            kept = None if force else _reuse(out / "results" / f"{name}.json", name,
                                             _fingerprint(plan_json, read_notebook(path),
                                                          options), plan)
            if kept is None:
                todo.append((name, path))
            else:
                results.append(kept)

        def finish(result: SubmissionResult, data: bytes) -> None:
            report = _json(feedback(result, plan))
            where = out / "feedback" / f"{result.name}.json"
            if not where.is_file() or where.read_text(encoding="utf-8") != report:
                _write_atomic(where, report)
            if not result.reused:  # the record last: it says the submission is done
                _write_atomic(out / "results" / f"{result.name}.json",
                              _json(_record(result, _fingerprint(plan_json, data, options))))
            if on_result is not None:
                on_result(result)
            bar.update()

        with tqdm(total=len(results) + len(todo), desc=f"grading {plan.assignment}",
                  unit="notebook", disable=not progress, file=sys.stderr) as bar:
            for result in list(results):
                finish(result, b"")
            if dask is None:
                results += _run_here(todo, plan, options, finish, workers)
            else:
                results += _run_on_dask(todo, plan, options, finish, dask)
        results.sort(key=lambda r: r.name)
        _write_atomic(out / "gradebook.csv", _gradebook(results, plan))
        _write_atomic(out / "summary.json", _json(_summary(results, plan)))
    return results


def _run_here(todo: list[tuple[str, Path]], plan: Plan, options: _Options,
              finish: Callable[[SubmissionResult, bytes], None],
              workers: int) -> list[SubmissionResult]:
    """Grade in ``workers`` threads, each waiting on one submission's process at a time."""
    def one(name: str, path: Path) -> tuple[SubmissionResult, bytes]:
        data = read_notebook(path)
        return _grade_bytes(data, name, plan, options), data

    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, name, path) for name, path in todo]
        try:
            for future in as_completed(futures):
                result, data = future.result()
                finish(result, data)
                results.append(result)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def _run_on_dask(todo: list[tuple[str, Path]], plan: Plan, options: _Options,
                 finish: Callable[[SubmissionResult, bytes], None],
                 address: str) -> list[SubmissionResult]:
    """Grade on the Dask cluster at ``address``, a bounded number of notebooks in flight."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as exc:
        raise ValueError("grading on a Dask cluster needs dask.distributed: "
                         "pip install 'coursekit[cluster]'") from exc
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except OSError as exc:
        raise ValueError(f"could not reach the Dask scheduler at {address}: {exc}") from None
    results = []
    with client:
        remote_plan = client.scatter(plan, broadcast=True)
        in_flight = {}
        queue = iter(todo)

        def submit() -> Any:
            job = next(queue, None)
            if job is None:
                return None
            data = read_notebook(job[1])
            future = client.submit(_grade_bytes, data, job[0], remote_plan, options, pure=False)
            in_flight[future] = (job[0], data)
            return future

        window = max(2 * sum(client.nthreads().values()), 1)
        started = [f for f in (submit() for _ in range(window)) if f is not None]
        completed = dask_completed(started)
        for future in completed:
            name, data = in_flight.pop(future)
            try:
                result = future.result()
            except SandboxError:
                raise
            except Exception as exc:  # e.g. the worker died on it again and again
                result = _unrunnable(name, plan, "crashed", "the Dask worker grading it failed "
                                     f"({type(exc).__name__}: {exc})")
            finish(result, data)
            results.append(result)
            following = submit()
            if following is not None:
                completed.add(following)
    return results
