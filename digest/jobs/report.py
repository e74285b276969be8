"""What `digest status` and `digest history` show, as data. A job (layer 3): reads the
store; the CLI formats what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..adapters.inbox_ledger import InboxLedger, InboxStats
from ..adapters.ledger import Ledger
from ..adapters.questions import QuestionStats, QuestionStore
from ..adapters.store import open_store
from ..core.calendar import next_run
from ..core.config import Config
from ..core.models import STATUSES, FeedState, IssueRecord


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


def history(config: Config) -> list[IssueSummary]:
    """Every issue, newest first, with its delivery counts."""
    with open_store(config) as store:
        return [IssueSummary(issue, counts) for issue, counts in Ledger(store).history()]


def status(config: Config, now: datetime) -> Status:
    """The next weekly send, the last issue and its counts, the feed's state, the list's size,
    the readers' questions."""
    with open_store(config) as store:
        ledger = Ledger(store)
        last, unfinished = ledger.last_issue(), ledger.unfinished_issue()
        return Status(
            next_send=next_run(config.schedule, now),
            last=IssueSummary(last, ledger.counts(last.id)) if last else None,
            unfinished=unfinished if unfinished is not None and (last is None or unfinished.id != last.id) else None,
            feed=ledger.feed_state(),
            subscribers={s: store.count(s) for s in STATUSES},
            inbox=InboxLedger(store).stats(config.inbox.folder, now) if config.inbox.host else None,
            questions=QuestionStore(store).stats(),
        )
