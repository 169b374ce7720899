"""What the grader writes to its output folder, and how it keeps those files whole.

:func:`coursekit.grading.grade` writes, for each batch,

``results/<submission>.json``
    The grader's own record of each submission (:func:`record`), written
    atomically (:func:`write_atomic`: a temporary file, fsync, rename) as soon
    as it is graded, with a :func:`fingerprint` of what was graded: the
    notebook's bytes, every test's inputs and references, the limits. A run
    that is killed and started again keeps every record whose fingerprint still
    matches (:func:`reuse`) and grades only the rest.
``feedback/<submission>.json``
    Per submission (:func:`feedback`): public tests in detail (inputs,
    expected, got, what differs); hidden tests only as pass/fail with their points.
``feedback/<submission>.html``
    The same as a page a student reads, with the notebook's cells beside their
    problems (:func:`coursekit.grading.feedback_html.render`).
``gradebook.csv``
    One row per submission, sorted by name (:func:`gradebook`), after a row of
    the points possible: a column per question, ``total``, ``percent``,
    ``status`` and, for a submission that was not graded, the ``reason``.
    Regenerated from the records at the end of each run, atomically. No times or
    dates, so grading twice gives the same file.
``summary.json``
    Counts per status, score statistics, each question's mean score, and the box the
    submissions ran in (:func:`summary`, :func:`box`): whether they saw only what they
    need (``"view": "allow-list"``) and had their system calls filtered.

What a submission can make the grader write is bounded (:func:`fit`): each
message is cut to ``MAX_TEXT`` characters, each returned value is kept only if
its JSON is at most :data:`MAX_VALUE_CHARS` characters (else a description of
it), at most :data:`MAX_CELL_PROBLEMS` cells are listed, and a submission's
feedback and record together stay under :data:`MAX_SUBMISSION_BYTES`.

While a run writes to the folder it holds a lock on it (:func:`exclusive`). A folder that
cannot take more writes (full, over quota, read-only, not permitted) raises
:class:`OutputError`, naming the path (:func:`writing`): every later write would fail as
well, so the batch stops there, with the records written so far kept whole.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import math
import os
import statistics
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from coursekit.grading.byhand import ByHand, Late, Marked
from coursekit.grading.child import WireError, decode, encode
from coursekit.grading.runner import CellProblem
from coursekit.grading.spec import Plan
from coursekit.grading.verdict import NOT_GRADED, STATUSES, SubmissionResult, TestResult, kind_of

try:
    import fcntl
except ImportError:  # not POSIX: no lock on the output folder
    fcntl = None

__all__ = [
    "BOX_KEYS",
    "EXCUSED",
    "MAX_CELL_PROBLEMS",
    "MAX_SUBMISSION_BYTES",
    "MAX_VALUE_CHARS",
    "POINTS_POSSIBLE",
    "RECORD_FORMAT",
    "UNWRITABLE",
    "OutputError",
    "box",
    "exclusive",
    "feedback",
    "fingerprint",
    "fit",
    "gradebook",
    "kept",
    "record",
    "reuse",
    "summary",
    "to_json",
    "write_atomic",
    "writing",
]

RECORD_FORMAT = 3
MAX_VALUE_CHARS = 10_000
MAX_CELL_PROBLEMS = 50
MAX_SUBMISSION_BYTES = 2**20


# What people read: feedback, gradebook, summary ---------------------------------------

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


def _written_entry(marked: Marked) -> dict:
    return {"answer": marked.answer, "title": marked.title, "max_points": marked.max_points,
            "points": marked.points, "graded": marked.points is not None,
            "present": marked.present, "changed": marked.changed,
            "items": [{"description": d, "points": p} for d, p in marked.items],
            "comment": marked.comment}


def _late_entry(late: Late, penalty: float) -> dict:
    return {"deadline": late.deadline, "submitted_at": late.submitted_at,
            "time_source": late.time_source, "extension_hours": late.extension_hours,
            "days_late": late.days_late, "penalty_percent": late.penalty_percent,
            "penalty_points": penalty, "excused": late.excused, "explanation": late.explain()}


def feedback(result: SubmissionResult, plan: Plan, by_hand: ByHand | None = None) -> dict:
    """The JSON-safe feedback for one submission.

    Public tests carry their description, tolerances, inputs, expected and returned
    values and the comparison's message; hidden tests carry only their name, points
    and whether they passed, never inputs, references or messages. With written answers
    (``by_hand``, from the grading store), each question lists them with the rubric items
    awarded and the grader's comment (never the rubric's other items), its score adds
    their points, and a late submission's penalty is explained and deducted.
    """
    marked = {m.answer: m for m in by_hand.written} if by_hand is not None else {}
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
                             rtol=r.test.rtol, atol=r.test.atol, inputs=_readable(r.test.inputs),
                             expected=_readable(r.test.expected), got=_readable(r.got))
            tests.append(entry)
        entry = {"id": qid, "title": title, "score": result.score(qid),
                 "max_score": plan.max_points(qid), "tests": tests}
        if plan.written:
            written = [_written_entry(marked.get(w.key) or Marked(w.key, w.title, w.points,
                                                                  None))
                       for w in plan.written if w.question == qid]
            entry.update(written=written, score=result.score(qid) + math.fsum(
                w["points"] for w in written if w["points"] is not None),
                max_score=plan.total_points(qid))
        questions.append(entry)
    report = {
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
    if plan.written:
        report.update(score=math.fsum(q["score"] for q in questions),
                      max_score=plan.total_points())
    if by_hand is not None and by_hand.late is not None:
        penalty = by_hand.penalty(report["score"])
        report["late"] = _late_entry(by_hand.late, penalty)
        report["score"] -= penalty
    return report


# What is kept: bounded whatever a submission does ----------------------------------------

def _at_least(value: Any, limit: int) -> int:
    """A lower bound on the characters of ``value``'s JSON, counted up to ``limit``."""
    if isinstance(value, np.ndarray):
        return 2 * value.size
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 4
    if isinstance(value, (list, dict)):
        total = 2
        for item in (value.values() if isinstance(value, dict) else value):
            total += 2 + _at_least(item, limit - total)
            if total > limit:
                break
        return total
    return 1


def kept(value: Any) -> Any:
    """``value`` as a record or feedback keeps it: itself if its JSON (in either file's
    form, one item a line) is at most :data:`MAX_VALUE_CHARS` characters, else a
    description of it (a string saying what it was)."""
    if _at_least(value, MAX_VALUE_CHARS) <= MAX_VALUE_CHARS:
        try:
            size = max(len(json.dumps(encode(value), indent=1)),
                       len(json.dumps(_readable(value), indent=1)))
        except WireError:  # not plain data: describe it
            size = MAX_VALUE_CHARS + 1
        if size <= MAX_VALUE_CHARS:
            return value
    return f"(not kept: {kind_of(value)}, longer than {MAX_VALUE_CHARS} characters as JSON)"


def _dropped(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("(not kept: "):
        return value
    return (f"(not kept: {kind_of(value)}; this submission's values together are longer than "
            "its feedback may be)")


def fit(result: SubmissionResult, plan: Plan) -> SubmissionResult:
    """``result`` as the grader stores it, within bounds whatever the submission did.

    Every returned value goes through :func:`kept`, only the first
    :data:`MAX_CELL_PROBLEMS` cell problems are listed (the detail counts them
    all), and if the feedback and record would still be larger than
    :data:`MAX_SUBMISSION_BYTES` together, no returned value is kept (messages,
    cut to ``MAX_TEXT`` characters where they were made, stay). What remains
    beyond that bound is the assignment's own: its public inputs and expected
    values, names and descriptions.
    """
    tests = tuple(replace(r, got=kept(r.got)) for r in result.tests)
    fitted = replace(result, tests=tests,
                     cell_problems=result.cell_problems[:MAX_CELL_PROBLEMS])
    if _written_bytes(fitted, plan) > MAX_SUBMISSION_BYTES:
        fitted = replace(fitted, tests=tuple(replace(r, got=_dropped(r.got)) for r in tests))
    return fitted


def _written_bytes(result: SubmissionResult, plan: Plan) -> int:
    """Bytes of ``result``'s feedback and record, as :func:`grade` writes them."""
    texts = (to_json(feedback(result, plan)), to_json(record(result, "0" * 64)))
    return sum(len(text.encode("utf-8", "backslashreplace")) for text in texts)


def _fmt(points: float) -> str:
    return f"{points:.6g}"


POINTS_POSSIBLE = "(points possible)"
"""The first cell of the gradebook's second row, which holds the maximum of each column."""


def _percent(score: float, maximum: float) -> str:
    return f"{100.0 * score / maximum:.4g}" if maximum > 0 else ""


EXCUSED = "EX"
"""The total of an excused student in the gradebook (Canvas's own mark for it)."""


def gradebook(results: list[SubmissionResult], plan: Plan,
              by_hand: Mapping[str, ByHand] | None = None, *, late: bool = False) -> str:
    """``gradebook.csv``: a header, a :data:`POINTS_POSSIBLE` row with the maximum of each
    question and of the total (and 100 for the percent), then a row per result in the
    order given: a column per question, the total, the total as a percentage of the
    maximum, the status and, for a submission that was not graded (a status in
    :data:`~coursekit.grading.verdict.NOT_GRADED`), the reason on one line (its
    detail, and its note: for a ``grader_error``, the grader's error message).

    An assignment with written answers adds their points (``by_hand``, from the grading
    store) to their questions and two columns: ``graded_by_hand`` ("5/8": answers graded
    of those declared) and ``review`` (answers changed since graded, flagged, or graded
    with rubric items no longer in the rubric). With a deadline (``late=True``) the
    columns ``submitted_at``, ``days_late`` and ``penalty`` (points deducted) come before
    the total, which is the score less the penalty; an excused student's total is
    :data:`EXCUSED`."""
    by_hand = by_hand or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    questions = [qid for qid, _ in plan.questions]
    maximum = plan.total_points()
    written = bool(plan.written)
    late_head = ["submitted_at", "days_late", "penalty"] if late else []
    hand_head = ["graded_by_hand", "review"] if written else []
    writer.writerow(["submission", *questions, *late_head, "total", "percent", "status",
                     "reason", *hand_head])
    writer.writerow([POINTS_POSSIBLE, *(_fmt(plan.total_points(q)) for q in questions),
                     *([""] * len(late_head)), _fmt(maximum), "100", "", "",
                     *(["", ""] if written else [])])
    for r in results:
        reason = " ".join(r.detail.split()) if r.status in NOT_GRADED else ""
        if reason and r.note:
            reason += f": {r.note}"
        hand = by_hand.get(r.name) or ByHand()
        scores = [r.score(qid) + hand.manual(qid) for qid in questions]
        score = math.fsum(scores)
        penalty = hand.penalty(score)
        late_cells = []
        if late:
            info = hand.late
            late_cells = [info.submitted_at or "" if info else "",
                          str(info.days_late) if info and info.submitted_at else "",
                          _fmt(penalty)]
        total, percent = _fmt(score - penalty), _percent(score - penalty, maximum)
        if hand.excused:
            total, percent = EXCUSED, ""
            reason = f"{reason}; excused" if reason else "excused"
        hand_cells = [f"{hand.graded}/{len(plan.written)}", hand.notes()] if written else []
        writer.writerow([r.name, *(_fmt(s) for s in scores), *late_cells, total, percent,
                         r.status, reason, *hand_cells])
    return out.getvalue()


def summary(results: list[SubmissionResult], plan: Plan) -> dict:
    """``summary.json``: counts per status, score statistics, each question's scores, and
    each different box the submissions ran in (:func:`box`; normally one)."""
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
        "isolation": [json.loads(box) for box in sorted(
            {json.dumps(box(r.isolation), sort_keys=True) for r in results if r.isolation})],
    }


def to_json(data: Any) -> str:
    """``data`` as the grader's files hold it: sorted keys, one space of indent."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# What the grader reads back: records, fingerprints ---------------------------------------

def fingerprint(plan_json: str, data: bytes, options: dict) -> str:
    """What a record is valid for: the notebook's bytes ``data``, every test (inputs,
    references: ``plan_json``), and the ``options`` that can change a result (limits)."""
    digest = hashlib.sha256()
    for part in (f"coursekit grade record {RECORD_FORMAT}".encode(), plan_json.encode(), data,
                 json.dumps(options, sort_keys=True).encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


BOX_KEYS = ("user", "namespaces", "network", "processes", "view", "syscalls", "unenforced")


def box(isolation: dict) -> dict:
    """What a submission's box was, from what :func:`coursekit.grading.sandbox.enter`
    reported: the same for every submission of a batch (the user is ``"own uid"`` or
    ``"grader"``, not the number; whether the process started warm or cold is left out,
    as it changes no result). Empty when nothing of the submission ran."""
    if not isolation:
        return {}
    kept = {key: isolation[key] for key in BOX_KEYS if key in isolation}
    if "user" in kept:
        kept["user"] = "grader" if kept["user"] == "grader" else "own uid"
    return kept


def record(result: SubmissionResult, fingerprint: str) -> dict:
    """The record of ``result`` (``results/<submission>.json``), valid for ``fingerprint``."""
    return {
        "format": RECORD_FORMAT, "submission": result.name, "fingerprint": fingerprint,
        "status": result.status, "detail": result.detail, "note": result.note,
        "isolation": box(result.isolation),
        "cells": [[p.cell, p.status, p.error] for p in result.cell_problems],
        "tests": {r.test.key: {"passed": r.passed, "message": r.message, "got": encode(r.got)}
                  for r in result.tests},
    }


def reuse(path: Path, name: str, fingerprint: str, plan: Plan) -> SubmissionResult | None:
    """The result recorded at ``path``, if it is whole and its fingerprint matches (a
    ``grader_error`` is never reused: the grader may have been fixed since)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if (saved["format"] != RECORD_FORMAT or saved["fingerprint"] != fingerprint
                or saved["submission"] != name or saved["status"] == "grader_error"
                or sorted(saved["tests"]) != sorted(t.key for t in plan.tests)):
            return None
        tests = tuple(TestResult(t, bool(saved["tests"][t.key]["passed"]),
                                 str(saved["tests"][t.key]["message"]),
                                 decode(saved["tests"][t.key]["got"])) for t in plan.tests)
        cells = tuple(CellProblem(int(c), str(s), str(e)) for c, s, e in saved["cells"])
        isolation = saved["isolation"]
        if not isinstance(isolation, dict):
            return None
        return SubmissionResult(name, str(saved["status"]), str(saved["detail"]), tests,
                                cells, str(saved["note"]), reused=True, isolation=isolation)
    except (OSError, ValueError, KeyError, TypeError, RecursionError, WireError):
        return None


# Keeping the folder whole: atomic writes, one writer at a time ----------------------------

UNWRITABLE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS,
                        errno.EACCES, errno.EPERM, errno.EIO})
"""The ``errno`` values that say the file system will take no more writes from the grader
(full, over quota, read-only, not permitted, failing), whatever is written next."""


class OutputError(OSError):
    """The grader's output folder cannot be written: ``filename`` is the path it tried,
    ``strerror`` why (one of :data:`UNWRITABLE`). Every later write would fail too, so
    :func:`coursekit.grading.grade` stops the batch (``coursekit grade``: exit status 2)."""

    def __str__(self) -> str:
        return f"cannot write to {self.filename}: {self.strerror}"


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Raise an :class:`OutputError` naming ``path`` for an ``OSError`` in the block that says
    the file system takes no more writes (:data:`UNWRITABLE`); let any other through."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        if exc.errno in UNWRITABLE:
            raise OutputError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` all at once: a crash leaves the old file or the new.

    Written as UTF-8; a lone surrogate (from a file name, say) is written as its
    escape, ``\\udc80``, which in JSON reads back as the same character.

    Raises
    ------
    OutputError
        If the file system takes no more writes (full, read-only, ...): ``path`` is
        left as it was (or absent), and no temporary file stays beside it.
    """
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                       dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
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


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold a lock on ``out`` (released by the system even if this process is killed).

    Raises
    ------
    ValueError
        If another run holds it.
    OutputError
        If the lock file cannot be made (a read-only folder, say).
    """
    if fcntl is None:
        yield
        return
    with writing(out / ".lock"):
        lock = open(out / ".lock", "a+")  # closed by the with below
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another coursekit grade is writing to {str(out)!r}") from None
        yield
