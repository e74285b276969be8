"""core/address.py: addresses as they go on the wire (IDNA 2008 domains, SMTPUTF8 local parts)."""

from __future__ import annotations

import pytest

from digest.core.address import ascii_domain, deliverable, email_key, mailbox_key, wire_address
from digest.core.errors import InputError
from digest.core.subscriptions import normalise_email


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


# ---- keys: fold only what mail systems fold ----

@pytest.mark.parametrize(("one", "other"), [
    ("straße@example.org", "strasse@example.org"),   # casefold() made both "strasse@"
    ("ﬁ@example.org", "fi@example.org"),             # a ligature: compatibility, not canonical, equivalence
    ("İnci@example.org", "inci@example.org"),         # str.lower() would fold the dotted capital I
    ("ÉLISE@example.org", "élise@example.org"),       # non-ASCII case is the server's own business
    ("user@straße.de", "user@strasse.de"),            # IDNA 2008 domains: two registrations
])
def test_keys_keep_different_mailboxes_apart(one: str, other: str) -> None:
    assert normalise_email(one)[1] != normalise_email(other)[1]


@pytest.mark.parametrize(("one", "other"), [
    ("Ana@Example.COM", "ana@example.com"),
    ("ana@bücher.example", "ANA@xn--bcher-kva.example"),  # one domain, in U-labels or A-labels
    ("\u212aate@example.org", "kate@example.org"),        # the Kelvin sign is K (NFC), mailed as "Kate@"
])
def test_keys_fold_ascii_case_and_the_domains_spelling(one: str, other: str) -> None:
    assert normalise_email(one)[1] == normalise_email(other)[1]


def test_the_kelvin_sign_is_mailed_as_the_letter_it_is_canonically() -> None:
    assert normalise_email("\u212aate@example.org")[0] == "Kate@example.org"


def test_email_key_lower_cases_only_ascii() -> None:
    assert email_key("ÉLise@Bücher.Example") == "Élise@xn--bcher-kva.example"


@pytest.mark.parametrize(("email", "mailbox"), [
    ("victim+1@gmail.com", "victim@gmail.com"),
    ("Vic.Tim+news@googlemail.com", "victim@gmail.com"),
    ("a.b+x@example.org", "a.b@example.org"),   # dots fold at Gmail only
    ("+tag@example.org", "+tag@example.org"),    # nothing before the +: the address as it is
    ("...@gmail.com", "...@gmail.com"),
])
def test_mailbox_key_folds_plus_tags_and_gmail_dots(email: str, mailbox: str) -> None:
    assert mailbox_key(email) == mailbox
