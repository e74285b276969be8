"""What the jobs need from the world, as interfaces (typing.Protocol); the adapters
implement them (adapters/ledger.py: Ledger and Store; adapters/smtp.py: SMTPMailer;
adapters/imap.py and inbox_ledger.py: the inbox's Mailbox and InboxBook), and
tests may pass other real implementations. The way listmonk's campaign manager declares
the Store and Messenger it needs, here the send job declares its ledger and mailer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..core.audience import MonthlyReader
from ..core.models import Claim, FeedState, IssueRecord, Post, Reply, Settlement, Subscriber
from ..core.questions import Question

if TYPE_CHECKING:  # the inbox's types: reading them loads flufl.bounce, which a preview does not need
    from ..core.returns import Claimed, Delivery, Effect


class Connection(Protocol):
    """One open session with a mail server."""

    @property
    def usable(self) -> bool: ...

    @property
    def smtputf8(self) -> bool: ...

    def send(self, sender: str, recipient: str, message: bytes, ready: Callable[[], None] | None = None,
             meanwhile: Callable[[], None] | None = None) -> Reply:
        """Send one message. `ready` is called before any of the message goes out (the
        sender waits there until its previous message is recorded); `meanwhile`, once the
        message is written, while the server reads it, before its reply is read (the sender
        builds its next message there). A refusal is a Reply."""
        ...

    def close(self) -> None: ...


class Mailer(Protocol):
    """Where messages go: connections for a send, one-off messages for single mails."""

    def connect(self) -> Connection: ...

    def send_one(self, sender: str, recipient: str, message: bytes) -> Reply: ...


class Progress(Protocol):
    """What a send tells whoever watches it (the CLI's progress bar), from any thread."""

    def begin(self, label: str, total: int) -> None: ...

    def advance(self, outcome: str) -> None: ...

    def waiting(self, seconds: float, deferred: int) -> None: ...


class Subscribers(Protocol):
    """Reading subscribers as they are now (they may have left since the issue began)."""

    def get_many(self, subscriber_ids: Iterable[int]) -> dict[int, Subscriber]: ...


class DeliveryLedger(Protocol):
    """The ledger of one issue's deliveries, shared by every sender and connection."""

    def register_sender(self, sender_id: str, now: datetime) -> None: ...

    def heartbeat(self, sender_id: str, now: datetime) -> None: ...

    def unregister_sender(self, sender_id: str) -> None: ...

    def recover_stale(self, issue_id: int, now: datetime) -> int: ...

    def claim(self, issue_id: int, claimer: str, now: datetime, limit: int, *, pending: bool = True) -> list[Claim]: ...

    def settling(self) -> AbstractContextManager[Callable[[Sequence[Settlement]], None]]:
        """A function recording batches of outcomes, each in one transaction, for the block."""
        ...

    def release(self, delivery_ids: Sequence[int], now: datetime) -> None: ...

    def release_claimer(self, issue_id: int, claimer: str, now: datetime) -> None: ...

    def held_by_others(self, issue_id: int, sender_id: str) -> int: ...

    def finish_if_done(self, issue_id: int, now: datetime) -> bool: ...

    def counts(self, issue_id: int) -> dict[str, int]: ...


class Mailbox(Protocol):
    """One IMAP folder, open for reading (adapters/imap.py: IMAPMailbox)."""

    uidvalidity: int

    def open(self) -> None: ...

    def close(self) -> None: ...

    def uids(self) -> list[int]: ...

    def sizes(self, uids: Sequence[int]) -> dict[int, int]: ...

    def headers(self, uids: Sequence[int]) -> dict[int, bytes]: ...

    def bodies(self, uids: Sequence[int]) -> dict[int, bytes]: ...

    def move(self, uids: Sequence[int], folder: str) -> None: ...


class InboxBook(Protocol):
    """Which messages were handled and what they did (adapters/inbox_ledger.py: InboxLedger)."""

    def claim(self, folder: str, uidvalidity: int, uids: Sequence[int], reader: str,
              now: datetime) -> dict[int, tuple[Claimed, int]]: ...

    def release(self, reader: str) -> None: ...

    def seen_message_id(self, message_id: str, row_id: int) -> bool: ...

    def delivery(self, issue_id: int, subscriber_id: int) -> Delivery | None: ...

    def delivery_by_message_id(self, message_ids: Sequence[str]) -> Delivery | None: ...

    def last_delivery_to(self, email_key: str) -> Delivery | None: ...

    def find_subscriber(self, email_key: str) -> tuple[int, str] | None: ...

    def settle(self, row_id: int, *, kind: str, outcome: str, message_id: str, now: datetime,
               effects: Sequence[Effect] = (), keep: bool = False) -> list[str]: ...

    def record_read(self, folder: str, now: datetime, outcome: str) -> None: ...


class MonthlyBook(Protocol):
    """What the monthly issues need of the ledger (adapters/ledger.py: Ledger): the weekly
    issues a monthly one gathers, the monthly readers as core/audience.py reads them, and
    recording an issue with its audience."""

    def weekly_issues_after(self, since: int | None) -> list[IssueRecord]: ...

    def monthly_readers(self, month_key_prefix: str) -> list[MonthlyReader]: ...

    def first_issue_since(self, start: datetime) -> datetime | None: ...

    def next_issue_id(self) -> int: ...

    def create_issue(self, *, key: str, now: datetime, cutoff: datetime, subject: str, posts: Sequence[Post],
                     html: str, text: str, domain: str, state: FeedState | None, note: str = "",
                     issue_id: int | None = None, kind: str = "weekly",
                     members: Sequence[int] | None = None) -> tuple[IssueRecord, bool]: ...


class FeaturedQuestions(Protocol):
    """The questions an issue featured, and those on the desk (adapters/questions.py: QuestionStore)."""

    def featured(self, key: str) -> list[Question]: ...

    def desk(self, limit: int) -> list[Question]: ...
