"""Trigger arithmetic with an injected clock: zones, both DST changes, weekdays; start decisions."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from digest.adapters.scheduler import WeeklyTrigger
from digest.core.calendar import decide_on_start, last_run, next_run
from digest.core.config import ScheduleConfig

UTC = timezone.utc


def runs(cron: str, zone: str, start: datetime, count: int) -> list[datetime]:
    schedule = ScheduleConfig(cron, zone)
    out, t = [], start
    for _ in range(count):
        t = next_run(schedule, t)
        out.append(t)
    return out


@pytest.mark.parametrize(("zone", "cron", "weekday", "hm"), [
    ("America/New_York", "mon 07:00", 0, (7, 0)),
    ("Europe/London", "friday 18:30", 4, (18, 30)),
    ("Australia/Sydney", "sun 09:15", 6, (9, 15)),
    ("Asia/Kolkata", "wed 06:45", 2, (6, 45)),
    ("UTC", "sat 00:00", 5, (0, 0)),
    ("Pacific/Chatham", "tue 23:59", 1, (23, 59)),
])
def test_two_years_of_weekly_runs(zone: str, cron: str, weekday: int, hm: tuple[int, int]) -> None:
    times = runs(cron, zone, datetime(2026, 1, 1, tzinfo=UTC), 104)
    for t in times:
        local = t.astimezone(ZoneInfo(zone))
        assert local.weekday() == weekday and (local.hour, local.minute) == hm, local
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert gaps <= {timedelta(days=7), timedelta(days=7, hours=1), timedelta(days=7, hours=-1),
                    timedelta(days=7, minutes=30), timedelta(days=7, minutes=-30)}


def test_day_names_never_weekday_numbers() -> None:
    # 2026-11-23 is a Monday; APScheduler 3 would read a 0 as Monday, cron as Sunday.
    assert next_run(ScheduleConfig("sun 07:00", "UTC"), datetime(2026, 11, 23, tzinfo=UTC)) == datetime(2026, 11, 29, 7, tzinfo=UTC)
    assert next_run(ScheduleConfig("monday 07:00", "UTC"), datetime(2026, 11, 23, tzinfo=UTC)) == datetime(2026, 11, 23, 7, tzinfo=UTC)


def test_a_time_in_the_spring_gap_runs_once_just_after_it() -> None:
    # New York skips 02:00-03:00 on Sunday 14 March 2027.
    week = runs("sun 02:30", "America/New_York", datetime(2027, 3, 1, tzinfo=UTC), 4)
    local = [t.astimezone(ZoneInfo("America/New_York")) for t in week]
    assert [(d.day, d.hour, d.minute) for d in local] == [(7, 2, 30), (14, 3, 30), (21, 2, 30), (28, 2, 30)]


def test_a_time_in_the_autumn_overlap_runs_once_at_its_first_occurrence() -> None:
    # New York repeats 01:00-02:00 on Sunday 1 November 2026; London on Sunday 25 October.
    ny = runs("sun 01:30", "America/New_York", datetime(2026, 10, 30, tzinfo=UTC), 2)
    assert ny == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 8, 6, 30, tzinfo=UTC)]
    london = runs("sun 01:30", "Europe/London", datetime(2026, 10, 20, tzinfo=UTC), 2)
    assert london == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 11, 1, 1, 30, tzinfo=UTC)]


def test_southern_hemisphere_changes() -> None:
    # Sydney: DST starts Sunday 4 October 2026 (02:00 -> 03:00), ends Sunday 4 April 2027 (03:00 -> 02:00).
    start = runs("sun 02:30", "Australia/Sydney", datetime(2026, 10, 1, tzinfo=UTC), 2)
    assert [t.astimezone(ZoneInfo("Australia/Sydney")).hour for t in start] == [3, 2]
    end = runs("sun 02:30", "Australia/Sydney", datetime(2027, 4, 1, tzinfo=UTC), 1)
    assert end[0].astimezone(ZoneInfo("Australia/Sydney")).utcoffset() == timedelta(hours=11)  # the first 02:30


def test_last_run_and_the_apscheduler_trigger() -> None:
    schedule = ScheduleConfig("mon 07:00", "UTC")
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert last_run(schedule, now) == datetime(2026, 11, 23, 7, tzinfo=UTC)
    assert last_run(schedule, datetime(2026, 11, 23, 7, tzinfo=UTC)) == datetime(2026, 11, 23, 7, tzinfo=UTC)
    trigger = WeeklyTrigger(schedule)
    assert trigger.get_next_fire_time(None, now) == datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert trigger.get_next_fire_time(datetime(2026, 11, 30, 7, tzinfo=UTC), now) == datetime(2026, 12, 7, 7, tzinfo=UTC)


NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)  # Wednesday; the last Monday 07:00 slot was 53 hours ago
S = ScheduleConfig("mon 07:00", "UTC", max_late_hours=72)


@pytest.mark.parametrize(("last", "unfinished", "send", "why"), [
    (None, None, False, "no issue yet"),
    (NOW - timedelta(days=21), None, True, "sending the issue missed at 2026-11-23 07:00"),
    (NOW - timedelta(days=1), None, False, "no send missed"),
    (NOW - timedelta(days=21), NOW - timedelta(hours=5), True, "finishing the issue interrupted"),
    (NOW - timedelta(days=21), NOW - timedelta(days=5), False, "run digest send to finish it"),
])
def test_what_serve_does_on_start(last: datetime | None, unfinished: datetime | None, send: bool, why: str) -> None:
    decision = decide_on_start(S, now=NOW, last_issue_at=last, unfinished_at=unfinished)
    assert decision.send_now is send and why in decision.reason


def test_a_missed_week_too_long_ago_waits_for_the_author() -> None:
    strict = ScheduleConfig("mon 07:00", "UTC", max_late_hours=24)
    decision = decide_on_start(strict, now=NOW, last_issue_at=NOW - timedelta(days=21), unfinished_at=None)
    assert not decision.send_now and "missed more than 24 hours ago: run digest send" in decision.reason


def test_what_serve_says_on_start_is_in_the_blogs_zone() -> None:
    here = ScheduleConfig("mon 07:00", "America/New_York", max_late_hours=72)
    decision = decide_on_start(here, now=datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc), last_issue_at=None,
                               unfinished_at=datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc))
    assert decision.reason == "finishing the issue interrupted on 2026-11-23 07:00 EST"


# ---- a machine asleep over the slot: the weekly job weighs its own lateness ----

WOKE = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, 50 hours after "mon 08:00"


def fire_missed_run(max_late_hours: float, caplog: pytest.LogCaptureFixture, *, on_start: bool = False) -> list[str]:
    """A real BackgroundScheduler whose weekly run was missed, fired as APScheduler fires it on
    waking; the job's clock says WOKE. What the send job saw (a list with "sent", or empty)."""
    import threading

    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    from digest.adapters.scheduler import WeeklySender

    sent: list[str] = []
    ran = threading.Event()
    sender = WeeklySender(ScheduleConfig("mon 08:00", "UTC", max_late_hours=max_late_hours), lambda: sent.append("sent"),
                          clock=lambda: WOKE)
    sender.scheduler.add_listener(lambda event: ran.set(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    sender.start()
    try:
        if on_start:
            sender.run_now()
        else:  # the slot passed while the machine slept: the run is overdue, and fires at once
            sender.job.modify(next_run_time=datetime.now(UTC) - timedelta(hours=50))
        assert ran.wait(10), "the scheduler never ran the job"
    finally:
        sender.shutdown()
    return sent


def test_a_run_fired_late_after_sleep_is_skipped_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="digest.schedule"):
        assert fire_missed_run(48, caplog) == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "digest.schedule"]
    assert line == ("the weekly send of 2026-03-02 08:00 UTC is 50 hours late, more than [schedule] max_late_hours "
                    "(48): not sent now; run digest send to send it")


def test_a_run_fired_within_max_late_hours_sends(caplog: pytest.LogCaptureFixture) -> None:
    assert fire_missed_run(72, caplog) == ["sent"]


def test_the_send_decided_on_start_is_not_weighed_again(caplog: pytest.LogCaptureFixture) -> None:
    """decide_on_start has weighed it (an interrupted issue may be recent while the slot is old)."""
    assert fire_missed_run(48, caplog, on_start=True) == ["sent"]
