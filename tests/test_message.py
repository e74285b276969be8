"""Raw message bytes: headers once, unfolded List-Unsubscribe, no header injection."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone
from email.utils import formataddr

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest.core.errors import InputError
from digest.core.message import Recipient, address_header, build_message, prepare_message
from digest.core.models import RenderedIssue
from digest.core.render import PLACEHOLDERS

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SINGLE = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "List-Unsubscribe",
          "List-Unsubscribe-Post", "List-Id", "Precedence", "Reply-To", "Auto-Submitted"]


def issue(subject: str = "Weekly: ünïcode & more") -> RenderedIssue:
    html = (f"<p>{PLACEHOLDERS.greeting}</p><a href=\"{PLACEHOLDERS.unsubscribe_url}\">u</a>"
            f"<a href=\"{PLACEHOLDERS.preferences_url}\">p</a>" + "<p>" + "x" * 3000 + "</p>")
    text = f"{PLACEHOLDERS.greeting}\nUnsubscribe: {PLACEHOLDERS.unsubscribe_url}\n" + "y " * 2000
    return RenderedIssue(subject=subject, html=html, text=text)


def build(recipient: Recipient, subject: str = "Weekly: ünïcode & more", sender: str = "Blög <news@example.com>") -> bytes:
    template = prepare_message(issue(subject), sender=sender, reply_to="q@example.com",
                               list_id="Blog <weekly.example.com>", unsubscribe_mailto="unsub@example.com")
    return build_message(template, recipient, message_id="<1.2@example.com>", date=NOW)


RCPT = Recipient("ana@example.org", "Ana Émilie", "https://news.example.com/unsubscribe/" + "t" * 120 + "?a=1&b=2",
                 "https://news.example.com/preferences/tok", "https://news.example.com/archive/3")


def headers_of(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line for line in head.split("\r\n") if line and not line[0].isspace()]


def test_message_lint() -> None:
    raw = build(RCPT)
    names = [h.split(":", 1)[0] for h in headers_of(raw)]
    for name in SINGLE:
        assert names.count(name) == 1, name
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(b < 128 for b in head)
    unsub = [h for h in headers_of(raw) if h.startswith("List-Unsubscribe:")][0]
    assert unsub == f"List-Unsubscribe: <{RCPT.unsubscribe_url}>, <mailto:unsub@example.com?subject=unsubscribe>"
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in headers_of(raw)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Weekly: ünïcode & more"
    assert parsed["From"].addresses[0].display_name == "Blög"
    assert parsed["To"].addresses[0].display_name == "Ana Émilie"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)
    html = parts[1].get_content()
    assert "Hi Ana Émilie," in html and 'href="https://news.example.com/unsubscribe/' in html and "?a=1&amp;b=2" in html
    assert "%%" not in html and "%%" not in parts[0].get_content()
    assert RCPT.unsubscribe_url in parts[0].get_content()


def test_greeting_without_a_name() -> None:
    parsed = email.message_from_bytes(build(Recipient("a@example.org")), policy=email.policy.default)
    assert "Hello," in list(parsed.iter_parts())[0].get_content()


@pytest.mark.parametrize("bad", ["a@b.c\r\nBcc: x@y.z", "a@b.c\nX: y", "<a@b.c>", "a b@c.d", "a@b.c\0", "", "a@@b.c", "a@b.c, x@y.z"])
def test_addresses_that_could_inject_are_refused(bad: str) -> None:
    with pytest.raises(InputError):
        address_header("", bad)


hostile = st.text(alphabet=st.sampled_from(list("aé\r\n\0\t:;<>\"',=?@ ")) | st.characters(), max_size=3000)


@settings(max_examples=150, deadline=None)
@given(name=hostile, subject=hostile)
def test_names_and_subjects_never_add_a_header(name: str, subject: str) -> None:
    raw = build(Recipient("ana@example.org", name, "https://n.example/u/t"), subject=subject)
    names = [h.split(":", 1)[0] for h in headers_of(raw)]
    assert sorted(names) == sorted(SINGLE)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "ana@example.org"
    assert parsed.defects == []


# ---- text that looks like an RFC 2047 encoded word goes out encoded itself ----

INJECTING = "=?utf-8?q?x=0D=0ABcc:_evil@example.net?="
LOOKALIKES = [INJECTING, "Ana =?utf-8?b?QmNjOiBldmlsQGV4YW1wbGUubmV0?= Smith", "=?iso-8859-1?q?caf=E9?=", "a=?b"]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_names_that_look_encoded_are_decoded_back_literally(text: str) -> None:
    sender = formataddr((text, "news@example.com"))  # as config.toml would hold it: quoted where it must be
    raw = build(Recipient("ana@example.org", text, "https://n.example/u/t"), sender=sender)
    assert sorted(h.split(":", 1)[0] for h in headers_of(raw)) == sorted(SINGLE)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == text
    assert parsed["To"].addresses[0].addr_spec == "ana@example.org"
    assert parsed["From"].addresses[0].display_name == text
    assert parsed["Bcc"] is None and parsed.defects == []
    assert f"{text} <".encode() not in raw.split(b"\r\n\r\n", 1)[0]  # not sent as written


@pytest.mark.parametrize("text", LOOKALIKES)
def test_subjects_that_look_encoded_are_decoded_back_literally(text: str) -> None:
    subject = f"Weekly: {text}"
    raw = build(Recipient("ana@example.org", "Ana", "https://n.example/u/t"), subject=subject)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["Bcc"] is None
    assert sorted(h.split(":", 1)[0] for h in headers_of(raw)) == sorted(SINGLE)


def test_list_id_that_looks_encoded_keeps_its_id() -> None:
    template = prepare_message(issue(), sender="News <news@example.com>", list_id=f"{INJECTING} <weekly.example.com>")
    raw = build_message(template, RCPT, message_id="<1.2@example.com>", date=NOW)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["List-Id"]) == f"{INJECTING} <weekly.example.com>"
    assert parsed["Bcc"] is None


@settings(max_examples=500)
@given(st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,30}@[A-Za-z0-9.-]{1,30}", fullmatch=True) | st.emails()
       | st.text(max_size=40))
def test_the_quick_address_check_agrees_with_the_full_one(address: str) -> None:
    """check_address passes a plain dot-atom address without parseaddr: only ones the full check passes."""
    from digest.core.address import is_plain_address
    from digest.core.message import _check_address_fully

    if len(address) <= 254 and is_plain_address(address):
        _check_address_fully(address)  # raises if the quick path let through what the full check refuses


@settings(max_examples=500)
@given(st.text() | st.text(alphabet=st.characters(max_codepoint=127)))
def test_clean_line_s_ascii_shortcut_changes_nothing(text: str) -> None:
    from digest.core.sanitize import _clean_line_fully, clean_line

    assert clean_line(text) == _clean_line_fully(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80), st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=160))
def test_each_body_decodes_to_exactly_the_personalised_text(name: str, tail: str) -> None:
    """The bodies are encoded once and each reader's values between soft line breaks
    (_join_qp, _qp_exact): decoded, they are the issue with that reader's values, every
    character kept, whatever the name or link holds (line breaks, "=", dots, long runs).
    Links are ASCII: the web app's base URL and a token."""
    from digest.core.message import personalise

    recipient = Recipient("ana@example.org", name, "https://news.example.com/unsubscribe/" + tail,
                          "https://news.example.com/preferences/" + tail[::-1], "https://news.example.com/archive/3")
    try:
        raw = build(recipient)
    except InputError:  # a link that cannot go into List-Unsubscribe: not this test's concern
        return
    parts = list(email.message_from_bytes(raw, policy=email.policy.default).iter_parts())
    rendered = issue()
    for part, body, as_html in ((parts[0], rendered.text, False), (parts[1], rendered.html, True)):
        expected = personalise(body, recipient, as_html=as_html)
        got = part.get_payload(decode=True).decode("utf-8")
        assert got.replace("\r\n", "\n") == expected.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


PIECES = [*".\n\r=é x<>\t\u2603", "a" * 7, "." * 5, "  \n", "x" * 70]


def qp_lines_fit(encoded: str) -> bool:
    """No line begins with "."; none passes 76 characters with its soft break, 75 without."""
    return all(not line.startswith(".") and len(line) <= (76 if line.endswith("=") else 75)
               for line in encoded.split("\r\n"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=150).map("".join))
@example("a" * 70 + "xxxx ")  # b2a_qp alone writes 74 characters and "=20"
@example("Intro\n." + "c" * 73)  # =2E makes a last line of 76, and _join_qp may add its "="
def test_quoted_printable_keeps_every_character_and_its_lines_fit(text: str) -> None:
    """_qp_exact: decoded, the text (its line breaks as CRLF); its lines fit (qp_lines_fit)."""
    import binascii

    from digest.core.message import _qp_exact

    encoded = _qp_exact(text)
    assert qp_lines_fit(encoded), encoded
    decoded = binascii.a2b_qp(encoded.encode("ascii")).decode("utf-8")
    assert decoded == text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


MARKERS = [PLACEHOLDERS.greeting, PLACEHOLDERS.unsubscribe_url, PLACEHOLDERS.preferences_url, PLACEHOLDERS.archive_url]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES + MARKERS), max_size=60).map("".join),
       st.lists(st.sampled_from(PIECES + MARKERS), max_size=60).map("".join),
       st.text(max_size=60), st.lists(st.sampled_from([".", "a", "/", "=", "ab" * 20]), max_size=40).map("".join))
@example("Intro\n." + "c" * 73 + PLACEHOLDERS.greeting, "<p>x</p>", "Ana", "a")
def test_every_body_line_fits_and_decodes_whatever_the_issue_and_reader(
        text: str, html: str, name: str, tail: str) -> None:
    """build_message, for bodies with dots, spaces and placeholders anywhere and any reader:
    each body's lines fit (qp_lines_fit: a reader's value ends the line before it with a
    soft break), and decoded, each is the personalised text."""
    from digest.core.message import personalise

    recipient = Recipient("ana@example.org", name, "https://n.example.com/u/" + tail, "https://n.example.com/p/" + tail,
                          "https://n.example.com/a/3." + tail)
    template = prepare_message(RenderedIssue(subject="Weekly", html=html or "<p></p>", text=text or "-"),
                               sender="n@example.com", reply_to="", list_id="", unsubscribe_mailto="")
    try:
        raw = build_message(template, recipient, message_id="<1@example.com>", date=NOW)
    except InputError:  # a link that cannot go into List-Unsubscribe: not this test's concern
        return
    parts = list(email.message_from_bytes(raw, policy=email.policy.default).iter_parts())
    for part, body, as_html in ((parts[0], text or "-", False), (parts[1], html or "<p></p>", True)):
        assert qp_lines_fit(part.get_payload()), part.get_payload()
        expected = personalise(body, recipient, as_html=as_html).replace("\r\n", "\n").replace("\r", "\n")
        assert part.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n") == expected.rstrip("\n")


def test_the_date_header_is_format_datetime_s_whatever_the_zone() -> None:
    """The Date header, written once a second, is the text format_datetime gives: for times
    of one second, of zones with the same instant, and for the two readings of a repeated
    hour (equal datetimes to Python, an hour apart)."""
    from email.utils import format_datetime
    from zoneinfo import ZoneInfo

    from digest.core.message import _date_header

    new_york = ZoneInfo("America/New_York")
    once = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)  # the hour that comes twice
    dates = [NOW.replace(microsecond=m) for m in (0, 1, 999_999)] + [NOW.replace(second=1, microsecond=5),
                                                                     NOW.astimezone(ZoneInfo("Europe/Paris")),
                                                                     once, once.replace(fold=1)]
    template = prepare_message(issue(), sender="n@example.com", reply_to="", list_id="", unsubscribe_mailto="")
    _date_header.cache_clear()
    headers = [email.message_from_bytes(build_message(template, RCPT, message_id="<1@e.com>", date=d))["Date"]
               for d in dates]
    assert headers == [format_datetime(d) for d in dates]
    assert headers[5] != headers[6]  # 01:30 -0400, then 01:30 -0500
    assert _date_header.cache_info().hits == 2  # the second and third: the same second as the first


def test_the_unsubscribe_mailto_carries_the_readers_signed_token() -> None:
    """Issue 20: the inbox acts on an unsubscribe mail only by a token no one else can make;
    a mail program sends the mailto's subject as written."""
    from urllib.parse import unquote

    from digest.core.returns import Kind, Ours, sort_message
    from digest.core.tokens import Links, read_token

    links = Links("https://news.example.com", "message-secret-0123456789abcdef")
    raw = build(Recipient("ana@example.org", "Ana", links.unsubscribe(7, NOW)))
    unsub = [h for h in headers_of(raw) if h.startswith("List-Unsubscribe:")][0]
    subject = unquote(unsub.rpartition("?subject=")[2].rstrip(">"))
    assert read_token("message-secret-0123456789abcdef", subject.split()[1], "unsubscribe", now=NOW).subscriber_id == 7
    mail = f"From: ana@example.org\r\nTo: unsub@example.com\r\nSubject: {subject}\r\n\r\n".encode()
    found = sort_message(mail, Ours("example.com", "", "unsub@example.com"))
    assert found.kind is Kind.UNSUBSCRIBE and found.unsubscribe_token == subject.split()[1]
