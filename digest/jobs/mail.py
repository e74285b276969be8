"""Single mails to one person (the double opt-in confirmation, the welcome mail; answer
notices next): compose, build, send once. A job (layer 3).

The web app never talks SMTP: `digest serve` hands it confirmation_mailer(...) and
welcome_mailer(...), callables, the way listmonk hands its HTTP layer hooks such as
SendOptinConfirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from ..adapters.ledger import Ledger
from ..adapters.smtp import SMTPMailer
from ..adapters.store import Store
from ..core.address import wire_address
from ..core.compose import compose_confirmation, compose_preferences_link, compose_welcome
from ..core.config import Config
from ..core.errors import DigestError
from ..core.group import answered_questions
from ..core.message import MessageTemplate, Recipient, build_message, make_message_id, sender_address, sender_domain
from ..core.models import Post, Subscriber
from ..core.render import make_environment
from ..core.tokens import Links
from .ports import Mailer

log = logging.getLogger("digest.mail")

ConfirmationMailer = Callable[[Subscriber, datetime], bool]  # True: the server took it
WelcomeMailer = Callable[[Subscriber, datetime], None]
PreferencesLinkMailer = Callable[[Subscriber, datetime], None]
WELCOME_QUESTIONS = 3       # answered questions in the welcome mail
WELCOME_LOOKBACK_ISSUES = 12  # ... taken from the posts of this many recent issues


def mail_confirmation(config: Config, sub: Subscriber, links: Links, now: datetime, mailer: Mailer) -> str | None:
    """Mail the double opt-in link; None when the server took it, else why not."""
    try:
        env = make_environment(config.newsletter.templates_dir)
        template = compose_confirmation(config, confirm_url=links.confirm(sub, now), env=env)
    except DigestError as exc:
        return str(exc)
    # Nor in the To header: the name was typed by whoever typed the address.
    return _send_single(config, replace(sub, name=""), template, "confirm", now, mailer)


def send_confirmation(config: Config, sub: Subscriber, links: Links, now: datetime, mailer: Mailer) -> bool:
    """Mail the double opt-in link; True when the server took it. Failures, whatever they
    are, are logged, not raised: this runs after the web response has gone, where nobody
    could see an error, and an exception would only end the background task noisily."""
    try:
        problem = mail_confirmation(config, sub, links, now, mailer)
    except Exception:
        log.exception("confirmation mail to subscriber %s not sent", sub.id)
        return False
    if problem is not None:
        log.warning("confirmation mail to subscriber %s not sent: %s", sub.id, problem)
    else:
        log.info("confirmation mail to subscriber %s sent", sub.id)
    return problem is None


def confirmation_mailer(config: Config, secret: str, mailer: Mailer | None = None) -> ConfirmationMailer:
    """The web app's hook: mail a confirmation link to one subscriber."""
    links = Links(config.web.base_url, secret)
    chosen = mailer or SMTPMailer(config.smtp)

    def send(sub: Subscriber, now: datetime) -> bool:
        return send_confirmation(config, sub, links, now, chosen)

    return send


def preferences_link_mailer(config: Config, secret: str, mailer: Mailer | None = None) -> PreferencesLinkMailer:
    """The web app's hook for an expired settings link: mail a fresh one to the subscriber's
    own address. Failures are logged, never raised (the page has answered already)."""
    links = Links(config.web.base_url, secret)
    chosen = mailer or SMTPMailer(config.smtp)

    def send(sub: Subscriber, now: datetime) -> None:
        try:
            env = make_environment(config.newsletter.templates_dir)
            template = compose_preferences_link(config, preferences_url=links.preferences(sub.id, now), env=env)
            problem = _send_single(config, replace(sub, name=""), template, "prefs", now, chosen)
        except Exception:
            log.exception("settings link to subscriber %s not sent", sub.id)
            return
        if problem is not None:
            log.warning("settings link to subscriber %s not sent: %s", sub.id, problem)

    return send


def send_welcome(config: Config, sub: Subscriber, links: Links, now: datetime, mailer: Mailer,
                 answered: Sequence[Post] = ()) -> bool:
    """Mail the welcome (when issues come, how to ask, a few `answered` questions); True when
    the server took it. Like the confirmation, it runs after the web response: failures are
    logged, not raised."""
    try:
        env = make_environment(config.newsletter.templates_dir)
        template = compose_welcome(config, name=sub.name, answered=answered,
                                   preferences_url=links.preferences(sub.id, now), env=env)
    except DigestError as exc:
        log.error("welcome mail to subscriber %s not composed: %s", sub.id, exc)
        return False
    problem = _send_single(config, sub, template, "welcome", now, mailer)
    if problem is not None:
        log.warning("welcome mail to subscriber %s not sent: %s", sub.id, problem)
    else:
        log.info("welcome mail to subscriber %s sent", sub.id)
    return problem is None


def _send_single(config: Config, sub: Subscriber, template: MessageTemplate, kind: str, now: datetime,
                 mailer: Mailer) -> str | None:
    """Build one person's message of `kind` and send it once; None when the server took it,
    else why not. The domain goes in A-labels; a local part that is not ASCII needs the
    server's SMTPUTF8, and send_one refuses it (InputError) when the server has none."""
    try:
        address = wire_address(sub.email, smtputf8=True)
        message = build_message(template, Recipient(address, sub.name), date=now,
                                message_id=make_message_id(sender_domain(config.newsletter.from_), kind, sub.id))
        reply = mailer.send_one(wire_address(sender_address(config.newsletter.from_), smtputf8=False), address, message)
    except DigestError as exc:
        return str(exc)
    return None if reply.code == 250 else f"refused: {reply.code} {reply.text}"


def recent_answers(config: Config, store: Store) -> tuple[Post, ...]:
    """The answered questions of the most recent issues sent, newest first, a few."""
    posts = [p for issue in Ledger(store).done_issues(WELCOME_LOOKBACK_ISSUES) for p in issue.posts]
    return answered_questions(posts, config.question.labels, WELCOME_QUESTIONS)


def welcome_mailer(config: Config, secret: str, store: Store, mailer: Mailer | None = None) -> WelcomeMailer:
    """The web app's second hook: mail the welcome to one subscriber who just confirmed."""
    links = Links(config.web.base_url, secret)
    chosen = mailer or SMTPMailer(config.smtp)

    def send(sub: Subscriber, now: datetime) -> None:
        try:
            answered = recent_answers(config, store)
        except DigestError as exc:  # the welcome still goes, without the examples
            log.warning("welcome mail to subscriber %s: no answered questions (%s)", sub.id, exc)
            answered = ()
        try:
            send_welcome(config, sub, links, now, chosen, answered)
        except Exception:
            log.exception("welcome mail to subscriber %s not sent", sub.id)

    return send
