"""The composition root: the one place that builds the adapters and hands them to the jobs.
Layer 4 (the CLI's), used by every command and by `digest serve`'s web app and timers.

listmonk builds its store, messengers and manager once in cmd/init.go and hands them to
the manager and the HTTP handlers; here a Wiring builds, once per process, the store, its
ledgers (deliveries, questions, notices, inbox), the mailer, the DKIM signer, the link
secret, the clock and the outbox, and the jobs receive them typed by the Protocols in
jobs/ports.py. Nothing below builds its own.

Each part is built on first use, and imports its adapter then: `digest preview` with no
store never loads SQLAlchemy, alembic or smtplib, and no command pays for a part it does
not use. Keep it so: no adapter import at the top of this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar, cast

from ..core.config import Config
from ..core.retry import BACKOFF, RetryPolicy

if TYPE_CHECKING:
    from ..adapters.author import AuthorLedger
    from ..adapters.inbox_ledger import InboxLedger
    from ..adapters.ledger import Ledger
    from ..adapters.notices import NoticeLedger
    from ..adapters.questions import QuestionStore
    from ..adapters.store import Store
    from ..core.deliverability import Fetched
    from ..core.relay import RelayProbe
    from ..core.sign import Signer
    from ..jobs.outbox import Outbox
    from ..jobs.ports import Fetch, Mailbox, Mailer, Resolver

Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    """The real clock: the only one the program reads (tests hand in their own)."""
    return datetime.now(timezone.utc)


class Wiring:
    """The parts of one process, each built on first use; close() lets go of the store.

    Tests hand in what they want real but their own: a store already open (kept open),
    a mailer, a secret, a clock, a shorter back-off table.
    """

    def __init__(self, config: Config, *, clock: Clock = utc_now, store: Store | None = None,
                 mailer: Mailer | None = None, secret: str | None = None, cancel: threading.Event | None = None,
                 backoff: Sequence[timedelta] = BACKOFF) -> None:
        self.config, self.clock, self.backoff = config, clock, tuple(backoff)
        self.cancel = cancel if cancel is not None else threading.Event()
        self._given_store, self._given_mailer, self._given_secret = store, mailer, secret
        self._opened: Store | None = None
        self._lock = threading.RLock()  # the web app's threads and the timers may ask for a part at once
        self._built: dict[str, object] = {}

    def __enter__(self) -> Wiring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store this wiring opened (one handed in stays open)."""
        with self._lock:
            if self._opened is not None:
                self._opened.close()
                self._opened = None
            for name in ("store", "ledger", "questions", "notices", "inbox_book", "author", "outbox"):
                self.__dict__.pop(name, None)
                self._built.pop(name, None)

    def _once(self, name: str, build: Callable[[], T]) -> T:
        """The part `name`, built by the first thread to ask (cached_property alone does not
        lock on Python 3.12+: two threads could each build an outbox, with its own rate)."""
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return cast(T, self._built[name])

    # ---- the store and its ledgers ----

    @cached_property
    def store(self) -> Store:
        """The store of [store] url, opened (and migrated) on first use."""
        if self._given_store is not None:
            return self._given_store

        def build() -> Store:
            from ..adapters.store import Store

            self._opened = Store.open(self.config.store.url)
            return self._opened

        return self._once("store", build)

    def store_exists(self) -> bool:
        """Whether there is a store to read: a SQLite file not made yet is none (a preview never makes one)."""
        if self._given_store is not None or self._opened is not None:
            return True
        url = self.config.store.url
        if not url.startswith("sqlite:///"):
            return True
        from pathlib import Path

        return Path(url[len("sqlite:///"):]).exists()

    @cached_property
    def ledger(self) -> Ledger:
        from ..adapters.ledger import Ledger

        return self._once("ledger", lambda: Ledger(self.store))

    @cached_property
    def questions(self) -> QuestionStore:
        from ..adapters.questions import QuestionStore

        return self._once("questions", lambda: QuestionStore(self.store))

    @cached_property
    def notices(self) -> NoticeLedger:
        from ..adapters.notices import NoticeLedger

        return self._once("notices", lambda: NoticeLedger(self.store))

    @cached_property
    def inbox_book(self) -> InboxLedger:
        from ..adapters.inbox_ledger import InboxLedger

        return self._once("inbox_book", lambda: InboxLedger(self.store, bounce_after=self.config.inbox.bounce_after))

    @cached_property
    def author(self) -> AuthorLedger:
        from ..adapters.author import AuthorLedger

        return self._once("author", lambda: AuthorLedger(self.store))

    # ---- the world outside ----

    @cached_property
    def secret(self) -> str:
        """The link secret: the environment's, else the secret file (made on first use)."""
        if self._given_secret is not None:
            return self._given_secret
        from ..adapters.secret import load_or_create_secret

        return load_or_create_secret(self.config)

    @cached_property
    def mailer(self) -> Mailer:
        if self._given_mailer is not None:
            return self._given_mailer
        from ..adapters.smtp import SMTPMailer

        return SMTPMailer(self.config.smtp)

    @cached_property
    def signer(self) -> Signer | None:
        """The DKIM signer of [newsletter] dkim_selector and dkim_key_file (None: no signing)."""
        from ..adapters.secret import load_signer

        return load_signer(self.config)

    @property
    def fetch(self) -> Fetch:
        from ..adapters.fetch import fetch_feed

        return fetch_feed

    def mailbox(self) -> Mailbox:
        """A new connection to the [inbox] folder (not yet open)."""
        from ..adapters.imap import IMAPMailbox

        return IMAPMailbox(self.config.inbox)

    def resolver(self, nameserver: str | None, timeout: float) -> Resolver:
        from ..adapters.dns import Resolver

        return Resolver(nameserver, timeout=timeout)

    def probe_relay(self) -> RelayProbe:
        from ..adapters.probe import probe_relay

        return probe_relay(self.config.smtp)

    def fetch_all(self, urls: Sequence[str], *, timeout: float, user_agent: str, images: bool = False) -> list[Fetched]:
        from ..adapters.links import fetch_all

        return fetch_all(urls, timeout=timeout, user_agent=user_agent, images=images)

    def spamassassin(self, message: bytes) -> str | None:
        from ..adapters.spamassassin import spamassassin_report

        return spamassassin_report(message)

    def reader_id(self) -> str:
        from ..adapters.inbox_ledger import reader_id

        return reader_id()

    @cached_property
    def outbox(self) -> Outbox:
        """The one engine every mail goes through (jobs/outbox.py)."""
        from ..jobs.outbox import Outbox

        return self._once("outbox", lambda: Outbox(
            smtp=self.config.smtp, newsletter=self.config.newsletter, mailer=self.mailer, senders=self.ledger,
            policy=RetryPolicy.of(self.config.smtp, self.backoff), secret=self.secret, clock=self.clock,
            signer=self.signer, cancel=self.cancel))
