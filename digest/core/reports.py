"""Reading what a bounce or a complaint reports: the failed recipients and their status
codes, the Message-IDs and envelope senders of the mail it is about. Pure core: no
network, no database, no clock, no file writes; a parsed message in, records out.

RFC 3464 delivery reports (multipart/report; report-type=delivery-status) are read from
their own per-recipient fields (Final-Recipient, Action, Status). Everything else that
looks like a bounce (qmail's QSBMF, Exim's text, Yahoo's, old Exchange's) goes to
flufl.bounce's detectors, and each address it finds gets the enhanced status code
written near it in the text ("550 5.1.1", "(#5.1.1)"), or only its class.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"\b([45])\d\d\b")
_NEAR = 400  # characters after an address in which its status code is looked for
# A delay warning, not a failure. flufl.bounce's SimpleMatch runs before SimpleWarning and
# takes Exim's "has not yet been delivered ... after more than 24 hours" for a failure.
_WARNING = re.compile(r"has not yet been delivered|this is a warning only|still being retried|"
                      r"delivery attempts will continue|will be retried|^subject: (warning|delayed)", re.I | re.M)


@dataclass(frozen=True)
class Failure:
    """One recipient a report says could not be reached, with its status code."""

    address: str  # lower-cased; "" when the report is too garbled to name one
    status: str   # "5.1.1"; "5.0.0" or "4.0.0" when only permanent or transient is known

    @property
    def hard(self) -> bool:
        """Permanent and the address is to blame: 5.x.x, except 5.7.x (policy, spam,
        authentication: the sender's problem, as for SMTP replies) and 5.2.2 (a full
        mailbox: it may empty), which count like a delay."""
        return self.status.startswith("5.") and not self.status.startswith(("5.7.", "5.2.2"))


def text_of(part: Message) -> str:
    """A leaf part's payload as text, whatever its transfer encoding or (wrong) charset."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken encoding: the raw payload will do
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except (LookupError, ValueError):  # an unknown or unusable charset name
        return data.decode("latin-1")


def whole_text(msg: Message) -> str:
    """Every header and every text payload of the message and of the messages it carries."""
    out: list[str] = []
    for part in msg.walk():
        out.extend(f"{k}: {v}" for k, v in part.raw_items())
        if not part.is_multipart():
            out.append(text_of(part))
    return "\n".join(out)


def status_code(text: str) -> str | None:
    m = _STATUS.search(text)
    return ".".join(m.groups()) if m else None


def _address(value: str) -> str:
    """The address of a report field: "rfc822; <a@b.c>" -> "a@b.c"."""
    value = value.rpartition(";")[2] if ";" in value else value
    return value.strip().strip("<>").strip().lower()


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # not parsed into blocks: parse each paragraph
        return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\s*\r?\n", payload) if block.strip()]
    return []


def dsn_failures(msg: Message) -> list[Failure]:
    """The failed and delayed recipients of an RFC 3464 report."""
    failures: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _blocks(part):
            recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            if not recipient:
                continue
            action = str(block.get("Action") or "").strip().lower()
            if action in ("delivered", "relayed", "expanded"):
                continue
            status = status_code(str(block.get("Status") or "")) or status_code(str(block.get("Diagnostic-Code") or ""))
            if action == "delayed":
                status = "4" + (status or "4.0.0")[1:]
            elif status is None:
                status = "5.0.0" if action == "failed" else "4.0.0"
            if status.startswith(("4", "5")):
                failures.append(Failure(_address(recipient), status))
    return failures


def heuristic_failures(raw: bytes, text: str) -> list[Failure]:
    """The failed recipients flufl.bounce's detectors find in a non-standard bounce."""
    try:
        temporary, permanent = all_failures(_for_flufl(raw))
    except Exception:  # noqa: BLE001 - third-party heuristics on hostile input: finding nothing is the answer
        return []
    found: dict[str, Failure] = {}
    warning = bool(_WARNING.search(text))
    for addresses, cls in ((permanent, "4" if warning else "5"), (temporary, "4")):
        for raw_address in sorted(addresses):
            address = _address(raw_address.decode("ascii", "replace"))
            if "@" not in address or address in found:
                continue
            near = _status_near(text, address)
            found[address] = Failure(address, cls + (near[1:] if near else ".0.0"))
    return list(found.values())


def _for_flufl(raw: bytes) -> Message:
    """The message as flufl.bounce's detectors can read it: parsed from text (bytes that are
    not UTF-8 in a header would make it a Header object, which some call .lower() on), with
    a From they can parse (Yale's takes the first address of it unguarded)."""
    msg = email.message_from_string(raw.decode("utf-8", "replace"))
    if not getaddresses([str(msg.get("From", ""))]):
        del msg["From"]
        msg["From"] = "unknown@invalid"
    return msg


def _status_near(text: str, address: str) -> str | None:
    lower = text.lower()
    start = lower.find(address)
    while start >= 0:
        window = text[start + len(address): start + len(address) + _NEAR]
        code = status_code(window)
        if code:
            return code
        basic = _BASIC.search(window)
        if basic:
            return f"{basic.group(1)}.0.0"
        start = lower.find(address, start + 1)
    return None


@dataclass(frozen=True)
class Feedback:
    """What an ARF complaint (RFC 5965) says about the message complained of."""

    feedback_type: str
    recipients: tuple[str, ...]   # Original-Rcpt-To, else the original's To (often redacted)


def arf_feedback(msg: Message) -> Feedback:
    feedback_type, recipients = "", []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/feedback-report":
            for block in _blocks(part):
                feedback_type = feedback_type or str(block.get("Feedback-Type") or "").strip().lower()
                recipients += [_address(str(v)) for v in block.get_all("Original-Rcpt-To") or []]
        elif kind in ("message/rfc822", "text/rfc822-headers") and not recipients:
            original = _original_headers(part)
            if original is not None:
                recipients += [a.lower() for _, a in getaddresses([str(v) for v in original.get_all("To") or []]) if "@" in a]
    return Feedback(feedback_type or "abuse", tuple(dict.fromkeys(r for r in recipients if "@" in r)))


def _original_headers(part: Message) -> Message | None:
    if part.get_content_type() == "text/rfc822-headers":
        return HeaderParser().parsestr(text_of(part))
    payload = part.get_payload()
    return payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
