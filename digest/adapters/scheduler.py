"""The weekly send inside `digest serve`: APScheduler 3 with a trigger of our own. Adapter.

The trigger fires at core/calendar.py's next_run(). Jobs live in memory (no pickled job
table); a send missed while the machine was off is found on start by comparing the last
scheduled slot with the last issue (calendar.decide_on_start), and sent once, unless it
is older than [schedule] max_late_hours. A machine asleep over the slot is another case:
the process lives on, and APScheduler fires the missed run as it wakes (misfire_grace_time
None), so the weekly job checks its own lateness against the same limit (calendar.too_late). The issue's unique key and the ledger's claims
make a second `serve` or a `digest send` by hand harmless.

A second job, on an interval, retries deferred messages (greylisting answers "try later"
for minutes, not for a week). It never runs while the weekly send does: that one retries
its own deferred messages within its window, and two senders in one process would only
share the rate ceiling badly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..core.calendar import next_run, too_late
from ..core.config import ScheduleConfig

log = logging.getLogger("digest.schedule")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class WeeklyTrigger(BaseTrigger):  # type: ignore[misc]
    """APScheduler trigger firing at next_run()."""

    def __init__(self, schedule: ScheduleConfig) -> None:
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        return next_run(self.schedule, previous_fire_time or now - timedelta(microseconds=1))

    def __str__(self) -> str:
        return f"weekly[{self.schedule.cron} {self.schedule.timezone}]"


class WeeklySender:
    """The scheduler of `digest serve`: the weekly job and, when given, the retry job every
    `retry_every`; in memory, run in background threads, never both at once."""

    def __init__(self, schedule: ScheduleConfig, job: Callable[[], object], *,
                 retry: Callable[[], object] | None = None, retry_every: timedelta = timedelta(minutes=5),
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.schedule = schedule
        self.clock = clock
        self.send = job
        self.busy = threading.Lock()
        zone = ZoneInfo(schedule.timezone)
        self.scheduler = BackgroundScheduler(timezone=zone,
                                             job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1})
        self.job = self.scheduler.add_job(self._on_time(self._exclusive(job)), WeeklyTrigger(schedule),
                                          id="weekly-send", name="weekly send")
        if retry is not None:
            self.scheduler.add_job(self._unless_busy(retry), IntervalTrigger(seconds=retry_every.total_seconds(),
                                                                             timezone=zone),
                                   id="retry-deferred", name="retry deferred messages")

    def _on_time(self, job: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            late = too_late(self.schedule, self.clock())
            if late is not None:
                log.warning("%s", late)
                return None
            return job()
        return run

    def _exclusive(self, job: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with self.busy:
                return job()
        return run

    def _unless_busy(self, job: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            if not self.busy.acquire(blocking=False):
                return None  # the weekly send is running and retries its own
            try:
                return job()
            finally:
                self.busy.release()
        return run

    def start(self) -> None:
        self.scheduler.start()

    def run_now(self) -> None:
        """Run the send once now (in the scheduler's thread pool), as decided on start after
        downtime (calendar.decide_on_start has weighed its lateness, interrupted issues too)."""
        self.scheduler.add_job(self._exclusive(self.send), "date", run_date=datetime.now(timezone.utc),
                               id="send-on-start", name="send on start", replace_existing=True)

    def next_run_time(self) -> datetime | None:
        return self.scheduler.get_job("weekly-send").next_run_time  # type: ignore[no-any-return]

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)

    def every(self, minutes: float, name: str, job: Callable[[], object]) -> None:
        """Also run `job` every `minutes` (the author's proof looks whether one is due), one at a time."""
        self.scheduler.add_job(job, IntervalTrigger(minutes=minutes), id=name, name=name,
                               next_run_time=datetime.now(self.scheduler.timezone))

    def read_inbox_every(self, minutes: float, job: Callable[[], object]) -> None:
        """Also run `job` (one read of the inbox) every `minutes`, the first time now. One at a
        time (max_instances): a slow read is not overlapped by the next; missed ones coalesce."""
        self.scheduler.add_job(job, IntervalTrigger(minutes=minutes), id="inbox-read", name="inbox read",
                               next_run_time=datetime.now(self.scheduler.timezone))
