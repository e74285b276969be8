"""Single mails to one person, sent now through the outbox (outbox.py: send_now): the
double opt-in confirmation and the welcome mail (the question's acknowledgement is in
questions.py, the test copy in preview.py). A job (layer 3).

Each reply is judged and recorded as a queued message's would be: a hard bounce of a
subscriber's mail marks the subscriber bounced (record_bounce), as an issue's does. The
web app never talks SMTP: `digest serve` hands it confirmation_mailer(...) and
welcome_mailer(...), callables, the way listmonk hands its HTTP layer hooks such as
SendOptinConfirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from ..core.compose import compose_confirmation, compose_preferences_link, compose_welcome
from ..core.config import Publication, QuestionConfig
from ..core.errors import DigestError
from ..core.group import answered_questions
from ..core.message import MessageTemplate, Recipient
from ..core.models import Post, Settlement, Subscriber
from ..core.render import make_environment
from ..core.tokens import Links
from .ports import IssueLedger, MailParts

log = logging.getLogger("digest.mail")

ConfirmationMailer = Callable[[Subscriber, datetime], bool]  # True: the server took it
WelcomeMailer = Callable[[Subscriber, datetime], None]
PreferencesLinkMailer = Callable[[Subscriber, datetime], None]
WELCOME_QUESTIONS = 3       # answered questions in the welcome mail
WELCOME_LOOKBACK_ISSUES = 12  # ... taken from the posts of this many recent issues


def record_bounce(ledger: IssueLedger) -> Callable[[Settlement], None]:
    """What a subscriber's single mail records of its reply: a bounce marks them, as a
    settled delivery's does (its ref is the subscriber)."""
    def record(settlement: Settlement) -> None:
        if settlement.bounce is not None:
            ledger.mark_bounced(settlement.bounce, settlement.now)

    return record


def _send_single(parts: MailParts, sub: Subscriber, template: MessageTemplate, kind: str, now: datetime) -> str | None:
    """Send one subscriber's message of `kind` now; None when the server took it, else why not."""
    try:
        sent = parts.outbox.send_now(template, Recipient(sub.email, sub.name), kind=kind, ref=sub.id, now=now,
                                     record=record_bounce(parts.ledger))
    except DigestError as exc:
        return str(exc)
    return sent.refusal


def mail_confirmation(pub: Publication, parts: MailParts, sub: Subscriber, now: datetime) -> str | None:
    """Mail the double opt-in link; None when the server took it, else why not."""
    links = Links(pub.base_url, parts.outbox.secret)
    try:
        env = make_environment(pub.newsletter.templates_dir)
        template = compose_confirmation(pub, confirm_url=links.confirm(sub, now), env=env)
    except DigestError as exc:
        return str(exc)
    # Nor in the To header: the name was typed by whoever typed the address.
    return _send_single(parts, replace(sub, name=""), template, "confirm", now)


def send_confirmation(pub: Publication, parts: MailParts, sub: Subscriber, now: datetime) -> bool:
    """Mail the double opt-in link; True when the server took it. Failures, whatever they
    are, are logged, not raised: this runs after the web response has gone, where nobody
    could see an error, and an exception would only end the background task noisily."""
    try:
        problem = mail_confirmation(pub, parts, sub, now)
    except Exception:
        log.exception("confirmation mail to subscriber %s not sent", sub.id)
        return False
    if problem is not None:
        log.warning("confirmation mail to subscriber %s not sent: %s", sub.id, problem)
    else:
        log.info("confirmation mail to subscriber %s sent", sub.id)
    return problem is None


def confirmation_mailer(pub: Publication, parts: MailParts) -> ConfirmationMailer:
    """The web app's hook: mail a confirmation link to one subscriber."""
    def send(sub: Subscriber, now: datetime) -> bool:
        return send_confirmation(pub, parts, sub, now)

    return send


def preferences_link_mailer(pub: Publication, parts: MailParts) -> PreferencesLinkMailer:
    """The web app's hook for an expired settings link: mail a fresh one to the subscriber's
    own address, through the outbox. Failures are logged, never raised (the page has
    answered already)."""
    def send(sub: Subscriber, now: datetime) -> None:
        try:
            links = Links(pub.base_url, parts.outbox.secret)
            env = make_environment(pub.newsletter.templates_dir)
            template = compose_preferences_link(pub, preferences_url=links.preferences(sub.id, now), env=env)
            problem = _send_single(parts, replace(sub, name=""), template, "prefs", now)
        except Exception:
            log.exception("settings link to subscriber %s not sent", sub.id)
            return
        if problem is not None:
            log.warning("settings link to subscriber %s not sent: %s", sub.id, problem)

    return send


def send_welcome(pub: Publication, parts: MailParts, sub: Subscriber, now: datetime,
                 answered: Sequence[Post] = ()) -> bool:
    """Mail the welcome (when issues come, how to ask, a few `answered` questions); True when
    the server took it. Like the confirmation, it runs after the web response: failures are
    logged, not raised."""
    links = Links(pub.base_url, parts.outbox.secret)
    try:
        env = make_environment(pub.newsletter.templates_dir)
        template = compose_welcome(pub, name=sub.name, answered=answered,
                                   preferences_url=links.preferences(sub.id, now), env=env)
    except DigestError as exc:
        log.error("welcome mail to subscriber %s not composed: %s", sub.id, exc)
        return False
    problem = _send_single(parts, sub, template, "welcome", now)
    if problem is not None:
        log.warning("welcome mail to subscriber %s not sent: %s", sub.id, problem)
    else:
        log.info("welcome mail to subscriber %s sent", sub.id)
    return problem is None


def recent_answers(question: QuestionConfig, ledger: IssueLedger) -> tuple[Post, ...]:
    """The answered questions of the most recent issues sent, newest first, a few."""
    posts = [p for issue in ledger.done_issues(WELCOME_LOOKBACK_ISSUES) for p in issue.posts]
    return answered_questions(posts, question.labels, WELCOME_QUESTIONS)


def welcome_mailer(pub: Publication, parts: MailParts) -> WelcomeMailer:
    """The web app's second hook: mail the welcome to one subscriber who just confirmed."""
    def send(sub: Subscriber, now: datetime) -> None:
        try:
            answered = recent_answers(pub.question, parts.ledger)
        except DigestError as exc:  # the welcome still goes, without the examples
            log.warning("welcome mail to subscriber %s: no answered questions (%s)", sub.id, exc)
            answered = ()
        try:
            send_welcome(pub, parts, sub, now, answered)
        except Exception:
            log.exception("welcome mail to subscriber %s not sent", sub.id)

    return send
