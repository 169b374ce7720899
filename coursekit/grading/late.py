"""Late work: when each submission was handed in, and the penalty a late policy gives it.

A :class:`LatePolicy` holds an assignment's deadline and its rules:

- ``per_day``: the percent of the score deducted per day late, a part of a day counting
  as a whole one;
- ``grace``: a submission at most this late counts as on time (clocks and uploads are
  not exact); past it, the days count from the deadline, not from the end of the grace;
- ``cap``: the most percent ever deducted.

A student's extension (``extension_hours``, from the grading store's overrides) moves
their deadline later. In symbols, with ``lateness = submitted_at - (deadline +
extension)``::

    days_late = 0                       if lateness <= grace
              = ceil(lateness / 1 day)  otherwise
    penalty   = min(cap, per_day * days_late)     percent of the score

so with a 15-minute grace, 10 minutes late is on time, 16 minutes late is one day, 24
hours late is one day and 24 hours and 1 minute late is two. An excused student
gets no penalty (the gradebook says "excused").

Submission times (:func:`submission_times`) come from the submitted files' modification
times by default (``"mtime"``: right when the files are copied with their times, as an
LMS's bulk download or ``cp -p`` and ``rsync -t`` do), or from a CSV of submission
times as an LMS exports it (``"csv"``).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

__all__ = [
    "NAME_COLUMNS",
    "TIME_COLUMNS",
    "LatePolicy",
    "SubmissionTimes",
    "days_late",
    "parse_deadline",
    "parse_duration",
    "penalty_percent",
    "submission_times",
]

DAY = timedelta(days=1)
NAME_COLUMNS = ("submission", "student", "login", "name", "id")
TIME_COLUMNS = ("submitted_at", "submitted", "time", "timestamp")


@dataclass(frozen=True)
class LatePolicy:
    """An assignment's deadline and late rules (see the module's docstring).

    Parameters
    ----------
    deadline : datetime
        Timezone-aware (:func:`parse_deadline` reads one).
    per_day : float
        Percent of the score deducted per day or part of a day late, >= 0.
    grace : timedelta
        Submissions at most this late count as on time, >= 0.
    cap : float
        The most percent ever deducted, in [0, 100].
    """

    deadline: datetime
    per_day: float = 0.0
    grace: timedelta = timedelta(0)
    cap: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.deadline, datetime) or self.deadline.utcoffset() is None:
            raise ValueError("deadline must be a datetime with a timezone, got "
                             f"{self.deadline!r}")
        if not isinstance(self.grace, timedelta) or self.grace < timedelta(0):
            raise ValueError(f"grace must be a timedelta >= 0, got {self.grace!r}")
        for name, value, top in (("per_day", self.per_day, math.inf),
                                 ("cap", self.cap, 100.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value <= top:
                rule = ">= 0" if top == math.inf else f"in [0, {top:g}]"
                raise ValueError(f"{name} must be a number {rule}, got {value!r}")


def _aware(text: str) -> datetime | None:
    """``text`` as an ISO 8601 time with its offset (``Z`` for UTC), or None."""
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def parse_deadline(text: str) -> datetime:
    """An ISO 8601 deadline with its UTC offset: ``2026-10-01T23:59+02:00`` or
    ``2026-10-01T21:59Z``.

    Raises
    ------
    ValueError
        For text that is not such a time, or one without an offset (a deadline in
        no timezone is a different moment for the grader's machine and the students').
    """
    if not isinstance(text, str):
        raise TypeError(f"deadline must be a string, got {text!r}")
    moment = _aware(text)
    if moment is not None:
        return moment
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"deadline {text!r} is not an ISO 8601 time such as "
                         "2026-10-01T23:59+02:00") from None
    raise ValueError(f"deadline {text!r} has no UTC offset: write the timezone, e.g. "
                     f"{text.strip()}+02:00, or {text.strip()}Z for UTC")


_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1,
          "min": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """A duration such as ``"15min"``, ``"2h"``, ``"1d"``, ``"90s"``, ``"1d 12h"`` or
    ``"0"``.

    Units: ``s``, ``min``, ``h``, ``d`` (or ``second(s)``, ``minute(s)``,
    ``hour(s)``, ``day(s)``); several parts add up. A bare number other than 0 is refused
    (15 what?), as is ``m`` (minutes or months?).

    Raises
    ------
    ValueError
        Naming the text and the forms accepted.
    """
    if not isinstance(text, str):
        raise TypeError(f"duration must be a string, got {text!r}")
    if text.strip() == "0":
        return timedelta(0)
    seconds, end = 0.0, 0
    for part in _PART.finditer(text):
        unit = _UNITS.get(part.group(2).lower())
        if part.start() != end or unit is None:
            break
        seconds += float(part.group(1)) * unit
        end = part.end()
    else:
        if end and not text[end:].strip() and seconds < timedelta.max.total_seconds():
            return timedelta(seconds=seconds)
    raise ValueError(f"duration {text!r} is not a number with a unit such as 15min, 2h, "
                     "1d, 90s or 1d 12h (units s, min, h, d), or 0")


def days_late(submitted_at: datetime, policy: LatePolicy,
              extension_hours: float = 0.0) -> int:
    """Days late, each part of a day a whole one; 0 when on time or within the grace.

    ``lateness = submitted_at - (deadline + extension_hours)``; at most ``grace`` gives 0,
    else ``ceil(lateness / 1 day)``, computed exactly (in microseconds, no rounding).
    """
    if not isinstance(submitted_at, datetime) or submitted_at.utcoffset() is None:
        raise ValueError("submitted_at must be a datetime with a timezone, got "
                         f"{submitted_at!r}")
    if isinstance(extension_hours, bool) or not isinstance(extension_hours, (int, float)) \
            or not 0 <= extension_hours < math.inf:
        raise ValueError(f"extension_hours must be a number >= 0, got {extension_hours!r}")
    lateness = submitted_at - (policy.deadline + timedelta(hours=extension_hours))
    if lateness <= policy.grace:
        return 0
    return -(-lateness // DAY)


def penalty_percent(days: int, policy: LatePolicy) -> float:
    """The percent of the score deducted for ``days`` days late: ``min(cap, per_day *
    days)``."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be an integer >= 0, got {days!r}")
    return float(min(policy.cap, policy.per_day * days))


@dataclass(frozen=True)
class SubmissionTimes:
    """When each submission was handed in, and what a CSV of times did not match.

    Attributes
    ----------
    times : dict
        ``{submission: (time in UTC, source)}``, source ``"mtime"`` or ``"csv"``.
    missing : tuple of str
        Submissions the CSV has no time for (absent, or a blank time): no time, so no
        late penalty can be computed for them. Empty without a CSV.
    unknown : tuple of (str, int)
        The CSV's names with a time that are no submission, with their line numbers (a
        name spelled differently from the file's, or a notebook that was not collected).
    """

    times: dict[str, tuple[datetime, str]]
    missing: tuple[str, ...] = ()
    unknown: tuple[tuple[str, int], ...] = ()


def _column(header: list[str], wanted: tuple[str, ...]) -> int | None:
    normal = [re.sub(r"[\s\-]+", "_", cell.strip().lower()) for cell in header]
    for name in wanted:
        if name in normal:
            return normal.index(name)
    return None


def submission_times(paths: Mapping[str, Path],
                     csv_path: str | Path | None = None) -> SubmissionTimes:
    """When each submission in ``paths`` ({name: notebook}) was handed in.

    Without ``csv_path``: each file's modification time, in UTC (source ``"mtime"``).
    With it: the CSV's times (source ``"csv"``). Its header names a name column (the
    first of ``submission``, ``student``, ``login``, ``name``, ``id`` present; case,
    spaces and hyphens do not matter, so ``Submitted At`` is ``submitted_at``) and a time
    column (``submitted_at``, ``submitted``, ``time``, ``timestamp``); names match the
    submissions' names exactly, times are ISO 8601 with their offset. A blank time means
    the student handed in nothing.

    Raises
    ------
    ValueError
        Naming the file and line: no header, a header without a name or time column, a
        time that is not ISO 8601 with an offset, a name twice.
    OSError
        If a file cannot be read.
    """
    if csv_path is None:
        return SubmissionTimes({
            name: (datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc), "mtime")
            for name, path in sorted(paths.items())})
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if not header:
            raise ValueError(f"{csv_path}: empty; expected a header with a name column "
                             f"({', '.join(NAME_COLUMNS)}) and a time column "
                             f"({', '.join(TIME_COLUMNS)})")
        name_at, time_at = _column(header, NAME_COLUMNS), _column(header, TIME_COLUMNS)
        for found, kind, wanted in ((name_at, "name", NAME_COLUMNS),
                                    (time_at, "time", TIME_COLUMNS)):
            if found is None:
                raise ValueError(f"{csv_path}, line 1: no {kind} column (one of "
                                 f"{', '.join(wanted)}) in the header {header}")
        times: dict[str, tuple[datetime, str]] = {}
        lines: dict[str, int] = {}
        unknown = []
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(name_at, time_at):
                raise ValueError(f"{csv_path}, line {line}: {len(row)} cell(s), fewer than "
                                 "the header's name and time columns")
            name, text = row[name_at].strip(), row[time_at].strip()
            if name in lines:
                raise ValueError(f"{csv_path}, line {line}: {name!r} again (first on line "
                                 f"{lines[name]}): one time per submission")
            lines[name] = line
            if not text:
                continue
            moment = _aware(text)
            if moment is None:
                raise ValueError(f"{csv_path}, line {line}: time {text!r} for {name!r} is "
                                 "not ISO 8601 with a UTC offset, such as "
                                 "2026-10-01T23:59:00+00:00")
            if name in paths:
                times[name] = (moment.astimezone(timezone.utc), "csv")
            else:
                unknown.append((name, line))
    return SubmissionTimes(dict(sorted(times.items())),
                           tuple(sorted(set(paths) - set(times))), tuple(unknown))
