"""When a deferred message is tried again, and when it is given up. Pure core: no
network, no database, no clock (the time comes in as an argument), no file writes.

Most deferrals are greylisting: the server answers 4xx to the first attempt of a
(sender, recipient) pair and accepts a retry after a few minutes (postgrey waits 300 s).
So the first retries come quickly and close together: 1 minute (a passing hiccup), then 5
more (past postgrey's delay: 6 minutes after the first attempt), then 10, 30, and every
hour after that, until [smtp] give_up_hours after the first attempt. The old table (1, 5,
15 minutes, 1 h, 3 h, and a cap of 6 attempts) was about right for the gaps but its
retries were only ever made by the next weekly run, so greylisting cost a week.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .classify import STATUS_OF, Outcome
from .config import SMTPConfig
from .models import Claim, DeliveryStatus, Reply, Settlement

BACKOFF: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=10),
                                  timedelta(minutes=30), timedelta(hours=1))


@dataclass(frozen=True)
class RetryPolicy:
    """How long one run waits for deferred messages, how far apart they are tried, and when
    they are given up."""

    window: timedelta                   # [smtp] retry_window_minutes: one run's patience
    every: timedelta                    # [smtp] retry_interval_minutes: the timer of `digest serve`
    give_up: timedelta                  # [smtp] give_up_hours, counted from the first attempt
    backoff: tuple[timedelta, ...] = BACKOFF

    @classmethod
    def of(cls, smtp: SMTPConfig, backoff: Sequence[timedelta] = BACKOFF) -> RetryPolicy:
        """The policy of [smtp]; `backoff` replaces the table (tests use seconds)."""
        if not backoff or any(step <= timedelta(0) for step in backoff):
            raise ValueError("a backoff table needs one or more positive steps")
        return cls(window=timedelta(minutes=smtp.retry_window_minutes), every=timedelta(minutes=smtp.retry_interval_minutes),
                   give_up=timedelta(hours=smtp.give_up_hours), backoff=tuple(backoff))

    def next_attempt(self, attempts: int, now: datetime) -> datetime:
        """When to try again a message deferred at `now`, after `attempts` earlier attempts."""
        return now + self.backoff[min(attempts, len(self.backoff) - 1)]

    def expired(self, first_attempt_at: datetime | None, now: datetime) -> bool:
        """Whether a message first tried at `first_attempt_at` is past giving up."""
        return first_attempt_at is not None and now - first_attempt_at >= self.give_up

    def give_up_before(self, now: datetime) -> datetime:
        """Messages first tried at or before this instant are given up."""
        return now - self.give_up

    def settlement(self, claim: Claim, reply: Reply, outcome: Outcome, now: datetime) -> Settlement:
        """What the ledger records of `reply` to the message of `claim`: the status
        STATUS_OF gives the outcome, and what the outcome adds. A bounce marks the
        subscriber; a message in doubt keeps no code; a pause (the server refuses us) waits
        blameless, its attempt not counted; a deferral past give_up_hours fails."""
        text = f"{reply.stage}: {reply.code} {reply.text}" if reply.code else reply.text
        status, code = STATUS_OF[outcome], reply.code or None
        if outcome is Outcome.BOUNCED:
            return Settlement(claim.delivery_id, status, now, code, text, bounce=claim.subscriber_id)
        if outcome is Outcome.IN_DOUBT:
            return Settlement(claim.delivery_id, status, now, None, text)
        if outcome is Outcome.PAUSE:
            return Settlement(claim.delivery_id, status, now, code, text, self.next_attempt(0, now), attempted=False)
        if outcome is Outcome.DEFERRED:
            if self.expired(claim.first_attempt_at, now):
                return Settlement(claim.delivery_id, DeliveryStatus.FAILED, now, code, self.gave_up + text)
            return Settlement(claim.delivery_id, status, now, code, text, self.next_attempt(claim.attempts, now))
        return Settlement(claim.delivery_id, status, now, code, text)

    @property
    def gave_up(self) -> str:
        """The start of a given-up message's recorded reply; its last reply follows."""
        return f"gave up after {self.give_up.total_seconds() / 3600:g} hours: "
