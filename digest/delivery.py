"""Send one issue to its frozen audience: claim, check, build, send, settle. Layer 3.

[smtp] connections threads, each with its own SMTP connection, share a rate ceiling of
[smtp] max_per_second. Messages are built from one prepared template per distinct set
of topics (premailer runs once per set), with only the recipient's escaped values
substituted. Each row is committed as "sending" before MAIL FROM and settled after the
reply, so a kill leaves at most one message per connection in flight.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .classify import Outcome, classify
from .config import Config
from .errors import SendError
from .group import for_topics, group_posts
from .inline import inline_css
from .ledger import Claim, IssueRecord, Ledger
from .message import MessageTemplate, Recipient, build_message, prepare_message, sender_address
from .models import IssueContent, Subscriber
from .render import make_environment, render_issue
from .send import Reply, connect, send_raw
from .sign import Signer
from .store import Store
from .tokens import Links

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
        return sum(self.counts.get(s, 0) for s in ("pending", "sending", "deferred"))


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


class Variants:
    """One prepared message template per distinct set of topics, built on first use."""

    def __init__(self, config: Config, issue: IssueRecord, prepared: MessageTemplate | None = None) -> None:
        self.config, self.issue = config, issue
        n = config.newsletter
        self.content = group_posts(list(issue.posts), config.topics, fallback_topic=n.fallback_topic,
                                   question_labels=config.question.labels, max_posts=n.max_posts,
                                   max_sections=n.max_sections)
        self.env = make_environment(n.templates_dir)
        self.cache: dict[tuple[str, ...], MessageTemplate | None] = {} if prepared is None else {(): prepared}
        self.lock = threading.Lock()

    def get(self, topics: tuple[str, ...]) -> MessageTemplate | None:
        key = tuple(sorted(topics))
        with self.lock:
            if key not in self.cache:
                self.cache[key] = self._build(for_topics(self.content, key))
            return self.cache[key]

    def _build(self, content: IssueContent) -> MessageTemplate | None:
        if not content.posts:
            return None
        from zoneinfo import ZoneInfo

        date = self.issue.created_at.astimezone(ZoneInfo(self.config.schedule.timezone))
        rendered = render_issue(content, self.config, date=date, env=self.env)
        rendered = replace(rendered, html=inline_css(rendered.html))
        n = self.config.newsletter
        return prepare_message(rendered, sender=n.from_, reply_to=n.reply_to, list_id=n.list_id,
                               unsubscribe_mailto=n.unsubscribe_mailto)


class Deliverer:
    """Runs the send of one issue to the end, a pause or an error."""

    def __init__(self, config: Config, store: Store, issue: IssueRecord, *, secret: str, clock: Clock,
                 progress: Callable[[str], None] | None = None, signer: Signer | None = None,
                 cancel: threading.Event | None = None, prepared: MessageTemplate | None = None) -> None:
        self.config, self.store, self.issue, self.clock = config, store, issue, clock
        self.ledger = Ledger(store)
        self.links = Links(config.web.base_url, secret)
        self.variants = Variants(config, issue, prepared)
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
        client: smtplib.SMTP | None = None
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
                _quit(client)

    def _deliver(self, claim: Claim, client: smtplib.SMTP | None) -> smtplib.SMTP | None:
        now = self.clock()
        sub = self.store.get(claim.subscriber_id) if claim.subscriber_id is not None else None
        if sub is None or sub.status != "confirmed":
            why = "removed before sending" if sub is None else f"{sub.status} before sending"
            self.ledger.settle(claim.delivery_id, "skipped", now=now, reply=why, attempted=False)
            self.progress("skipped")
            return client
        template = self.variants.get(sub.topics)
        if template is None:
            self.ledger.settle(claim.delivery_id, "skipped", now=now, reply="nothing in this issue for the chosen topics",
                               attempted=False)
            self.progress("skipped")
            return client
        message = build_message(template, self._recipient(sub, now), message_id=claim.message_id, date=now)
        if self.signer is not None:
            message = self.signer.sign(message)
        if client is None:
            client = connect(self.config.smtp)
        self.rate.wait()
        try:
            reply = send_raw(client, self.sender, sub.email, message, self.config.smtp.data_timeout_seconds)
        except (smtplib.SMTPException, OSError) as exc:
            reply = Reply(0, f"connection failed before the end of the message: {exc}", "DATA")
        verdict = classify(reply.code, reply.text, stage=reply.stage, after_data=reply.after_data)
        self._settle(claim, sub, reply, verdict.outcome, now)
        if verdict.reconnect or (client is not None and client.sock is None):
            _quit(client)
            client = None
        return client

    def _recipient(self, sub: Subscriber, now: datetime) -> Recipient:
        return Recipient(sub.email, sub.name, self.links.unsubscribe(sub.id, now), self.links.preferences(sub.id, now),
                         f"{self.config.web.base_url}/archive/{self.issue.id}")

    def _settle(self, claim: Claim, sub: Subscriber, reply: Reply, outcome: Outcome, now: datetime) -> None:
        text = f"{reply.stage}: {reply.text}" if reply.code else reply.text
        settle = self.ledger.settle
        if outcome is Outcome.SENT:
            settle(claim.delivery_id, "sent", now=now, code=reply.code, reply=text)
        elif outcome is Outcome.IN_DOUBT:
            settle(claim.delivery_id, "in_doubt", now=now, code=None, reply=text)
        elif outcome is Outcome.BOUNCED:
            settle(claim.delivery_id, "failed", now=now, code=reply.code, reply=text, bounce=sub.id)
        elif outcome is Outcome.FAILED:
            settle(claim.delivery_id, "failed", now=now, code=reply.code, reply=text)
        elif outcome is Outcome.PAUSE:
            settle(claim.delivery_id, "deferred", now=now, code=reply.code, reply=text, attempted=False,
                   next_attempt_at=now + BACKOFF[0])
            with self.lock:
                self.paused = self.paused or f"the server refused us: {reply.code} {reply.text}"
            self.stop.set()
        elif claim.attempts + 1 >= MAX_ATTEMPTS:
            settle(claim.delivery_id, "failed", now=now, code=reply.code or None, reply=f"gave up after {MAX_ATTEMPTS} attempts: {text}")
        else:
            settle(claim.delivery_id, "deferred", now=now, code=reply.code or None, reply=text,
                   next_attempt_at=now + BACKOFF[min(claim.attempts, len(BACKOFF) - 1)])
        self.progress("failed" if outcome is Outcome.BOUNCED else outcome.value if outcome is not Outcome.PAUSE else "deferred")


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
