"""Late work: the days late and the penalty, worked out by hand from the policy's
definitions, and the submission times from file times or an LMS's CSV.

The policy (coursekit/grading/late.py): ``lateness = submitted - (deadline + extension)``;
at most ``grace`` is on time (0 days), else ``ceil(lateness / 1 day)`` days; the penalty is
``min(cap, per_day * days)`` percent. The grace decides only whether a submission is on
time: past it, days still count from the deadline itself.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from coursekit.grading.late import (
    LatePolicy,
    SubmissionTimes,
    days_late,
    parse_deadline,
    parse_duration,
    penalty_percent,
    submission_times,
)

UTC = timezone.utc
DEADLINE = datetime(2026, 10, 1, 23, 59, tzinfo=UTC)
POLICY = LatePolicy(DEADLINE, per_day=10, grace=timedelta(minutes=15), cap=30)


# The arithmetic ---------------------------------------------------------------------------

@pytest.mark.parametrize(("submitted", "days", "percent"), [
    # an hour early, and at the deadline itself: on time
    (datetime(2026, 10, 1, 22, 59, tzinfo=UTC), 0, 0.0),
    (datetime(2026, 10, 1, 23, 59, tzinfo=UTC), 0, 0.0),
    # 10 min late, and exactly the 15-minute grace: on time
    (datetime(2026, 10, 2, 0, 9, tzinfo=UTC), 0, 0.0),
    (datetime(2026, 10, 2, 0, 14, tzinfo=UTC), 0, 0.0),
    # 15 min and one microsecond: past the grace, a part of a day: 1 day, 10 %
    (datetime(2026, 10, 2, 0, 14, 0, 1, tzinfo=UTC), 1, 10.0),
    # 16 min late: 1 day
    (datetime(2026, 10, 2, 0, 15, tzinfo=UTC), 1, 10.0),
    # exactly 24 h late: 24h / 24h = 1 day
    (datetime(2026, 10, 2, 23, 59, tzinfo=UTC), 1, 10.0),
    # 24 h 15 min late: past the grace, ceil(24.25 / 24) = 2 days (the grace does not
    # shift the day boundaries), 20 %
    (datetime(2026, 10, 3, 0, 14, tzinfo=UTC), 2, 20.0),
    # 3 days 1 minute late: ceil(3.0007) = 4 days, 40 % capped at 30 %
    (datetime(2026, 10, 5, 0, 0, tzinfo=UTC), 4, 30.0),
    # the same moment as 00:00 UTC + 1 min, written at +02:00: within the grace
    (datetime(2026, 10, 2, 2, 0, tzinfo=timezone(timedelta(hours=2))), 0, 0.0),
    # 16 min late written at -05:00 (19:15 local): 1 day
    (datetime(2026, 10, 1, 19, 15, tzinfo=timezone(timedelta(hours=-5))), 1, 10.0),
])
def test_days_late_and_penalty_follow_the_policy(submitted, days, percent):
    assert days_late(submitted, POLICY) == days
    assert penalty_percent(days, POLICY) == percent


def test_an_extension_moves_the_deadline():
    # 48 h extension: the deadline becomes 2026-10-03T23:59Z
    ten_past = datetime(2026, 10, 4, 0, 9, tzinfo=UTC)        # 10 min after it: grace
    an_hour = datetime(2026, 10, 4, 0, 59, tzinfo=UTC)        # 1 h after it: 1 day
    assert days_late(ten_past, POLICY, extension_hours=48) == 0
    assert days_late(an_hour, POLICY, extension_hours=48) == 1
    # without it, 49 h late: ceil(49 / 24) = 3 days, 30 %
    assert days_late(an_hour, POLICY) == 3
    assert penalty_percent(days_late(an_hour, POLICY), POLICY) == 30.0
    # 1.5 h extension: 1 h 40 min late on the deadline is 10 min past the new one
    assert days_late(DEADLINE + timedelta(minutes=100), POLICY, extension_hours=1.5) == 0
    assert days_late(DEADLINE + timedelta(minutes=100), POLICY, extension_hours=1) == 1


def test_no_grace_and_no_cap_by_default():
    policy = LatePolicy(DEADLINE, per_day=25)
    assert days_late(DEADLINE + timedelta(seconds=1), policy) == 1
    assert penalty_percent(5, policy) == 100.0  # 125 % capped at the default 100 %
    assert penalty_percent(3, policy) == 75.0
    assert penalty_percent(9, LatePolicy(DEADLINE)) == 0.0  # per_day 0: lateness is free


def test_policy_and_arguments_are_checked():
    with pytest.raises(ValueError, match="deadline must be a datetime with a timezone"):
        LatePolicy(datetime(2026, 10, 1, 23, 59))
    with pytest.raises(ValueError, match=r"cap must be a number in \[0, 100\], got 150"):
        LatePolicy(DEADLINE, cap=150)
    with pytest.raises(ValueError, match="per_day must be a number >= 0, got -1"):
        LatePolicy(DEADLINE, per_day=-1)
    with pytest.raises(ValueError, match="grace must be a timedelta >= 0"):
        LatePolicy(DEADLINE, grace=timedelta(minutes=-1))
    with pytest.raises(ValueError, match="submitted_at must be a datetime with a timezone"):
        days_late(datetime(2026, 10, 2), POLICY)
    with pytest.raises(ValueError, match="extension_hours must be a number >= 0, got -2"):
        days_late(DEADLINE, POLICY, extension_hours=-2)
    with pytest.raises(ValueError, match="days must be an integer >= 0, got -1"):
        penalty_percent(-1, POLICY)


# Parsing ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("15min", timedelta(minutes=15)),
    ("2h", timedelta(hours=2)),
    ("1d", timedelta(days=1)),
    ("90s", timedelta(seconds=90)),
    ("0", timedelta(0)),
    ("1.5h", timedelta(minutes=90)),
    ("1d 12h", timedelta(hours=36)),
    ("2 hours", timedelta(hours=2)),
    (" 10 MIN ", timedelta(minutes=10)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["15", "15m", "-5min", "", "abc", "2 hours late", "1w",
                                  "h2", "99999999999d"])
def test_parse_duration_refuses_what_it_cannot_read_naming_it(text):
    with pytest.raises(ValueError, match=f"duration {text!r} is not a number with a unit"):
        parse_duration(text)


def test_parse_deadline_reads_offsets_and_z():
    assert parse_deadline("2026-10-01T23:59+00:00") == DEADLINE
    assert parse_deadline("2026-10-01T23:59Z") == DEADLINE
    assert parse_deadline("2026-10-02T01:59:00+02:00") == DEADLINE
    assert parse_deadline("2026-10-02T01:59:00+02:00").utcoffset() == timedelta(hours=2)


def test_parse_deadline_refuses_a_time_without_an_offset_or_not_a_time():
    with pytest.raises(ValueError, match=r"'2026-10-01T23:59' has no UTC offset: write "
                                         r"the timezone, e\.g\. 2026-10-01T23:59\+02:00"):
        parse_deadline("2026-10-01T23:59")
    with pytest.raises(ValueError, match="'2026-10-01' has no UTC offset"):
        parse_deadline("2026-10-01")
    with pytest.raises(ValueError, match="'next friday' is not an ISO 8601 time"):
        parse_deadline("next friday")


# Submission times -------------------------------------------------------------------------

def notebooks(folder, names):
    paths = {}
    for name in names:
        paths[name] = folder / f"{name}.ipynb"
        paths[name].write_text("{}")
    return paths


def test_times_default_to_the_files_modification_times_in_utc(tmp_path):
    paths = notebooks(tmp_path, ["alice", "bob"])
    stamp = DEADLINE.timestamp() + 600  # 10 min late
    os.utime(paths["alice"], (stamp, stamp))
    os.utime(paths["bob"], (stamp - 7200.5, stamp - 7200.5))
    times = submission_times(paths)
    assert times == SubmissionTimes({
        "alice": (datetime(2026, 10, 2, 0, 9, tzinfo=UTC), "mtime"),
        "bob": (datetime(2026, 10, 1, 22, 8, 59, 500000, tzinfo=UTC), "mtime")})
    assert days_late(times.times["alice"][0], POLICY) == 0


LMS_EXPORT = (
    "Full Name,Login,Submitted At,Attempt\n"
    '"Doe, Alice",alice,2026-10-02T02:10:00+02:00,1\n'   # line 2: 00:10Z
    '"Roe, Bob",bob,2026-10-03T00:30:00Z,2\n'            # line 3
    '"Zed, Zoe",zed,2026-10-01T12:00:00+00:00,1\n'       # line 4: no such submission
    '"Poe, Dave",dave,,0\n'                              # line 5: handed in nothing
    "\n"
)


def test_times_from_an_lms_csv_report_unknown_and_missing_names(tmp_path):
    paths = notebooks(tmp_path, ["alice", "bob", "carol", "dave"])
    export = tmp_path / "times.csv"
    export.write_text(LMS_EXPORT, encoding="utf-8-sig")  # with the BOM spreadsheets write
    times = submission_times(paths, export)
    assert times.times == {
        "alice": (datetime(2026, 10, 2, 0, 10, tzinfo=UTC), "csv"),
        "bob": (datetime(2026, 10, 3, 0, 30, tzinfo=UTC), "csv"),
    }
    assert times.missing == ("carol", "dave")
    assert times.unknown == (("zed", 4),)
    # alice: 11 min late, within the grace; bob: 1 day 31 min late, 2 days
    assert [days_late(times.times[name][0], POLICY) for name in ("alice", "bob")] == [0, 2]


def test_the_first_name_column_of_the_documented_order_wins(tmp_path):
    paths = notebooks(tmp_path, ["nb-alice"])
    export = tmp_path / "times.csv"
    export.write_text("ID,Submission,Timestamp\n17,nb-alice,2026-10-01T20:00:00+00:00\n")
    assert submission_times(paths, export).times == {
        "nb-alice": (datetime(2026, 10, 1, 20, 0, tzinfo=UTC), "csv")}


@pytest.mark.parametrize(("text", "message"), [
    ("login,submitted_at\nalice,2026-10-01T20:00:00+00:00\nbob,yesterday\n",
     r"times.csv, line 3: time 'yesterday' for 'bob' is not ISO 8601 with a UTC offset"),
    ("login,submitted_at\nalice,2026-10-01T20:00:00\n",
     r"times.csv, line 2: time '2026-10-01T20:00:00' for 'alice' is not ISO 8601 with a "
     r"UTC offset"),
    ("login,submitted_at\nalice,2026-10-01T20:00Z\nbob,2026-10-01T20:00Z\n"
     "alice,2026-10-02T20:00Z\n",
     r"times.csv, line 4: 'alice' again \(first on line 2\)"),
    ("login,grade\nalice,3\n",
     r"times.csv, line 1: no time column \(one of submitted_at, submitted, time, "
     r"timestamp\) in the header \['login', 'grade'\]"),
    ("when,submitted_at\n",
     r"times.csv, line 1: no name column \(one of submission, student, login, name, id\)"),
    ("", r"times.csv: empty"),
    ("login,submitted_at\nalice\n", r"times.csv, line 2: 1 cell\(s\), fewer than the header's"),
])
def test_a_bad_csv_is_refused_naming_the_line(tmp_path, text, message):
    paths = notebooks(tmp_path, ["alice", "bob"])
    export = tmp_path / "times.csv"
    export.write_text(text)
    with pytest.raises(ValueError, match=message):
        submission_times(paths, export)
