"""The outbox's send loop: drain one queue of claimed rows over [smtp] connections. A job's
part (layer 3), driven by jobs/outbox.py; it drives the Queue and the Mailer through the
interfaces in ports.py, and a Kind of mail (outbox.py) says what each row's message is.

[smtp] connections threads, each with its own connection, share the outbox's rate ceiling
of [smtp] max_per_second. Each connection claims CLAIM_BATCH rows at a time, committed as
"sending" with their recipients read in the same transaction; a batch still in hand
FRESH_FOR seconds (Outbox.fresh_for) later is read again (Kind.reread), so an unsubscribe
is honoured unless it comes within that window before the message. Settles go to one Committer (commit.py)
that records every connection's last message in one transaction, written by the first
connection to need it; a connection sends nothing more until its previous message is
recorded (it waits once its next envelope is on the wire, so that the write and the
server's replies overlap; or, with a server that does not pipeline, after the server's
354), so a kill leaves at most one message per connection in flight. A connection's
skipped and failed rows are written with its next message, and at the latest before it
claims more rows.

One recipient is never everyone's problem: a message that cannot be built, signed or
addressed (an address this server cannot carry, a value that breaks a header) is settled
as failed with its reason, and the drain goes on. A database failure stops it as the
StoreError it is.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.address import wire_address
from ..core.classify import Outcome, classify
from ..core.errors import DigestError, InputError, SendError, StoreError
from ..core.message import MessageTemplate, build_message
from ..core.models import Claim, DeliveryStatus, Reply, Settlement
from .commit import Committer, Lane
from .ports import Connection, Progress, Queue, Senders

if TYPE_CHECKING:
    from .outbox import Kind, Outbox

log = logging.getLogger("digest.send")
CLAIM_BATCH = 50  # rows a connection claims at once: few transactions, yet a fair split between senders
FRESH_FOR = 1.0   # seconds: the recipients of a batch still in hand are read again after this
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Made:
    """A message built ahead of its turn: for this claim (as read then), on this connection."""

    claim: Claim
    client: Connection
    address: str
    message: bytes


@dataclass(frozen=True)
class Drained:
    """What one drain left: the queue's counts, and why it stopped early (if it did)."""

    counts: dict[str, int]
    paused: str = ""
    cancelled: bool = False


class Silent:
    """The Progress of a send nobody watches."""

    def begin(self, label: str, total: int) -> None:
        pass

    def advance(self, outcome: str) -> None:
        pass

    def waiting(self, seconds: float, deferred: int) -> None:
        pass


def keep_alive(senders: Senders, sender_id: str, clock: Clock, stop: threading.Event) -> None:
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


class Drain:
    """Runs one queue to the end, a pause or an error: every pending row and every deferred
    row whose time has come (only those, when `deferred_only`)."""

    def __init__(self, outbox: Outbox, queue: Queue, kind: Kind[Any], *, connections: int,
                 progress: Progress | None = None, deferred_only: bool = False, prefix: str = "") -> None:
        self.outbox, self.queue, self.kind, self.connections = outbox, queue, kind, connections
        self.clock, self.rate, self.cancel, self.fresh_for = outbox.clock, outbox.rate, outbox.cancel, outbox.fresh_for
        self.deferred_only = deferred_only
        self.progress = progress or Silent()
        # Looked up once: each message calls these (the send is tuned; see git log).
        self.plan, self.recipient, self.verp = kind.plan, kind.recipient, kind.verp
        self.envelope, self.signer, self.settlement = outbox.envelope, outbox.signer, outbox.policy.settlement
        self.sender_id = prefix + secrets.token_hex(6)
        self.stop = threading.Event()
        self.paused = ""
        self.error: DigestError | None = None
        self.lock = threading.Lock()

    def run(self) -> Drained:
        senders = self.outbox.senders
        committer = Committer(self.queue)
        try:
            senders.register_sender(self.sender_id, self.clock())
            threading.Thread(target=keep_alive, args=(senders, self.sender_id, self.clock, self.stop),
                             daemon=True).start()
            while True:
                recovered = self.queue.recover_stale(self.clock())
                if recovered:
                    log.warning("%s: %s messages claimed by a sender that died go out again", self.kind.label, recovered)
                workers = [threading.Thread(target=self._work, args=(Lane(f"{self.sender_id}/{i}", committer),),
                                            name=f"smtp-{i}") for i in range(self.connections)]
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
                # of deferred rows leaves the rest of the queue to whoever is sending it.
                if self.halted() or self.deferred_only or not self.queue.held_by_others(self.sender_id):
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
                senders.unregister_sender(self.sender_id)
            except StoreError as exc:  # the error that stopped the run (if any) is the one to tell
                log.warning("could not unregister sender %s: %s", self.sender_id, exc)
                with self.lock:
                    self.error = self.error or exc
        self.queue.finish_if_done(self.clock())
        if self.error is not None and not self.paused:
            raise self.error
        return Drained(self.queue.counts(), paused=self.paused, cancelled=self.cancel.is_set())

    def halted(self) -> bool:
        return self.stop.is_set() or self.cancel.is_set()

    def _work(self, lane: Lane) -> None:
        try:
            self._work_loop(lane)
        except StoreError as exc:  # the database, not the server: say so (exit 6)
            self._halt(exc, lane)
        except Exception as exc:  # a bug (logged) must not leave rows claimed and the run waiting on them
            log.exception("connection %s failed", lane.claimer)
            self._halt(SendError(self.outbox.host, f"sending stopped: {exc!r}"), lane)

    def _halt(self, error: DigestError, lane: Lane) -> None:
        """Stop every connection with `error`, giving back the rows this one holds (once
        what it handed in is recorded: a row given back must not be one just sent)."""
        with self.lock:
            self.error = self.error or error
        self.stop.set()
        try:
            lane.ready()
            self.queue.release_claimer(lane.claimer, self.clock())
        except StoreError:  # the next run's recover_stale gives them back
            log.warning("connection %s could not give its rows back", lane.claimer)

    def _work_loop(self, lane: Lane) -> None:
        client: Connection | None = None
        ahead: Made | None = None  # the next message, built while the server read this one
        try:
            while not self.halted():
                lane.ready()  # what the last claim's rows came to is written before more are taken
                claims = self.queue.claim(lane.claimer, self.clock(), CLAIM_BATCH, pending=not self.deferred_only)
                if not claims:
                    return
                read_at = time.monotonic()
                for i in range(len(claims)):
                    if self.halted():
                        self.queue.release([c.delivery_id for c in claims[i:]], self.clock())
                        return
                    if self.rate.interval:  # a ceiling: record the last message now, not after the pause
                        lane.ready()
                    self.rate.wait()  # before the freshness test: a slow ceiling does not widen the window
                    if time.monotonic() - read_at > self.fresh_for:  # a slow server: who has left meanwhile?
                        claims[i:] = self.kind.reread(claims[i:])
                        read_at = time.monotonic()
                    try:
                        client, ahead = self._deliver(claims[i], client, lane, ahead,
                                                      claims[i + 1] if i + 1 < len(claims) else None)
                    except SendError as exc:
                        self.queue.release([c.delivery_id for c in claims[i:]], self.clock())
                        with self.lock:
                            self.error = self.error or exc
                        self.stop.set()
                        return
        finally:
            if client is not None:
                client.close()

    def _deliver(self, claim: Claim, client: Connection | None, lane: Lane, ahead: Made | None,
                 upcoming: Claim | None) -> tuple[Connection | None, Made | None]:
        """Send one claim's message (the one built ahead, if it was built for this claim as it
        is now and this connection), building the upcoming claim's while the server reads
        it; the connection to go on with, and what was built ahead."""
        now = self.clock()
        try:
            plan = self.plan(claim)
        except Exception as exc:  # noqa: BLE001 - one reader's message, not the send
            self._fail(lane, claim, exc, now)
            return client, None
        if isinstance(plan, str):
            self._skip(lane, claim, plan, now)
            return client, None
        if client is None:
            client = self.outbox.mailer.connect()
        if ahead is not None and ahead.claim is claim and ahead.client is client:
            address, message = ahead.address, ahead.message
        else:
            try:
                address, message = self._build(claim, *plan, client, now)
            except Exception as exc:  # noqa: BLE001 - one reader's message, not the send
                self._fail(lane, claim, exc, now)
                return client, None
        built: list[Made] = []
        connection = client

        def build_upcoming() -> None:
            if upcoming is not None and (made := self._build_ahead(upcoming, connection)) is not None:
                built.append(made)

        try:
            reply = client.send(self.envelope(self.verp, claim.subscriber_id), address, message,
                                ready=lane.ready, meanwhile=build_upcoming)
        except InputError as exc:  # refused before anything went out: this recipient only
            self._fail(lane, claim, exc, now)
            return client, None
        verdict = classify(reply.code, reply.text, stage=reply.stage, after_data=reply.after_data)
        self._settle(lane, claim, reply, verdict.outcome, now)
        if verdict.reconnect or not client.usable:
            client.close()
            return None, None
        return client, built[0] if built else None

    def _build(self, claim: Claim, email: str, target: Any, template: MessageTemplate, client: Connection,
               now: datetime) -> tuple[str, bytes]:
        """The address as this connection can carry it, and the message, built and signed."""
        address = wire_address(email, smtputf8=client.smtputf8)
        message = build_message(template, self.recipient(target, address, now), message_id=claim.message_id, date=now)
        signer = self.signer
        return address, message if signer is None else signer.sign(message)

    def _build_ahead(self, claim: Claim, client: Connection) -> Made | None:
        """The claim's message built now, while the server reads the one before it; None
        when it is not to be sent or cannot be built (its turn finds out and says why)."""
        try:
            plan = self.plan(claim)
            if isinstance(plan, str):
                return None
            address, message = self._build(claim, *plan, client, self.clock())
        except Exception:  # noqa: BLE001 - built again in its turn, which reports the failure
            return None
        return Made(claim, client, address, message)

    def _fail(self, lane: Lane, claim: Claim, exc: Exception, now: datetime) -> None:
        """Settle one message as failed: it could not be built or addressed."""
        if isinstance(exc, StoreError):
            raise exc
        why = reason(exc)
        log.warning("%s: the message to %s was not sent: %s", self.kind.label, claim.subscriber_id, why)
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
        settlement = self.settlement(claim, reply, outcome, now)
        lane.record(settlement)
        self.progress.advance(settlement.status)


def reason(exc: Exception) -> str:
    """One line on what went wrong: our own errors say it; others are named."""
    text = str(exc) if isinstance(exc, DigestError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]
