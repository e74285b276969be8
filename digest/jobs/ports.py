"""What the jobs need from the world, as interfaces (typing.Protocol); the adapters
implement them (adapters/ledger.py: Ledger and Store; adapters/smtp.py: SMTPMailer), and
tests may pass other real implementations. The way listmonk's campaign manager declares
the Store and Messenger it needs, here the send job declares its ledger and mailer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from ..core.models import Claim, Reply, Settlement, Subscriber


class Connection(Protocol):
    """One open session with a mail server."""

    @property
    def usable(self) -> bool: ...

    @property
    def smtputf8(self) -> bool: ...

    def send(self, sender: str, recipient: str, message: bytes, ready: Callable[[], None] | None = None) -> Reply:
        """Send one message; `ready` is called once the server has accepted the envelope
        (354 to DATA), before any of the message goes out: the sender waits there until
        its previous message is recorded."""
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
