"""The Blogger Contact form's notification mail, from the fixtures in tests/fixtures/contact_form/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from digest.core.contact_form import ContactFormMessage, parse_contact_form, parse_fields

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "contact_form"


def parsed(name: str) -> ContactFormMessage | None:
    return parse_contact_form((FIXTURES / name).read_bytes())


def test_one_line_labels_with_the_form_footer_cut() -> None:
    found = parsed("plain_labels.eml")
    assert found == ContactFormMessage(
        name="Jane Reader", email="jane.reader@example.org",
        text="I have two offers on the table and one expires on Friday.\n"
             "How do I ask the other company to speed up without sounding desperate?\n\nThanks, Jane")


def test_labels_alone_on_their_lines_and_quoted_printable() -> None:
    found = parsed("stacked_labels.eml")
    assert found is not None and found.name == "René Marchand" and found.email == "rene.marchand@example.net"
    assert found.text.startswith("Is it ever OK to put a salary range in the cover letter when the ad asks for one?")
    assert found.text.endswith("I'm a career changer and worry it anchors me low.")


def test_an_html_only_notification_is_read_as_text_with_its_script_gone() -> None:
    found = parsed("html_only.eml")
    assert found is not None and found.name == "Sam O'Neill" and found.email == "sam.oneill@example.com"
    assert found.text == 'My manager keeps "forgetting" my 1:1s.\nShould I raise it with HR & how?'
    assert "alert" not in found.text


def test_the_text_part_is_preferred_and_the_signature_cut() -> None:
    found = parsed("alternative.eml")
    assert found == ContactFormMessage("Priya", "priya@example.in",
                                       "How long should I wait after an interview before following up?")


@pytest.mark.parametrize("name", ["no_email_field.eml", "ordinary_mail.eml"])
def test_what_is_not_known_is_not_guessed(name: str) -> None:
    assert parsed(name) is None


@pytest.mark.parametrize("body", [
    "Message: hi\nEmail: a@example.com",                 # the message before the address
    "Name: X\nEmail: not an address\nMessage: hi",       # no address in the Email field
    "Name: X\nEmail: x@example.com\nMessage:\n> only a quote",  # nothing left of the message
    "Emailing you about\nName: X\nMessage: hi",          # "Emailing" is no label; still no address
])
def test_layouts_that_fall_back_to_unsorted(body: str) -> None:
    assert parse_fields(body) is None


def test_an_empty_name_does_not_take_the_next_label_as_its_value() -> None:
    assert parse_fields("Name\n\nEmail\nx@example.com\n\nMessage\nhello") == ContactFormMessage("", "x@example.com", "hello")


def test_garbage_bytes_are_no_notification() -> None:
    assert parse_contact_form(b"\xff\xfe\x00garbage") is None
    assert parse_contact_form(b"") is None


@pytest.mark.parametrize("raw", [
    # an encoded CR/LF in the From's display name: the email package refuses the header when read
    b"From: =?utf-8?q?Eve=0D=0ABcc:_x@evil.example?= <eve@example.net>\r\nSubject: Message from x\r\n\r\n"
    b"Name: a\r\nEmail: a@example.com\r\nMessage: q\r\n",
    b'From: "\r\nSubject: Message from x\n',
    b"From: a@example.com, :=?x?R?=0A?= <c@d>\r\nSubject: Message\x82 from x\r\n\r\n",
    b"From: a@b,.cubject: Messa\r\nge from x\r\nContent-Type: text/plain; charse&t=id\xabna\r\n\r\nName: a\r\n"
    b"Email: a@b.cc\r\nMessage: q\xff\r\n",
    b"From: a@example.com\r\nSubject: Message from\r\nContent-Type: text/plain; charset*\r\n=utf-8''%ff%fe\n"
    b"Name: a\r\nEmail: a@b.cc\r\nMessage: q\r\n",
])
def test_hostile_headers_are_no_notification_and_never_an_exception(raw: bytes) -> None:
    """The inbox reads whatever anyone mails it: an exception here stopped every `digest inbox`
    at that message, read after read (the bounces and unsubscribes behind it waited too)."""
    assert parse_contact_form(raw) is None


def test_a_line_of_blanks_takes_no_longer_than_reading_it() -> None:
    """The label pattern backtracked over leading blanks: 20,000 spaces took 16 s, and a
    2 MB notification with one such line held `digest inbox` for days."""
    started = time.perf_counter()
    assert parse_fields("Intro\n" + " " * 20_000 + "x\n" + "\t" * 20_000 + "\nName: a\nEmail: a@example.com\nMessage: q") \
        == ContactFormMessage("a", "a@example.com", "q")
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(("name", "value"), [
    ("From", "." * 32_000 + "x"),                                  # 8 s in the email package's address parser
    ("Content-Type", "text/plain; charset=utf-8; " + "a=b; " * 8_000),  # parsed while the mail is read
])
def test_a_huge_header_is_not_handed_to_the_email_package(name: str, value: str) -> None:
    """Its header parser takes time that grows with the square of a header's length: a
    megabyte-long From (under [inbox] max_message_bytes) would take hours."""
    raw = (f"Subject: Message from a reader\r\n{name}: {value}\r\n\r\nName: a\r\nEmail: a@example.com\r\n"
           "Message: q\r\n").encode()
    started = time.perf_counter()
    assert parse_contact_form(raw) is None
    assert time.perf_counter() - started < 2
