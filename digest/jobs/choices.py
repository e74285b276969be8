"""The mails of readers' choices (core/choice_mail.py): the congratulation of "I got the
job!", a new address's confirmation, the word to a new address already on the list, the
old address's one notice. A job (layer 3): a template and a few lines, sent through the
outbox as the confirmation is (mail.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from ..core.compose import compose_choice_mail
from ..core.config import Publication
from ..core.errors import DigestError
from ..core.message import Recipient
from ..core.models import Subscriber
from ..core.tokens import Links
from .mail import record_bounce
from .ports import MailParts

log = logging.getLogger("digest.mail")

ChoiceMailer = Callable[[str, Subscriber, str, datetime, str], None]  # kind, subscriber, to, now, nonce


def choice_mailer(pub: Publication, parts: MailParts) -> ChoiceMailer:
    """The web app's hook for the mails of readers' choices (core/choice_mail.py KINDS):
    `send(kind, subscriber, to, now, nonce)` mails `to` (the reader's address, the new one,
    or the old one); "job" carries the link to come back, "address" the new address's
    confirmation link (`nonce`: the change it confirms). Only a mail to the reader's own
    address marks them bounced when it bounces. Failures are logged, never raised (the page
    has answered already)."""

    def send(kind: str, sub: Subscriber, to: str, now: datetime, nonce: str = "") -> None:
        links = Links(pub.base_url, parts.outbox.secret)
        link = {"job": links.comeback(sub.id, now), "address": links.address(sub.id, nonce, now)}.get(kind, "")
        try:
            template = compose_choice_mail(pub, kind, link=link)
            sent = parts.outbox.send_now(template, Recipient(to), kind=f"choice-{kind}", ref=sub.id, now=now,
                                         record=record_bounce(parts.ledger) if to == sub.email else None)
            problem = sent.refusal
        except DigestError as exc:
            problem = str(exc)
        except Exception:
            log.exception("%s mail of subscriber %s not sent", kind, sub.id)
            return
        if problem is not None:
            log.warning("%s mail of subscriber %s not sent: %s", kind, sub.id, problem)

    return send
