"""The inbox's mail that is not a bounce, a complaint, an unsubscribe or an auto-reply: a
reader's question, handed to the questions loop. A job (layer 3).

Three shapes arrive: the Blogger Contact form's notification to the owner (the reader's
name, address and message are in its body: core/contact_form.py), mail written to
[question] email, and a reader's reply to the newsletter (Reply-To goes to the questions
address; In-Reply-To names the issue's Message-ID, which links the question to its
subscriber: never the From line alone).
"""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from ..core.config import Publication
from ..core.contact_form import from_the_form_service, parse_contact_form
from ..core.errors import InputError
from ..core.mailview import view_message
from ..core.returns import Sorted
from ..core.sanitize import clean_line
from .ports import MailParts
from .questions import take_question


def take_mailed_question(pub: Publication, parts: MailParts, raw: bytes, found: Sorted, *, now: datetime) -> str:
    """Keep the question this mail holds and acknowledge it once; the outcome, as one line
    for `digest inbox` (it never names the asker: inbox lines are logged)."""
    form = parse_contact_form(raw)
    in_reply_to = ""
    if form is not None:
        address, name, text, source, is_html = form.email, form.name, form.text, "contact-form", False
    else:
        view = view_message(raw)
        headers = _headers(raw)
        address, name = found.sender, _display_name(headers)
        text, is_html = (view.text, False) if view.text.strip() else (view.html, True)
        in_reply_to = " ".join(clean_line(str(headers.get(h) or ""))[:2000] for h in ("In-Reply-To", "References"))
        source = "reply" if found.original_ids or in_reply_to.strip() else "mail"
    if not address:
        return "no address to answer: kept unsorted"
    if from_the_form_service(address):  # the service's own address: never a reader to acknowledge
        return ("a Contact-form notification in a layout not known (core/contact_form.py): kept unsorted" if form is None
                else "the Contact form's Email field names the form service: kept unsorted")
    try:
        intake = take_question(pub, parts, email=address, name=name, text=text, source=source,
                               consent_to_quote=False, display_name="", now=now, message_id=found.message_id or None,
                               in_reply_to=in_reply_to.strip() or None, is_html=is_html)
    except InputError as exc:
        return f"not a question we can keep ({exc.message}): kept unsorted"
    question = intake.question
    if not intake.created:
        return f"question {question.id} again: merged, no second acknowledgement"
    acknowledged = "acknowledged" if intake.acknowledged else f"not acknowledged ({intake.why_not})"
    linked = f", from subscriber {question.subscriber_id}" if question.subscriber_id else ""
    return f"question {question.id} ({source}{linked}), {acknowledged}"


def _headers(raw: bytes) -> Message:
    """The message's headers only, as written (the body is not parsed again)."""
    return BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def _display_name(headers: Message) -> str:
    try:
        return clean_line(parseaddr(clean_line(str(headers.get("From") or ""))[:2000])[0])[:100]
    except RecursionError:  # nested comments: parseaddr recurses once per "("
        return ""
