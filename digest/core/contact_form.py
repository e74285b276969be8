"""The Blogger Contact form's notification mail: who wrote, from which address, what. Pure
core: parses bytes it is given; no network, no database, no clock, no file writes.

Blogger's ContactForm widget mails the blog's owner; the format is not documented, so this
is the one place that knows it, with fixtures in tests/fixtures/contact_form/. The mail is
recognised by its subject ("Message from <blog>", "... contact form ...") or its sender
(blogger.com or google.com), and its body by labelled fields, in either of two layouts:

    Name: Jane Reader            Name
    Email: jane@example.com      Jane Reader
    Message: I have two ...
                                 Email
                                 jane@example.com

                                 Message
                                 I have two ...

in the text part, or the HTML part reduced to text (bold labels and all). The message
runs to the end, less a signature ("-- ") or a footer that says the mail came from the
form. Anything else (no Email field, no Message field, fields out of order) is not
guessed at: parse_contact_form returns None, and the mail stays unsorted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr

from .mailview import read_email
from .questions import clean_question_text, html_to_text
from .sanitize import clean_line

_SUBJECT = re.compile(r"\bmessage from\b|\bcontact[- ]?form\b|\bcontact me\b", re.I)
_SENDERS = ("blogger.com", "google.com", "blogspot.com")
_LABEL = re.compile(r"^\s*+\**+\s*+(?P<label>your name|name|e-?mail(?: address)?|your e-?mail|message|your message)"
                    r"\s*\**\s*(?P<colon>:)?\s*\**\s*(?P<rest>.*)$", re.I)
_FOOTER = re.compile(r"^\s*(this (message|e-?mail) was sent|sent (from|via|using|through) .{0,80}contact|"
                     r"you received this (message|e-?mail))", re.I)
_FIELDS = {"name": "name", "your name": "name", "message": "message", "your message": "message"}
_ADDRESS = re.compile(r"^<?(?P<addr>[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>?$")


@dataclass(frozen=True, slots=True)
class ContactFormMessage:
    """What a reader typed into the Contact form. `email` is unverified: anyone can type anyone's."""

    name: str
    email: str
    text: str


def from_the_form_service(sender: str) -> bool:
    """True for an address of the service that sends the notifications (blogger.com and
    the like): never a reader's, so never one to answer."""
    domain = sender.lower().rpartition("@")[2]
    return any(domain == d or domain.endswith("." + d) for d in _SENDERS)


def parse_contact_form(raw: bytes) -> ContactFormMessage | None:
    """The reader's name, address and message from a Contact-form notification; None when
    the mail is not one, or not in a layout this module knows."""
    message = read_email(raw)
    if message is None:
        return None
    try:  # the default policy parses headers when they are read, and raises there (an encoded CR/LF in a name)
        subject = clean_line(str(message.get("Subject", "")))
        sender = parseaddr(str(message.get("From", "")))[1].lower()
        if not (_SUBJECT.search(subject) or from_the_form_service(sender)):
            return None
        body = _body_text(message)
    except Exception:  # noqa: BLE001 - a mail the library cannot read is not one we know
        return None
    return parse_fields(body) if body else None


def parse_fields(body: str) -> ContactFormMessage | None:
    """The labelled fields of a notification's text, in one of the two layouts; None otherwise."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _label(lines[i])
        if m is None:
            i += 1
            continue
        field = _FIELDS.get(m.group("label").lower(), "email")
        rest = m.group("rest").strip()
        if field == "message":
            if "email" not in found:
                return None  # a message before any address: not a layout we know
            found["message"] = "\n".join([rest, *lines[i + 1:]]) if rest else "\n".join(lines[i + 1:])
            break
        i += 1
        if not rest:  # the value on the next line that holds something, unless that is the next label
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _label(lines[j]) is None:
                rest, i = lines[j].strip(), j + 1
        found.setdefault(field, rest)
    address = _ADDRESS.match(found.get("email", "").strip())
    if not address or "message" not in found:
        return None
    text = clean_question_text(_without_footer(found["message"]))
    if not text:
        return None
    return ContactFormMessage(name=clean_line(found.get("name", ""))[:100], email=address.group("addr"), text=text)


def _label(line: str) -> re.Match[str] | None:
    """A field's label: "Email: value", or "Email" alone on its line (not "Emailing ...")."""
    m = _LABEL.match(line)
    return m if m and (m.group("colon") or not m.group("rest").strip()) else None


def _without_footer(text: str) -> str:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if _FOOTER.match(line):
            return "\n".join(lines[:i])
    return text


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: the bytes, as best they decode
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if part.get_content_type() == "text/html" else content
