"""The mails of readers' choices (core/choice_mail.py): the congratulation of "I got the
job!", a new address's confirmation, the word to a new address already on the list, the
old address's one notice. A job (layer 3): a template and a few lines, sent as the
confirmation is (mail.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from ..core.compose import compose_choice_mail
from ..core.config import Config
from ..core.models import Subscriber
from ..core.tokens import Links
from .mail import _send_single
from .ports import Mailer

log = logging.getLogger("digest.mail")

ChoiceMailer = Callable[[str, Subscriber, str, datetime, str], None]  # kind, subscriber, to, now, nonce


def choice_mailer(config: Config, secret: str, mailer: Mailer) -> ChoiceMailer:
    """The web app's hook for the mails of readers' choices (core/choice_mail.py KINDS):
    `send(kind, subscriber, to, now, nonce)` mails `to` (the new address, or the old one);
    "job" carries the link to come back, "address" the new address's confirmation link
    (`nonce`: the change it confirms). A template and these few lines, like the
    confirmation; failures are logged, never raised (the page has answered already)."""
    links = Links(config.web.base_url, secret)

    def send(kind: str, sub: Subscriber, to: str, now: datetime, nonce: str = "") -> None:
        link = {"job": links.comeback(sub.id, now), "address": links.address(sub.id, nonce, now)}.get(kind, "")
        try:
            template = compose_choice_mail(config, kind, link=link)
            problem = _send_single(config, replace(sub, email=to, name=""), template, f"choice-{kind}", now, mailer)
        except Exception:
            log.exception("%s mail of subscriber %s not sent", kind, sub.id)
            return
        if problem is not None:
            log.warning("%s mail of subscriber %s not sent: %s", kind, sub.id, problem)

    return send
