"""The outbox: the one engine every mail of the program goes through. A job (layer 3).

GNU Mailman 3 puts every message, a list post or a bounce notice, in one outgoing queue
with one delivery and retry policy; here the Outbox is that policy, shared by a run (one
per process: cli/wiring.py builds it). It owns

- claiming and the crash promise: a Queue's rows (ports.py) are claimed "sending" before
  MAIL FROM and settled after the reply, in group commits, so that a kill leaves at most
  one message per connection in flight; a sender known dead gives its rows back
  (drain.py);
- the [smtp] rate ceiling and connections, the envelope sender (VERP when [newsletter]
  return_path is set) and DKIM signing;
- the meaning of a reply (core/classify.py) and what is recorded of it, back-off and
  give-up (core/retry.py: RetryPolicy), for queued and single mails alike.

Two ways in:

- drain(queue, kind): a queue of rows, sent over [smtp] connections with retries: an
  issue's deliveries (deliver.py: IssueMail), the answer notices (notices.py: NoticeMail);
- send_now(...): one message now, on its own connection (the confirmation, the welcome,
  the question's acknowledgement, a test copy): the same building, signing and reading
  of the reply; `record` is told the same Settlement a queued row would get (a bounce
  names whom to mark).

A new kind of mail is a template (core/compose.py) and a few lines, never a new loop.
For one person, now (e.g. a new address's confirmation)::

    template = compose_confirmation(pub, confirm_url=url)
    sent = outbox.send_now(template, Recipient(sub.email, sub.name), kind="confirm-address",
                           ref=sub.id, now=now, record=record_bounce(ledger))  # jobs/mail.py

For many, retried: a Queue of rows (ports.py; an adapter over a table like `notices`,
built by the wiring) and a Kind that says, for a claimed row, to whom and with which
template (notices.py's NoticeMail is the model)::

    class ReportMail:                         # a Kind
        label, verp = "reports", None         # verp: None, MAIL FROM is the From address
        def plan(self, claim):                # (address, whom, template), or why not
            return author, None, compose_report(pub, claim.subscriber_id)
        def recipient(self, target, address, now):
            return Recipient(address)
        def reread(self, claims):
            return list(claims)

    outbox.drain(parts.reports, ReportMail())
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ..core.address import wire_address
from ..core.classify import classify
from ..core.config import NewsletterConfig, SMTPConfig
from ..core.message import MessageTemplate, Recipient, build_message, make_message_id, sender_address, sender_domain
from ..core.models import Claim, DeliveryStatus, Reply, Settlement
from ..core.retry import RetryPolicy
from ..core.sign import Signer
from ..core.verp import envelope_sender
from .drain import FRESH_FOR, Drain, Drained, RateLimiter
from .ports import Expiring, Mailer, Progress, Queue, Senders

__all__ = ["Drained", "Kind", "Outbox", "Sent"]
Target = TypeVar("Target")
Clock = Callable[[], datetime]


class Kind(Protocol[Target]):
    """A kind of queued mail: what a claimed row's message is. `label` names it in logs;
    `verp` is the issue whose bounce tokens the envelope carries (None: MAIL FROM is the
    From address)."""

    label: str
    verp: int | None

    def plan(self, claim: Claim) -> tuple[str, Target, MessageTemplate] | str:
        """(address, whom, template), or why nothing goes (the skip recorded)."""
        ...

    def recipient(self, target: Target, address: str, now: datetime) -> Recipient:
        """Whom's copy: `address` as the connection carries it, name, personal links."""
        ...

    def reread(self, claims: Sequence[Claim]) -> list[Claim]:
        """The claims as they are now (a batch held longer than Outbox.fresh_for)."""
        ...


@dataclass(frozen=True)
class Sent:
    """What became of a single mail: the server's reply and what was recorded of it."""

    reply: Reply
    settlement: Settlement

    @property
    def refusal(self) -> str | None:
        """None when the server took it, else "refused: <code> <text>"."""
        if self.settlement.status == DeliveryStatus.SENT:
            return None
        return f"refused: {self.reply.code} {self.reply.text}"


class Outbox:
    """The sending policy and equipment of one process; see the module's docstring."""

    def __init__(self, *, smtp: SMTPConfig, newsletter: NewsletterConfig, mailer: Mailer, senders: Senders,
                 policy: RetryPolicy, secret: str, clock: Clock, signer: Signer | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.mailer, self.senders, self.policy, self.signer, self.clock = mailer, senders, policy, signer, clock
        self.host, self.port, self.connections = smtp.host, smtp.port, smtp.connections
        self.rate = RateLimiter(smtp.max_per_second)
        # Seconds a claimed batch's recipients are trusted before they are read again (a
        # test that waits the window out shortens it rather than wait a second of it).
        self.fresh_for = FRESH_FOR
        self.cancel = cancel if cancel is not None else threading.Event()
        self.secret = secret
        self.domain = sender_domain(newsletter.from_)
        self.sender = wire_address(sender_address(newsletter.from_), smtputf8=False)
        # [newsletter] return_path: each newsletter's MAIL FROM carries a signed bounce token (VERP)
        self.return_path = wire_address(newsletter.return_path, smtputf8=False) if newsletter.return_path else ""

    def envelope(self, issue_id: int | None, subscriber_id: int | None) -> str:
        """MAIL FROM for one message: the From address, or the VERP address of its issue and reader."""
        if not self.return_path or issue_id is None or subscriber_id is None:
            return self.sender
        return envelope_sender(self.sender, self.return_path, self.secret, issue_id, subscriber_id)

    def build(self, template: MessageTemplate, recipient: Recipient, *, message_id: str, now: datetime) -> bytes:
        """One message, built and signed as every message is."""
        message = build_message(template, recipient, message_id=message_id, date=now)
        return message if self.signer is None else self.signer.sign(message)

    def drain(self, queue: Queue, kind: Kind[Any], *, progress: Progress | None = None, deferred_only: bool = False,
              connections: int | None = None, prefix: str = "") -> Drained:
        """Send what is due in `queue` (only its deferred rows, when `deferred_only`)."""
        return Drain(self, queue, kind, connections=connections or self.connections, progress=progress,
                     deferred_only=deferred_only, prefix=prefix).run()

    def give_up(self, book: Expiring) -> Mapping[int, int]:
        """Fail what stayed deferred past [smtp] give_up_hours; {issue id: rows failed}."""
        now = self.clock()
        return book.give_up(self.policy.give_up_before(now), self.policy.gave_up, now)

    def send_now(self, template: MessageTemplate, recipient: Recipient, *, kind: str, ref: int | None, now: datetime,
                 record: Callable[[Settlement], None] | None = None, message_id: str | None = None) -> Sent:
        """Send one person's message of `kind` now, on its own connection, and judge the reply
        as a queued row's would be (the same Settlement; a bounce names `ref`); `record` is
        told it. The Message-ID is `kind`.`ref`.<random> on the From domain unless
        `message_id` is given (an acknowledgement's carries proof of its question).
        The domain goes in A-labels; a local part that is not ASCII needs the server's
        SMTPUTF8, and send_one refuses it (InputError) when the server has none. Raises
        what stops the message before any reply (DigestError)."""
        address = wire_address(recipient.email, smtputf8=True)
        message_id = message_id or make_message_id(self.domain, kind, *(() if ref is None else (ref,)))
        message = self.build(template, replace(recipient, email=address), message_id=message_id, now=now)
        reply = self.mailer.send_one(self.sender, address, message)
        verdict = classify(reply.code, reply.text, stage=reply.stage, after_data=reply.after_data)
        settlement = self.policy.settlement(Claim(ref or 0, ref, message_id, 0), reply, verdict.outcome, now)
        if record is not None:
            record(settlement)
        return Sent(reply, settlement)
