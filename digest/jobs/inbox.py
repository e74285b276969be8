"""Read the [inbox] mailbox once: the job of `digest inbox` and of `digest serve` every
[inbox] poll_minutes. A job (layer 3): drives the Mailbox and the InboxBook (ports.py).

For each batch of UIDs: claim them (the ledger), read their sizes, then the bodies of
those under [inbox] max_message_bytes; sort each one (core/returns.py), find whom it is
about, apply what it does and mark it handled in one transaction, and only then move the
batch to done_folder. A message too large to read is left where it is, unread, and
reported once. Who a bounce or complaint is about, in order of trust:

1. the VERP token of the address it came back to ([newsletter] return_path), signed;
2. our Message-ID quoted in its report or attached headers, matched to a delivery;
3. the address it names, only if we actually sent that address something.

A report naming an address we never mailed, or a forged one, changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser

from ..core.config import Config
from ..core.errors import ConfigError, DigestError, InputError, StoreError
from ..core.message import sender_domain
from ..core.reports import Failure
from ..core.returns import Claimed, Delivery, Effect, Kind, Ours, Sorted, sort_message
from ..core.sanitize import clean_line
from ..core.subscriptions import normalise_email
from ..core.verp import read_bounce_token
from . import questions
from .intake import take_mailed_question
from .ports import InboxBook, InboxParts, Mailbox

log = logging.getLogger("digest.inbox")
BATCH = 100                  # UIDs claimed and moved together
BATCH_BYTES = 16_000_000     # bodies fetched in one command, at most
Clock = Callable[[], datetime]
QuestionHook = Callable[[bytes, Sorted, datetime], str]


@dataclass
class InboxReport:
    """What one read did: a line per message handled, and the counts."""

    folder: str
    lines: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    moved: int = 0
    busy: int = 0        # held by another reader
    batches: int = 0

    @property
    def handled(self) -> int:
        return sum(self.kinds.values())

    def summary(self, done_folder: str, *, kinds: bool = True) -> str:
        by_kind = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items())) if kinds else ""
        line = f"{self.handled} handled{' (' + by_kind + ')' if by_kind else ''}, {self.moved} moved to {done_folder}"
        return line + (f", {self.busy} left to another reader" if self.busy else "")


def check_inbox_config(config: Config) -> None:
    """ConfigError unless [inbox] names a server and a user."""
    for key in ("host", "username"):
        if not getattr(config.inbox, key):
            raise ConfigError(str(config.path), f"[inbox] {key} is empty: set [inbox] host, username and password_env "
                              "to read the mail that comes back", key=f"inbox.{key}")


def read_inbox(config: Config, parts: InboxParts, *, on_line: Callable[[str], None] | None = None) -> InboxReport:
    """Read [inbox] folder once; one line per message handled goes to `on_line` as it is done."""
    check_inbox_config(config)
    ledger, asked, clock = parts.inbox_book, parts.questions, parts.clock
    questions.expire(config.question, asked, clock())

    def keep_question(raw: bytes, found: Sorted, now: datetime) -> str:
        return take_mailed_question(config, parts, raw, found, now=now)

    def hard_bounce(address: str) -> None:
        try:
            asked.mark_asker_bounced(normalise_email(address)[1], clock())
        except InputError:
            pass  # an address the report garbled: the subscriber side matched it or nothing did

    def asker_complaint(found: Sorted) -> None:
        if found.question_mail_ids:
            asked.mark_askers_complained(found.question_mail_ids, clock())

    reader = Reader(config, ledger, parts.outbox.secret, clock, on_line or (lambda line: None), parts.reader_id(),
                    on_question=keep_question, on_hard_bounce=hard_bounce, on_complaint=asker_complaint)
    box = parts.mailbox()
    try:
        box.open()
        try:
            reader.read(box)
        finally:
            box.close()
    except DigestError as exc:
        _record(ledger, config.inbox.folder, clock(), f"failed: {exc}")
        raise
    finally:
        try:
            ledger.release(reader.id)
        except StoreError:
            log.exception("could not give back the unhandled claims (they are taken over later)")
    _record(ledger, config.inbox.folder, clock(), reader.report.summary(config.inbox.done_folder, kinds=False))
    return reader.report


class Reader:
    """One read of the folder by one reader id."""

    def __init__(self, config: Config, ledger: InboxBook, secret: str, clock: Clock, on_line: Callable[[str], None],
                 reader: str, on_question: QuestionHook | None = None, on_hard_bounce: Callable[[str], None] | None = None,
                 on_complaint: Callable[[Sorted], None] | None = None) -> None:
        self.config, self.ledger, self.secret, self.clock, self.on_line = config, ledger, secret, clock, on_line
        self.on_question = on_question  # keeps a reader's question; its outcome line
        self.on_hard_bounce = on_hard_bounce  # an address refused for good: no question's mail goes there
        self.on_complaint = on_complaint  # a complaint: one about an acknowledgement or notice blocks its asker
        n = config.newsletter
        self.ours = Ours(sender_domain(n.from_), n.return_path, n.unsubscribe_mailto)
        self.id = reader  # "<host>:<pid>:<random>" (adapters/inbox_ledger.py: reader_id)
        self.report = InboxReport(config.inbox.folder)

    def read(self, box: Mailbox) -> None:
        uids = box.uids()
        for start in range(0, len(uids), BATCH):
            self.report.batches += 1
            self._batch(box, uids[start:start + BATCH])

    def _batch(self, box: Mailbox, uids: list[int]) -> None:
        c = self.config.inbox
        claims = self.ledger.claim(c.folder, box.uidvalidity, uids, self.id, self.clock())
        to_move = [u for u in uids if claims[u][0] is Claimed.HANDLED]
        mine = {u: claims[u][1] for u in uids if claims[u][0] is Claimed.MINE}
        self.report.busy += sum(1 for u in uids if claims[u][0] is Claimed.BUSY)
        sizes = box.sizes(list(mine))  # a message gone meanwhile has none: its claim is given back at the end
        large = [u for u in mine if u in sizes and sizes[u] > c.max_message_bytes]
        for uid, head in box.headers(large).items():
            self._too_large(uid, mine[uid], head, sizes[uid])
        small = [u for u in mine if u in sizes and sizes[u] <= c.max_message_bytes]
        for part in _by_bytes(small, sizes):
            for uid, raw in sorted(box.bodies(part).items()):
                if uid in mine:
                    self._handle(uid, mine[uid], raw)
                    to_move.append(uid)
        box.move(sorted(to_move), c.done_folder)
        self.report.moved += len(to_move)

    def _too_large(self, uid: int, row: int, head: bytes, size: int) -> None:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
        message_id = clean_line(str(headers.get("Message-ID") or ""))
        outcome = (f"{size:,} bytes, over [inbox] max_message_bytes ({self.config.inbox.max_message_bytes:,}): "
                   f"left in {self.config.inbox.folder}, unread; from {clean_line(str(headers.get('From') or '?'))[:100]}")
        self.ledger.settle(row, kind="too-large", outcome=outcome, message_id=message_id, now=self.clock(), keep=True)
        self._line(uid, "too-large", "too-large", outcome)

    def _handle(self, uid: int, row: int, raw: bytes) -> None:
        found = sort_message(raw, self.ours)
        now = self.clock()
        head = f"{found.kind} ({found.why})"
        if self.ledger.seen_message_id(found.message_id, row):
            outcome = "handled before under another UID: nothing done"
            self.ledger.settle(row, kind=found.kind, outcome=outcome, message_id=found.message_id, now=now)
            self._line(uid, found.kind, head, outcome)
            return
        effects, outcome = self._decide(found)
        if found.kind is Kind.UNSORTED and self.on_question is not None:
            try:
                outcome = self.on_question(raw, found, now)
            except StoreError:
                raise  # the database: nothing could be settled either
            except Exception as exc:  # hostile mail trips the email package in new ways: one message's problem
                log.exception("the questions loop failed on message %s", uid)
                outcome = f"the questions loop failed on it ({type(exc).__name__}): kept unsorted"
        done = self.ledger.settle(row, kind=found.kind, outcome=outcome, message_id=found.message_id, now=now,
                                  effects=effects)
        if found.kind is Kind.BOUNCE and self.on_hard_bounce is not None:  # after the subscriber's own effect
            for failure in found.failures:
                if failure.hard and failure.address:
                    self.on_hard_bounce(failure.address)
        if found.is_complaint and self.on_complaint is not None:
            self.on_complaint(found)
        self._line(uid, found.kind, head, "; ".join([outcome, *done]))

    def _line(self, uid: int, kind: str, head: str, outcome: str) -> None:
        self.report.kinds[kind] += 1
        line = f"#{uid} {head}: {outcome}"
        self.report.lines.append(line)
        self.on_line(line)

    # ---- what a message does ----

    def _decide(self, found: Sorted) -> tuple[list[Effect], str]:
        if found.kind is Kind.BOUNCE:
            targets = list(self._about(found, [f.address for f in found.failures]))
            if not targets:
                return [], f"{found.status} for no one we sent to: nothing changed"
            effects = [Effect("hard" if Failure("", status).hard else "soft", d.subscriber_id, d.issue_id, status)
                       for d, status, _ in targets]
            return effects, ", ".join(f"{status} {how}" for _, status, how in targets)
        if found.kind is Kind.COMPLAINT and not found.is_complaint:
            return [], "not a complaint about our mail: nothing to do"
        if found.kind is Kind.COMPLAINT:
            targets = list(self._about(found, list(found.recipients)))
            if not targets:
                return [], "about no one we sent to: nothing changed"
            return [Effect("complaint", d.subscriber_id, d.issue_id) for d, _, _ in targets], targets[0][2]
        if found.kind is Kind.UNSUBSCRIBE:
            subscriber = self._subscriber(found.sender)
            if subscriber is None:
                return [], f"from {found.sender or 'no address'}, not on the list: nothing changed"
            return [Effect("unsubscribe", subscriber)], f"from subscriber {subscriber}"
        if found.kind is Kind.AUTO_REPLY:
            return [], "ignored, not answered"
        return [], f"from {found.sender or 'no address'}, {found.subject!r}: kept for the questions loop"

    def _about(self, found: Sorted, addresses: list[str]) -> Iterator[tuple[Delivery, str, str]]:
        """(delivery, status, how it was found) of each message this report is about."""
        for token in found.tokens:
            ids = read_bounce_token(self.secret, token)
            delivery = self.ledger.delivery(*ids) if ids else None
            if delivery is not None:
                yield delivery, found.status, "via its VERP address"
                return
        delivery = self.ledger.delivery_by_message_id(found.original_ids)
        if delivery is not None:
            yield delivery, found.status, "via the Message-ID it quotes"
            return
        statuses = {f.address: f.status for f in found.failures}
        for address in dict.fromkeys(a for a in addresses if a):
            try:
                key = normalise_email(address)[1]
            except InputError:
                continue
            delivery = self.ledger.last_delivery_to(key)
            if delivery is not None:
                yield delivery, statuses.get(address, found.status), "via the address it names"

    def _subscriber(self, address: str) -> int | None:
        try:
            key = normalise_email(address)[1]
        except InputError:
            return None
        found = self.ledger.find_subscriber(key)
        return found[0] if found and found[1] in ("pending", "confirmed") else None


def _by_bytes(uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    """The UIDs in runs whose bodies add up to at most BATCH_BYTES (one at least)."""
    run: list[int] = []
    total = 0
    for uid in uids:
        if run and total + sizes[uid] > BATCH_BYTES:
            yield run
            run, total = [], 0
        run.append(uid)
        total += sizes[uid]
    if run:
        yield run


def _record(ledger: InboxBook, folder: str, now: datetime, outcome: str) -> None:
    try:
        ledger.record_read(folder, now, outcome)
    except StoreError:
        log.exception("could not record the read of %s", folder)


def read_line(config: Config, report: InboxReport) -> str:
    """One line on a scheduled read."""
    return f"inbox {config.inbox.folder}: {report.summary(config.inbox.done_folder)}"
