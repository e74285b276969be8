"""Deliver one recorded issue to its frozen audience: claim, check, build, send, settle.
A job (layer 3): drives the ledger and the mailer through the interfaces in ports.py.

[smtp] connections threads, each with its own connection, share a rate ceiling of
[smtp] max_per_second. Messages come from the issue's Composer (one prepared template per
distinct set of topics), with only the recipient's escaped values substituted. Each row
is committed as "sending" before MAIL FROM and settled after the reply, so a kill leaves
at most one message per connection in flight.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..core.classify import STATUS_OF, Outcome, classify
from ..core.compose import Composer, subscriber_recipient
from ..core.config import Config
from ..core.errors import SendError
from ..core.message import build_message, sender_address
from ..core.models import Claim, DeliveryStatus, IssueRecord, Reply, Subscriber, open_count
from ..core.sign import Signer
from ..core.tokens import Links
from ..core.verp import envelope_sender
from .ports import Connection, DeliveryLedger, Mailer, Subscribers

log = logging.getLogger("digest.send")
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1), timedelta(hours=3))
MAX_ATTEMPTS = 6
CLAIM_BATCH = 20
Clock = Callable[[], datetime]


@dataclass
class SendReport:
    issue_id: int
    counts: dict[str, int] = field(default_factory=dict)
    paused: str = ""
    cancelled: bool = False

    @property
    def remaining(self) -> int:
        return open_count(self.counts)


class RateLimiter:
    """At most `per_second` acquisitions a second across threads (0: no ceiling)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(self.next, now)
            self.next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class Deliverer:
    """Runs the send of one issue to the end, a pause or an error."""

    def __init__(self, config: Config, issue: IssueRecord, *, ledger: DeliveryLedger, subscribers: Subscribers,
                 mailer: Mailer, secret: str, clock: Clock, composer: Composer | None = None,
                 progress: Callable[[str], None] | None = None, signer: Signer | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.config, self.issue, self.clock = config, issue, clock
        self.ledger, self.subscribers, self.mailer = ledger, subscribers, mailer
        self.links = Links(config.web.base_url, secret)
        self.composer = composer or Composer(config, issue.posts, created_at=issue.created_at)
        self.rate = RateLimiter(config.smtp.max_per_second)
        self.progress = progress or (lambda outcome: None)
        self.signer = signer
        self.sender = sender_address(config.newsletter.from_)
        self.sender_id = secrets.token_hex(6)
        self.stop = threading.Event()
        self.cancel = cancel or threading.Event()  # set from outside (SIGTERM): settle what is in flight, stop
        self.paused = ""
        self.error: SendError | None = None
        self.lock = threading.Lock()

    def run(self) -> SendReport:
        self.ledger.register_sender(self.sender_id, self.clock())
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        try:
            while True:
                recovered = self.ledger.recover_stale(self.issue.id, self.clock())
                if recovered:
                    log.warning("issue %s: %s messages claimed by a sender that died go out again", self.issue.id, recovered)
                workers = [threading.Thread(target=self._work, args=(f"{self.sender_id}/{i}",), name=f"smtp-{i}")
                           for i in range(self.config.smtp.connections)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                # Another live sender may still hold rows: wait for it (or for it to die).
                if self.halted() or not self.ledger.held_by_others(self.issue.id, self.sender_id):
                    break
                self.cancel.wait(0.5)
        finally:
            self.stop.set()
            self.ledger.unregister_sender(self.sender_id)
        self.ledger.finish_if_done(self.issue.id, self.clock())
        if self.error is not None and not self.paused:
            raise self.error
        return SendReport(self.issue.id, self.ledger.counts(self.issue.id), paused=self.paused,
                          cancelled=self.cancel.is_set())

    def halted(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()

    def _heartbeat(self) -> None:
        while not self.stop.wait(10):
            try:
                self.ledger.heartbeat(self.sender_id, self.clock())
            except Exception:  # noqa: BLE001 - a missed beat is harmless; the next one may work
                log.exception("heartbeat failed")

    def _work(self, claimer: str) -> None:
        try:
            self._work_loop(claimer)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave rows claimed and the run waiting on them
            log.exception("connection %s failed", claimer)
            self.ledger.release_claimer(self.issue.id, claimer, self.clock())
            with self.lock:
                self.error = self.error or SendError(self.config.smtp.host, f"sending stopped: {exc!r}")
            self.stop.set()

    def _work_loop(self, claimer: str) -> None:
        client: Connection | None = None
        try:
            while not self.halted():
                claims = self.ledger.claim(self.issue.id, claimer, self.clock(), CLAIM_BATCH)
                if not claims:
                    return
                for i, claim in enumerate(claims):
                    if self.halted():
                        self.ledger.release([c.delivery_id for c in claims[i:]], self.clock())
                        return
                    try:
                        client = self._deliver(claim, client)
                    except SendError as exc:
                        self.ledger.release([c.delivery_id for c in claims[i:]], self.clock())
                        with self.lock:
                            self.error = self.error or exc
                        self.stop.set()
                        return
        finally:
            if client is not None:
                client.close()

    def _deliver(self, claim: Claim, client: Connection | None) -> Connection | None:
        now = self.clock()
        sub = self.subscribers.get(claim.subscriber_id) if claim.subscriber_id is not None else None
        if sub is None or sub.status != "confirmed":
            self._skip(claim, "removed before sending" if sub is None else f"{sub.status} before sending", now)
            return client
        template = self.composer.template(sub.topics)
        if template is None:
            self._skip(claim, "nothing in this issue for the chosen topics", now)
            return client
        recipient = subscriber_recipient(self.config, sub, self.links, now=now, issue_id=self.issue.id)
        message = build_message(template, recipient, message_id=claim.message_id, date=now)
        if self.signer is not None:
            message = self.signer.sign(message)
        if client is None:
            client = self.mailer.connect()
        self.rate.wait()
        reply = client.send(envelope_sender(self.config.newsletter.from_, self.config.newsletter.return_path,
                                            self.links.secret, self.issue.id, sub.id), sub.email, message)
        verdict = classify(reply.code, reply.text, stage=reply.stage, after_data=reply.after_data)
        self._settle(claim, sub, reply, verdict.outcome, now)
        if verdict.reconnect or not client.usable:
            client.close()
            client = None
        return client

    def _skip(self, claim: Claim, why: str, now: datetime) -> None:
        self.ledger.settle(claim.delivery_id, DeliveryStatus.SKIPPED, now=now, reply=why, attempted=False)
        self.progress(DeliveryStatus.SKIPPED)

    def _settle(self, claim: Claim, sub: Subscriber, reply: Reply, outcome: Outcome, now: datetime) -> None:
        """Record the reply as STATUS_OF says, with what each outcome adds to it."""
        text = f"{reply.stage}: {reply.text}" if reply.code else reply.text
        status = STATUS_OF[outcome]
        code: int | None = reply.code or None
        extra: dict[str, object] = {}
        if outcome is Outcome.BOUNCED:
            extra["bounce"] = sub.id
        elif outcome is Outcome.IN_DOUBT:
            code = None
        elif outcome is Outcome.PAUSE:  # the server refuses us: this row waits, blameless, and the run stops
            extra.update(attempted=False, next_attempt_at=now + BACKOFF[0])
            with self.lock:
                self.paused = self.paused or f"the server refused us: {reply.code} {reply.text}"
            self.stop.set()
        elif outcome is Outcome.DEFERRED:
            if claim.attempts + 1 >= MAX_ATTEMPTS:
                status, text = DeliveryStatus.FAILED, f"gave up after {MAX_ATTEMPTS} attempts: {text}"
            else:
                extra["next_attempt_at"] = now + BACKOFF[min(claim.attempts, len(BACKOFF) - 1)]
        self.ledger.settle(claim.delivery_id, status, now=now, code=code, reply=text, **extra)  # type: ignore[arg-type]
        self.progress(status)
