"""Read the [inbox] mailbox once: the job of `digest inbox` and of `digest serve` every
[inbox] poll_minutes. A job (layer 3): drives the Mailbox and the InboxBook (ports.py).

For each batch of UIDs: claim them (the ledger), read their sizes, then the bodies of
those under [inbox] max_message_bytes; sort each one (core/returns.py), find whom it is
about, apply what it does and mark it handled in one transaction, and only then move the
batch to done_folder. A message too large to read is left where it is, unread, and
reported once. Who a bounce or complaint is about, in order of trust (core/policy.py says what each may do):

1. the VERP token of the address it came back to ([newsletter] return_path), signed;
2. our unguessable Message-ID quoted in its report or attached headers, as the ledger keeps it;
3. the address it names, only if we actually sent that address something, and only when
   it names one reader: with VERP on, that counts as a soft failure at most.

A report naming an address we never mailed, quoting a message we did not send or a
Message-ID in our form that we never made, or naming several readers, changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser

from ..core.config import InboxConfig, Publication
from ..core.errors import ConfigError, DigestError, InputError, StoreError, TokenError
from ..core.message import sender_domain, unguessable
from ..core.policy import Evidence, Tie, attributed
from ..core.reports import MAX_FAILURES
from ..core.returns import Claimed, Delivery, Effect, Kind, Ours, Sorted, sort_message
from ..core.sanitize import clean_line
from ..core.subscriptions import normalise_email
from ..core.tokens import read_token
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


def check_inbox_config(inbox: InboxConfig, source: str) -> None:
    """ConfigError (naming the file `source`) unless [inbox] names a server and a user."""
    for key in ("host", "username"):
        if not getattr(inbox, key):
            raise ConfigError(source, f"[inbox] {key} is empty: set [inbox] host, username and password_env "
                              "to read the mail that comes back", key=f"inbox.{key}")


def read_inbox(pub: Publication, inbox: InboxConfig, parts: InboxParts, *,
               on_line: Callable[[str], None] | None = None) -> InboxReport:
    """Read [inbox] folder once; one line per message handled goes to `on_line` as it is done."""
    check_inbox_config(inbox, pub.source)
    ledger, asked, clock = parts.inbox_book, parts.questions, parts.clock
    questions.expire(pub.question, asked, clock())

    def keep_question(raw: bytes, found: Sorted, now: datetime) -> str:
        return take_mailed_question(pub, parts, raw, found, now=now)

    def hard_bounce(address: str, found: Sorted) -> None:
        try:
            key = normalise_email(address)[1]
        except InputError:
            return  # an address the report garbled: the subscriber side matched it or nothing did
        if key in asked.askers_of(found.question_mail_ids):  # only the asker the quoted mail went to
            asked.mark_asker_bounced(key, clock())

    def asker_complaint(found: Sorted) -> None:
        if found.question_mail_ids:
            asked.mark_askers_complained(found.question_mail_ids, clock())

    reader = Reader(pub, inbox, ledger, parts.outbox.secret, clock, on_line or (lambda line: None), parts.reader_id(),
                    on_question=keep_question, on_hard_bounce=hard_bounce, on_complaint=asker_complaint)
    box = parts.mailbox()
    try:
        box.open()
        try:
            reader.read(box)
        finally:
            box.close()
    except DigestError as exc:
        _record(ledger, inbox.folder, clock(), f"failed: {exc}")
        raise
    finally:
        try:
            ledger.release(reader.id)
        except StoreError:
            log.exception("could not give back the unhandled claims (they are taken over later)")
    _record(ledger, inbox.folder, clock(), reader.report.summary(inbox.done_folder, kinds=False))
    return reader.report


class Reader:
    """One read of the folder by one reader id."""

    def __init__(self, pub: Publication, inbox: InboxConfig, ledger: InboxBook, secret: str, clock: Clock,
                 on_line: Callable[[str], None], reader: str, on_question: QuestionHook | None = None,
                 on_hard_bounce: Callable[[str, Sorted], None] | None = None,
                 on_complaint: Callable[[Sorted], None] | None = None) -> None:
        self.inbox, self.ledger, self.secret, self.clock, self.on_line = inbox, ledger, secret, clock, on_line
        self.on_question = on_question  # keeps a reader's question; its outcome line
        self.on_hard_bounce = on_hard_bounce  # an address refused for good: no question's mail goes there
        self.on_complaint = on_complaint  # a complaint: one about an acknowledgement or notice blocks its asker
        n = pub.newsletter
        self.ours = Ours(sender_domain(n.from_), n.return_path, n.unsubscribe_mailto)
        self.id = reader  # "<place>:<pid>:<random>" (adapters/inbox_ledger.py: reader_id)
        self.report = InboxReport(inbox.folder)

    def read(self, box: Mailbox) -> None:
        uids = box.uids()
        for start in range(0, len(uids), BATCH):
            self.report.batches += 1
            self._batch(box, uids[start:start + BATCH])

    def _batch(self, box: Mailbox, uids: list[int]) -> None:
        c = self.inbox
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
                if uid in mine and self._handle(uid, mine[uid], raw):
                    to_move.append(uid)
        box.move(sorted(to_move), c.done_folder)
        self.report.moved += len(to_move)

    def _too_large(self, uid: int, row: int, head: bytes, size: int) -> None:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
        message_id = clean_line(str(headers.get("Message-ID") or ""))
        outcome = (f"{size:,} bytes, over [inbox] max_message_bytes ({self.inbox.max_message_bytes:,}): "
                   f"left in {self.inbox.folder}, unread; from {clean_line(str(headers.get('From') or '?'))[:100]}")
        if self.ledger.settle(row, kind="too-large", outcome=outcome, message_id=message_id, now=self.clock(),
                              keep=True, reader=self.id) is None:
            self._taken(uid)
            return
        self._line(uid, "too-large", "too-large", outcome)

    def _taken(self, uid: int) -> None:
        """Another reader took this message's claim over (this read outlasted the claim): it
        handles and moves the message; this one records nothing of it."""
        self.report.busy += 1
        self.on_line(f"#{uid} left to another reader: this read took longer than a claim lasts")

    def _handle(self, uid: int, row: int, raw: bytes) -> bool:
        """Handle one message; False when another reader took it over meanwhile (not to move)."""
        found = sort_message(raw, self.ours)
        now = self.clock()
        head = f"{found.kind} ({found.why})"
        if self.ledger.seen_message_id(found.message_id, row):
            outcome = "handled before under another UID: nothing done"
            if self.ledger.settle(row, kind=found.kind, outcome=outcome, message_id=found.message_id, now=now,
                                  reader=self.id) is None:
                self._taken(uid)
                return False
            self._line(uid, found.kind, head, outcome)
            return True
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
                                  effects=effects, reader=self.id)
        if done is None:  # its effects are the other reader's to apply, once
            self._taken(uid)
            return False
        # An asker's address is marked bounced only by a bounce of one of our question mails
        # (it quotes its Message-ID), after the subscriber's own effect.
        if found.kind is Kind.BOUNCE and found.question_mail_ids and self.on_hard_bounce is not None:
            for failure in found.failures[:MAX_FAILURES]:
                if failure.hard and failure.address:
                    self.on_hard_bounce(failure.address, found)
        if found.is_complaint and self.on_complaint is not None:
            self.on_complaint(found)
        self._line(uid, found.kind, head, "; ".join([outcome, *done]))
        return True

    def _line(self, uid: int, kind: str, head: str, outcome: str) -> None:
        self.report.kinds[kind] += 1
        line = f"#{uid} {head}: {outcome}"
        self.report.lines.append(line)
        self.on_line(line)

    # ---- what a message does ----

    def _decide(self, found: Sorted) -> tuple[list[Effect], str]:
        """What the message does, by the rules of core/policy.py: the effects and one line."""
        verp = bool(self.ours.return_path)
        if found.kind is Kind.BOUNCE:
            tied = self._attribute(found, [a for f in found.failures for a in (f.address, f.also) if a])
            if isinstance(tied, str):
                return [], f"{found.status} {tied}: nothing changed"
            delivery, tie = tied
            # one of our messages goes to one reader: a report listing several addresses is hard
            # for them only when every failure it lists is (another address's 5.1.1 is not theirs)
            several = len({f.address for f in found.failures}) > 1
            hard = all(f.hard for f in found.failures) if several else found.hard
            claimed = Evidence.HARD_BOUNCE if hard else Evidence.SOFT_BOUNCES
            acted = attributed(claimed, tie, verp=verp)
            if acted is None:  # recorded against the reader, counted for nothing
                return ([Effect("weak", delivery.subscriber_id, delivery.issue_id, found.status)],
                        f"{found.status} {tie}, an address anyone can name")
            kind = "hard" if acted is Evidence.HARD_BOUNCE else "soft"
            status = found.status if kind == "hard" or not hard else "4" + found.status[1:]
            return [Effect(kind, delivery.subscriber_id, delivery.issue_id, status)], f"{found.status} {tie}"
        if found.kind is Kind.COMPLAINT and not (found.is_complaint or found.is_opt_out):
            return [], "not a complaint about our mail: nothing to do"
        if found.kind is Kind.COMPLAINT:
            claimed = Evidence.COMPLAINT if found.is_complaint else Evidence.UNSUBSCRIBE_MAIL
            tied = self._attribute(found, list(found.recipients))
            if isinstance(tied, str):
                return [], f"{tied}: nothing changed"
            delivery, tie = tied
            if attributed(claimed, tie, verp=verp) is None:
                return [], f"{tie}, an address anyone can name: nothing changed"
            return [Effect("complaint" if claimed is Evidence.COMPLAINT else "unsubscribe", delivery.subscriber_id,
                           delivery.issue_id)], str(tie)
        if found.kind is Kind.UNSUBSCRIBE:
            return self._unsubscribe(found, verp)
        if found.kind is Kind.AUTO_REPLY:
            return [], "ignored, not answered"
        return [], f"from {found.sender or 'no address'}, {found.subject!r}: kept for the questions loop"

    def _unsubscribe(self, found: Sorted, verp: bool) -> tuple[list[Effect], str]:
        """Mail to the List-Unsubscribe mailto: its subject's signed token names the reader;
        without one, its From line (anyone can write one) counts only without VERP."""
        if found.unsubscribe_token:
            try:
                data = read_token(self.secret, found.unsubscribe_token, "unsubscribe", now=self.clock())
            except TokenError:
                if verp:
                    return [], "its unsubscribe token is not one of ours: nothing changed"
            else:
                return [Effect("unsubscribe", data.subscriber_id)], f"from subscriber {data.subscriber_id} {Tie.SIGNED}"
        subscriber = self._subscriber(found.sender)
        if subscriber is None:
            return [], f"from {found.sender or 'no address'}, not on the list: nothing changed"
        if attributed(Evidence.UNSUBSCRIBE_MAIL, Tie.ADDRESS, verp=verp) is None:
            return [], (f"from subscriber {subscriber} by its From line only, which anyone can write: nothing changed "
                        "(their unsubscribe link, or the mailto of their List-Unsubscribe, works)")
        return [Effect("unsubscribe", subscriber)], f"from subscriber {subscriber}"

    def _attribute(self, found: Sorted, addresses: list[str]) -> tuple[Delivery, Tie] | str:
        """The one delivery a report is about and how it was tied to it (core/policy.py
        Tie), or why it is about no one we can act on."""
        for token in found.tokens:
            ids = read_bounce_token(self.secret, token)
            delivery = self.ledger.delivery(*ids) if ids else None
            if delivery is not None:
                return delivery, Tie.VERP
        if found.to_verp:
            return "to a VERP address we did not sign or send"
        delivery = self.ledger.delivery_by_message_id(found.original_ids)
        if delivery is not None:
            return delivery, Tie.MESSAGE_ID
        if any(unguessable(m) for m in found.original_ids):
            return "quotes a Message-ID in our form that we never sent"
        if found.quoted_ids and not found.original_ids:
            return "returns a message we did not send"
        readers: dict[int, Delivery] = {}
        for address in dict.fromkeys(a for a in addresses if a):
            try:
                key = normalise_email(address)[1]
            except InputError:
                continue
            delivery = self.ledger.last_delivery_to(key)
            if delivery is not None:
                readers.setdefault(delivery.subscriber_id, delivery)
        if len(readers) > 1:
            return f"names {len(readers)} of our readers, and one message of ours goes to one reader"
        if not readers:
            return "for no one we sent to"
        return next(iter(readers.values())), Tie.ADDRESS

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


def read_line(inbox: InboxConfig, report: InboxReport) -> str:
    """One line on a scheduled read."""
    return f"inbox {inbox.folder}: {report.summary(inbox.done_folder)}"
