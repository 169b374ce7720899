"""Grades for a learning-management system: ``coursekit export --lms canvas|moodle``.

The grader's ``gradebook.csv`` has one row per submission, named after the
submitted notebook's file. An LMS wants one row per student, keyed by its own
identifiers. :func:`export` joins the two through a roster and writes the CSV that
the LMS imports:

- **Canvas** (Grades > Import): the columns ``Student``, ``ID``, ``SIS User ID``,
  ``SIS Login ID``, ``Section``, then one assignment column. The roster can be
  Canvas's own gradebook export (Grades > Export), which has exactly those first
  five columns; its "Points Possible" row is skipped.
- **Moodle** (Grades > Import > CSV file): an identifier column (``Email
  address``, or ``ID number`` with ``identifier="id"``) that Moodle maps to its
  users, and one grade column.

**Matching rule.** A submission belongs to the student for whom its name (the
gradebook's ``submission`` column: the notebook's file name without ``.ipynb``),
compared case-insensitively after trimming spaces, equals one of the student's
identifiers: the login (``SIS Login ID``, ``Username``), the SIS user ID (``SIS
User ID``, ``ID number``), the email address, or the email's part before ``@``.
A name that matches no student, or more than one, is *unmatched*; so is a student
whom no submission matches. Nothing is dropped silently: :class:`Export` lists
both kinds, the exported file leaves an unmatched student's grade empty (not
zero: the LMS keeps whatever it had), and ``coursekit export`` prints the lists
and exits 1 when any exists.

The grade exported is the submission's ``total`` (points, as in the gradebook: the
autograded and hand-graded points less any late penalty), or with ``percent=True`` the
total as a percentage of ``max_points``. An excused student (gradebook total ``EX``) is
exported as ``EX`` to Canvas, which marks the assignment excused; Moodle's grade import
has no such mark, so their grade is left empty and :class:`Export` lists them.

Standard library only, as the rest of :mod:`coursekit.grading`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.grading.report import EXCUSED, POINTS_POSSIBLE

__all__ = ["CANVAS_COLUMNS", "LMS", "Export", "Student", "export", "gradebook_maximum", "match",
           "read_gradebook", "read_roster"]

LMS = ("canvas", "moodle")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
"""Canvas's gradebook import: these identity columns, then one column per assignment."""

# Roster columns that identify a student, as Canvas and Moodle name them.
_LOGIN = ("SIS Login ID", "Username", "login")
_SIS = ("SIS User ID", "ID number", "sis_id")
_EMAIL = ("Email address", "Email", "email")
_NAME = ("Student", "Full name", "name")


class ExportError(ValueError):
    """A gradebook or roster that cannot be exported (missing columns, bad numbers)."""


@dataclass(frozen=True)
class Student:
    """One row of the roster: its columns as read, and the identifiers it matches."""

    row: Mapping[str, str]

    def get(self, names: Iterable[str]) -> str:
        return next((self.row[n].strip() for n in names if self.row.get(n, "").strip()), "")

    @property
    def name(self) -> str:
        return self.get(_NAME)

    @property
    def email(self) -> str:
        return self.get(_EMAIL)

    def identifiers(self) -> set[str]:
        """The strings a submission's name may equal to belong to this student (lower case)."""
        found = {self.get(_LOGIN), self.get(_SIS), self.email}
        if "@" in self.email:
            found.add(self.email.split("@", 1)[0])
        return {item.lower() for item in found if item}


@dataclass
class Export:
    """What :func:`export` wrote, and whom it could not match."""

    text: str
    matched: dict[str, str] = field(default_factory=dict)   # submission -> student's name
    unmatched_submissions: list[str] = field(default_factory=list)
    ambiguous_submissions: dict[str, list[str]] = field(default_factory=dict)
    students_without_submission: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)   # students' names

    @property
    def complete(self) -> bool:
        return not (self.unmatched_submissions or self.ambiguous_submissions
                    or self.students_without_submission)

    def report(self) -> str:
        """The unmatched rows, one line each, for people."""
        lines = [f"matched {len(self.matched)} submission(s) to students"]
        lines += [f"submission without a student: {name}" for name in self.unmatched_submissions]
        lines += [f"submission matching several students: {name} ({', '.join(who)})"
                  for name, who in self.ambiguous_submissions.items()]
        lines += [f"student without a submission (grade left empty): {name}"
                  for name in self.students_without_submission]
        lines += [f"excused: {name}" for name in self.excused]
        return "\n".join(lines)


def _rows(text: str, what: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise ExportError(f"the {what} is empty: expected a header row")
    return list(reader.fieldnames), list(reader)


def gradebook_maximum(text: str) -> float | None:
    """The total's maximum from a ``gradebook.csv``'s points-possible row, if it has one."""
    _, rows = _rows(text, "gradebook")
    for row in rows:
        if (row.get("submission") or "").strip() == POINTS_POSSIBLE:
            return float(row["total"])
    return None


def read_gradebook(text: str) -> dict[str, float | None]:
    """Each submission's total from a ``gradebook.csv`` (columns ``submission``, ``total``;
    the points-possible row is not a submission); None for an excused student."""
    header, rows = _rows(text, "gradebook")
    missing = [c for c in ("submission", "total") if c not in header]
    if missing:
        raise ExportError(f"the gradebook lacks the column(s) {', '.join(missing)}: "
                          "is it coursekit grade's gradebook.csv?")
    totals: dict[str, float | None] = {}
    for number, row in enumerate(rows, start=2):
        name = (row["submission"] or "").strip()
        if name == POINTS_POSSIBLE:
            continue
        if (row["total"] or "").strip() == EXCUSED:
            totals[name] = None
            continue
        try:
            totals[name] = float(row["total"])
        except (TypeError, ValueError):
            raise ExportError(f"gradebook line {number}: total must be a number, "
                              f"got {row['total']!r}") from None
        if not name:
            raise ExportError(f"gradebook line {number}: the submission name is empty")
    return totals


def read_roster(text: str) -> list[Student]:
    """The students of a roster CSV (Canvas's gradebook export works as it is).

    A row whose ``Student`` column reads ``Points Possible`` (Canvas's second row) is
    skipped. Every student needs at least one identifier column (login, SIS user ID or
    email address).
    """
    header, rows = _rows(text, "roster")
    if not any(c in header for c in (*_LOGIN, *_SIS, *_EMAIL)):
        raise ExportError("the roster has no identifier column: it needs one of "
                          + ", ".join(repr(c) for c in (*_LOGIN, *_SIS, *_EMAIL)))
    students = []
    for number, row in enumerate(rows, start=2):
        if row.get("Student", "").strip().lower() == "points possible":
            continue
        student = Student(row)
        if not student.identifiers():
            raise ExportError(f"roster line {number}: no login, SIS user ID or email address")
        students.append(student)
    return students


def match(submissions: Iterable[str], students: list[Student]
          ) -> tuple[dict[str, Student], list[str], dict[str, list[str]]]:
    """Submissions matched to students by the module's rule: (matched, unmatched, ambiguous)."""
    matched, unmatched, ambiguous = {}, [], {}
    for submission in submissions:
        key = submission.strip().lower()
        found = [s for s in students if key in s.identifiers()]
        if len(found) == 1:
            matched[submission] = found[0]
        elif found:
            ambiguous[submission] = [s.name or s.email for s in found]
        else:
            unmatched.append(submission)
    return matched, unmatched, ambiguous


def _grade(total: float | None, percent: bool, max_points: float | None,
           lms: str = "canvas") -> str:
    if total is None:  # excused
        return EXCUSED if lms == "canvas" else ""
    value = 100.0 * total / max_points if percent else total
    return f"{value:.6g}"


def export(gradebook: str, roster: str, lms: str, assignment: str, *,
           percent: bool = False, max_points: float | None = None,
           identifier: str = "email") -> Export:
    """The CSV that ``lms`` imports, from ``gradebook.csv``'s and the roster's text.

    Parameters
    ----------
    gradebook, roster : str
        The two CSV files' contents.
    lms : {"canvas", "moodle"}
        Which import format to write.
    assignment : str
        The grade column's header: the assignment's name as the LMS shows it (for
        Canvas, ``"Homework 1 (1234)"`` with the assignment's id updates that
        assignment; a new name creates one).
    percent : bool
        Export ``100 * total / max_points`` instead of points.
    max_points : float, optional
        The assignment's maximum (needed for ``percent``; Canvas's "Points Possible"
        row is written when known). Default: the gradebook's points-possible row.
    identifier : {"email", "id"}
        Moodle only: the column Moodle maps to its users, ``Email address`` or
        ``ID number``.
    """
    if lms not in LMS:
        raise ExportError(f"lms must be one of {', '.join(LMS)}, got {lms!r}")
    if identifier not in ("email", "id"):
        raise ExportError(f"identifier must be 'email' or 'id', got {identifier!r}")
    if not assignment.strip():
        raise ExportError("the assignment's column name is empty")
    if max_points is None:
        max_points = gradebook_maximum(gradebook)
    if percent and not (max_points and max_points > 0):
        raise ExportError(f"percent needs max_points > 0, got {max_points!r}")
    totals = read_gradebook(gradebook)
    students = read_roster(roster)
    matched, unmatched, ambiguous = match(totals, students)
    grade_of = {id(student): _grade(totals[name], percent, max_points, lms)
                for name, student in matched.items()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if lms == "canvas":
        writer.writerow([*CANVAS_COLUMNS, assignment])
        if max_points is not None:
            possible = 100 if percent else _grade(max_points, False, None)
            writer.writerow(["Points Possible", "", "", "", "", possible])
        for student in students:
            writer.writerow([student.row.get(c, "") for c in CANVAS_COLUMNS]
                            + [grade_of.get(id(student), "")])
    else:
        column = "Email address" if identifier == "email" else "ID number"
        writer.writerow([column, assignment])
        for student in students:
            key = student.email if identifier == "email" else student.get(_SIS)
            if not key:
                raise ExportError(f"student {student.name or student.row} has no "
                                  f"{column!r} for Moodle to match")
            writer.writerow([key, grade_of.get(id(student), "")])
    without = [s.name or s.email or next(iter(s.identifiers())) for s in students
               if id(s) not in grade_of]
    excused = [s.name or s.email for n, s in matched.items() if totals[n] is None]
    return Export(out.getvalue(), {n: s.name for n, s in matched.items()}, unmatched,
                  ambiguous, without, excused)


def export_files(gradebook: str | Path, roster: str | Path, out: str | Path, lms: str,
                 assignment: str, **options) -> Export:
    """:func:`export` from and to files (UTF-8); returns the :class:`Export`."""
    result = export(Path(gradebook).read_text(encoding="utf-8"),
                    Path(roster).read_text(encoding="utf-8"), lms, assignment, **options)
    Path(out).write_text(result.text, encoding="utf-8")
    return result
