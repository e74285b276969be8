"""The confirmation mail: no header injection through names or addresses, markup escaped."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.core.config import read_config
from digest.core.errors import InputError
from digest.core.inline import inline_css
from digest.core.message import Recipient, build_message, prepare_message
from digest.core.render import make_environment, render_confirmation
from digest.core.subscriptions import clean_name, normalise_email

ROOT = Path(__file__).resolve().parent.parent
CONFIG = read_config(ROOT / "config.toml", {})
ENV = make_environment()
NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
EXPECTED = ["From", "Subject", "MIME-Version", "Reply-To", "To", "Date", "Message-ID", "Content-Type"]


def confirmation(raw_email: str, raw_name: str) -> bytes:
    address, _ = normalise_email(raw_email)
    name = clean_name(raw_name)
    rendered = render_confirmation(CONFIG.publication, confirm_url="https://news.example.com/confirm/abc", env=ENV)
    rendered = replace(rendered, html=inline_css(rendered.html))
    template = prepare_message(rendered, sender=CONFIG.newsletter.from_, reply_to=CONFIG.newsletter.reply_to, bulk=False)
    return build_message(template, Recipient(address, name), message_id="<c.1@example.com>", date=NOW)


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")  # RFC 6532: an address may be UTF-8
    return [line.split(":", 1)[0] for line in head.split("\r\n") if line and not line[0].isspace()]


nasty = st.text(alphabet=st.sampled_from(list("ab\r\n\0\t:<>\"@,;=? ")) | st.characters(exclude_categories=["Cs"]), max_size=5000)


@settings(max_examples=60, deadline=None)
@given(name=nasty, local=nasty)
def test_no_name_or_address_adds_a_header(name: str, local: str) -> None:
    try:
        raw = confirmation(f"{local}@example.com", name)
    except InputError:
        return  # refused addresses never reach a header
    assert header_names(raw) == EXPECTED
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Precedence"] is None and parsed["Bcc"] is None


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@example.org", "Eve\nX-Injected: 1", "Eve\0Bcc: v@example.org", "E" * 10_000])
def test_crafted_names(name: str) -> None:
    raw = confirmation("eve@example.com", name)
    assert header_names(raw) == EXPECTED
    assert b"\r\nBcc:" not in raw and b"\r\nX-Injected" not in raw


@pytest.mark.parametrize("address", ["eve@example.com\r\nBcc: v@example.org", "eve@example.com\nBcc: v@example.org",
                                     "eve@example.com\0", "<eve@example.com>", "e" * 300 + "@example.com"])
def test_crafted_addresses_are_refused(address: str) -> None:
    with pytest.raises(InputError):
        confirmation(address, "Eve")


def test_the_body_has_no_name_to_greet() -> None:
    parsed = email.message_from_bytes(confirmation("x@example.com", "<b>Bold</b> & co"), policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert "Bold" not in html and "Bold" not in text and text.startswith("Hello,")
