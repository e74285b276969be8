"""What the SMTP adapter puts on the wire, read back by a real server (aiosmtpd on loopback):
lines that begin with a dot arrive as written (RFC 5321 4.5.2), whether or not the message
has any, and a built newsletter has none to double."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from digest.adapters.smtp import send_one
from digest.core.config import SMTPConfig
from digest.core.message import Recipient, build_message, prepare_message
from digest.core.models import RenderedIssue
from digest.core.render import PLACEHOLDERS

HEAD = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: dots\r\n\r\n"


@pytest.mark.parametrize("body", [
    b"no dot begins a line here.\r\nnor here. Nor.\r\n",
    b".a line that begins with one\r\n.\r\n..two\r\n...\r\nend.\r\n",
    b"ends with a dot line\r\n.",
], ids=["none", "several", "last"])
def test_lines_that_begin_with_a_dot_arrive_as_written(mail_server: Any, body: bytes) -> None:
    config = SMTPConfig(host="127.0.0.1", port=mail_server.port, security="none", timeout_seconds=5)
    reply = send_one(config, "a@example.com", "b@example.org", HEAD + body)
    assert reply.code == 250
    (got,) = mail_server.received
    assert got.data.rstrip(b"\r\n") == (HEAD + body).rstrip(b"\r\n")


def test_a_newsletter_has_no_line_that_begins_with_a_dot() -> None:
    """Links and sentences cut by quoted-printable's 76-character lines would put a dot first
    on a line; the builder encodes it (=2E), so sending has nothing to double."""
    line = "See https://thewisejobsearch.blogspot.com/2026/11/a.html and the next." * 30
    text = f"{PLACEHOLDERS.greeting}\n.starts with a dot\n{line}\n.\n"
    html = f"<p>{PLACEHOLDERS.greeting}</p><p>{line}</p><p>.{PLACEHOLDERS.unsubscribe_url}</p>"
    template = prepare_message(RenderedIssue(subject="Weekly", html=html, text=text), sender="n@example.com",
                               reply_to="", list_id="", unsubscribe_mailto="")
    for offset in range(80):  # every place the cut can fall on
        name = "x" * offset
        raw = build_message(template, Recipient("b@example.org", name, ".unsub." * 20),
                            message_id="<1@example.com>", date=datetime(2026, 11, 26, tzinfo=timezone.utc))
        assert b"\r\n." not in raw and not raw.startswith(b".")
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
