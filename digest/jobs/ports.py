"""What the jobs need from the world, as interfaces (typing.Protocol): every port a job's
arguments are typed by is named here (the store's are written in books.py). The adapters
implement them (adapters/smtp.py: SMTPMailer; adapters/imap.py: the inbox's Mailbox;
adapters/fetch.py, dns.py, probe.py, links.py, spamassassin.py: the doctor's and the
build's looks at the world; books.py says which adapter is which ledger), the
composition root (cli/wiring.py: Wiring) builds them and satisfies the bundles (MailParts,
SendParts, InboxParts, DoctorParts), and tests may pass other real implementations. The
way listmonk's campaign manager declares the Store and Messenger it needs, here the jobs
declare theirs, and no job imports an adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..core.models import FeedState, FetchResult, Reply
from ..core.parse import FetchOptions
from .books import (
    AuthorBook,
    Expiring,
    InboxBook,
    IssueLedger,
    IssueRows,
    NoticeBook,
    QuestionBook,
    Queue,
    Senders,
    Subscribers,
)

__all__ = ["AuthorBook", "AuthorParts", "Connection", "DoctorParts", "Expiring", "Fetch", "InboxBook", "InboxParts", "IssueLedger", "IssueRows",
           "MailParts", "Mailbox", "Mailer", "NoticeBook", "Progress", "QuestionBook", "Queue", "Resolver", "SendParts",
           "Senders", "Subscribers"]

if TYPE_CHECKING:  # named in signatures only: the DKIM signer loads dkimpy and dnspython
    from ..core.deliverability import Fetched
    from ..core.relay import RelayProbe
    from ..core.sign import Signer
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


class AuthorParts(SendParts, Protocol):
    """What the author's desk needs besides a send's parts: the author's book."""

    @property
    def author(self) -> AuthorBook: ...


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
