"""The pure judgement of mail records: SPF, DMARC, alignment, the DKIM key against its file."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.core.dkimkey import judge_dkim, public_record
from digest.core.dnsrecords import (
    is_aligned,
    judge_accepts_mail,
    judge_alignment,
    judge_dmarc,
    judge_from_domain,
    judge_spf,
    parse_dmarc,
    parse_spf,
)
from digest.core.verdict import Level


def test_parse_spf_counts_lookups_and_reads_the_all_qualifier() -> None:
    spf = parse_spf("v=spf1 a mx:mail.example.com include:_spf.google.com ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all")
    assert spf.lookups == 3 and spf.includes == ("_spf.google.com",) and spf.all == "softfail" and spf.errors == ()
    assert parse_spf("v=spf1 redirect=_spf.example.com").redirect == "_spf.example.com"
    assert parse_spf("v=spf1 redirect=_spf.example.com").lookups == 1
    assert parse_spf("v=spf1 -all redirect=x.example.com").redirect is None  # ignored beside "all"


@pytest.mark.parametrize(("record", "fault"), [
    ("v=spf1 ip4:300.1.1.1 ~all", "'300.1.1.1' is not an IP address"),
    ("v=spf1 ip4:2001:db8::1 ~all", "is not an IPv4 address"),
    ("v=spf1 include ~all", "needs a domain after the colon"),
    ("v=spf1 allow:example.com ~all", "'allow:example.com' is not an SPF mechanism"),
    ("v=spf1 ~all:x", "all takes nothing after it"),
])
def test_spf_syntax_faults(record: str, fault: str) -> None:
    check = judge_spf("example.com", [record], None)
    assert check.level is Level.PROBLEM and fault in check.finding, check.finding


@pytest.mark.parametrize(("records", "lookups", "level", "words"), [
    (["v=spf1 include:_spf.example.net ~all"], 4, Level.OK, "4 of 10 lookups"),
    (["v=spf1 include:_spf.example.net -all"], 11, Level.PROBLEM, "11 DNS lookups"),
    (["v=spf1 +all"], 0, Level.PROBLEM, "+all"),
    (["v=spf1 ip4:192.0.2.1 ?all"], 0, Level.WARNING, "?all"),
    (["v=spf1 ip4:192.0.2.1"], 0, Level.WARNING, "no 'all'"),
    (["v=spf1 ptr -all"], 1, Level.WARNING, "ptr"),
    (["v=spf1 -all", "v=spf1 ~all"], None, Level.PROBLEM, "2 SPF records"),
    (["some-verification=1"], None, Level.PROBLEM, "no SPF record"),
    ([], None, Level.PROBLEM, "no SPF record"),
])
def test_judge_spf(records: list[str], lookups: int | None, level: Level, words: str) -> None:
    check = judge_spf("example.com", records, lookups)
    assert check.level is level and words in check.finding, check


def test_an_include_without_spf_is_a_problem() -> None:
    check = judge_spf("example.com", ["v=spf1 include:gone.example.net ~all"], 1, ["gone.example.net (included) has no SPF record"])
    assert check.level is Level.PROBLEM and "gone.example.net" in check.finding


@pytest.mark.parametrize(("records", "level", "words"), [
    (["v=DMARC1; p=reject; rua=mailto:d@example.com"], Level.OK, "p=reject"),
    (["v=DMARC1; p=none"], Level.WARNING, "p=none"),
    (["v=DMARC1; rua=mailto:d@example.com"], Level.PROBLEM, "no valid p="),
    (["v=DMARC1; p=maybe"], Level.PROBLEM, "no valid p="),
    (["v=DMARC1; p=none", "v=DMARC1; p=reject"], Level.PROBLEM, "2 DMARC records"),
    (["v=spf1 -all"], Level.PROBLEM, "no DMARC record"),
])
def test_judge_dmarc(records: list[str], level: Level, words: str) -> None:
    check, _ = judge_dmarc("example.com", "_dmarc.example.com", records)
    assert check.level is level and words in check.finding, check


def test_a_parents_dmarc_record_speaks_for_subdomains_with_sp() -> None:
    check, _ = judge_dmarc("news.example.com", "_dmarc.example.com", ["v=DMARC1; p=reject; sp=none"])
    assert check.level is Level.WARNING and check.finding.startswith("sp=none at _dmarc.example.com")
    check, _ = judge_dmarc("news.example.com", "_dmarc.example.com", ["v=DMARC1; p=none; sp=quarantine"])
    assert check.level is Level.OK
    check, _ = judge_dmarc("example.com", "_dmarc.example.com", ["v=DMARC1; p=reject; sp=none"])
    assert check.level is Level.OK  # sp= is not for the domain itself


def test_alignment_relaxed_and_strict() -> None:
    assert is_aligned("example.com", "bounces.example.com", strict=False)
    assert is_aligned("news.example.com", "bounces.example.com", strict=False)
    assert not is_aligned("example.com", "bounces.example.com", strict=True)
    assert not is_aligned("example.com", "mailer.example.net", strict=False)
    strict = parse_dmarc("v=DMARC1; p=reject; aspf=s")
    assert judge_alignment("example.com", "bounces.example.com", strict).level is Level.WARNING
    assert judge_alignment("example.com", "bounces.example.com", None).level is Level.OK
    assert judge_alignment("example.com", "esp.example.net", None).level is Level.WARNING


def test_accepts_mail() -> None:
    assert judge_accepts_mail("example.com", "From", [(10, "mx.example.com.")], []).level is Level.OK
    assert judge_accepts_mail("example.com", "From", [], ["192.0.2.1"]).level is Level.OK
    assert judge_accepts_mail("example.com", "From", [(0, ".")], ["192.0.2.1"]).level is Level.PROBLEM  # null MX
    assert judge_accepts_mail("example.com", "return path", [], []).level is Level.PROBLEM


def _key(fmt: serialization.PrivateFormat) -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return (key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()),
            "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode())


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8])
def test_the_record_to_publish_is_the_one_openssl_would_write(fmt: serialization.PrivateFormat) -> None:
    pem, record = _key(fmt)
    assert public_record(pem) == record


def test_judge_dkim() -> None:
    pem, record = _key(serialization.PrivateFormat.TraditionalOpenSSL)
    _, other = _key(serialization.PrivateFormat.TraditionalOpenSSL)
    assert judge_dkim("s1", "example.com", [record], pem, "k.pem").level is Level.OK
    mismatch = judge_dkim("s1", "example.com", [other], pem, "k.pem")
    assert mismatch.level is Level.PROBLEM and "not the public half of k.pem" in mismatch.finding
    assert record in mismatch.fix  # the record to publish instead, ready to paste
    missing = judge_dkim("s1", "example.com", [], pem, "k.pem")
    assert missing.level is Level.PROBLEM and "s1._domainkey.example.com" in missing.fix
    assert judge_dkim("s1", "example.com", ["v=DKIM1; k=rsa; p=bm90IGEga2V5"], pem, "k.pem").level is Level.PROBLEM
    assert judge_dkim("s1", "example.com", [record], b"not a key", "k.pem").level is Level.PROBLEM
    assert judge_dkim("s1", "example.com", [record], None, "k.pem").finding == "the key file k.pem cannot be read"


def test_a_from_on_a_mailbox_providers_domain() -> None:
    check = judge_from_domain("Gmail.com")
    assert check is not None and check.level is Level.WARNING and "cannot publish" in check.finding
    assert judge_from_domain("thewisejobsearch.com") is None
