"""Read a caught message the way a developer wants to see it: who, what, its text and HTML
parts decoded, its links whole. Pure core: no network, no database, no clock, no file
writes; the raw bytes come in.

The raw .eml is quoted-printable: a link copied out of it is cut at a soft line break.
Decoding the parts here is what makes `digest mailbox` links clickable.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass
from datetime import datetime
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


# The email package's header parser (policy.default) takes time that grows with the square
# of a header's length or worse: a 16,000-character From took 2 s, a 40,000-character To
# 20 s, and [inbox] max_message_bytes lets a megabyte through. The headers it parses for us
# are kept short, each and together (every part's Content-Type is parsed while reading).
MAX_HEADER_CHARS = 2_000
MAX_PARSED_HEADER_CHARS = 20_000
_PARSED = frozenset({"subject", "from", "to", "date", "content-type", "content-disposition", "content-transfer-encoding"})


def read_email(raw: bytes) -> EmailMessage | None:
    """`raw` as the email package's EmailMessage; None when it cannot read it, or when a
    header it would parse is longer than MAX_HEADER_CHARS (or all of them together longer
    than MAX_PARSED_HEADER_CHARS)."""
    try:
        plain = email.message_from_bytes(raw, policy=email.policy.compat32)  # headers left as written
        lengths = [len(str(v)) for part in plain.walk() for k, v in part.raw_items() if k.lower() in _PARSED]
        if any(n > MAX_HEADER_CHARS for n in lengths) or sum(lengths) > MAX_PARSED_HEADER_CHARS:
            return None
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # noqa: BLE001 - the parser trips on some Content-Type lines (IndexError)
        return None
    return message if isinstance(message, EmailMessage) else None


def view_message(raw: bytes) -> MailView:
    """The message's headers and its text and HTML parts, decoded; broken parts come out empty
    (a message read_email cannot read, all of it)."""
    message = read_email(raw)
    if message is None:
        return MailView("", "", "", "", "", "")
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


def received_label(name: str) -> str:
    """When a caught message arrived, as a person reads it, from its file name
    ("20261206T033238-00001.eml", UTC): "6 December 2026, 03:32:38 UTC"."""
    try:
        when = datetime.strptime(name[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return name
    return f"{when.day} {when:%B %Y, %H:%M:%S} UTC"


def date_label(header: str) -> str:
    """A Date header as a person reads it: "Sun, 06 Dec 2026 05:21:35 +0000" -> "6 December
    2026, 05:21:35 UTC"; as written when it does not parse."""
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return header
    offset = when.strftime("%z")
    zone = "UTC" if offset in ("+0000", "-0000", "") else f"UTC{offset[:3]}:{offset[3:]}"
    return f"{when.day} {when:%B %Y, %H:%M:%S} {zone}"
