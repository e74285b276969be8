"""Deliver one recorded issue to its frozen audience through the outbox (outbox.py). A job
(layer 3): the issue as a kind of mail (IssueMail) and its ledger rows as a Queue.

Messages come from the issue's Composer (one prepared template per distinct set of
topics), with only the recipient's escaped values substituted; the outbox claims, sends,
judges the replies and records them (drain.py says how, and what a kill may cost). What
would break every message (a header of the issue, the DKIM key) is found first, on a
made-up reader, before any row is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..core.audience import is_paused
from ..core.compose import Composer, subscriber_recipient
from ..core.config import Publication
from ..core.errors import ConfigError
from ..core.message import MessageTemplate, Recipient
from ..core.models import Claim, IssueRecord, Subscriber, open_count
from ..core.tokens import Links
from .drain import reason
from .outbox import Outbox
from .ports import IssueRows, Progress, Subscribers


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


class IssueQueue:
    """One issue's rows of the delivery ledger, as the outbox's Queue."""

    def __init__(self, ledger: IssueRows, issue_id: int) -> None:
        self.ledger, self.issue_id = ledger, issue_id
        self.settling, self.release = ledger.settling, ledger.release  # the hot path: no call in between

    def claim(self, claimer: str, now: datetime, limit: int, *, pending: bool = True) -> list[Claim]:
        return self.ledger.claim(self.issue_id, claimer, now, limit, pending=pending)

    def release_claimer(self, claimer: str, now: datetime) -> None:
        self.ledger.release_claimer(self.issue_id, claimer, now)

    def recover_stale(self, now: datetime) -> int:
        return self.ledger.recover_stale(self.issue_id, now)

    def held_by_others(self, sender_id: str) -> int:
        return self.ledger.held_by_others(self.issue_id, sender_id)

    def finish_if_done(self, now: datetime) -> bool:
        return self.ledger.finish_if_done(self.issue_id, now)

    def counts(self) -> dict[str, int]:
        return self.ledger.counts(self.issue_id)


class IssueMail:
    """An issue as a kind of mail: each confirmed reader's copy of the template of their topics."""

    def __init__(self, pub: Publication, issue: IssueRecord, composer: Composer, links: Links,
                 subscribers: Subscribers, clock: Callable[[], datetime] | None = None) -> None:
        self.pub, self.composer, self.links, self.subscribers = pub, composer, links, subscribers
        self.clock = clock  # a pause chosen after the issue was recorded is honoured too (core/audience.py)
        self.verp: int | None = issue.id
        self.label = f"issue {issue.id}"

    def plan(self, claim: Claim) -> tuple[str, Subscriber, MessageTemplate] | str:
        """The claim's reader and the template of their topics, or why nothing goes to them
        (what the skip records); raises what preparing the template raised."""
        sub = claim.subscriber
        if sub is None or sub.status != "confirmed":
            return "removed before sending" if sub is None else f"{sub.status} before sending"
        if self.clock is not None and is_paused(sub, self.clock()):
            return "paused"
        template = self.composer.template(sub.topics)
        if template is None:
            return "nothing in this issue for the chosen topics"
        return sub.email, sub, template

    def recipient(self, target: Subscriber, address: str, now: datetime) -> Recipient:
        return replace(subscriber_recipient(self.pub, target, self.links, now=now, issue_id=self.verp),
                       email=address)

    def reread(self, claims: Sequence[Claim]) -> list[Claim]:
        """The claims with their subscribers as they are now (they may have left)."""
        found = self.subscribers.get_many(c.subscriber_id for c in claims if c.subscriber_id is not None)
        return [replace(c, subscriber=found.get(c.subscriber_id)) if c.subscriber_id is not None else c for c in claims]

    def probes(self, now: datetime) -> Iterator[tuple[MessageTemplate, Recipient]]:
        """A made-up reader's copy of the every-topic template (none when nothing is in it)."""
        template = self.composer.template(())
        if template is not None:
            probe = Subscriber(id=0, email="probe@example.com", name="Probe", status="confirmed", topics=(),
                               consent=None, created_at=now)
            yield template, subscriber_recipient(self.pub, probe, self.links, now=now, issue_id=self.verp)


def deliver_issue(outbox: Outbox, pub: Publication, issue: IssueRecord, *, ledger: IssueRows, subscribers: Subscribers,
                  composer: Composer, progress: Progress | None = None, deferred_only: bool = False) -> SendReport:
    """Send what is due of one issue through the outbox, after building and signing one
    message for a made-up reader: a fault every message would share (a header of the
    issue, a link, the DKIM key) stops the send there, before any reader is failed for it."""
    kind = IssueMail(pub, issue, composer, Links(pub.base_url, outbox.secret), subscribers, outbox.clock)
    now = outbox.clock()
    for template, recipient in kind.probes(now):
        try:
            outbox.build(template, recipient, message_id="<probe@example.com>", now=now)
        except Exception as exc:
            raise ConfigError(pub.source, f"the messages of issue {issue.id} cannot be built: "
                                                f"{reason(exc)}") from exc
    drained = outbox.drain(IssueQueue(ledger, issue.id), kind, progress=progress, deferred_only=deferred_only)
    return SendReport(issue.id, drained.counts, paused=drained.paused, cancelled=drained.cancelled)
