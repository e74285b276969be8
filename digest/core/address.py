"""Addresses as they go on the wire. Pure core: no network, no database, no clock, no
file writes.

Subscribers' addresses are kept as people typed them, internationalised domains in
Unicode (`user@bücher.example`). SMTP and message headers want ASCII: the domain goes out
as IDNA 2008 A-labels (the `idna` package; Python's own "idna" codec is IDNA 2003), and a
local part that is not ASCII can only travel with SMTPUTF8 (RFC 6531), which the server
may or may not offer. An address that no server could ever take is refused at the door
(deliverable), and one that this server cannot take fails that one recipient.
"""

from __future__ import annotations

import re

import idna

from .errors import InputError

MAX_LOCAL_OCTETS = 64    # RFC 5321 4.5.3.1.1
MAX_ADDRESS_OCTETS = 254  # RFC 5321's 256-octet path, less the angle brackets
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def is_plain_address(email: str) -> bool:
    """True for an ASCII dot-atom address (RFC 5322 3.2.3, 3.4.1), as most are: nothing in
    it can leave a header or an SMTP command, and email.utils.parseaddr gives it back as it
    is. A quick test before the slower, general checks."""
    return _PLAIN.fullmatch(email) is not None


def ascii_domain(domain: str) -> str:
    """The domain in A-labels (`xn--bcher-kva.example`), or InputError when IDNA 2008 refuses it."""
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InputError(f"the domain {domain!r} has no IDNA 2008 form ({exc})") from None


def wire_address(email: str, *, smtputf8: bool) -> str:
    """The address for the envelope and the To header: its domain in A-labels; its local
    part as it is, which needs `smtputf8` (the server's SMTPUTF8) when it is not ASCII."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise InputError(f"not a usable email address: {email!r}")
    address = f"{local}@{ascii_domain(domain)}"
    if not local.isascii() and not smtputf8:
        raise InputError(f"{email}: the part before the @ is not ASCII, and the mail server does not offer "
                         "SMTPUTF8 to carry it")
    if len(local.encode("utf-8")) > MAX_LOCAL_OCTETS or len(address.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise InputError(f"{email}: too long for SMTP")
    return address


def deliverable(email: str) -> str:
    """`email` if some server could take it (with SMTPUTF8 at most), else InputError saying why."""
    wire_address(email, smtputf8=True)
    return email


# Which domains' mail systems ignore dots in the local part: Gmail's own, and
# googlemail.com is the same service under another name. Nowhere else: Outlook, Yahoo,
# iCloud and Fastmail deliver "a.b@" and "ab@" to different people.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def _ascii_lower(text: str) -> str:
    """`text` with only the ASCII letters lower-cased (str.lower would fold "İ", "K" and more)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def email_key(email: str) -> str:
    """What makes an address one subscriber: the local part as written (email-validator has
    put it in NFC, as RFC 6532 asks) with its ASCII letters lower-cased, and the domain in
    lower-case A-labels. Only what mail systems fold is folded: "Ana@" and "ana@" are one
    reader everywhere, but "straße@" is not "strasse@" and "ﬁ@" (a ligature) is not "fi@";
    str.casefold() merged those, and whoever subscribed one form first held the other's key."""
    local, _, domain = email.rpartition("@")
    return f"{_ascii_lower(local)}@{ascii_domain(domain)}"


def mailbox_key(email: str) -> str:
    """The mailbox that an address reaches, for rate limits only (never stored as identity):
    email_key with a "+tag" cut off the local part (everywhere: plus addressing is offered
    by Gmail, Outlook, iCloud, Fastmail, Proton and most servers, and a limit that folds
    too much only limits more), and for Gmail's domains the dots taken out and
    googlemail.com read as gmail.com. `victim+1@`, `vic.tim@gmail.com` and
    `victim@googlemail.com` all count against `victim@gmail.com`'s limit."""
    key = email_key(email)
    local, _, domain = key.rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        domain = DOTLESS_DOMAINS[domain]
        local = local.replace(".", "") or local
    return f"{local}@{domain}"
