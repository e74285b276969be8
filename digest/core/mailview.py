"""Read a caught message the way a developer wants to see it: who, what, its text and HTML
parts decoded, its links whole. Pure core: no network, no database, no clock, no file
writes; the raw bytes come in.

The raw .eml is quoted-printable: a link copied out of it is cut at a soft line break.
Decoding the parts here is what makes `digest mailbox` links clickable.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from dataclasses import dataclass
from email.message import EmailMessage

_LINK = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class MailView:
    """One message, decoded."""

    subject: str
    sender: str
    to: str
    date: str
    text: str
    html: str

    @property
    def links(self) -> tuple[str, ...]:
        """Every http(s) link of the text part (else of the HTML part), in order, each once."""
        found = _LINK.findall(self.text) or [html.unescape(u) for u in _LINK.findall(self.html)]
        return tuple(dict.fromkeys(u.rstrip(".,;:") for u in found))

    @property
    def first_link(self) -> str:
        return self.links[0] if self.links else ""


def view_message(raw: bytes) -> MailView:
    """The message's headers and its text and HTML parts, decoded; broken parts come out empty
    (a message the parser cannot read at all, all of it)."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # noqa: BLE001 - the parser trips on some Content-Type lines (IndexError)
        return MailView("", "", "", "", "", "")
    assert isinstance(message, EmailMessage)
    return MailView(
        subject=_header(message, "Subject"), sender=_header(message, "From"), to=_header(message, "To"),
        date=_header(message, "Date"), text=_part(message, "plain"), html=_part(message, "html"),
    )


def _header(message: EmailMessage, name: str) -> str:
    try:
        return " ".join(str(message.get(name, "")).split())
    except Exception:  # noqa: BLE001 - a malformed header trips the parser (ValueError, IndexError, AttributeError)
        return ""


def _part(message: EmailMessage, subtype: str) -> str:
    try:
        part = message.get_body(preferencelist=(subtype,))
        return str(part.get_content()) if part is not None else ""
    except Exception:  # noqa: BLE001 - an unknown charset, a broken part or Content-Type the parser trips on
        return ""


def text_as_html(text: str) -> str:
    """Plain text as safe HTML with its links made clickable."""
    out, last = [], 0
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(".,;:")
        out.append(html.escape(text[last:match.start()]))
        out.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        last = match.start() + len(url)
    out.append(html.escape(text[last:]))
    return "".join(out)
