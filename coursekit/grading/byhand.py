"""What people add to the autograder's result: written-answer grades and the late policy.

The autograder's per-submission records (``results/<name>.json``) stay the source of its
results; the grading store (:mod:`coursekit.grading.store`, ``grades.sqlite``) holds what
people decide: the grades of written answers, extensions and excused students.
:func:`collect` joins the two for one submission into a :class:`ByHand`, from which
:func:`coursekit.grading.report.gradebook` and :func:`~coursekit.grading.report.feedback`
write the columns and sections that people's work adds. Nothing here writes to the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from coursekit.grading.late import LatePolicy, days_late, penalty_percent
from coursekit.grading.spec import Plan
from coursekit.grading.store import AnswerRow, Override, Store, unknown_items, written_score

__all__ = ["ByHand", "Late", "Marked", "collect", "policy_for"]


@dataclass(frozen=True)
class Marked:
    """One written answer as the student's report and the gradebook show it.

    ``points`` is None while it is ungraded. ``items`` are the rubric items awarded, as
    ``(description, points)``; ``changed`` says the answer was edited after it was graded.
    """

    answer: str
    title: str
    max_points: float
    points: float | None
    items: tuple[tuple[str, float], ...] = ()
    comment: str = ""
    present: bool = True
    changed: bool = False
    flagged: bool = False
    stale_items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Late:
    """How late a submission was, and what that costs."""

    deadline: str
    submitted_at: str | None
    time_source: str | None
    extension_hours: float
    days_late: int
    penalty_percent: float
    excused: bool

    def explain(self) -> str:
        """One sentence a student reads."""
        if self.excused:
            return "You are excused from this assignment."
        if self.submitted_at is None:
            return "No submission time is known, so no late penalty is applied."
        moved = (f" (with your extension of {self.extension_hours:g} hours)"
                 if self.extension_hours else "")
        if self.days_late == 0:
            return f"Submitted at {self.submitted_at}, on time for the deadline " \
                   f"{self.deadline}{moved}."
        return (f"Submitted at {self.submitted_at}, {self.days_late} day"
                f"{'s' * (self.days_late != 1)} (or part of a day) after the deadline "
                f"{self.deadline}{moved}: {self.penalty_percent:g}% of the score is deducted.")


@dataclass(frozen=True)
class ByHand:
    """What people and the late policy add to one submission."""

    written: tuple[Marked, ...] = ()
    late: Late | None = None
    extension: Override | None = field(default=None, repr=False)

    def manual(self, question: str | None = None) -> float:
        """Points of the graded written answers (of one question's, when given)."""
        return math.fsum(m.points for m in self.written if m.points is not None
                         and (question is None or m.answer.split("/")[0] == question))

    @property
    def graded(self) -> int:
        return sum(m.points is not None for m in self.written)

    def penalty(self, score: float) -> float:
        """Points deducted from ``score`` (autograded plus by hand) for lateness."""
        if self.late is None or self.late.excused:
            return 0.0
        return score * self.late.penalty_percent / 100.0

    @property
    def excused(self) -> bool:
        return self.late is not None and self.late.excused

    def notes(self) -> str:
        """What a person should look at, on one line: changed, flagged, unknown items."""
        parts = []
        for label, keys in (
                ("answer changed since graded", [m.answer for m in self.written if m.changed]),
                ("flagged", [m.answer for m in self.written if m.flagged]),
                ("rubric items no longer in the rubric",
                 [m.answer for m in self.written if m.stale_items])):
            if keys:
                parts.append(f"{label}: {', '.join(keys)}")
        return "; ".join(parts)


def policy_for(deadline: str | datetime | None, late: object | None) -> LatePolicy | None:
    """The :class:`~coursekit.grading.late.LatePolicy` of a deadline and a grading file's
    ``Late`` (None without a deadline; no penalty without a ``Late``)."""
    from coursekit.grading.late import parse_deadline, parse_duration

    if deadline is None:
        return None
    when = deadline if isinstance(deadline, datetime) else parse_deadline(deadline)
    if late is None:
        return LatePolicy(when)
    return LatePolicy(when, per_day=float(late.per_day), grace=parse_duration(late.grace),
                      cap=float(late.cap))


def _marked(plan: Plan, rows: dict[str, AnswerRow]) -> tuple[Marked, ...]:
    marked = []
    for written in plan.written:
        row = rows.get(written.key)
        grade = row.grade if row is not None else None
        rubric = written.item_points()
        if grade is None:
            marked.append(Marked(written.key, written.title, written.points, None,
                                 present=row is not None and row.present))
            continue
        described = {item.id: item.description for item in written.rubric}
        marked.append(Marked(
            written.key, written.title, written.points, written_score(grade, rubric),
            tuple((described[i], rubric[i]) for i in grade.items if i in rubric),
            grade.comment, row.present, row.changed, grade.flagged,
            unknown_items(grade, rubric)))
    return tuple(marked)


def collect(store: Store | None, plan: Plan, name: str, policy: LatePolicy | None,
            submitted: tuple[datetime, str] | None = None) -> ByHand:
    """What people and the late policy add to submission ``name``.

    ``store`` None (no store yet) gives the written answers as ungraded and no overrides;
    ``submitted`` is the submission's time and its source, for the late policy.
    """
    rows = ({row.answer: row for row in store.answers_of(name)}
            if store is not None and plan.written else {})
    override = store.overrides().get(name) if store is not None else None
    late = None
    if policy is not None:
        extension = override.extension_hours if override is not None else 0.0
        excused = bool(override is not None and override.excused)
        if submitted is None:
            days, when, source = 0, None, None
        else:
            days = days_late(submitted[0], policy, extension)
            when, source = submitted[0].isoformat(timespec="seconds"), submitted[1]
        late = Late(policy.deadline.isoformat(timespec="seconds"), when, source, extension,
                    days, penalty_percent(days, policy), excused)
    return ByHand(_marked(plan, rows), late, override)
