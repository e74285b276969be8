"""The rules of subscribing: addresses, topics, double opt-in decisions, CSV rows.
Pure core: no network (email-validator runs without DNS), no database, no file writes,
no clock (the time comes in as an argument).
"""

from __future__ import annotations

import codecs
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email

from .address import deliverable, email_key
from .errors import InputError
from .group import label_key
from .message import check_address
from .models import Subscriber
from .policy import Evidence, allowed, move
from .sanitize import clean_line

MAX_NAME = 100


def normalise_email(raw: str) -> tuple[str, str]:
    """(address as it will be written, the key that makes it unique), or InputError.

    The domain is lower-cased (and kept in Unicode: it goes out in IDNA 2008 A-labels); the
    key (core/address.py email_key) folds the ASCII letters of the local part too, since
    "Ana@" and "ana@" are the same reader at every real mail provider, and nothing else. A
    local part that is not ASCII is accepted: servers that offer SMTPUTF8 carry it. An
    address that no server could take is refused.
    """
    text = (raw or "").strip()
    if not text or len(text) > 254 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError(f"not a valid email address: {raw!r}")
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InputError(f"not a valid email address: {raw!r} ({exc})") from None
    email = f"{checked.local_part}@{checked.domain.lower()}"
    try:  # what the sender will do with it: refused here, not at every send
        check_address(deliverable(email))
    except InputError as exc:
        raise InputError(f"not a deliverable email address: {raw!r} ({exc.message})") from None
    return email, email_key(email)


def clean_name(raw: str | None) -> str:
    return clean_line(raw or "")[:MAX_NAME]


def topic_names(topics: Sequence[tuple[str, str]]) -> list[str]:
    """The topics a reader can choose, in display order."""
    out: list[str] = []
    for _, topic in topics:
        if topic not in out:
            out.append(topic)
    return out


def parse_topics(raw: str | Iterable[str], topics: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """Chosen topics as their display names; "" or none chosen means every topic."""
    items = [t for part in ([raw] if isinstance(raw, str) else raw) for t in part.replace(";", ",").split(",")]
    known = {label_key(name): name for name in topic_names(topics)}
    chosen: list[str] = []
    for item in items:
        if not item.strip():
            continue
        name = known.get(label_key(item))
        if name is None:
            raise InputError(f"unknown topic {item.strip()!r} (topics: {', '.join(known.values())})")
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen) if len(chosen) < len(known) else ()


@dataclass(frozen=True)
class SubscribeDecision:
    """What a subscribe request does: the row's new state, and whether to mail a link."""

    status: str
    nonce: str
    send_confirmation: bool
    changed: bool


def new_nonce() -> str:
    """A confirmation link's single-use nonce."""
    return secrets.token_urlsafe(12)


def decide_subscribe(existing: Subscriber | None, *, now: datetime, resend_after: timedelta) -> SubscribeDecision:
    """Double opt-in: new, unsubscribed and bounced addresses must confirm (again).

    A pending address gets another mail only once `resend_after` has passed since the last
    one (subscription bombing); a confirmed one gets nothing and stays as it is. The caller
    answers the same way in every case, so the page tells nothing of the list.
    """
    if existing is None or allowed(Evidence.SUBSCRIBE_FORM, existing.status):
        return SubscribeDecision(move(Evidence.SUBSCRIBE_FORM).target.value, new_nonce(), True, True)
    if existing.status == "pending":
        due = existing.confirm_sent_at is None or now - existing.confirm_sent_at >= resend_after
        return SubscribeDecision("pending", existing.confirm_nonce or new_nonce(), due, due)
    return SubscribeDecision(existing.status, existing.confirm_nonce, False, False)


def topics_on_return(existing: Subscriber | None, chosen: tuple[str, ...]) -> tuple[str, ...]:
    """The topics a subscribe request records: those ticked; none ticked by someone coming
    back (unsubscribed or bounced earlier): the topics they had chosen before."""
    if not chosen and existing is not None and existing.status in ("unsubscribed", "bounced"):
        return existing.topics
    return chosen


@dataclass(frozen=True)
class CSVRow:
    line: int
    email: str
    key: str
    name: str
    topics: tuple[str, ...]


def parse_csv_row(line: int, row: Sequence[str], topics: Sequence[tuple[str, str]]) -> CSVRow:
    """One CSV row (email[,name[,topics]]) checked, or InputError naming the line."""
    if not row or not any(cell.strip() for cell in row):
        raise InputError(f"line {line}: empty row")
    if len(row) > 3:
        raise InputError(f"line {line}: {len(row)} columns, expected email[,name[,topics]]")
    row = [restore_cell(cell) for cell in row]
    try:
        email, key = normalise_email(row[0])
        chosen = parse_topics(row[2], topics) if len(row) > 2 else ()
    except InputError as exc:
        raise InputError(f"line {line}: {exc.message}") from None
    return CSVRow(line, email, key, clean_name(row[1] if len(row) > 1 else ""), chosen)


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...),
# +cmd|...). OWASP's advice: write such a cell with a ' in front, which spreadsheets show
# as text. Even an address can start with = + or - ("=1+2@example.com" is valid).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(text: str) -> str:
    """A CSV cell that no spreadsheet reads as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def restore_cell(text: str) -> str:
    """The cell neutralise_cell wrote, as it was (a file we exported imports unchanged)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


def decode_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 file read as bytes (a BOM dropped), each with its line end; a
    lone CR ends a line as CRLF and LF do. InputError names the line and column of the
    first byte that is not UTF-8, counting lines as csv.reader does (`chunks`: the binary
    file, split on LF as iterating it does)."""
    number = 0
    for chunk in chunks:
        for raw in _LONE_CR.split(chunk):
            if not raw:
                continue
            number += 1
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                column = len(raw[:exc.start].decode("utf-8")) + 1
                raise InputError(f"line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {column})") from None
