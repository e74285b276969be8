"""Send the answer notices: one personal mail per answered question, to the address that
asked, exactly once. A job (layer 3): drives the notices ledger (adapters/notices.py) and a
Mailer connection (ports.py) with the newsletter's own rules.

The same machinery as an issue's delivery (deliver.py), for a handful of messages: each
notice is claimed before MAIL FROM and settled after the reply; the reply is judged by
core/classify.py (sent, deferred with the retry policy's backoff, failed, in doubt and
never resent, bounced); [smtp] give_up_hours fails what stays deferred; a sender that died
gives its claims back. Bounce-aware: nothing goes to an address whose subscriber bounced
or complained, or that bounced before; a bounce marks the address so.
`digest send` runs it after each issue, and `digest serve`'s retry timer for what waits.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..adapters.ledger import Ledger
from ..adapters.notices import NoticeClaim, NoticeLedger
from ..adapters.questions import QuestionStore
from ..adapters.store import Store
from ..core.address import wire_address
from ..core.classify import STATUS_OF, Outcome, classify
from ..core.compose import compose_answer_notice
from ..core.config import Config
from ..core.errors import DigestError, InputError, SendError
from ..core.message import Recipient, build_message, sender_address
from ..core.models import DeliveryStatus
from ..core.render import make_environment
from ..core.retry import RetryPolicy
from ..core.sign import Signer
from .deliver import RateLimiter, keep_alive
from .ports import Connection, Mailer

log = logging.getLogger("digest.send")
Clock = Callable[[], datetime]
BATCH = 20


@dataclass
class NoticeReport:
    """What one run did with the notices: how many went each way, and why it stopped early."""

    counts: Counter[str] = field(default_factory=Counter)
    paused: str = ""

    @property
    def waiting(self) -> int:
        return self.counts[DeliveryStatus.DEFERRED] + self.counts[DeliveryStatus.PENDING]


def send_notices(config: Config, store: Store, *, clock: Clock, mailer: Mailer, policy: RetryPolicy,
                 signer: Signer | None = None, cancel: threading.Event | None = None) -> NoticeReport:
    """Send every pending notice and every deferred one whose time has come."""
    return _NoticeSender(config, store, clock, mailer, policy, signer, cancel or threading.Event()).run()


class _NoticeSender:
    def __init__(self, config: Config, store: Store, clock: Clock, mailer: Mailer, policy: RetryPolicy,
                 signer: Signer | None, cancel: threading.Event) -> None:
        self.config, self.clock, self.mailer, self.policy, self.signer, self.cancel = config, clock, mailer, policy, signer, cancel
        self.ledger, self.questions, self.senders = NoticeLedger(store), QuestionStore(store), Ledger(store)
        self.env = make_environment(config.newsletter.templates_dir)
        self.sender = wire_address(sender_address(config.newsletter.from_), smtputf8=False)
        self.sender_id = "notices-" + secrets.token_hex(6)
        self.rate = RateLimiter(config.smtp.max_per_second)
        self.report = NoticeReport()
        self.stop = threading.Event()

    def run(self) -> NoticeReport:
        now = self.clock()
        failed = self.ledger.give_up(self.policy.give_up_before(now), self.policy.gave_up, now)
        if failed:
            log.warning("%s answer notices still deferred %g hours after their first attempt failed", failed,
                        self.policy.give_up.total_seconds() / 3600)
        if self.ledger.recover_stale(now):
            log.warning("answer notices claimed by a sender that died go out again")
        self.senders.register_sender(self.sender_id, now)
        beat = threading.Thread(target=keep_alive, args=(self.senders, self.sender_id, self.clock, self.stop),
                                daemon=True)
        beat.start()
        client: Connection | None = None
        try:
            while not self.cancel.is_set() and not self.report.paused:
                claims = self.ledger.claim(f"{self.sender_id}/0", self.clock(), BATCH)
                if not claims:
                    break
                for i, claim in enumerate(claims):
                    if self.cancel.is_set() or self.report.paused:
                        self.ledger.release([c.notice_id for c in claims[i:]], self.clock())
                        break
                    try:
                        client = self._send(claim, client)
                    except SendError as exc:  # the server cannot be reached: everything waits for the next run
                        self.ledger.release([c.notice_id for c in claims[i:]], self.clock())
                        self.report.paused = str(exc)
                        break
        finally:
            self.stop.set()
            if client is not None:
                client.close()
            self.senders.unregister_sender(self.sender_id)
        if self.report.counts:
            log.info("answer notices: %s", ", ".join(f"{n} {s}" for s, n in sorted(self.report.counts.items())))
        return self.report

    def _send(self, claim: NoticeClaim, client: Connection | None) -> Connection | None:
        now = self.clock()
        question = self.questions.get(claim.question_id)
        if question is None:  # forgotten meanwhile: its notice went with it
            return client
        blocked = self.questions.blocked(question.email_key)
        if blocked:
            self._settle(claim, DeliveryStatus.SKIPPED, now, reply=f"not sent: {blocked}", attempted=False)
            return client
        if client is None:
            client = self.mailer.connect()
        try:
            address = wire_address(question.email, smtputf8=client.smtputf8)
            message = build_message(compose_answer_notice(self.config, question, env=self.env), Recipient(address),
                                    message_id=claim.message_id, date=now)
            if self.signer is not None:
                message = self.signer.sign(message)
            self.rate.wait()
            reply = client.send(self.sender, address, message)
        except (InputError, ValueError) as exc:  # this asker's message only
            self._settle(claim, DeliveryStatus.FAILED, now, reply=f"not sent: {exc}", attempted=False)
            return client
        except DigestError:
            raise
        verdict = classify(reply.code, reply.text, stage=reply.stage, after_data=reply.after_data)
        status: str = STATUS_OF[verdict.outcome]
        text = f"{reply.stage}: {reply.code} {reply.text}" if reply.code else reply.text
        extra: dict[str, object] = {}
        if verdict.outcome is Outcome.BOUNCED:
            self.questions.mark_bounced(question.email_key, now)
        elif verdict.outcome is Outcome.PAUSE:
            extra.update(attempted=False, next_attempt_at=self.policy.next_attempt(0, now))
            self.report.paused = f"the server refused us: {reply.code} {reply.text}"
        elif verdict.outcome is Outcome.DEFERRED:
            if self.policy.expired(claim.first_attempt_at, now):
                status, text = DeliveryStatus.FAILED, self.policy.gave_up + text
            else:
                extra["next_attempt_at"] = self.policy.next_attempt(claim.attempts, now)
        self._settle(claim, status, now, code=reply.code or None, reply=text, **extra)
        if verdict.reconnect or not client.usable:
            client.close()
            client = None
        return client

    def _settle(self, claim: NoticeClaim, status: str, now: datetime, **kw: object) -> None:
        self.ledger.settle(claim, status, now=now, **kw)  # type: ignore[arg-type]
        self.report.counts[status] += 1
        if status != DeliveryStatus.SENT:
            log.info("answer notice of question %s: %s %s", claim.question_id, status, kw.get("reply", ""))
