"""The grading store: one SQLite database holding everything people and the grader decide.

``OUT/grades.sqlite`` (the standard library's :mod:`sqlite3`) keeps the submissions the
autograder saw, the written answers it found in them, the grades people give those
answers with their rubrics, per-student overrides (an extension, excused) and a log of
every change. The grader fills it (:meth:`Store.sync_submission`), the grading page
(``coursekit review``) reads answers and saves grades, and the gradebook, the feedback and
the LMS export are generated from it.

Schema
------
Version 1, kept in ``PRAGMA user_version``. Times are UTC ISO 8601 strings with their
offset, ``2026-12-07T22:05:23+00:00``. No row of ``submissions``, ``answers`` or
``grades`` is ever deleted: a regrade updates what the autograder saw and never touches
a grade.

``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``assignment`` (the assignment's name) and ``submissions_folder`` (where the
    graded notebooks were).
``submissions``: one row per submission the autograder saw
    ``name`` (primary key: the notebook's stem, as in the gradebook), ``path`` (the
    notebook graded), ``sha256`` (of the notebook's bytes), ``submitted_at`` (when it
    was handed in, or NULL where unknown), ``time_source`` (where that time came from:
    ``"mtime"``, the file's modification time, or ``"csv"``, a CSV of submission times;
    NULL with no time), ``status`` (the autograder's verdict: ``"graded"``, ...),
    ``detail`` (why a submission was not graded; ``""`` otherwise), ``auto_json`` (the
    autograder's points per question, ``{"question": points}``), ``graded_at`` (when
    the autograder graded it).
``answers``: the student's written answers as the grader last saw them
    ``submission`` (references ``submissions.name``), ``answer`` (the answer id,
    ``"part3/a"``), ``sha256`` (of the answer's text; the text stays in the notebook),
    ``chars`` (its length), ``present`` (1, or 0 when the notebook has no cell for the
    answer). Primary key ``(submission, answer)``.
``grades``: the people's grades, one per answer graded
    ``submission``, ``answer`` (primary key, and references ``answers``),
    ``items_json`` (the rubric items chosen: a sorted JSON list of item ids),
    ``extra`` (points added, or taken away when negative), ``comment`` (for the
    student), ``grader`` (who saved it), ``graded_at`` (when), ``answer_sha256`` (the
    answer's hash when it was graded: a different ``answers.sha256`` means the student
    changed the answer since, and the grade is shown "answer changed since graded"),
    ``flagged`` (1: a grader asked for a second look), ``version`` (1 for the first
    save, one more for each later save or flag).
``overrides``: per student
    ``student`` (primary key: a submission's name, possibly before it exists),
    ``extension_hours`` (the deadline moves this much later for the student),
    ``excused`` (1: no late penalty, and the gradebook says "excused"), ``note``, ``who``
    and ``at`` (who set it, when).
``log``: the change log, append-only
    ``id`` (increasing), ``at``, ``who``, ``action`` (``"save"``, ``"conflict"``,
    ``"flag"``, ``"override"``, ``"autograde"`` or ``"meta"``), ``submission`` (or the
    student, for an override), ``answer`` (NULL where the change is not about one
    answer), ``before_json`` and ``after_json`` (what the change replaced and what it
    wrote, as JSON; NULL for nothing). Triggers refuse every ``UPDATE`` and ``DELETE``
    on it, so no program (this one included) rewrites history.

How it is written
-----------------
The database runs in WAL mode (``PRAGMA journal_mode=WAL``: readers never block the
writer and a crash leaves the last committed state), with foreign keys on and a busy
timeout (10 s by default) for waiting on another writer. Each write is one ``BEGIN
IMMEDIATE`` transaction, which takes the write lock before reading, holding the change
and its log row together: both are there, or neither. A database still locked after the
timeout, a file that is not a database, a folder that cannot be written raise
:class:`StoreError` naming the path and the cause, before anything is written.

Two graders saving the same answer are told apart by the grade's ``version``
(optimistic concurrency): the page loads a grade with its version and saves with
``expected_version``; a save whose expected version is not the stored one (someone saved
in between) is refused with :class:`Conflict`, and the refused attempt is written to the
log as a ``"conflict"`` row in the same transaction, so nothing a grader did is silently
lost. Graders on different answers never conflict.

A :class:`Store` may be shared by threads: its calls take turns on one connection.
Processes each open their own.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "ACTIONS",
    "FILENAME",
    "SCHEMA_VERSION",
    "AnswerRow",
    "Conflict",
    "Grade",
    "LogEntry",
    "NotFound",
    "Override",
    "Store",
    "StoreError",
    "SubmissionRow",
    "store_name",
    "unknown_items",
    "written_score",
]

FILENAME = "grades.sqlite"
SCHEMA_VERSION = 1
ACTIONS = ("save", "conflict", "flag", "override", "autograde", "meta")
TIME_SOURCES = ("mtime", "csv")

_SCHEMA = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE submissions (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    submitted_at TEXT,
    time_source TEXT CHECK (time_source IN ('mtime', 'csv')),
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    auto_json TEXT NOT NULL,
    graded_at TEXT NOT NULL
);
CREATE TABLE answers (
    submission TEXT NOT NULL REFERENCES submissions (name),
    answer TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chars INTEGER NOT NULL,
    present INTEGER NOT NULL CHECK (present IN (0, 1)),
    PRIMARY KEY (submission, answer)
);
CREATE TABLE grades (
    submission TEXT NOT NULL,
    answer TEXT NOT NULL,
    items_json TEXT NOT NULL,
    extra REAL NOT NULL,
    comment TEXT NOT NULL,
    grader TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    answer_sha256 TEXT NOT NULL,
    flagged INTEGER NOT NULL CHECK (flagged IN (0, 1)),
    version INTEGER NOT NULL CHECK (version >= 1),
    PRIMARY KEY (submission, answer),
    FOREIGN KEY (submission, answer) REFERENCES answers (submission, answer)
);
CREATE TABLE overrides (
    student TEXT PRIMARY KEY,
    extension_hours REAL NOT NULL CHECK (extension_hours >= 0),
    excused INTEGER NOT NULL CHECK (excused IN (0, 1)),
    note TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    submission TEXT,
    answer TEXT,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX log_by_answer ON log (submission, answer);
CREATE TRIGGER log_no_update BEFORE UPDATE ON log
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_no_delete BEFORE DELETE ON log
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
"""
_TABLES = ("answers", "grades", "log", "meta", "overrides", "submissions")


# Errors ---------------------------------------------------------------------------------

class StoreError(RuntimeError):
    """The store cannot be used: its path and the cause (locked, not a database, not
    writable, missing). Raised before anything is written: what was stored is untouched."""


class NotFound(StoreError, LookupError):
    """No such submission, answer or grade in the store (the message names it)."""


class Conflict(Exception):
    """A grade saved over a version the grader had not loaded.

    Attributes
    ----------
    current : Grade or None
        What is stored now (None if the grader expected a grade and there is none).
    attempted : dict
        The refused save (items, extra, comment, grader, answer_sha256, flagged and the
        ``expected_version``), also written to the log as a ``"conflict"`` row.
    """

    def __init__(self, current: Grade | None, attempted: dict) -> None:
        self.current = current
        self.attempted = attempted
        where = f"{attempted['submission']} {attempted['answer']}"
        loaded = attempted["expected_version"]
        loaded = "no grade" if loaded is None else f"version {loaded}"
        if current is None:
            now = "there is no grade"
        else:
            now = (f"{current.grader} saved version {current.version} at "
                   f"{current.graded_at}")
        super().__init__(f"{where}: {now}, but you loaded {loaded}; your grade was not "
                         "saved (it is in the log as a conflict): reload and save again")


# Rows -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grade:
    """A person's grade for one written answer (a row of ``grades``)."""

    submission: str
    answer: str
    items: tuple[str, ...]
    extra: float
    comment: str
    grader: str
    graded_at: str
    answer_sha256: str
    flagged: bool
    version: int


@dataclass(frozen=True)
class AnswerRow:
    """A written answer as the grader last saw it, with its grade if any.

    ``changed`` is True when the answer was graded and its text has changed since (the
    stored hash differs from the one graded): the grade stays, marked for a second look.
    """

    submission: str
    answer: str
    sha256: str
    chars: int
    present: bool
    grade: Grade | None
    changed: bool


@dataclass(frozen=True)
class SubmissionRow:
    """What the autograder saw of one submission (a row of ``submissions``)."""

    name: str
    path: str
    sha256: str
    submitted_at: str | None
    time_source: str | None
    status: str
    detail: str
    auto: dict[str, float] = field(default_factory=dict)
    graded_at: str = ""


@dataclass(frozen=True)
class Override:
    """A student's extension (hours added to the deadline) and whether they are excused."""

    student: str
    extension_hours: float
    excused: bool
    note: str
    who: str
    at: str


@dataclass(frozen=True)
class LogEntry:
    """One row of the change log; ``before`` and ``after`` decoded from their JSON."""

    id: int
    at: str
    who: str
    action: str
    submission: str | None
    answer: str | None
    before: Any
    after: Any


def store_name(name: str) -> str:
    """A submission's name (or path, or message) as the store keeps it: itself, unless it
    holds bytes that are not UTF-8 (a file name the file system could not decode, kept by
    Python as lone surrogates, which SQLite cannot store): those become ``\\xNN`` escapes,
    as a person would type them (``coursekit override OUT 'caf\\xe9'``)."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# Scores (pure) --------------------------------------------------------------------------

def written_score(grade: Grade, rubric: Mapping[str, float]) -> float:
    """The points of ``grade`` under ``rubric`` ({item id: points}): the points of the
    items chosen plus ``extra``. An item no longer in the rubric counts 0
    (:func:`unknown_items` names them). Not clipped: a rubric changed after grading can
    put the sum outside ``[0, maximum]``, which the gradebook shows as it is."""
    return float(sum(rubric.get(item, 0.0) for item in grade.items) + grade.extra)


def unknown_items(grade: Grade, rubric: Mapping[str, float]) -> tuple[str, ...]:
    """The items of ``grade`` that ``rubric`` no longer has, in order."""
    return tuple(item for item in grade.items if item not in rubric)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    return value


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _utc_time(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(_text(name, value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{name} must be an ISO 8601 time with its UTC offset "
                         f"(2026-12-07T22:05:23+00:00), got {value!r}")
    return value


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, allow_nan=False)


def _grade(row: sqlite3.Row | tuple) -> Grade:
    (submission, answer, items_json, extra, comment, grader, graded_at, answer_sha256,
     flagged, version) = row
    return Grade(submission, answer, tuple(json.loads(items_json)), float(extra), comment,
                 grader, graded_at, answer_sha256, bool(flagged), int(version))


def _grade_json(grade: Grade | None) -> dict | None:
    if grade is None:
        return None
    plain = asdict(grade)
    plain["items"] = list(grade.items)
    return plain


_GRADE_COLUMNS = ("submission, answer, items_json, extra, comment, grader, graded_at, "
                  "answer_sha256, flagged, version")
_SUBMISSION_COLUMNS = ("name, path, sha256, submitted_at, time_source, status, detail, "
                       "auto_json, graded_at")


# The store ------------------------------------------------------------------------------

class Store:
    """The grading store of one output folder (``OUT/grades.sqlite``); open it with
    :meth:`open`, and close it (or use it as a context manager)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.RLock()

    # opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, out: str | Path, *, create: bool = False, timeout: float = 10.0) -> Store:
        """Open the store in the output folder ``out``.

        Parameters
        ----------
        out : str or Path
            The output folder; the store is ``out/grades.sqlite``.
        create : bool
            Make the folder and an empty store if they are not there (the grader does);
            otherwise a missing store is an error (the grading page needs one).
        timeout : float
            Seconds to wait for another process's write lock before giving up
            (``busy_timeout``).

        Raises
        ------
        StoreError
            Naming the path and the cause: no store there (``create=False``), the folder
            cannot be made or written, the file is not a database or not a grading store
            (or one from a newer coursekit), the database stays locked.
        """
        timeout = _finite("timeout", timeout)
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {timeout!r}")
        path = Path(out) / FILENAME
        if not create and not path.is_file():
            cause = "not a file" if path.exists() else "no grading store here"
            raise StoreError(f"{path}: {cause} (coursekit grade makes it)")
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path}: cannot make the folder {path.parent}: "
                                 f"{exc.strerror or exc}") from exc
        mode = "rwc" if create else "rw"
        try:
            connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode={mode}", uri=True,
                                         timeout=timeout, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {_cause(exc, path)}") from exc
        store = cls(path, connection)
        try:
            store._prepare(create)
        except BaseException:
            connection.close()
            raise
        return store

    def _prepare(self, create: bool) -> None:
        """Check that the file is a grading store (or an empty file to make one in, with
        ``create``), before changing anything; then WAL mode and the schema."""
        with self._errors():
            self._db.execute("PRAGMA foreign_keys = ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: written by a newer coursekit (schema "
                                 f"version {version}; this one reads {SCHEMA_VERSION})")
            if version == SCHEMA_VERSION:
                self._check_tables()
            elif self._tables():
                raise StoreError(f"{self.path}: not a grading store (a database with "
                                 f"tables {', '.join(self._tables())})")
            elif not create:
                raise StoreError(f"{self.path}: an empty database, not a grading store "
                                 "(coursekit grade makes it)")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot use WAL mode here (journal mode "
                                 f"{mode}; a network file system?)")
            if version == SCHEMA_VERSION:
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables():  # another process may have made it meanwhile
                    for statement in _statements(_SCHEMA):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.rollback()
                raise
            self._check_tables()

    def _tables(self) -> list[str]:
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                "AND name NOT LIKE 'sqlite_%' ORDER BY name")
        return [name for (name,) in rows]

    def _check_tables(self) -> None:
        missing = sorted(set(_TABLES) - set(self._tables()))
        if missing:
            raise StoreError(f"{self.path}: not a grading store (no table "
                             f"{', '.join(missing)})")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # transactions -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """sqlite3's errors as :class:`StoreError` naming the path and the cause."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {_cause(exc, self.path)}") from exc

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._db

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed whole, or rolled back whole."""
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.rollback()
                raise

    @staticmethod
    def _log(db: sqlite3.Connection, who: str, action: str, submission: str | None,
             answer: str | None, before: Any, after: Any) -> None:
        db.execute("INSERT INTO log (at, who, action, submission, answer, before_json, "
                   "after_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (_now(), who, action, submission, answer, _dumps(before), _dumps(after)))

    # meta -------------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        """Set ``meta[key]`` (``assignment``, ``submissions_folder``); logged as
        ``"meta"`` when it changes, nothing written when it does not."""
        _text("key", key)
        _text("value", value)
        with self._writing() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            before = None if row is None else row[0]
            if before == value:
                return
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                       "DO UPDATE SET value = excluded.value", (key, value))
            self._log(db, "coursekit", "meta", None, None, {key: before}, {key: value})

    def meta(self) -> dict[str, str]:
        """Every ``meta`` key and its value, sorted by key."""
        with self._reading() as db:
            return dict(db.execute("SELECT key, value FROM meta ORDER BY key"))

    # the autograder's view --------------------------------------------------------------

    def sync_submission(self, row: SubmissionRow,
                        answers: Mapping[str, tuple[str, int, bool]]) -> None:
        """Record what the autograder saw of one submission.

        Never touches a grade. Logged as one ``"autograde"`` row (the fields that changed,
        before and after) only when something other than ``graded_at`` changed: grading
        the same notebooks again writes no log row, and ``graded_at`` alone is updated
        silently (an empty ``graded_at``, for a record reused, keeps the stored one).

        Parameters
        ----------
        row : SubmissionRow
            The submission (a new name adds a row, a known one is updated).
        answers : mapping
            ``{answer id: (sha256 of its text, characters, present)}`` for each written
            answer of the plan. Answers not named keep their rows.
        """
        new = _submission_values(row)
        seen = {}
        for answer, value in answers.items():
            _text("answer id", answer)
            try:
                sha256, chars, present = value
            except (TypeError, ValueError):
                raise ValueError(f"answers[{answer!r}] must be (sha256, chars, present), "
                                 f"got {value!r}") from None
            if not isinstance(chars, int) or isinstance(chars, bool) or chars < 0:
                raise ValueError(f"answers[{answer!r}] chars must be an integer >= 0, "
                                 f"got {chars!r}")
            seen[answer] = {"sha256": _text(f"answers[{answer!r}] sha256", sha256),
                            "chars": chars, "present": bool(present)}
        with self._writing() as db:
            stored = db.execute(f"SELECT {_SUBMISSION_COLUMNS} FROM submissions "
                                "WHERE name = ?", (row.name,)).fetchone()
            old = None if stored is None else dict(zip(_SUBMISSION_FIELDS, stored, strict=True))
            if old is not None and not new["graded_at"]:  # a reused record: keep its time
                new["graded_at"] = old["graded_at"]
            before: dict[str, Any] = {}
            after: dict[str, Any] = {}
            if old is None:
                after.update(_readable(new))
            else:
                for key, value in new.items():
                    if key != "graded_at" and old[key] != value:
                        before.update(_readable({key: old[key]}))
                        after.update(_readable({key: value}))
            if old != new:
                db.execute(f"INSERT INTO submissions ({_SUBMISSION_COLUMNS}) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                           + ", ".join(f"{key} = excluded.{key}"
                                       for key in _SUBMISSION_FIELDS[1:]),
                           tuple(new.values()))
            stored_answers = {
                answer: {"sha256": sha256, "chars": chars, "present": bool(present)}
                for answer, sha256, chars, present in db.execute(
                    "SELECT answer, sha256, chars, present FROM answers "
                    "WHERE submission = ?", (row.name,))}
            for answer in sorted(seen):
                if stored_answers.get(answer) == seen[answer]:
                    continue
                before.setdefault("answers", {})[answer] = stored_answers.get(answer)
                after.setdefault("answers", {})[answer] = seen[answer]
                value = seen[answer]
                db.execute("INSERT INTO answers (submission, answer, sha256, chars, "
                           "present) VALUES (?, ?, ?, ?, ?) ON CONFLICT (submission, "
                           "answer) DO UPDATE SET sha256 = excluded.sha256, chars = "
                           "excluded.chars, present = excluded.present",
                           (row.name, answer, value["sha256"], value["chars"],
                            int(value["present"])))
            if after:
                self._log(db, "autograder", "autograde", row.name, None,
                          None if old is None else before, after)

    def submissions(self) -> list[SubmissionRow]:
        """Every submission, sorted by name."""
        with self._reading() as db:
            rows = db.execute(f"SELECT {_SUBMISSION_COLUMNS} FROM submissions ORDER BY name")
            return [_submission_row(row) for row in rows]

    # answers and grades -----------------------------------------------------------------

    def answers(self, answer: str | None = None) -> list[AnswerRow]:
        """Every written answer with its grade (or those of one answer id), sorted by
        submission then answer; one query."""
        if answer is None:
            return self._answer_rows("", ())
        return self._answer_rows("WHERE a.answer = ?", (answer,))

    def answers_of(self, submission: str) -> list[AnswerRow]:
        """One submission's written answers with their grades, sorted by answer (an empty
        list for a submission the store does not know); one indexed query."""
        return self._answer_rows("WHERE a.submission = ?", (submission,))

    def answer(self, submission: str, answer: str) -> AnswerRow:
        """One written answer with its grade.

        Raises
        ------
        NotFound
            If the store has no such submission or answer.
        """
        rows = self._answer_rows("WHERE a.submission = ? AND a.answer = ?",
                                 (submission, answer))
        if not rows:
            with self._reading() as db:
                raise self._not_found(db, submission, answer)
        return rows[0]

    def _answer_rows(self, where: str, args: tuple) -> list[AnswerRow]:
        """``answers`` joined with ``grades``, filtered by ``where``, in key order."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT a.submission, a.answer, a.sha256, a.chars, a.present, "
                + ", ".join(f"g.{column}" for column in _GRADE_COLUMNS.split(", "))
                + " FROM answers AS a LEFT JOIN grades AS g ON g.submission = a.submission "
                f"AND g.answer = a.answer {where} ORDER BY a.submission, a.answer", args)
            return [_answer_row(row) for row in rows]

    def _not_found(self, db: sqlite3.Connection, submission: str, answer: str) -> NotFound:
        known = db.execute("SELECT 1 FROM submissions WHERE name = ?",
                           (submission,)).fetchone()
        if known is None:
            return NotFound(f"{self.path}: no submission {submission!r}")
        return NotFound(f"{self.path}: submission {submission!r} has no written answer "
                        f"{answer!r}")

    def save_grade(self, submission: str, answer: str, *, items: Iterable[str],
                   extra: float, comment: str, grader: str, expected_version: int | None,
                   answer_sha256: str, flagged: bool = False,
                   rubric: Mapping[str, float] | None = None,
                   maximum: float | None = None) -> Grade:
        """Save a person's grade for one written answer.

        Parameters
        ----------
        submission, answer : str
            The submission's name and the answer id (``"part3/a"``).
        items : iterable of str
            The rubric items chosen (stored sorted, each once).
        extra : float
            Points added (or taken away, when negative) beyond the items.
        comment, grader : str
            For the student; who grades.
        expected_version : int or None
            The version of the grade the grader loaded (None: no grade yet).
        answer_sha256 : str
            The hash of the answer text the grader read.
        flagged : bool
            Ask for a second look.
        rubric, maximum : optional
            The answer's rubric ({item id: points}) and its points: when given, an item
            not in the rubric, and (with ``maximum``) a score outside ``[0, maximum]``,
            are refused.

        Returns
        -------
        Grade
            As stored, with its new version.

        Raises
        ------
        Conflict
            If the stored version is not ``expected_version`` (another grader saved since):
            nothing is saved, and the attempt is logged as ``"conflict"``.
        NotFound
            For an unknown submission or answer.
        ValueError
            For items outside the rubric or points outside its range.
        """
        if isinstance(items, str):
            raise TypeError(f"items must be a collection of item ids, got {items!r}")
        chosen = sorted({_text("rubric item", item) for item in items})
        extra = _finite("extra", extra)
        _text("comment", comment)
        _text("grader", grader)
        _text("answer_sha256", answer_sha256)
        if expected_version is not None and (
                not isinstance(expected_version, int) or isinstance(expected_version, bool)
                or expected_version < 1):
            raise ValueError("expected_version must be None or an integer >= 1, "
                             f"got {expected_version!r}")
        if maximum is not None and rubric is None:
            raise TypeError("maximum needs the rubric to score the items")
        if rubric is not None:
            unknown = [item for item in chosen if item not in rubric]
            if unknown:
                raise ValueError(f"{submission} {answer}: rubric item(s) "
                                 f"{', '.join(map(repr, unknown))} not in the rubric "
                                 f"({', '.join(map(repr, sorted(rubric))) or 'empty'})")
            if maximum is not None:
                maximum = _finite("maximum", maximum)
                score = sum(float(rubric[item]) for item in chosen) + extra
                if not 0 <= score <= maximum:
                    raise ValueError(f"{submission} {answer}: {score:g} points outside the "
                                     f"rubric's range [0, {maximum:g}] (items "
                                     f"{', '.join(chosen) or 'none'}, extra {extra:g})")
        attempted = {"submission": submission, "answer": answer, "items": chosen,
                     "extra": extra, "comment": comment, "grader": grader,
                     "answer_sha256": answer_sha256, "flagged": bool(flagged),
                     "expected_version": expected_version}
        with self._writing() as db:
            if db.execute("SELECT 1 FROM answers WHERE submission = ? AND answer = ?",
                          (submission, answer)).fetchone() is None:
                raise self._not_found(db, submission, answer)
            current = self._stored_grade(db, submission, answer)
            version = None if current is None else current.version
            if version != expected_version:
                self._log(db, grader, "conflict", submission, answer,
                          _grade_json(current), attempted)
                saved = None
            else:
                saved = Grade(submission, answer, tuple(chosen), extra, comment, grader,
                              _now(), answer_sha256, bool(flagged), (version or 0) + 1)
                self._put_grade(db, saved)
                self._log(db, grader, "save", submission, answer, _grade_json(current),
                          _grade_json(saved))
        if saved is None:
            raise Conflict(current, attempted)
        return saved

    def set_flag(self, submission: str, answer: str, flagged: bool, who: str) -> Grade:
        """Flag a graded answer for a second look (or clear the flag); the grade's version
        grows by one, so a grader who loaded it before must reload to save. Logged as
        ``"flag"``.

        Raises
        ------
        NotFound
            If the answer is unknown or has no grade yet (save one with ``flagged=True``).
        """
        _text("who", who)
        with self._writing() as db:
            current = self._stored_grade(db, submission, answer)
            if current is None:
                if db.execute("SELECT 1 FROM answers WHERE submission = ? AND answer = ?",
                              (submission, answer)).fetchone() is None:
                    raise self._not_found(db, submission, answer)
                raise NotFound(f"{self.path}: {submission} {answer} has no grade to flag "
                               "(save a grade with flagged=True)")
            flagged_grade = Grade(**{**asdict(current), "items": current.items,
                                     "flagged": bool(flagged),
                                     "version": current.version + 1})
            self._put_grade(db, flagged_grade)
            self._log(db, who, "flag", submission, answer, {"flagged": current.flagged,
                                                            "version": current.version},
                      {"flagged": bool(flagged), "version": flagged_grade.version})
        return flagged_grade

    @staticmethod
    def _stored_grade(db: sqlite3.Connection, submission: str, answer: str) -> Grade | None:
        row = db.execute(f"SELECT {_GRADE_COLUMNS} FROM grades WHERE submission = ? AND "
                         "answer = ?", (submission, answer)).fetchone()
        return None if row is None else _grade(row)

    @staticmethod
    def _put_grade(db: sqlite3.Connection, grade: Grade) -> None:
        db.execute(f"INSERT INTO grades ({_GRADE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                   "?, ?) ON CONFLICT (submission, answer) DO UPDATE SET "
                   + ", ".join(f"{column} = excluded.{column}"
                               for column in _GRADE_COLUMNS.split(", ")[2:]),
                   (grade.submission, grade.answer, json.dumps(list(grade.items)),
                    grade.extra, grade.comment, grade.grader, grade.graded_at,
                    grade.answer_sha256, int(grade.flagged), grade.version))

    # overrides --------------------------------------------------------------------------

    def set_override(self, student: str, *, extension_hours: float | None = None,
                     excused: bool | None = None, note: str | None = None,
                     who: str) -> Override:
        """Set a student's extension and/or excused state; logged as ``"override"``.

        An argument left at None keeps the stored value (an extension of 0, not excused
        and no note for a student without an override).
        """
        _text("student", student)
        _text("who", who)
        if extension_hours is not None:
            extension_hours = _finite("extension_hours", extension_hours)
            if extension_hours < 0:
                raise ValueError(f"extension_hours must be >= 0, got {extension_hours!r}")
        if note is not None:
            _text("note", note)
        with self._writing() as db:
            row = db.execute("SELECT student, extension_hours, excused, note, who, at FROM "
                             "overrides WHERE student = ?", (student,)).fetchone()
            old = None if row is None else _override(row)
            new = Override(
                student,
                extension_hours if extension_hours is not None
                else (old.extension_hours if old else 0.0),
                bool(excused) if excused is not None else (old.excused if old else False),
                note if note is not None else (old.note if old else ""),
                who, _now())
            db.execute("INSERT INTO overrides (student, extension_hours, excused, note, who, "
                       "at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (student) DO UPDATE SET "
                       "extension_hours = excluded.extension_hours, excused = "
                       "excluded.excused, note = excluded.note, who = excluded.who, "
                       "at = excluded.at",
                       (new.student, new.extension_hours, int(new.excused), new.note,
                        new.who, new.at))
            self._log(db, who, "override", student, None,
                      None if old is None else asdict(old), asdict(new))
        return new

    def overrides(self) -> dict[str, Override]:
        """Every student's override, sorted by student."""
        with self._reading() as db:
            rows = db.execute("SELECT student, extension_hours, excused, note, who, at "
                              "FROM overrides ORDER BY student")
            return {row[0]: _override(row) for row in rows}

    # the log ----------------------------------------------------------------------------

    def log(self, submission: str | None = None,
            answer: str | None = None) -> list[LogEntry]:
        """The log, oldest first: all of it, or the rows of one submission (and answer)."""
        clauses, args = [], []
        for column, value in (("submission", submission), ("answer", answer)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._reading() as db:
            rows = db.execute("SELECT id, at, who, action, submission, answer, before_json, "
                              f"after_json FROM log {where} ORDER BY id", args)
            return [LogEntry(id_, at, who, action, sub, ans,
                             None if before is None else json.loads(before),
                             None if after is None else json.loads(after))
                    for id_, at, who, action, sub, ans, before, after in rows]


# Rows from and to the database ----------------------------------------------------------

_SUBMISSION_FIELDS = tuple(_SUBMISSION_COLUMNS.split(", "))


def _submission_values(row: SubmissionRow) -> dict[str, Any]:
    """``row`` checked, as the ``submissions`` columns' values."""
    if not isinstance(row, SubmissionRow):
        raise TypeError(f"row must be a SubmissionRow, got {row!r}")
    for name in ("name", "path", "sha256", "status", "detail", "graded_at"):
        _text(name, getattr(row, name))
    if not row.name:
        raise ValueError("name must be a submission's name, got ''")
    _utc_time("submitted_at", row.submitted_at)
    if row.time_source not in (*TIME_SOURCES, None):
        raise ValueError(f"time_source must be one of {', '.join(TIME_SOURCES)} or None, "
                         f"got {row.time_source!r}")
    if (row.submitted_at is None) != (row.time_source is None):
        raise ValueError("submitted_at and time_source must be given together, got "
                         f"{row.submitted_at!r} and {row.time_source!r}")
    auto = {_text("auto question", question): _finite(f"auto[{question!r}]", points)
            for question, points in row.auto.items()}
    return {"name": row.name, "path": row.path, "sha256": row.sha256,
            "submitted_at": row.submitted_at, "time_source": row.time_source,
            "status": row.status, "detail": row.detail, "auto_json": _dumps(auto),
            "graded_at": row.graded_at}


def _readable(values: dict[str, Any]) -> dict[str, Any]:
    """Submission columns as the log shows them: ``auto_json`` decoded, as ``auto``."""
    return {("auto" if key == "auto_json" else key):
            (json.loads(value) if key == "auto_json" else value)
            for key, value in values.items()}


def _submission_row(row: tuple) -> SubmissionRow:
    name, path, sha256, submitted_at, time_source, status, detail, auto_json, graded_at = row
    return SubmissionRow(name, path, sha256, submitted_at, time_source, status, detail,
                         json.loads(auto_json), graded_at)


def _answer_row(row: tuple) -> AnswerRow:
    submission, answer, sha256, chars, present = row[:5]
    grade = None if row[5] is None else _grade(row[5:])
    return AnswerRow(submission, answer, sha256, int(chars), bool(present), grade,
                     grade is not None and grade.answer_sha256 != sha256)


def _override(row: tuple) -> Override:
    student, extension_hours, excused, note, who, at = row
    return Override(student, float(extension_hours), bool(excused), note, who, at)


def _statements(script: str) -> list[str]:
    """The statements of ``script`` (triggers kept whole), for one transaction:
    ``executescript`` would commit first."""
    statements, current = [], ""
    for line in script.strip().splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _cause(exc: sqlite3.Error, path: Path) -> str:
    """sqlite3's message, with what it means where it is terse."""
    message = str(exc)
    if "unable to open database file" in message:
        return (f"{message} (the folder {path.parent} is missing or cannot be written, "
                "or the file cannot be read)")
    if "readonly" in message:
        return f"{message} (no permission to write {path} or its folder)"
    if "locked" in message:
        return f"{message} (another process holds a lock on it; try again when it is done)"
    return message
