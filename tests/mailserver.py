"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives and answers
with injected replies: a queue of (command, reply) taken in order, like GNU Mailman's
testing/mta.py. A reply of "DROP" closes the connection instead of answering;
("DATA", "DROP") stores the message first (a loss after the final dot).
GreylistHandler answers as postgrey does: 451 to a (sender, recipient) pair until
`delay` seconds after it was first seen. `on_received` runs as each message is stored,
before the server answers the final dot. `gather` holds every EHLO until that many
sessions have said EHLO (or `gather_timeout` passed), so that every connection of every
sender starts at once.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    options: list[str] = field(default_factory=list)  # MAIL FROM parameters (SMTPUTF8, BODY=...)
    peer: tuple[str, int] | None = None  # the client's (address, port): which connection sent it

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class MailHandler:
    received: list[Received] = field(default_factory=list)
    plan: deque[tuple[str, str]] = field(default_factory=deque)
    data_delay: float = 0.0
    pipelining: bool = False  # advertise RFC 2920 PIPELINING (aiosmtpd reads the commands in order)
    on_received: Callable[[Received], None] | None = None
    gather: int = 0
    gather_timeout: float = 30.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _greeted: int = 0
    _gathered: asyncio.Event | None = None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:  # noqa: N802
        session.host_name = hostname
        if self.gather:
            await self._gather()
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def _gather(self) -> None:
        if self._gathered is None:
            self._gathered = asyncio.Event()
        self._greeted += 1
        if self._greeted >= self.gather:
            self._gathered.set()
        try:
            await asyncio.wait_for(self._gathered.wait(), self.gather_timeout)
        except TimeoutError:
            self._gathered.set()  # let everyone go: the test's own assertions say what went wrong

    def inject(self, command: str, reply: str) -> None:
        with self.lock:
            self.plan.append((command, reply))

    def _take(self, command: str) -> str | None:
        with self.lock:
            if self.plan and self.plan[0][0] == command:
                return self.plan.popleft()[1]
        return None

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # noqa: N802
        reply = self._take("MAIL")
        if reply:
            return self._answer(server, reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # noqa: N802
        reply = self._take("RCPT")
        if reply:
            return self._answer(server, reply)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        reply = self._take("DATA")
        if reply and reply != "DROP":
            return self._answer(server, reply)
        got = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content),
                       list(envelope.mail_options), tuple(session.peer) if session.peer else None)
        with self.lock:
            self.received.append(got)
        if self.on_received is not None:
            self.on_received(got)
        if reply == "DROP":
            return self._answer(server, reply)
        return "250 Message accepted"

    def _answer(self, server: Any, reply: str) -> str:
        if reply == "DROP" or reply.startswith("421"):
            server.transport.close()
            return "421 closing" if reply == "DROP" else reply
        return reply


@dataclass
class GreylistHandler(MailHandler):
    """Greylisting, as postgrey does it: the first RCPT of each (sender, recipient) pair, and
    every retry sooner than `delay` seconds after it, gets 451; later ones are accepted."""

    delay: float = 1.0
    first_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    refusals: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # noqa: N802
        now = time.monotonic()
        key = (envelope.mail_from, address)
        with self.lock:
            first = self.first_seen.get(key)
            if first is None or now - first < self.delay:
                self.first_seen.setdefault(key, now)
                self.refusals += 1
                return "451 4.7.1 Greylisted, please try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)


class MailServer:
    """aiosmtpd on 127.0.0.1 at a free port, started and stopped by the fixture."""

    def __init__(self, handler: MailHandler | None = None, **smtp_kwargs: Any) -> None:
        self.handler = handler or MailHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **smtp_kwargs)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> MailServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
