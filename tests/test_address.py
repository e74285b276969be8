"""core/address.py: addresses as they go on the wire (IDNA 2008 domains, SMTPUTF8 local parts)."""

from __future__ import annotations

import pytest

from digest.core.address import ascii_domain, deliverable, wire_address
from digest.core.errors import InputError


@pytest.mark.parametrize(("email", "smtputf8", "wire"), [
    ("ana@example.com", False, "ana@example.com"),
    ("user@bücher.example", False, "user@xn--bcher-kva.example"),
    ("user@faß.de", False, "user@xn--fa-hia.de"),  # IDNA 2008; the stdlib's IDNA 2003 codec says fass.de
    ("josé@bücher.example", True, "josé@xn--bcher-kva.example"),
])
def test_wire_address(email: str, smtputf8: bool, wire: str) -> None:
    assert wire_address(email, smtputf8=smtputf8) == wire


def test_the_stdlib_codec_is_not_idna_2008() -> None:
    assert "faß.de".encode("idna") == b"fass.de" and ascii_domain("faß.de") == "xn--fa-hia.de"


@pytest.mark.parametrize(("email", "smtputf8", "why"), [
    ("josé@example.com", False, "does not offer SMTPUTF8"),
    ("user@\u2615.example", True, "no IDNA 2008 form"),
    ("no-at-sign", True, "not a usable email address"),
    ("é" * 33 + "@example.com", True, "too long"),  # 66 octets before the @
])
def test_what_cannot_go_on_the_wire(email: str, smtputf8: bool, why: str) -> None:
    with pytest.raises(InputError, match=why):
        wire_address(email, smtputf8=smtputf8)


def test_deliverable_allows_what_smtputf8_can_carry() -> None:
    assert deliverable("josé@example.com") == "josé@example.com"
    with pytest.raises(InputError, match="IDNA 2008"):
        deliverable("user@\u2615.example")
