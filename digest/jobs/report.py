"""What `digest status` and `digest history` show, as data. A job (layer 3): reads the
ledgers it is handed; the CLI formats what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..core.calendar import next_run
from ..core.config import InboxConfig, ScheduleConfig
from ..core.models import STATUSES, FeedState, InboxStats, IssueRecord
from ..core.questions import QuestionStats
from .ports import InboxBook, IssueLedger, QuestionBook, Subscribers


@dataclass(frozen=True)
class IssueSummary:
    """One issue and how many of its messages are in each delivery status."""

    issue: IssueRecord
    counts: dict[str, int]


@dataclass(frozen=True)
class Status:
    next_send: datetime
    last: IssueSummary | None
    unfinished: IssueRecord | None
    feed: FeedState | None
    subscribers: dict[str, int]
    inbox: InboxStats | None = None  # None: [inbox] is not set up
    questions: QuestionStats | None = None


def history(ledger: IssueLedger) -> list[IssueSummary]:
    """Every issue, newest first, with its delivery counts."""
    return [IssueSummary(issue, counts) for issue, counts in ledger.history()]


def status(schedule: ScheduleConfig, inbox: InboxConfig, *, ledger: IssueLedger, store: Subscribers,
           questions: QuestionBook, inbox_book: InboxBook, now: datetime) -> Status:
    """The next weekly send, the last issue and its counts, the feed's state, the list's size,
    the readers' questions, the inbox's reads."""
    last, unfinished = ledger.last_issue(), ledger.unfinished_issue()
    return Status(
        next_send=next_run(schedule, now),
        last=IssueSummary(last, ledger.counts(last.id)) if last else None,
        unfinished=unfinished if unfinished is not None and (last is None or unfinished.id != last.id) else None,
        feed=ledger.feed_state(),
        subscribers={s: store.count(s) for s in STATUSES},
        inbox=inbox_book.stats(inbox.folder, now) if inbox.host else None,
        questions=questions.stats(),
    )
