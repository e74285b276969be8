"""Who gets which issue when: readers' frequency (weekly, monthly), their pause, the month
boundary, and what the first issue after a pause tells them. Pure core: no I/O, no clock
(every time comes in as an argument); the SQL that feeds these rules is in
adapters/audience.py.

The rules:

- A weekly issue goes to every confirmed weekly reader. A reader paused at the issue's time
  is in its audience as a row skipped "paused" (the ledger shows what the pause skipped).
- A monthly issue goes out at the first weekly send of each calendar month in [schedule]
  timezone, to every confirmed monthly reader with no row yet in a monthly issue of that
  month, and holds every post since their last issue: the posts of the weekly issues
  recorded after it. Readers whose last issue is the same share one monthly issue (its key
  names the month and that issue), so a crash, a second run or a restart never makes a
  second one for them, and never skips them: until each reader who was monthly at the
  month's first send has a row, every later send of the month makes the missing ones. A
  reader who chooses monthly after that first send waits for the next month.
- "Their last issue" is the newest issue delivered to them (sent, or in doubt); for a
  reader who has had none, the newest issue recorded before they confirmed (what a weekly
  reader joining then would have started after).
- A pause of N weeks covers the sends from its start up to (not including) start + N weeks;
  "I got the job!" covers every send until the reader comes back. A paused monthly reader
  is left out of the month's monthly issue; the month's first send after the pause sends
  them theirs (every post since their last issue, which says all they missed).
- The first issue that reaches a reader after a pause says, in one line, how many issues
  they missed and since when.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .models import Subscriber

FREQUENCIES = ("weekly", "monthly")
PAUSE_WEEKS = (2, 4, 8)
MAX_PAUSE_WEEKS = 52
JOB = "job"      # pause_reason of "I got the job! Pause until I come back"
WEEKS = "weeks"  # pause_reason of a pause of some weeks
UNTIL_RESUMED = "hold"  # the author's open-ended pause (digest subscribers set --pause)

PENDING = "pending"  # the ledger's statuses of a seat (core/models.py DeliveryStatus)
PAUSED = "paused"    # a seat skipped because its reader is paused (the row's reply says "paused")


def is_paused(sub: Subscriber, now: datetime) -> bool:
    """Whether `sub` takes no issue at `now`."""
    return _paused(sub.pause_reason, sub.paused_until, now)


def _paused(reason: str, until: datetime | None, now: datetime) -> bool:
    return bool(reason) and (until is None or now < until)


def pause_end(now: datetime, weeks: int) -> datetime:
    """When a pause of `weeks` weeks chosen at `now` ends."""
    return now + timedelta(weeks=weeks)


def pause_label(sub: Subscriber, now: datetime, timezone: str) -> str:
    """The pause at `now` as the list shows it: "" (none), "paused until 8 December 2026"..."""
    if not is_paused(sub, now):
        return ""
    if sub.pause_reason == JOB:
        return "got the job (paused until they come back)"
    if sub.paused_until is None:
        return "paused until resumed"
    day = sub.paused_until.astimezone(ZoneInfo(timezone))
    return f"paused until {day.day} {day:%B %Y}"


def seat(sub: Subscriber, now: datetime) -> str:
    """The ledger row a reader in an issue's audience gets at `now`: pending, or paused."""
    return PAUSED if is_paused(sub, now) else PENDING


def in_weekly_audience(sub: Subscriber) -> bool:
    """Whether a weekly issue's audience holds `sub` (as a row to send or a paused one)."""
    return sub.status == "confirmed" and sub.frequency != "monthly"


def month_of(now: datetime, timezone: str) -> str:
    """The calendar month of `now` in [schedule] timezone: "2026-12"."""
    return f"{now.astimezone(ZoneInfo(timezone)):%Y-%m}"


def month_label(now: datetime, timezone: str) -> str:
    """The month as readers name it: "December 2026"."""
    return f"{now.astimezone(ZoneInfo(timezone)):%B %Y}"


@dataclass(frozen=True)
class MonthlyReader:
    """What the monthly rule needs of one confirmed monthly reader: the newest issue
    delivered to them, the newest issue recorded before they confirmed, and whether they
    already have a row in a monthly issue of this month."""

    id: int
    last_delivered: int | None
    last_before_joining: int | None
    this_month: bool
    chose_at: datetime | None = None  # when they chose monthly (None: before choices were recorded)
    pause_reason: str = ""
    paused_until: datetime | None = None


def since_issue(reader: MonthlyReader) -> int | None:
    """The reader's last issue (None: none yet: every recorded post is new to them)."""
    known = [i for i in (reader.last_delivered, reader.last_before_joining) if i is not None]
    return max(known) if known else None


def month_start(now: datetime, timezone: str) -> datetime:
    """The first instant of `now`'s calendar month in [schedule] timezone."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def monthly_groups(readers: Iterable[MonthlyReader], first_send: datetime,
                   now: datetime) -> dict[int | None, list[int]]:
    """The monthly readers due this month at `now`, grouped by their last issue: {issue id:
    reader ids}. `first_send` is the month's first weekly send (its first issue, else now): a
    reader who chose monthly after it waits for next month's. A paused reader waits too: the
    first send of the month after their pause sends them theirs, every post since their last."""
    groups: dict[int | None, list[int]] = {}
    for reader in readers:
        if reader.this_month or _paused(reader.pause_reason, reader.paused_until, now):
            continue
        if reader.chose_at is None or reader.chose_at <= first_send:
            groups.setdefault(since_issue(reader), []).append(reader.id)
    return groups


def monthly_key(month: str, since: int | None) -> str:
    """The unique key of the monthly issue of `month` for the readers whose last issue is `since`."""
    return f"monthly-{month}-after-{since or 0}"


def away_after(sub: Subscriber, status: str, issue_id: int, now: datetime) -> Mapping[str, object] | None:
    """What a reader's row in a new issue changes of what they missed: a paused row counts
    one more issue missed; the first row sent after a pause is the issue that tells them;
    the one after that forgets it. None: nothing changes."""
    if status == PAUSED:
        return {"away_issues": sub.away_issues + 1, "away_since": sub.away_since or now, "away_issue": None}
    if sub.away_issues and sub.away_issue is None:
        return {"away_issue": issue_id}
    if sub.away_issue is not None and sub.away_issue != issue_id:
        return {"away_issues": 0, "away_since": None, "away_issue": None}
    return None


def away_line(sub: Subscriber, issue_id: int | None, timezone: str) -> str:
    """The one sentence the first issue after a pause adds to its greeting ("" otherwise)."""
    if issue_id is None or sub.away_issue != issue_id or not sub.away_issues:
        return ""
    n = sub.away_issues
    since = ""
    if sub.away_since is not None:
        day = sub.away_since.astimezone(ZoneInfo(timezone))
        since = f" since {day.day} {day:%B}"
    went = "1 issue went out" if n == 1 else f"{n} issues went out"
    return f" Welcome back! While you were away {went}{since}; the archive has {'it' if n == 1 else 'them'}."
