"""What the jobs need from the world, as interfaces (typing.Protocol); the adapters
implement them (adapters/ledger.py: Ledger and Store; adapters/notices.py: the answer
notices' Queue; adapters/smtp.py: SMTPMailer;
adapters/imap.py and inbox_ledger.py: the inbox's Mailbox and InboxBook), and
tests may pass other real implementations. The way listmonk's campaign manager declares
the Store and Messenger it needs, here the send job declares its ledger and mailer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..core.answers import AnswerLink
from ..core.deliverability import Fetched
from ..core.models import (
    Claim,
    Consent,
    FeedState,
    FetchResult,
    InboxStats,
    IssueRecord,
    Post,
    Reply,
    Settlement,
    Subscriber,
)
from ..core.parse import FetchOptions
from ..core.questions import NewQuestion, Question, QuestionStats
from ..core.relay import RelayProbe
from ..core.sign import Signer

if TYPE_CHECKING:  # the inbox's types: reading them loads flufl.bounce, which a preview does not need
    from ..core.returns import Claimed, Delivery, Effect
    from .outbox import Outbox


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


class Senders(Protocol):
    """The table of live senders and their heartbeats (adapters/ledger.py: Ledger): a row
    claimed by a sender known dead goes back to its queue."""

    def register_sender(self, sender_id: str, now: datetime) -> None: ...

    def heartbeat(self, sender_id: str, now: datetime) -> None: ...

    def unregister_sender(self, sender_id: str) -> None: ...


class Queue(Protocol):
    """The ledger rows of one kind of mail as a work queue, drained by the outbox
    (jobs/outbox.py): one issue's deliveries (jobs/deliver.py binds the issue), the answer
    notices (adapters/notices.py). A row is claimed ("sending") before MAIL FROM and
    settled after the reply; one still "sending" when its sender died goes back."""

    def claim(self, claimer: str, now: datetime, limit: int, *, pending: bool = True) -> list[Claim]:
        """Up to `limit` rows for one connection ("<sender id>/<n>"): pending ones (unless
        not `pending`), then deferred ones whose time has come."""
        ...

    def settling(self) -> AbstractContextManager[Callable[[Sequence[Settlement]], None]]:
        """A function recording batches of outcomes, each in one transaction, for the block."""
        ...

    def release(self, row_ids: Sequence[int], now: datetime) -> None: ...

    def release_claimer(self, claimer: str, now: datetime) -> None: ...

    def recover_stale(self, now: datetime) -> int: ...

    def held_by_others(self, sender_id: str) -> int: ...

    def finish_if_done(self, now: datetime) -> bool: ...

    def counts(self) -> dict[str, int]: ...


class Expiring(Protocol):
    """Deferred rows past giving up ([smtp] give_up_hours), failed with their last reply."""

    def give_up(self, before: datetime, reply_prefix: str, now: datetime) -> Mapping[int, int]:
        """Fail the rows first tried at or before `before`; {issue id (0: no issue): rows failed}."""
        ...


class IssueRows(Protocol):
    """The delivery rows of every issue, claimed and settled by the outbox (deliver.py's
    IssueQueue binds one issue)."""

    def claim(self, issue_id: int, claimer: str, now: datetime, limit: int, *, pending: bool = True) -> list[Claim]: ...

    def settling(self) -> AbstractContextManager[Callable[[Sequence[Settlement]], None]]: ...

    def release(self, delivery_ids: Sequence[int], now: datetime) -> None: ...

    def release_claimer(self, issue_id: int, claimer: str, now: datetime) -> None: ...

    def recover_stale(self, issue_id: int, now: datetime) -> int: ...

    def held_by_others(self, issue_id: int, sender_id: str) -> int: ...

    def finish_if_done(self, issue_id: int, now: datetime) -> bool: ...

    def counts(self, issue_id: int) -> dict[str, int]: ...

    def mark_bounced(self, subscriber_id: int, now: datetime) -> None:
        """A confirmed subscriber is bounced (a single mail's hard bounce, as a settle's)."""
        ...


class Subscribers(Protocol):
    """The subscribers (adapters/store.py: Store)."""

    def get(self, subscriber_id: int) -> Subscriber | None: ...

    def get_many(self, subscriber_ids: Iterable[int]) -> dict[int, Subscriber]: ...

    def find(self, email_key: str) -> Subscriber | None: ...

    def iter_subscribers(self, status: str | None = None) -> Iterator[Subscriber]: ...

    def count(self, status: str | None = None) -> int: ...

    def add(self, email: str, key: str, name: str, topics: tuple[str, ...], *, confirmed: bool, now: datetime,
                consent: Consent) -> tuple[Subscriber, bool]: ...

    def confirm_by_author(self, subscriber_id: int, *, now: datetime) -> Subscriber | None: ...

    def mark_confirmation_sent(self, subscriber_id: int, *, now: datetime) -> Subscriber | None: ...

    def hit_rate(self, bucket: str, key: str, *, now: datetime, window: timedelta, limit: int) -> bool:
        """Count one event; False when `key` already had `limit` events within `window`."""
        ...


class IssueLedger(IssueRows, Senders, Expiring, Protocol):
    """Issues and their deliveries (adapters/ledger.py: Ledger)."""

    def last_issue(self) -> IssueRecord | None: ...

    def unfinished_issue(self) -> IssueRecord | None: ...

    def unfinished_issues(self) -> list[IssueRecord]: ...

    def interrupted_issue(self) -> IssueRecord | None: ...

    def due_issues(self, now: datetime) -> list[IssueRecord]: ...

    def sent_post_ids(self, last: int = 60) -> frozenset[str]: ...

    def next_issue_id(self) -> int: ...

    def create_issue(self, *, key: str, now: datetime, cutoff: datetime, subject: str, posts: Sequence[Post],
                         html: str, text: str, domain: str, state: FeedState | None, note: str = "",
                         issue_id: int | None = None) -> tuple[IssueRecord, bool]: ...

    def done_issues(self, limit: int = 50) -> list[IssueRecord]: ...

    def history(self) -> list[tuple[IssueRecord, dict[str, int]]]: ...

    def retry_now(self, issue_id: int, now: datetime) -> int: ...

    def next_deferred(self, issue_ids: Sequence[int]) -> tuple[datetime | None, int]: ...

    def feed_state(self) -> FeedState | None: ...


class QuestionBook(Protocol):
    """The readers' questions, their askers and notices (adapters/questions.py: QuestionStore)."""

    def record(self, new: NewQuestion, now: datetime) -> tuple[Question, bool]: ...

    def subscriber_for_message_id(self, message_ids: Iterable[str]) -> int | None: ...

    def get(self, question_id: int) -> Question | None: ...

    def require(self, question_id: int) -> Question: ...

    def of_address(self, email_key: str) -> list[Question]: ...

    def statuses(self, ids: Iterable[int]) -> dict[int, str]: ...

    def notice_status(self, question_id: int) -> tuple[str, str] | None: ...

    def stats(self) -> QuestionStats: ...

    def move(self, question_id: int, action: str, now: datetime, **values: Any) -> Question: ...

    def forget(self, email_key: str) -> int: ...

    def expire(self, before: datetime, now: datetime) -> int: ...

    def awaiting_answers(self) -> bool: ...

    def accepted(self) -> list[Question]: ...

    def mark_answered(self, links: Sequence[AnswerLink], now: datetime, message_id: Any) -> list[Question]: ...

    def claim_features(self, key: str, now: datetime) -> list[Question]: ...

    def featured(self, key: str) -> list[Question]: ...

    def unfeatured(self) -> list[Question]: ...

    def desk(self, limit: int) -> list[Question]: ...

    def issue_exists(self, key: str) -> bool: ...

    def blocked(self, email_key: str) -> str | None: ...

    def claim_acknowledgement(self, question: Question, now: datetime, window: timedelta, per_hour: int = 0) -> bool: ...

    def acknowledged_since(self, since: datetime, budget: str) -> int: ...

    def mark_asker_bounced(self, email_key: str, now: datetime) -> bool: ...

    def mark_askers_complained(self, message_ids: Iterable[str], now: datetime) -> int: ...

    def mark_bounced(self, email_key: str, now: datetime) -> None: ...


class NoticeBook(Queue, Expiring, Protocol):
    """The answer notices (adapters/notices.py: NoticeLedger): a Queue the outbox drains."""


class Fetch(Protocol):
    """Fetching a feed (adapters/fetch.py: fetch_feed)."""

    def __call__(self, source: str, options: FetchOptions, *, since: datetime | None = None,
                 state: FeedState | None = None) -> FetchResult: ...


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

    def stats(self, folder: str, now: datetime, window: timedelta = ...) -> InboxStats: ...


class MailParts(Protocol):
    """What a job that mails needs, built once per process (cli/wiring.py: Wiring)."""

    @property
    def store(self) -> Subscribers: ...

    @property
    def ledger(self) -> IssueLedger: ...

    @property
    def questions(self) -> QuestionBook: ...

    @property
    def outbox(self) -> Outbox: ...


class SendParts(MailParts, Protocol):
    """What a send needs besides: the notices, the feed, the clock."""

    @property
    def notices(self) -> NoticeBook: ...

    @property
    def fetch(self) -> Fetch: ...

    def clock(self) -> datetime: ...


class InboxParts(MailParts, Protocol):
    """What a read of the inbox needs besides (cli/wiring.py: Wiring)."""

    @property
    def inbox_book(self) -> InboxBook: ...

    def mailbox(self) -> Mailbox:
        """A new connection to the [inbox] folder, not yet open."""
        ...

    def reader_id(self) -> str: ...

    def clock(self) -> datetime: ...


class Resolver(Protocol):
    """DNS look-ups (adapters/dns.py: Resolver); DNSError when the server does not answer."""

    def txt(self, name: str) -> list[str]: ...

    def mx(self, name: str) -> list[tuple[int, str]]: ...

    def addresses(self, name: str) -> list[str]: ...


class DoctorParts(Protocol):
    """What `digest doctor` looks at the world with (cli/wiring.py: Wiring)."""

    @property
    def fetch(self) -> Fetch: ...

    @property
    def ledger(self) -> IssueLedger: ...

    @property
    def questions(self) -> QuestionBook: ...

    @property
    def signer(self) -> Signer | None:
        """The send's DKIM signer (None: DKIM is off); ConfigError when its key cannot be read."""
        ...

    def store_exists(self) -> bool: ...

    def resolver(self, nameserver: str | None, timeout: float) -> Resolver: ...

    def probe_relay(self) -> RelayProbe: ...

    def fetch_all(self, urls: Sequence[str], *, timeout: float, user_agent: str, images: bool = False) -> list[Fetched]: ...

    def spamassassin(self, message: bytes) -> str | None:
        """SpamAssassin's report on `message`; None when it is not installed."""
        ...
