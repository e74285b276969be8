"""The weekly calendar: when the send falls, and what to do on start about a missed or
interrupted one. Pure core: no network, no database, no file writes, no clock (the time
comes in as an argument).

The next run is computed from the wall-clock day and time in the configured zone with
zoneinfo, one instant a week: a time that a DST change skips is taken as the same
offset from midnight past the gap (02:30 becomes 03:30), and a time that happens twice
is taken at its first occurrence, so a week never has zero or two sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from .config import ScheduleConfig


def slot_on(day: datetime, schedule: ScheduleConfig) -> datetime:
    """The send instant (UTC) on the local calendar day of `day`.

    fold=0 takes an ambiguous time at its first occurrence; a time in a gap is read with
    the offset before the change, which lands the same distance past the gap.
    """
    hour, minute, second = schedule.time_of_day
    local = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZoneInfo(schedule.timezone))
    return local.astimezone(timezone.utc)


def next_run(schedule: ScheduleConfig, after: datetime) -> datetime:
    """The first weekly send instant strictly after `after`."""
    zone = ZoneInfo(schedule.timezone)
    local = after.astimezone(zone)
    for offset in range(0, 9):
        day = local + timedelta(days=offset)
        if day.weekday() != schedule.weekday:
            continue
        slot = slot_on(day, schedule)
        if slot > after:
            return slot
    raise AssertionError("no weekly slot within 9 days")


def last_run(schedule: ScheduleConfig, now: datetime) -> datetime:
    """The last weekly send instant at or before `now`."""
    slot = next_run(schedule, now - timedelta(days=8))
    while (following := next_run(schedule, slot)) <= now:
        slot = following
    return slot


def too_late(schedule: ScheduleConfig, now: datetime) -> str | None:
    """Why the weekly send must not go now, when its slot passed more than [schedule]
    max_late_hours ago (a machine asleep over the slot, and the scheduler firing the missed
    run as it wakes); None when it is on time."""
    slot = last_run(schedule, now)
    if now - slot <= timedelta(hours=schedule.max_late_hours):
        return None
    here = slot.astimezone(ZoneInfo(schedule.timezone))
    return (f"the weekly send of {here:%Y-%m-%d %H:%M} {here.tzname()} is {(now - slot).total_seconds() / 3600:.0f} "
            f"hours late, more than [schedule] max_late_hours ({schedule.max_late_hours:g}): not sent now; "
            "run digest send to send it")


@dataclass(frozen=True)
class StartDecision:
    """What `serve` does on start about missed or interrupted sends."""

    send_now: bool
    reason: str


def decide_on_start(schedule: ScheduleConfig, *, now: datetime, last_issue_at: datetime | None,
                    unfinished_at: datetime | None) -> StartDecision:
    """Send once now when a send was interrupted or a weekly slot was missed, if recent enough."""
    limit = timedelta(hours=schedule.max_late_hours)

    def at(when: datetime) -> str:  # the blog's zone, as every time the program shows
        here = when.astimezone(ZoneInfo(schedule.timezone))
        return f"{here:%Y-%m-%d %H:%M} {here.tzname()}"

    if unfinished_at is not None:
        if now - unfinished_at <= limit:
            return StartDecision(True, f"finishing the issue interrupted on {at(unfinished_at)}")
        return StartDecision(False, f"an issue from {at(unfinished_at)} was interrupted more than "
                                    f"{schedule.max_late_hours:g} hours ago: run digest send to finish it")
    if last_issue_at is None:
        return StartDecision(False, "no issue yet: the first goes out at the next scheduled time")
    slot = last_run(schedule, now)
    if last_issue_at >= slot:
        return StartDecision(False, "no send missed")
    if now - slot > limit:
        return StartDecision(False, f"the send of {at(slot)} was missed more than "
                                    f"{schedule.max_late_hours:g} hours ago: run digest send to send it")
    return StartDecision(True, f"sending the issue missed at {at(slot)}")
