"""Send the answer notices: one personal mail per answered question, to the address that
asked, exactly once. A job (layer 3): the notices are a kind of mail (NoticeMail) whose
rows (adapters/notices.py, a Queue) the outbox drains, as it drains an issue's deliveries.

So a notice has the issue's rules because it goes the issue's way (outbox.py, drain.py):
claimed before MAIL FROM and settled after the reply; the reply judged by core/classify.py
and recorded by the retry policy (sent; deferred with its backoff; failed; in doubt and
never resent; bounced, which marks the asker's address); [smtp] give_up_hours fails what
stays deferred; a sender that died gives its claims back. Nothing goes to an address whose
subscriber bounced or complained, or that bounced before.
`digest send` runs it after each issue, and `digest serve`'s retry timer for what waits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..core.compose import compose_answer_notice
from ..core.config import Publication
from ..core.errors import SendError
from ..core.message import MessageTemplate, Recipient
from ..core.models import Claim, DeliveryStatus
from ..core.questions import Question
from ..core.render import make_environment
from .outbox import Outbox
from .ports import NoticeBook, QuestionBook

log = logging.getLogger("digest.send")


@dataclass
class NoticeReport:
    """What one run did with the notices: how many went each way, and why it stopped early."""

    counts: Counter[str] = field(default_factory=Counter)
    paused: str = ""

    @property
    def waiting(self) -> int:
        return self.counts[DeliveryStatus.DEFERRED] + self.counts[DeliveryStatus.PENDING]


class NoticeMail:
    """The answer notice as a kind of mail: a claimed row's question, told where it was answered."""

    label = "answer notices"
    verp: int | None = None  # an asker is no reader of an issue: MAIL FROM is the From address

    def __init__(self, pub: Publication, questions: QuestionBook) -> None:
        self.pub, self.questions = pub, questions
        self.env = make_environment(pub.newsletter.templates_dir)

    def plan(self, claim: Claim) -> tuple[str, Question, MessageTemplate] | str:
        question = self.questions.get(claim.subscriber_id or 0)
        if question is None:
            return "not sent: the question was forgotten"
        blocked = self.questions.blocked(question.email_key)
        if blocked:
            return f"not sent: {blocked}"
        return question.email, question, compose_answer_notice(self.pub, question, env=self.env)

    def recipient(self, target: Question, address: str, now: datetime) -> Recipient:
        return Recipient(address)

    def reread(self, claims: Sequence[Claim]) -> list[Claim]:
        return list(claims)  # each question is read in its turn


class _Tally:
    """The Progress of a notice run: counts what became of each notice."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def begin(self, label: str, total: int) -> None:
        pass

    def advance(self, outcome: str) -> None:
        self.counts[str(outcome)] += 1

    def waiting(self, seconds: float, deferred: int) -> None:
        pass


def send_notices(outbox: Outbox, pub: Publication, ledger: NoticeBook, questions: QuestionBook) -> NoticeReport:
    """Give up what stayed deferred too long, then send every pending notice and every
    deferred one whose time has come, through the outbox."""
    failed = sum(outbox.give_up(ledger).values())
    if failed:
        log.warning("%s answer notices still deferred %g hours after their first attempt failed", failed,
                    outbox.policy.give_up.total_seconds() / 3600)
    tally = _Tally()
    report = NoticeReport(tally.counts)
    try:
        drained = outbox.drain(ledger, NoticeMail(pub, questions), progress=tally, connections=1,
                               prefix="notices-")
        report.paused = drained.paused
    except SendError as exc:  # the server cannot be reached: everything waits for the next run
        report.paused = str(exc)
    if report.counts:
        log.info("answer notices: %s", ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items())))
    return report
