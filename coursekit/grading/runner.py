"""Run a submitted notebook in a separate process and collect its probes' raw outputs.

The grader's side of ``child.py``. For each submission:

1. :func:`read_submission` opens the notebook with nbformat, here in the
   grader, and returns its code cells, or says why it cannot run (not a
   notebook, no code, another assignment's notebook).
2. :func:`run_submission` writes a job to a private temporary folder and starts
   ``python child.py`` in a new session, with a small environment (one thread,
   no GPU, CI mode) and a scratch working directory. The child enforces the
   per-cell limit itself; the grader enforces the wall-clock limit of the whole
   submission by killing the child's process group.
3. It reads the child's records back, one JSON object per line, and decodes
   each probe's output with :func:`coursekit.grading.child.decode`: numbers and
   arrays of checked dtype and shape, never a pickle, never a verdict.

Everything is deterministic: same notebook, same plan, same records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager

import coursekit
from coursekit.grading import child
from coursekit.grading.child import WireError, decode, encode
from coursekit.grading.spec import Plan

__all__ = [
    "CellProblem",
    "Outcome",
    "RunResult",
    "Submission",
    "python_source",
    "read_submission",
    "run_submission",
]

CHILD_SCRIPT = Path(child.__file__).resolve()
MAX_RESULT_BYTES = 64 * 2**20
LOG_TAIL_CHARS = 2000


def python_source(source: str) -> str:
    """A cell's source as plain Python: IPython magics and ``!`` commands become calls
    to the child's stand-in ``get_ipython()``. Source IPython cannot parse is kept as
    is, so that running it reports the syntax error."""
    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


@dataclass(frozen=True)
class Submission:
    """A notebook read for grading: its code cells, or the reason it cannot run.

    ``cells`` holds ``(number, source)`` for every non-blank code cell, numbered
    from 1 among all the notebook's cells. ``problem`` is ``None`` or one of
    ``"invalid"``, ``"empty"``, ``"wrong_assignment"``, explained by ``detail``.
    """

    cells: tuple[tuple[int, str], ...]
    problem: str | None = None
    detail: str = ""


def read_submission(path: str | Path, assignment: str) -> Submission:
    """Read the notebook at ``path`` as a submission for ``assignment``.

    Never raises for a bad notebook: the returned ``problem`` says what is wrong.
    A notebook whose metadata (written by ``coursekit release``) names another
    assignment is ``"wrong_assignment"``; one without that metadata is accepted.
    """
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Submission((), "invalid", f"cannot be read as UTF-8 text: {exc}")
    import nbformat  # here, not at the top: slow to import, and only the grader needs it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
        cells = notebook["cells"]
        metadata = notebook.get("metadata", {})
        if not isinstance(cells, list) or not isinstance(metadata, dict):
            raise TypeError("'cells' must be a list and 'metadata' an object")
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0][:200]
        return Submission((), "invalid", f"not a valid notebook ({type(exc).__name__}: "
                                         f"{first_line})")
    stamp = metadata.get("coursekit", {})
    other = stamp.get("assignment") if isinstance(stamp, dict) else None
    if other is not None and other != assignment:
        return Submission((), "wrong_assignment",
                          f"this notebook is for assignment {other!r}, not {assignment!r}")
    code = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str) and source.strip():
            code.append((number, python_source(source)))
    if not code:
        return Submission((), "empty", "the notebook has no code to run")
    return Submission(tuple(code))


@dataclass(frozen=True)
class CellProblem:
    """A cell that raised (``status="error"``) or ran past its limit (``"timeout"``)."""

    cell: int
    status: str
    error: str


@dataclass(frozen=True)
class Outcome:
    """What one probe call produced: a plain ``value``, or an ``error`` message."""

    value: Any = None
    error: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the probe returned a value."""
        return self.error is None


@dataclass(frozen=True)
class RunResult:
    """The outcome of running one submission in its own process.

    Attributes
    ----------
    finished : bool
        The child ran every cell and every probe and exited on its own.
    timed_out : bool
        The grader killed it at the submission's wall-clock limit.
    returncode : int or None
        The child's exit status (negative: killed by that signal).
    cell_problems : tuple of CellProblem
        Cells that raised or timed out, in notebook order.
    last_cell : int or None
        The cell that was running when the child stopped, if it stopped in one.
    outputs : dict
        Probe outcomes by test key; tests whose probe never ran are absent.
    log_tail : str
        The end of the child's stdout and stderr, for debugging by hand. It may
        hold anything the submission printed, so feedback never shows it.
    """

    finished: bool
    timed_out: bool
    returncode: int | None
    cell_problems: tuple[CellProblem, ...] = ()
    last_cell: int | None = None
    outputs: dict[str, Outcome] = field(default_factory=dict)
    log_tail: str = ""


def _child_env() -> dict[str, str]:
    """The child's whole environment: nothing of the grader's but PATH and locale."""
    package_root = str(Path(coursekit.__file__).resolve().parent.parent)
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
           if key in os.environ}
    env.update({
        "PYTHONPATH": package_root,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "MPLBACKEND": "Agg",
        "COURSEKIT_FAST": "1",
        "COURSEKIT_GRADER_CHILD": "1",
    })
    return env


def _kill_group(process: subprocess.Popen) -> None:
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif process.poll() is None:
        process.kill()


def _read_records(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        raw = f.read(MAX_RESULT_BYTES)
    records = []
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _tail(path: Path, size: int) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode("utf-8", "replace")


def _outcome(record: dict) -> Outcome:
    if record.get("ok") is True and "value" in record:
        try:
            return Outcome(value=decode(record["value"]))
        except WireError as exc:
            return Outcome(error=f"the grader could not read the returned value: {exc}")
    error = record.get("error")
    return Outcome(error=error if isinstance(error, str) else "the probe failed",
                   timed_out=record.get("timeout") is True)


def _collect(records: list[dict], keys: set[str]) -> tuple[dict, tuple, int | None, bool]:
    cells: dict[int, dict] = {}
    outputs: dict[str, Outcome] = {}
    running, done = None, False
    for record in records:
        kind = record.get("kind")
        if kind == "cell" and type(record.get("cell")) is int:
            if record.get("status") == "running":
                running = record["cell"]
            else:
                cells[record["cell"]] = record
                running = None
        elif kind == "probe" and record.get("key") in keys and record["key"] not in outputs:
            outputs[record["key"]] = _outcome(record)
        elif kind == "done":
            done = True
    problems = tuple(
        CellProblem(number, r["status"], str(r.get("error") or ""))
        for number, r in sorted(cells.items()) if r.get("status") in ("error", "timeout"))
    return outputs, problems, running, done


def run_submission(submission: Submission, plan: Plan, *, timeout: float,
                   cell_timeout: float, cwd: str | Path | None = None) -> RunResult:
    """Run ``submission``'s cells, then ``plan``'s probes, in a fresh Python process.

    Parameters
    ----------
    submission : Submission
        From :func:`read_submission`, without a ``problem``.
    plan : Plan
        The tests whose probes to call (their expected outputs stay here).
    timeout : float
        Wall-clock seconds for the whole submission; then its process group is killed.
    cell_timeout : float
        Seconds for each cell and each probe call, enforced inside the child.
    cwd : path, optional
        The child's working directory; default a fresh empty scratch folder.
    """
    if submission.problem is not None:
        raise ValueError(f"submission cannot run: {submission.problem} ({submission.detail})")
    for name, value in (("timeout", timeout), ("cell_timeout", cell_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    with tempfile.TemporaryDirectory(prefix="coursekit-run-") as tmp:
        tmp = Path(tmp)
        scratch = tmp / "work"
        scratch.mkdir()
        results = tmp / "results.jsonl"
        results.touch()
        job = {
            "cells": [{"cell": number, "source": source} for number, source in submission.cells],
            "cell_timeout": float(cell_timeout),
            "probes": plan.probes,
            # public calls first: what a submission prints or raises before the hidden
            # calls cannot carry their inputs into the feedback
            "calls": [{"key": t.key, "probe": t.probe, "inputs": encode(t.inputs)}
                      for t in sorted(plan.tests, key=lambda t: t.hidden)],
            "results": str(results),
        }
        (tmp / "job.json").write_text(json.dumps(job), encoding="utf-8")
        with open(tmp / "job.json", "rb") as stdin, open(tmp / "log.txt", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(CHILD_SCRIPT)], stdin=stdin, stdout=log,
                stderr=subprocess.STDOUT, cwd=str(cwd or scratch), env=_child_env(),
                start_new_session=True)
            try:
                returncode = process.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(process)  # the child, or whatever it left running
            if timed_out:
                returncode = process.wait()
        log_tail = _tail(tmp / "log.txt", LOG_TAIL_CHARS)
        outputs, problems, running, done = _collect(_read_records(results),
                                                    {t.key for t in plan.tests})
    return RunResult(finished=done and returncode == 0 and not timed_out, timed_out=timed_out,
                     returncode=returncode, cell_problems=problems, last_cell=running,
                     outputs=outputs, log_tail=log_tail)
