"""Build the raw bytes of each recipient's email from one prepared template.
Pure core: no network, no database, no file writes; the date and Message-ID come in.

email.message.EmailMessage costs ~3.7 ms a message; here the headers shared by every
recipient are encoded once per issue (prepare_message) and each message only
substitutes escaped values and quoted-printable-encodes its two parts (build_message).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.utils import format_datetime, parseaddr, quote

from .address import ascii_domain, is_plain_address
from .errors import InputError
from .models import PLACEHOLDERS, RenderedIssue
from .sanitize import clean_line

CRLF = "\r\n"
_MAX_NAME = 120
_MAX_SUBJECT = 250
_QP_LINE = 76  # RFC 2045 6.7: an encoded line, its soft break's "=" included
_QP_HARD = 75  # a line with no soft break: _join_qp may yet end it with one
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # what makes a display name need quotes (as email.utils has it)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who one message is for, and their personal links."""

    email: str
    name: str = ""
    unsubscribe_url: str = ""
    preferences_url: str = ""
    archive_url: str = ""
    away: str = ""  # " While you were away, ..." (core/audience.py away_line), or nothing


Segments = tuple[tuple[bool, str], ...]  # (is a placeholder, pre-encoded text or the placeholder)


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """The parts of an issue's email that are the same for every recipient.

    `text_qp` and `html_qp` are the two bodies quoted-printable-encoded once, cut at the
    placeholders: each message encodes only its own short values (see _join_qp).
    """

    head: str
    html: str
    text: str
    boundary: str
    unsubscribe_mailto: str = ""
    one_click: bool = True
    text_qp: Segments = ()
    html_qp: Segments = ()


def header_text(text: str) -> str:
    """`text` as it goes into a header: as is when plain ASCII, else RFC 2047-encoded.

    "=?" counts as not plain: a mail client decodes anything shaped like an encoded word,
    so a name or title written as "=?utf-8?q?x=0D=0ABcc:...?=" would come out as other
    text, even a line break. Encoded, it decodes back to exactly what was written.
    """
    if text.isascii() and "=?" not in text:
        return text
    return Header(text, "utf-8").encode(linesep=CRLF)


def address_header(name: str, email: str) -> str:
    """`Name <email>` for a header: the name cleaned of line breaks, encoded if not ASCII; the
    domain in A-labels. A local part that is not ASCII stays as it is (RFC 6532: only for a
    message sent with SMTPUTF8)."""
    return _address_header(_clean_name(name), email)


def _clean_name(name: str) -> str:
    return clean_line(name)[:_MAX_NAME]


def _address_header(name: str, email: str) -> str:
    """address_header of a name already cleaned (_clean_name)."""
    check_address(email)
    local, _, domain = email.rpartition("@")
    email = f"{local}@{ascii_domain(domain)}"
    if not name:
        return email
    if name.isascii() and "=?" not in name:  # formataddr's quoting, without its refusal of an address that is not ASCII
        return f'"{quote(name)}" <{email}>' if _SPECIALS.search(name) else f"{name} <{email}>"
    return f"{header_text(name)} <{email}>"


def check_address(email: str) -> None:
    """Refuse an address that could break out of its header."""
    if len(email) <= 254 and is_plain_address(email):
        return  # most addresses: _check_address_fully would pass it, at ten times the cost
    _check_address_fully(email)


def _check_address_fully(email: str) -> None:
    _, parsed = parseaddr(email)
    if (
        not email or parsed != email or email.count("@") != 1 or len(email) > 254
        or any(c.isspace() or c in '<>(),;:"\\[]' or ord(c) < 32 or ord(c) == 127 for c in email)
    ):
        raise InputError(f"not a usable email address: {email!r}")


def encode_subject(subject: str) -> str:
    return header_text(clean_line(subject)[:_MAX_SUBJECT])


def _list_id(value: str) -> str:
    """List-Id's words encoded like any text, its <id> left as it is (RFC 2919)."""
    value = clean_line(value)
    words, bracket, ident = value.rpartition("<")
    if not bracket or not ident.endswith(">") or ">" in ident[:-1]:
        return header_text(value)
    return f"{header_text(words.strip())} <{ident}" if words.strip() else f"<{ident}"


def prepare_message(
    rendered: RenderedIssue,
    *,
    sender: str,
    reply_to: str = "",
    list_id: str = "",
    unsubscribe_mailto: str = "",
    bulk: bool = True,
) -> MessageTemplate:
    """Encode once the headers every recipient shares."""
    name, addr = parseaddr(sender)
    headers = [
        f"From: {address_header(name, addr)}",
        f"Subject: {encode_subject(rendered.subject)}",
        "MIME-Version: 1.0",
    ]
    if reply_to:
        rname, raddr = parseaddr(reply_to)
        headers.append(f"Reply-To: {address_header(rname, raddr)}")
    if list_id:
        headers.append(f"List-Id: {_list_id(list_id)}")
    if bulk:
        headers.append("Precedence: bulk")
        headers.append("Auto-Submitted: auto-generated")
    boundary = "=_digest_" + secrets.token_hex(12)
    return MessageTemplate(
        head=CRLF.join(headers) + CRLF,
        html=rendered.html,
        text=rendered.text,
        boundary=boundary,
        unsubscribe_mailto=unsubscribe_mailto,
        text_qp=_encode_segments(rendered.text),
        html_qp=_encode_segments(rendered.html),
    )


_MARKERS = re.compile("|".join(re.escape(getattr(PLACEHOLDERS, f)) for f in PLACEHOLDERS.__dataclass_fields__))


def _encode_segments(body: str) -> Segments:
    """The body's static text QP-encoded once, with the placeholders left to fill."""
    body = body.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    out: list[tuple[bool, str]] = []
    last = 0
    for m in _MARKERS.finditer(body):
        out.append((False, _qp_exact(body[last:m.start()])))
        out.append((True, m.group(0)))
        last = m.end()
    out.append((False, _qp_exact(body[last:])))
    return tuple(out)


def _join_qp(segments: Segments, values: dict[str, str]) -> str:
    """The encoded body with each placeholder's value encoded between soft line breaks
    ("=" CRLF, which decoding removes), so that no line grows past 76 characters."""
    parts = []
    for is_marker, text in segments:
        parts.append(f"={CRLF}{_qp_exact(values[text])}={CRLF}" if is_marker else text)
    return "".join(parts)


def greeting(name: str) -> str:
    """How every mail to a reader opens: "Hi Name," (the name on one line, cut at 120
    characters) or "Hello,"."""
    return _greeting(_clean_name(name))


def _greeting(clean_name: str) -> str:
    return f"Hi {clean_name}," if clean_name else "Hello,"


def _values(recipient: Recipient, *, as_html: bool, name: str | None = None) -> dict[str, str]:
    """The placeholders' values; `name` is the recipient's name cleaned, when known."""
    name = _clean_name(recipient.name) if name is None else name
    values = {
        PLACEHOLDERS.greeting: _greeting(name),
        PLACEHOLDERS.unsubscribe_url: recipient.unsubscribe_url,
        PLACEHOLDERS.preferences_url: recipient.preferences_url,
        PLACEHOLDERS.archive_url: recipient.archive_url,
        PLACEHOLDERS.away: recipient.away,
    }
    return {k: html.escape(v, quote=True) for k, v in values.items()} if as_html else values


def personalise(template_text: str, recipient: Recipient, *, as_html: bool) -> str:
    """The issue text or HTML with the recipient's greeting and links in place."""
    out = template_text
    for marker, value in _values(recipient, as_html=as_html).items():
        out = out.replace(marker, value)
    return out


def build_message(template: MessageTemplate, recipient: Recipient, *, message_id: str, date: datetime) -> bytes:
    """One recipient's complete RFC 5322 message, CRLF line endings, no line over 998 bytes.
    ASCII, except the To header of an address whose local part is not (RFC 6532)."""
    name = _clean_name(recipient.name)
    headers = [
        f"To: {_address_header(name, recipient.email)}",
        f"Date: {_date_header(date.replace(microsecond=0), date.utcoffset())}",
        f"Message-ID: {message_id}",
    ]
    unsubscribe = []
    if recipient.unsubscribe_url:
        unsubscribe.append(f"<{_header_url(recipient.unsubscribe_url)}>")
    if template.unsubscribe_mailto:
        # The subject carries the reader's signed unsubscribe token (the link's last part):
        # the inbox acts on an unsubscribe mail only by it, never by its From line alone.
        token = recipient.unsubscribe_url.rpartition("/")[2] if recipient.unsubscribe_url else ""
        subject = f"unsubscribe%20{token}" if re.fullmatch(r"[A-Za-z0-9_.-]{20,300}", token) else "unsubscribe"
        unsubscribe.append(f"<mailto:{template.unsubscribe_mailto}?subject={subject}>")
    if unsubscribe:
        # One unfolded line: an encoded or folded List-Unsubscribe breaks the button.
        headers.append("List-Unsubscribe: " + ", ".join(unsubscribe))
        if recipient.unsubscribe_url and template.one_click:
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    headers.append(f'Content-Type: multipart/alternative; boundary="{template.boundary}"')
    text = _join_qp(template.text_qp, _values(recipient, as_html=False, name=name))
    body = _join_qp(template.html_qp, _values(recipient, as_html=True, name=name))
    b = template.boundary
    parts = "".join((  # one copy of the 30 KB, where a chain of + makes one per step
        template.head, CRLF.join(headers), CRLF, CRLF,
        f"--{b}{CRLF}",
        f'Content-Type: text/plain; charset="utf-8"{CRLF}Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}',
        text, CRLF,
        f"--{b}{CRLF}",
        f'Content-Type: text/html; charset="utf-8"{CRLF}Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}',
        body, CRLF,
        f"--{b}--{CRLF}",
    ))
    return parts.encode("ascii" if recipient.email.rpartition("@")[0].isascii() else "utf-8")


@functools.lru_cache(maxsize=8)
def _date_header(date: datetime, offset: timedelta | None) -> str:
    """The Date header's value: the same for every message of the same second (what it
    shows of the time), so written once a second rather than for each message. The
    offset is part of the key: equal datetimes may show different zones (or, in one
    zone, the two readings of a repeated hour)."""
    return format_datetime(date)


# Random characters in a Message-ID that names a reader: 96 bits, from the operating
# system's generator. A report or reply quoting one is tied to that reader (core/policy.py),
# so no one who did not receive the message may be able to make it up. Ids made before
# this rule (an issue's carried 10 characters of its public key) are told by their length.
MESSAGE_ID_RANDOM = 24
_UNGUESSABLE = re.compile(rf"<[^<>@\s]*\.[0-9a-f]{{{MESSAGE_ID_RANDOM}}}@[^<>\s]+>", re.I)


def make_message_id(domain: str, *parts: object) -> str:
    """A Message-ID on the sender's domain, unique per recipient and send, unguessable."""
    left = ".".join(str(p) for p in parts) + "." + secrets.token_hex(MESSAGE_ID_RANDOM // 2)
    return f"<{left}@{domain}>"


def issue_message_id(domain: str, issue_id: int, subscriber_id: int) -> str:
    """The Message-ID of one reader's copy of an issue: <digest.ISSUE.SUBSCRIBER.RANDOM@domain>."""
    return make_message_id(domain, "digest", issue_id, subscriber_id)


def acknowledgement_message_id(domain: str, question_id: int, dup_key: str) -> str:
    """The Message-ID of a question's acknowledgement: <ack.QUESTION.R@domain>, R 24 hex
    characters of a hash of the question's dup_key (itself a hash of the asker's address
    and words, kept only in the store): the inbox can check a complaint quoting it without
    keeping it, and no one who has not read the question can make it up."""
    digest = hashlib.sha256(f"ack.{question_id}.{dup_key}".encode()).hexdigest()[:MESSAGE_ID_RANDOM]
    return f"<ack.{question_id}.{digest}@{domain}>"


def unguessable(message_id: str) -> bool:
    """True for a Message-ID made by make_message_id (random enough to be evidence)."""
    return _UNGUESSABLE.fullmatch(message_id.strip()) is not None


def sender_address(sender: str) -> str:
    """The bare address of a "Name <address>" From line (the envelope sender)."""
    return parseaddr(sender)[1]


def sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def _header_url(url: str) -> str:
    if any(c in url for c in "\r\n\0<> ,"):
        raise InputError(f"link not usable in a header: {url!r}")
    return url


def _qp_exact(text: str) -> str:
    """Quoted-printable of `text`, every character kept, CRLF line breaks, lines cut to fit
    (_fit). b2a_qp picks CRLF soft breaks only when the data's first line ending is CRLF, so
    one is added and removed."""
    if "\r" in text or "\n" in text:  # most values (names, links) have no line break to mend
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    data = (text + "\r\n").encode("utf-8", "replace")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).decode("ascii").removesuffix("\r\n")
    if len(encoded) > _QP_HARD or encoded.startswith(".") or "\n." in encoded:  # else one short line: fits
        encoded = _fit(encoded)
    return encoded


def _fit(encoded: str) -> str:
    """Quoted-printable lines as SMTP and RFC 2045 6.7 want them:
    - none begins with ".": that dot becomes =2E, so that sending has no dot to double
      (RFC 5321 4.5.2): its replace then scans the message once and copies nothing, where
      two such lines cost it a second pass and a copy;
    - none is longer than 76 characters with its soft break's "=", or 75 without one, since
      _join_qp ends a part before a reader's value with "=" (b2a_qp itself writes 77 when a
      line ends in a space: 74 and "=20").
    A line too long is cut with a soft break, never inside an =XX."""
    lines = encoded.split("\r\n")
    if all(map(_fits, lines)):  # most do already (a reader's link: b2a_qp's lines, and a short last one)
        return encoded
    out = []
    for line in lines:
        while not _fits(line):
            if line.startswith("."):
                line = "=2E" + line[1:]
                continue
            cut = _QP_HARD - 1  # the first part: 74 characters and a soft break
            escape = line.rfind("=", cut - 2, cut)
            if escape != -1:  # an =XX would be split: it goes to the next line whole
                cut = escape
            out.append(line[:cut] + "=")
            line = line[cut:]
        out.append(line)
    return "\r\n".join(out)


def _fits(line: str) -> bool:
    """Whether an encoded line keeps _fit's rules (a last "=" is a soft break)."""
    return not line.startswith(".") and len(line) <= (_QP_LINE if line.endswith("=") else _QP_HARD)
