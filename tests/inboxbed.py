"""An inbox test bed: a user of the throwaway Dovecot, a config whose [inbox] points at it,
and a real store holding the subscribers and the sent issue that the fixtures in
tests/fixtures/inbox/ answer. The fixtures quote <digest.1.N.0123456789@example.com> for
subscriber N; the ledger makes each reader's Message-ID random, so the bed writes one known
random part (RANDOM) into both the ledger and the fixtures, as the reader's copy holds it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from imap_tools import MailBox
from imapserver import PASSWORD, IMAPServer

from digest.adapters.ledger import Ledger
from digest.adapters.schema import inbox_messages, inbox_returns
from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from digest.core.config import Config, read_config
from digest.core.models import Consent
from digest.core.subscriptions import normalise_email
from digest.core.tokens import make_token
from digest.core.verp import envelope_sender
from digest.jobs.inbox import InboxReport, read_inbox

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "inbox"
SECRET = "inbox-secret-0123456789abcdef"
KEY = "0123456789" + "c" * 54
SENT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
READERS = ["no-such-reader@gmail.com", "gone.reader@outlook.com", "closed.reader@yahoo.com", "user.unknown@example.net",
           "old.reader@example.net", "nobody.home@example.org", "slow.reader@example.net", "complainer@yahoo.com",
           "Ben@Example.net", "carla@example.org", "dan@example.org", "verp.reader@example.org"]
LATE = "late.subscriber@example.org"  # subscribed after the issue: never mailed
DONE = "Digest Done"
RANDOM = "5f0e2a9c41d7b3e86a1c0f94"  # what the ledger's random part of the bed's Message-IDs is


def issue_id_of(subscriber_id: int) -> str:
    """The Message-ID subscriber N's copy of the bed's issue carries."""
    return f"<digest.1.{subscriber_id}.{RANDOM}@example.com>"


@dataclass
class InboxBed:
    server: IMAPServer
    user: str
    path: Path
    config: Config
    store: Store
    env: dict[str, str]

    def mailbox(self) -> MailBox:
        return MailBox("127.0.0.1", self.server.imaps_port, ssl_context=self.server.context()).login(self.user, PASSWORD)

    def append(self, *messages: bytes) -> None:
        with self.mailbox() as box:
            for message in messages:
                box.append(message, "INBOX")

    def count(self, folder: str = "INBOX") -> int:
        with self.mailbox() as box:
            if not box.folder.exists(folder):
                return 0
            return int(box.folder.status(folder, ["MESSAGES"])["MESSAGES"])

    def message_ids(self, folder: str) -> list[str]:
        with self.mailbox() as box:
            box.folder.set(folder)
            return sorted(str(m.headers.get("message-id", ("",))[0]).strip() for m in
                          box.fetch(headers_only=True, mark_seen=False, bulk=True))

    def read(self, **kw: Any) -> InboxReport:
        wiring = Wiring(self.config, store=self.store, clock=lambda: datetime.now(UTC), secret=SECRET, **kw)
        return read_inbox(self.config.publication, self.config.inbox, wiring)

    def status(self, subscriber_id: int) -> str:
        sub = self.store.get(subscriber_id)
        assert sub is not None
        return sub.status

    def handled(self) -> list[tuple[int, str, str]]:
        """(uid, kind, message_id) of every handled row."""
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(inbox_messages.c.uid, inbox_messages.c.kind, inbox_messages.c.message_id)
                                .where(inbox_messages.c.state == "handled").order_by(inbox_messages.c.uid)).all()
        return [(int(r.uid), r.kind, r.message_id) for r in rows]

    def returns(self) -> list[tuple[int, int | None, str]]:
        """(message row, subscriber, kind) of everything the messages did."""
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(inbox_returns.c.message_row, inbox_returns.c.subscriber_id,
                                          inbox_returns.c.kind).order_by(inbox_returns.c.id)).all()
        return [(r.message_row, r.subscriber_id, r.kind) for r in rows]


def fixture(name: str) -> bytes:
    verp = envelope_sender("newsletter@example.com", "bounces@example.com", SECRET, 1, READERS.index("verp.reader@example.org") + 1)
    return ((FIXTURES / name).read_bytes().replace(b"%VERP%", verp.encode())
            .replace(b".0123456789@example.com>", f".{RANDOM}@example.com>".encode())
            .replace(b"%UNSUB%", make_token(SECRET, "unsubscribe", READERS.index("Ben@Example.net") + 1, now=SENT).encode())
            .replace(b"%UNSUB10%", make_token(SECRET, "unsubscribe", READERS.index("carla@example.org") + 1, now=SENT).encode()))


def question(n: int, size: int = 0) -> bytes:
    """A reader's question with a Message-ID of its own (and `size` bytes of padding)."""
    padding = ("x" * 76 + "\r\n") * (size // 78)
    return (f"From: Reader {n} <reader{n}@example.org>\r\nTo: questions@example.com\r\nSubject: Question {n}\r\n"
            f"Message-ID: <q{n}.{uuid.uuid4().hex[:8]}@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\nHow do I answer salary questions? ({n})\r\n{padding}").encode()


def delayed(n: int) -> bytes:
    """Postfix's delay notice for slow.reader, with a Message-ID of its own."""
    return fixture("postfix_delayed.eml").replace(b"<20261123160140.4RzB9c3Rabc@relay.example.com>",
                                                  f"<delay.{n}.{uuid.uuid4().hex[:8]}@relay.example.com>".encode())


def make_bed(write_config: Any, server: IMAPServer, *, store_url: str | None = None, security: str = "ssl",
             ca: bool = True, extra_inbox: str = "", known_ids: bool = True) -> InboxBed:
    """The bed; `known_ids`: False keeps the Message-IDs the ledger made (as an attacker
    meets them), True writes RANDOM into them (as the readers' copies hold them)."""
    user = server.add_user()
    path: Path = write_config(newsletter='return_path = "bounces@example.com"\nunsubscribe_mailto = "unsubscribe@example.com"')
    text = path.read_text()
    if store_url:
        text = text.replace(f'url = "sqlite:///{path.parent / "subscribers.db"}"', f'url = "{store_url}"')
    port = server.imaps_port if security == "ssl" else server.imap_port
    text += (f'\n[inbox]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\nusername = "{user}"\n'
             f'done_folder = "{DONE}"\ntimeout_seconds = 10\n'
             + (f'ca_file = "{server.ca_file}"\n' if ca else "") + extra_inbox)
    path.write_text(text)
    env = {"DIGEST_SECRET": SECRET, "DIGEST_IMAP_PASSWORD": PASSWORD}
    config = read_config(path, env)
    store = Store.open(config.store.url)
    for email in READERS:
        address, key = normalise_email(email)
        store.add(address, key, "", (), confirmed=True, now=SENT, consent=Consent(at=SENT, method="cli"))
    Ledger(store).create_issue(key=KEY, now=SENT, cutoff=SENT - timedelta(days=7), subject="Week 1", posts=[], html="",
                               text="", domain="example.com", state=None)
    with store.tx() as conn:
        conn.execute(sa.text("UPDATE deliveries SET status = 'sent'"))
        for sub in conn.execute(sa.text("SELECT subscriber_id FROM deliveries")).scalars().all() if known_ids else []:
            conn.execute(sa.text("UPDATE deliveries SET message_id = :mid WHERE subscriber_id = :sub"),
                         {"mid": issue_id_of(sub), "sub": sub})
    address, key = normalise_email(LATE)
    store.add(address, key, "", (), confirmed=True, now=SENT, consent=Consent(at=SENT, method="cli"))
    return InboxBed(server, user, path, config, store, env)
