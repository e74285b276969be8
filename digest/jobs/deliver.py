"""Deliver one recorded issue to its frozen audience: claim, check, build, send, settle.
A job (layer 3): drives the ledger and the mailer through the interfaces in ports.py.

[smtp] connections threads, each with its own connection, share a rate ceiling of
[smtp] max_per_second. Messages come from the issue's Composer (one prepared template per
distinct set of topics), with only the recipient's escaped values substituted. Each
connection claims CLAIM_BATCH rows at a time, committed as "sending" with their
subscribers read in the same transaction; a batch still in hand FRESH_FOR seconds later
is read again, so an unsubscribe is honoured unless it comes within that window before
the message. Settles go to one Committer (commit.py) that records every connection's
last message in one transaction, written by the first connection to need it; a
connection sends nothing more until its previous message is recorded (it waits once its
next envelope is on the wire, so that the write and the server's replies overlap; or,
with a server that does not pipeline, after the server's 354), so a kill leaves at most
one message per connection in flight. A connection's skipped and failed rows are written
with its next message, and at the latest before it claims more rows.

One recipient is never everyone's problem: a message that cannot be built, signed or
addressed (an address this server cannot carry, a value that breaks a header) is settled
as failed with its reason, and the send goes on. What would break every message (a
header of the issue, the DKIM key) is found first, on a made-up reader, before any row is
touched. A database failure stops the send as the StoreError it is.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..core.address import wire_address
from ..core.audience import is_paused
from ..core.classify import Outcome, classify
from ..core.compose import Composer, issue_composer, subscriber_recipient
from ..core.config import Config
from ..core.errors import ConfigError, DigestError, InputError, SendError, StoreError
from ..core.message import MessageTemplate, build_message, sender_address
from ..core.models import Claim, DeliveryStatus, IssueRecord, Reply, Settlement, Subscriber, open_count
from ..core.retry import RetryPolicy
from ..core.sign import Signer
from ..core.tokens import Links
from ..core.verp import envelope_sender
from .commit import Committer, Lane
from .ports import Connection, DeliveryLedger, Mailer, Progress, Subscribers

log = logging.getLogger("digest.send")
CLAIM_BATCH = 50  # rows a connection claims at once: few transactions, yet a fair split between senders
FRESH_FOR = 1.0   # seconds: the subscribers of a batch still in hand are read again after this
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Made:
    """A message built ahead of its turn: for this claim (as read then), on this connection."""

    claim: Claim
    client: Connection
    address: str
    message: bytes


class Silent:
    """The Progress of a send nobody watches."""

    def begin(self, label: str, total: int) -> None:
        pass

    def advance(self, outcome: str) -> None:
        pass

    def waiting(self, seconds: float, deferred: int) -> None:
        pass


@dataclass
class SendReport:
    issue_id: int
    counts: dict[str, int] = field(default_factory=dict)
    paused: str = ""
    cancelled: bool = False
    resumed: bool = False  # an issue begun by an earlier run

    @property
    def remaining(self) -> int:
        return open_count(self.counts)


def keep_alive(senders: DeliveryLedger, sender_id: str, clock: Clock, stop: threading.Event) -> None:
    """Beat the sender's heartbeat every 10 s until `stop` (a thread's target): a sender on
    another host is known dead once its heartbeat is stale."""
    while not stop.wait(10):
        try:
            senders.heartbeat(sender_id, clock())
        except Exception:
            log.exception("heartbeat failed")


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
    """Runs the send of one issue to the end, a pause or an error: every pending row and
    every deferred row whose time has come (only those, when `deferred_only`)."""

    def __init__(self, config: Config, issue: IssueRecord, *, ledger: DeliveryLedger, subscribers: Subscribers,
                 mailer: Mailer, secret: str, clock: Clock, composer: Composer | None = None,
                 progress: Progress | None = None, signer: Signer | None = None,
                 cancel: threading.Event | None = None, policy: RetryPolicy | None = None,
                 deferred_only: bool = False) -> None:
        self.config, self.issue, self.clock = config, issue, clock
        self.policy = policy or RetryPolicy.of(config.smtp)
        self.deferred_only = deferred_only
        self.ledger, self.subscribers, self.mailer = ledger, subscribers, mailer
        self.links = Links(config.web.base_url, secret)
        self.composer = composer or issue_composer(config, issue)
        self.rate = RateLimiter(config.smtp.max_per_second)
        self.progress = progress or Silent()
        self.signer = signer
        self.sender = wire_address(sender_address(config.newsletter.from_), smtputf8=False)
        # [newsletter] return_path: each message's MAIL FROM carries a signed bounce token (VERP)
        return_path = config.newsletter.return_path
        self.return_path = wire_address(return_path, smtputf8=False) if return_path else ""
        self.sender_id = secrets.token_hex(6)
        self.stop = threading.Event()
        self.cancel = cancel or threading.Event()  # set from outside (SIGTERM): settle what is in flight, stop
        self.paused = ""
        self.error: DigestError | None = None
        self.lock = threading.Lock()

    def _envelope_sender(self, subscriber_id: int) -> str:
        """MAIL FROM for one subscriber's message: the From address, or its VERP address."""
        if not self.return_path:
            return self.sender
        return envelope_sender(self.sender, self.return_path, self.links.secret, self.issue.id, subscriber_id)

    def run(self) -> SendReport:
        self._preflight()
        committer = Committer(self.ledger)
        try:
            self.ledger.register_sender(self.sender_id, self.clock())
            threading.Thread(target=keep_alive, args=(self.ledger, self.sender_id, self.clock, self.stop),
                             daemon=True).start()
            while True:
                recovered = self.ledger.recover_stale(self.issue.id, self.clock())
                if recovered:
                    log.warning("issue %s: %s messages claimed by a sender that died go out again", self.issue.id, recovered)
                workers = [threading.Thread(target=self._work, args=(Lane(f"{self.sender_id}/{i}", committer),),
                                            name=f"smtp-{i}") for i in range(self.config.smtp.connections)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                try:  # outcomes of connections that stopped mid-claim: unwritten, their rows look held to others
                    committer.flush()
                except StoreError as exc:
                    with self.lock:
                        self.error = self.error or exc
                    break
                # Another live sender may still hold rows: wait for it (or for it to die). A retry
                # of deferred rows leaves the rest of the issue to whoever is sending it.
                if self.halted() or self.deferred_only or not self.ledger.held_by_others(self.issue.id, self.sender_id):
                    break
                self.cancel.wait(0.5)
        finally:
            self.stop.set()
            try:
                committer.close()  # what is handed in is recorded before anyone counts
            except StoreError as exc:
                with self.lock:
                    self.error = self.error or exc
            try:
                self.ledger.unregister_sender(self.sender_id)
            except StoreError as exc:  # the error that stopped the run (if any) is the one to tell
                log.warning("could not unregister sender %s: %s", self.sender_id, exc)
                with self.lock:
                    self.error = self.error or exc
        self.ledger.finish_if_done(self.issue.id, self.clock())
        if self.error is not None and not self.paused:
            raise self.error
        return SendReport(self.issue.id, self.ledger.counts(self.issue.id), paused=self.paused,
                          cancelled=self.cancel.is_set())

    def halted(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()

    def _work(self, lane: Lane) -> None:
        try:
            self._work_loop(lane)
        except StoreError as exc:  # the database, not the server: say so (exit 6)
            self._halt(exc, lane)
        except Exception as exc:  # a bug (logged) must not leave rows claimed and the run waiting on them
            log.exception("connection %s failed", lane.claimer)
            self._halt(SendError(self.config.smtp.host, f"sending stopped: {exc!r}"), lane)

    def _halt(self, error: DigestError, lane: Lane) -> None:
        """Stop every connection with `error`, giving back the rows this one holds (once
        what it handed in is recorded: a row given back must not be one just sent)."""
        with self.lock:
            self.error = self.error or error
        self.stop.set()
        try:
            lane.ready()
            self.ledger.release_claimer(self.issue.id, lane.claimer, self.clock())
        except StoreError:  # the next run's recover_stale gives them back
            log.warning("connection %s could not give its rows back", lane.claimer)

    def _preflight(self) -> None:
        """Build and sign one message for a made-up reader: a fault that every message would
        share (a header of the issue, a link, the DKIM key) stops the send here, before any
        reader is marked failed for it."""
        template = self.composer.template(())
        if template is None:
            return
        now = self.clock()
        probe = Subscriber(id=0, email="probe@example.com", name="Probe", status="confirmed", topics=(), consent=None,
                           created_at=now)
        try:
            message = build_message(template, subscriber_recipient(self.config, probe, self.links, now=now,
                                                                   issue_id=self.issue.id),
                                    message_id="<probe@example.com>", date=now)
            if self.signer is not None:
                self.signer.sign(message)
        except Exception as exc:
            raise ConfigError(str(self.config.path), f"the messages of issue {self.issue.id} cannot be built: "
                                                     f"{_reason(exc)}") from exc

    def _work_loop(self, lane: Lane) -> None:
        client: Connection | None = None
        ahead: Made | None = None  # the next message, built while the server read this one
        try:
            while not self.halted():
                lane.ready()  # what the last claim's rows came to is written before more are taken
                claims = self.ledger.claim(self.issue.id, lane.claimer, self.clock(), CLAIM_BATCH,
                                           pending=not self.deferred_only)
                if not claims:
                    return
                read_at = time.monotonic()
                for i in range(len(claims)):
                    if self.halted():
                        self.ledger.release([c.delivery_id for c in claims[i:]], self.clock())
                        return
                    if self.rate.interval:  # a ceiling: record the last message now, not after the pause
                        lane.ready()
                    self.rate.wait()  # before the freshness test: a slow ceiling does not widen the window
                    if time.monotonic() - read_at > FRESH_FOR:  # a slow server: who has left meanwhile?
                        claims[i:] = self._reread(claims[i:])
                        read_at = time.monotonic()
                    try:
                        client, ahead = self._deliver(claims[i], client, lane, ahead,
                                                      claims[i + 1] if i + 1 < len(claims) else None)
                    except SendError as exc:
                        self.ledger.release([c.delivery_id for c in claims[i:]], self.clock())
                        with self.lock:
                            self.error = self.error or exc
                        self.stop.set()
                        return
        finally:
            if client is not None:
                client.close()

    def _reread(self, claims: Sequence[Claim]) -> list[Claim]:
        """The claims with their subscribers as they are now."""
        found = self.subscribers.get_many(c.subscriber_id for c in claims if c.subscriber_id is not None)
        return [replace(c, subscriber=found.get(c.subscriber_id)) if c.subscriber_id is not None else c for c in claims]

    def _deliver(self, claim: Claim, client: Connection | None, lane: Lane, ahead: Made | None,
                 upcoming: Claim | None) -> tuple[Connection | None, Made | None]:
        """Send one claim's message (the one built ahead, if it was built for this claim as it
        is now and this connection), building the upcoming claim's while the server reads
        it; the connection to go on with, and what was built ahead."""
        now = self.clock()
        try:
            plan = self._plan(claim)
        except Exception as exc:  # noqa: BLE001 - one reader's topics, not the send
            self._fail(lane, claim, exc, now)
            return client, None
        if isinstance(plan, str):
            self._skip(lane, claim, plan, now)
            return client, None
        sub, template = plan
        if client is None:
            client = self.mailer.connect()
        if ahead is not None and ahead.claim is claim and ahead.client is client:
            address, message = ahead.address, ahead.message
        else:
            try:
                address, message = self._build(claim, sub, template, client, now)
            except Exception as exc:  # noqa: BLE001 - one reader's message, not the send
                self._fail(lane, claim, exc, now)
                return client, None
        built: list[Made] = []
        connection = client

        def build_upcoming() -> None:
            if upcoming is not None and (made := self._build_ahead(upcoming, connection)) is not None:
                built.append(made)

        try:
            reply = client.send(self._envelope_sender(sub.id), address, message, ready=lane.ready,
                                meanwhile=build_upcoming)
        except InputError as exc:  # refused before anything went out: this recipient only
            self._fail(lane, claim, exc, now)
            return client, None
        verdict = classify(reply.code, reply.text, stage=reply.stage, after_data=reply.after_data)
        self._settle(lane, claim, reply, verdict.outcome, now)
        if verdict.reconnect or not client.usable:
            client.close()
            return None, None
        return client, built[0] if built else None

    def _build(self, claim: Claim, sub: Subscriber, template: MessageTemplate, client: Connection,
               now: datetime) -> tuple[str, bytes]:
        """The address as this connection can carry it, and the message, built and signed."""
        address = wire_address(sub.email, smtputf8=client.smtputf8)
        recipient = replace(subscriber_recipient(self.config, sub, self.links, now=now, issue_id=self.issue.id),
                            email=address)
        message = build_message(template, recipient, message_id=claim.message_id, date=now)
        if self.signer is not None:
            message = self.signer.sign(message)
        return address, message

    def _build_ahead(self, claim: Claim, client: Connection) -> Made | None:
        """The claim's message built now, while the server reads the one before it; None
        when it is not to be sent or cannot be built (its turn finds out and says why)."""
        try:
            plan = self._plan(claim)
            if isinstance(plan, str):
                return None
            address, message = self._build(claim, *plan, client, self.clock())
        except Exception:  # noqa: BLE001 - built again in its turn, which reports the failure
            return None
        return Made(claim, client, address, message)

    def _plan(self, claim: Claim) -> tuple[Subscriber, MessageTemplate] | str:
        """The claim's reader and the template of their topics, or why nothing goes to them
        (what the skip records); raises what preparing the template raised."""
        sub = claim.subscriber
        if sub is None or sub.status != "confirmed":
            return "removed before sending" if sub is None else f"{sub.status} before sending"
        if is_paused(sub, self.clock()):
            return "paused"
        template = self.composer.template(sub.topics)
        if template is None:
            return "nothing in this issue for the chosen topics"
        return sub, template

    def _fail(self, lane: Lane, claim: Claim, exc: Exception, now: datetime) -> None:
        """Settle one reader's message as failed: it could not be built or addressed."""
        if isinstance(exc, StoreError):
            raise exc
        why = _reason(exc)
        log.warning("issue %s: the message to subscriber %s was not sent: %s", self.issue.id, claim.subscriber_id, why)
        lane.record(Settlement(claim.delivery_id, DeliveryStatus.FAILED, now, reply=f"not sent: {why}", attempted=False))
        self.progress.advance(DeliveryStatus.FAILED)

    def _skip(self, lane: Lane, claim: Claim, why: str, now: datetime) -> None:
        lane.record(Settlement(claim.delivery_id, DeliveryStatus.SKIPPED, now, reply=why, attempted=False))
        self.progress.advance(DeliveryStatus.SKIPPED)

    def _settle(self, lane: Lane, claim: Claim, reply: Reply, outcome: Outcome, now: datetime) -> None:
        """Record the reply (RetryPolicy.settlement says how); a pause also stops the run."""
        if outcome is Outcome.PAUSE:  # the server refuses us: this row waits, blameless, and the run stops
            with self.lock:
                self.paused = self.paused or f"the server refused us: {reply.code} {reply.text}"
            self.stop.set()
        settlement = self.policy.settlement(claim, reply, outcome, now)
        lane.record(settlement)
        self.progress.advance(settlement.status)


def _reason(exc: Exception) -> str:
    """One line on what went wrong: our own errors say it; others are named."""
    text = str(exc) if isinstance(exc, DigestError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]
