"""A reader's question from intake to moderation: take it, acknowledge it once, let the
author accept, decline, link or forget it. A job (layer 3): the CLI formats what these
return; the web app gets only the acknowledgement hook (question_acknowledger).

take_question is the seam for every way a question arrives: the /ask page records it
itself (the same core and store calls) and hands the acknowledgement to the hook, and the
inbox reader calls take_question for a Contact-form notification, a mail to [question]
email or a reply to the newsletter. An acknowledgement never goes to an auto-reply, to an
address that bounced or complained, twice for one question, or more than once per
[question] acknowledge_window_hours to one mailbox (plus and Gmail dot variants of an
address counted as one: core/address.py mailbox_key); it never quotes the question.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.address import mailbox_key
from ..core.checks import url_problem
from ..core.compose import compose_acknowledgement
from ..core.config import Publication, QuestionConfig
from ..core.errors import DigestError, InputError
from ..core.message import Recipient, acknowledgement_message_id, sender_domain
from ..core.models import Settlement
from ..core.questions import MAX_PARAPHRASE, Question, QuestionStats, acknowledgement_budget, new_question
from ..core.sanitize import clean_line
from ..core.subscriptions import normalise_email
from .ports import MailParts, QuestionBook

log = logging.getLogger("digest.questions")

QuestionAcknowledger = Callable[[int, datetime], None]


@dataclass(frozen=True)
class Intake:
    """What became of one incoming question."""

    question: Question
    created: bool              # False: the same question was kept before (merged into it)
    acknowledged: bool
    why_not: str = ""          # why no acknowledgement went, when none did


def take_question(pub: Publication, parts: MailParts, *, email: str, name: str, text: str,
                  source: str, consent_to_quote: bool, display_name: str, now: datetime, message_id: str | None = None,
                  in_reply_to: str | None = None, subscriber_id: int | None = None, is_html: bool = False,
                  auto_reply: bool = False) -> Intake:
    """Keep one question (merged with the same one kept before), then acknowledge it.

    A reply is linked to its subscriber by `subscriber_id` (the inbox reads it from a
    signed token in the address it was sent to) or by `in_reply_to` naming an issue's
    Message-ID, never by its From. InputError for an unusable address or an empty text.
    """
    questions = parts.questions
    if subscriber_id is None and in_reply_to:
        subscriber_id = questions.subscriber_for_message_id(re.findall(r"<[^<>\s]+>", in_reply_to))
    new = new_question(email=email, name=name, text=text, source=source, consent_to_quote=consent_to_quote,
                       display_name=display_name, is_html=is_html, message_id=message_id, subscriber_id=subscriber_id)
    question, created = questions.record(new, now)
    if not created:
        return Intake(question, False, False, f"the same question was kept before, as question {question.id}")
    problem = acknowledge(pub, parts, question, now=now, auto_reply=auto_reply)
    return Intake(questions.get(question.id) or question, True, problem is None, problem or "")


def acknowledge(pub: Publication, parts: MailParts, question: Question, *, now: datetime,
                auto_reply: bool = False) -> str | None:
    """Mail the asker that their question arrived, through the outbox; None when the server
    took it, else why nothing went (or why it was refused). A hard bounce marks the
    asker's address, as a bounced answer notice does."""
    questions = parts.questions
    if not pub.question.acknowledge:
        return "acknowledgements are off ([question] acknowledge)"
    if auto_reply:
        return "it came from an auto-responder, which is never answered"
    blocked = questions.blocked(question.email_key)
    if blocked:
        return f"nothing goes to this address: {blocked}"
    if question.acknowledged_at is not None:
        return "it was acknowledged before"
    window = timedelta(hours=pub.question.acknowledge_window_hours)
    cap = pub.question.acknowledge_per_hour
    # victim+1@, victim+2@, v.ictim@gmail.com: one mailbox, one acknowledgement per window.
    if not parts.store.hit_rate("ack-mailbox", mailbox_key(question.email), now=now, window=window, limit=1):
        return (f"this mailbox (the address, or a plus or Gmail dot variant of it) had an acknowledgement in the "
                f"last {pub.question.acknowledge_window_hours:g} hours ([question] acknowledge_window_hours)")
    if not questions.claim_acknowledgement(question, now, window, per_hour=cap):
        budget = acknowledgement_budget(question.source, question.subscriber_id)
        if cap and questions.acknowledged_since(now - timedelta(hours=1), budget) >= cap:
            who = "to subscribers and /ask" if budget == "known" else "to questions by mail"
            return (f"{cap} acknowledgements {who} went out in the last hour ([question] acknowledge_per_hour): "
                    "a flood of questions is held back, and the question is kept")
        return (f"this address had an acknowledgement in the last {pub.question.acknowledge_window_hours:g} hours "
                "([question] acknowledge_window_hours)")

    def record(settlement: Settlement) -> None:
        if settlement.bounce is not None:
            questions.mark_bounced(question.email_key, settlement.now)

    try:
        message_id = acknowledgement_message_id(sender_domain(pub.newsletter.from_), question.id, question.dup_key)
        sent = parts.outbox.send_now(compose_acknowledgement(pub), Recipient(question.email), kind="ack",
                                     ref=question.id, now=now, record=record, message_id=message_id)
    except DigestError as exc:
        return str(exc)
    return sent.refusal


def question_acknowledger(pub: Publication, parts: MailParts) -> QuestionAcknowledger:
    """The web app's hook: acknowledge question `id` after the page has answered. Failures
    are logged, never raised: nobody could see them there."""
    def send(question_id: int, now: datetime) -> None:
        try:
            question = parts.questions.get(question_id)
            problem = "it is gone" if question is None else acknowledge(pub, parts, question, now=now)
        except Exception:
            log.exception("acknowledgement of question %s not sent", question_id)
            return
        if problem:
            log.info("acknowledgement of question %s not sent: %s", question_id, problem)

    return send


# ---- moderation ----

def accept(questions: QuestionBook, question_id: int, paraphrase: str | None, now: datetime) -> Question:
    """Accept a question, with the publishable paraphrase when given (else the one it has)."""
    values: dict[str, object] = {}
    if paraphrase is not None:
        text = clean_line(paraphrase)
        if not text:
            raise InputError("--as needs the paraphrase's words (or leave --as out)")
        if len(text) > MAX_PARAPHRASE:
            raise InputError(f"--as is {len(text)} characters: a paraphrase holds at most {MAX_PARAPHRASE}")
        values["paraphrase"] = text
    return questions.move(question_id, "accept", now, **values)


def decline(questions: QuestionBook, question_id: int, now: datetime) -> Question:
    return questions.move(question_id, "decline", now)


def link_answer(questions: QuestionBook, question_id: int, url: str, now: datetime) -> Question:
    """Note the post that answers an accepted question; the send marks it answered when
    the post appears in the feed."""
    problem = url_problem("link", url.strip())
    if problem:
        raise InputError(f"the answer's URL {url!r} is {problem}")
    return questions.move(question_id, "answer", now, answer_url=url.strip())


def forget(questions: QuestionBook, email: str) -> tuple[str, int]:
    """Delete every question of an address; (the address, how many)."""
    address, key = normalise_email(email)
    return address, questions.forget(key)


def expire(question: QuestionConfig, questions: QuestionBook, now: datetime) -> int:
    """Empty the text and the name of questions answered or declined [question] keep_days ago
    (the start of each send, and of each inbox read)."""
    return questions.expire(now - timedelta(days=question.keep_days), now)


def stats(questions: QuestionBook) -> QuestionStats:
    return questions.stats()

