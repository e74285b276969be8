"""core/audience.py: who gets which issue when, as pure functions of their inputs."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from digest.core.audience import (
    PAUSED,
    PENDING,
    MonthlyReader,
    away_after,
    away_line,
    is_paused,
    month_of,
    month_start,
    monthly_groups,
    pause_end,
    pause_label,
    seat,
)
from digest.core.models import Subscriber

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)  # still 30 November in New York
TZ = "America/New_York"
READER = Subscriber(id=7, email="a@example.com", name="", status="confirmed", topics=(), consent=None, created_at=NOW)


def test_a_pause_of_weeks_covers_its_start_and_not_its_end() -> None:
    paused = replace(READER, pause_reason="weeks", paused_at=NOW, paused_until=pause_end(NOW, 2))
    assert seat(paused, NOW) == PAUSED and seat(paused, NOW + timedelta(weeks=2) - timedelta(seconds=1)) == PAUSED
    assert seat(paused, NOW + timedelta(weeks=2)) == PENDING
    assert pause_label(paused, NOW, TZ) == "paused until 14 December 2026"
    assert pause_label(paused, NOW + timedelta(weeks=3), TZ) == ""


def test_i_got_the_job_lasts_until_they_come_back() -> None:
    hired = replace(READER, pause_reason="job", paused_at=NOW)
    assert is_paused(hired, NOW + timedelta(days=3650)) and not is_paused(READER, NOW)
    assert pause_label(hired, NOW, TZ).startswith("got the job")


def test_the_month_is_the_schedule_s_time_zone_s() -> None:
    assert month_of(NOW, TZ) == "2026-11" and month_of(NOW, "UTC") == "2026-12"
    assert month_start(NOW, TZ) == datetime(2026, 11, 1, 4, 0, tzinfo=timezone.utc)  # midnight of 1 November, still EDT (UTC-4)


def test_monthly_readers_are_grouped_by_their_last_issue_and_those_served_this_month_left_out() -> None:
    first_send = NOW
    readers = [MonthlyReader(1, 4, 2, False), MonthlyReader(2, None, 4, False), MonthlyReader(3, 5, None, False),
               MonthlyReader(4, 4, None, True), MonthlyReader(5, None, None, False),
               MonthlyReader(6, 3, None, False, chose_at=NOW + timedelta(minutes=1)),
               MonthlyReader(7, 3, None, False, chose_at=NOW - timedelta(days=1)),
               MonthlyReader(8, 3, None, False, pause_reason="job"),
               MonthlyReader(9, 3, None, False, pause_reason="weeks", paused_until=NOW + timedelta(days=1)),
               MonthlyReader(10, 3, None, False, pause_reason="weeks", paused_until=NOW)]
    assert monthly_groups(readers, first_send, NOW) == {4: [1, 2], 5: [3], None: [5], 3: [7, 10]}


def test_what_a_pause_missed_is_counted_told_once_then_forgotten() -> None:
    sub = replace(READER, pause_reason="weeks", paused_at=NOW, paused_until=pause_end(NOW, 2))
    for issue_id in (2, 3):
        sub = replace(sub, **away_after(sub, PAUSED, issue_id, NOW + timedelta(weeks=issue_id - 2)))  # type: ignore[arg-type]
    assert sub.away_issues == 2 and sub.away_since == NOW and sub.away_issue is None
    sub = replace(sub, **away_after(sub, PENDING, 4, NOW))  # type: ignore[arg-type]
    assert sub.away_issue == 4
    assert away_line(sub, 4, TZ) == (" Welcome back! While you were away 2 issues went out since 30 November; "
                                     "the archive has them.")
    assert away_line(sub, 5, TZ) == ""
    assert away_after(sub, PENDING, 4, NOW) is None  # a resumed issue: the same
    sub = replace(sub, **away_after(sub, PENDING, 5, NOW))  # type: ignore[arg-type]
    assert (sub.away_issues, sub.away_since, sub.away_issue) == (0, None, None)
    assert away_after(READER, PENDING, 6, NOW) is None
