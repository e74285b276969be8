"""Lint of the raw bytes that reached the SMTP server; DKIM verifies; titles cannot inject headers."""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from sending import make_bed

from digest.core.config import read_config
from digest.core.group import group_posts
from digest.core.message import Recipient, build_message, prepare_message
from digest.core.models import Post
from digest.core.render import make_environment, render_issue

ROOT = Path(__file__).resolve().parent.parent
ONCE = ["from", "to", "subject", "date", "message-id", "mime-version", "content-type", "list-unsubscribe",
        "list-unsubscribe-post", "list-id", "precedence", "dkim-signature"]


def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def header_lines(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    out: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            out[-1] += b"\r\n" + line
        else:
            out.append(line)
    return out


def test_what_the_server_received_passes_lint_and_dkim(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    key_file, dns_record = dkim_key(tmp_path)
    extra = f'dkim_selector = "news"\ndkim_key_file = "{key_file}"\nlist_id = "Wise <weekly.example.com>"\n'
    bed = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\n")
    bed.config.path.write_text(bed.config.path.read_text().replace("max_posts = 20\n", "max_posts = 20\n" + extra))
    bed.config = read_config(bed.config.path, {"DIGEST_SECRET": "send-secret-0123456789abcdef"})
    bed.add(2)
    from digest.core.models import Consent

    bed.store.add("zoe@example.com", "zoe@example.com", "Zoë Ñandú \"the\" <boss>", (), confirmed=True,
                  now=bed.now(), consent=Consent(at=bed.now(), method="cli"))
    assert bed.send().report.counts == {"sent": 3}  # type: ignore[union-attr]
    ids = set()
    for received in bed.mail.received:
        raw = received.data
        assert raw.startswith(b"DKIM-Signature:")
        names = [line.split(b":", 1)[0].decode().lower() for line in header_lines(raw)]
        for name in ONCE:
            assert names.count(name) == 1, (name, names)
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert all(byte < 128 for byte in head), "raw 8-bit bytes in the headers"
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        unsub = [line for line in header_lines(raw) if line.lower().startswith(b"list-unsubscribe:")][0]
        assert b"\r\n" not in unsub and b"=?" not in unsub
        assert unsub.startswith(b"List-Unsubscribe: <https://news.example.com/unsubscribe/") and unsub.endswith(b">")
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in header_lines(raw)
        assert b"Precedence: bulk" in header_lines(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["Message-ID"].endswith("@example.com>")
        ids.add(message["Message-ID"])
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: dns_record if name == b"news._domainkey.example.com." else None)
        signature = [line for line in header_lines(raw) if line.startswith(b"DKIM-Signature")][0].replace(b"\r\n", b"")
        assert b"list-unsubscribe" in signature.lower() and b"list-unsubscribe-post" in signature.lower()
    assert len(ids) == 3
    zoe = [r for r in bed.mail.received if r.recipients == ["zoe@example.com"]][0].message
    assert zoe["To"].addresses[0].display_name == 'Zoë Ñandú "the" <boss>'
    tampered = bed.mail.received[0].data.replace(b"List-Unsubscribe: <https://", b"List-Unsubscribe: <http://", 1)
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: dns_record)
    bed.store.close()


CONFIG = read_config(ROOT / "config.toml", {})
ENV = make_environment()
NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)
hostile = st.text(alphabet=st.sampled_from(list("ab\r\n\0\t:<>\"=?@ ")) | st.characters(exclude_categories=["Cs"]),
                  min_size=1, max_size=2000)


@settings(max_examples=80, deadline=None)
@given(title=hostile, name=hostile)
def test_post_titles_and_names_never_add_a_header(title: str, name: str) -> None:
    from digest.core.sanitize import clean_title

    post = Post(id="1", title=clean_title(title, False) or "x", link="https://b.example/1", published=NOW, updated=NOW)
    content = group_posts([post], CONFIG.topics, fallback_topic="More")
    rendered = render_issue(content, CONFIG.publication, date=NOW, env=ENV)
    template = prepare_message(rendered, sender=CONFIG.newsletter.from_, list_id=CONFIG.newsletter.list_id)
    raw = build_message(template, Recipient("a@example.com", name, "https://n.example/u/t"), message_id="<1@example.com>", date=NOW)
    names = [line.split(b":", 1)[0].lower() for line in header_lines(raw)]
    assert sorted(names) == sorted([b"from", b"subject", b"mime-version", b"list-id", b"precedence", b"auto-submitted",
                                    b"to", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post",
                                    b"content-type"])
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] and "\n" not in parsed["Subject"]  # the default subject is the (hostile) title itself
