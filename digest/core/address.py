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
