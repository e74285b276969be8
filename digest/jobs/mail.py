"""Single mails to one person (the double opt-in confirmation today; welcome and answer
notices next): compose, build, send once. A job (layer 3).

The web app never talks SMTP: `digest serve` hands it confirmation_mailer(...), a
callable, the way listmonk hands its HTTP layer hooks such as SendOptinConfirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from ..adapters.smtp import SMTPMailer
from ..core.address import wire_address
from ..core.compose import compose_confirmation
from ..core.config import Config
from ..core.errors import DigestError
from ..core.message import Recipient, build_message, make_message_id, sender_address, sender_domain
from ..core.models import Subscriber
from ..core.render import make_environment
from ..core.tokens import Links
from .ports import Mailer

log = logging.getLogger("digest.mail")

ConfirmationMailer = Callable[[Subscriber, datetime], None]


def mail_confirmation(config: Config, sub: Subscriber, links: Links, now: datetime, mailer: Mailer) -> str | None:
    """Mail the double opt-in link; None when the server took it, else why not."""
    try:
        env = make_environment(config.newsletter.templates_dir)
        template = compose_confirmation(config, name=sub.name, confirm_url=links.confirm(sub, now), env=env)
        # The domain in A-labels; a local part that is not ASCII needs the server's SMTPUTF8,
        # and send_one refuses it (InputError) when the server has none.
        address = wire_address(sub.email, smtputf8=True)
        message = build_message(template, Recipient(address, sub.name), date=now,
                                message_id=make_message_id(sender_domain(config.newsletter.from_), "confirm", sub.id))
        reply = mailer.send_one(wire_address(sender_address(config.newsletter.from_), smtputf8=False), address, message)
    except DigestError as exc:
        return str(exc)
    return None if reply.code == 250 else f"refused: {reply.code} {reply.text}"


def send_confirmation(config: Config, sub: Subscriber, links: Links, now: datetime, mailer: Mailer) -> bool:
    """Mail the double opt-in link; True when the server took it. Failures, whatever they
    are, are logged, not raised: this runs after the web response has gone, where nobody
    could see an error, and an exception would only end the background task noisily."""
    try:
        problem = mail_confirmation(config, sub, links, now, mailer)
    except Exception:  # noqa: BLE001 - a bug here must not crash the web app's background task
        log.exception("confirmation mail to subscriber %s not sent", sub.id)
        return False
    if problem is not None:
        log.warning("confirmation mail to subscriber %s not sent: %s", sub.id, problem)
    return problem is None


def confirmation_mailer(config: Config, secret: str, mailer: Mailer | None = None) -> ConfirmationMailer:
    """The web app's hook: mail a confirmation link to one subscriber."""
    links = Links(config.web.base_url, secret)
    chosen = mailer or SMTPMailer(config.smtp)

    def send(sub: Subscriber, now: datetime) -> None:
        send_confirmation(config, sub, links, now, chosen)

    return send
