"""`digest mailbox`: a real SMTP server in a subprocess that keeps every message as .eml."""

from __future__ import annotations

import smtplib
import subprocess
import time
from pathlib import Path

import pytest
from browser import digest_process
from mailserver import free_port


def _connect(port: int, proc: subprocess.Popen[bytes]) -> smtplib.SMTP:
    """An SMTP client of the mailbox subprocess, once it listens."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=5)
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "mailbox did not start"
            time.sleep(0.1)


@pytest.mark.slow  # starts processes
def test_mailbox_stores_each_message_and_prints_a_line(tmp_path: Path) -> None:
    port = free_port()
    outbox = tmp_path / "outbox"
    with digest_process("mailbox", "--port", str(port), "--dir", str(outbox)) as proc:
        client = _connect(port, proc)
        with client:
            for i in range(2):
                client.sendmail("from@example.com", ["to@example.org"],
                                f"Subject: Hello {i}\r\nFrom: from@example.com\r\n\r\nBody {i}\r\n".encode())
        files = sorted(outbox.glob("*.eml"))
        assert len(files) == 2 and b"Body 1" in files[1].read_bytes()
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert f"Listening on 127.0.0.1:{port}" in out
    assert "from from@example.com  to to@example.org  Hello 0" in out and "Hello 1" in out


LONG_LINK = "https://news.example.com/confirm/" + "Ab9_" * 30 + "end"


def _qp_message(subject: str = "Confirm your subscription") -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, "news@example.com", "reader@example.org"
    msg["Date"] = "Thu, 26 Nov 2026 07:00:00 -0500"
    msg.set_content(f"Hello,\n\nconfirm here: {LONG_LINK}\n", cte="quoted-printable")
    msg.add_alternative(f'<html><head></head><body><p><a href="{LONG_LINK}">Confirm</a></p></body></html>',
                        subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def test_a_quoted_printable_link_comes_out_whole() -> None:
    from digest.core.mailview import text_as_html, view_message

    raw = _qp_message()
    assert LONG_LINK.encode() not in raw, "the fixture must cut the link with a soft line break"
    view = view_message(raw)
    assert view.first_link == LONG_LINK and view.links == (LONG_LINK,)
    assert f'<a href="{LONG_LINK}">' in text_as_html(view.text + "\n<script>")
    assert "&lt;script&gt;" in text_as_html("<script>")


@pytest.mark.slow  # starts processes
def test_the_log_line_carries_the_first_link_decoded(tmp_path: Path) -> None:
    port = free_port()
    with digest_process("mailbox", "--port", str(port), "--dir", str(tmp_path / "outbox")) as proc:
        client = _connect(port, proc)
        with client:
            client.sendmail("news@example.com", ["reader@example.org"], _qp_message())
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert f"Confirm your subscription  {LONG_LINK}" in out


def test_the_mailbox_page_lists_and_shows_messages(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from digest.web.mailbox import create_mailbox_app

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "20261126T120000-00001.eml").write_bytes(_qp_message("First <b>bold</b>"))
    (outbox / "20261126T120001-00002.eml").write_bytes(_qp_message("Second"))
    (outbox / "notes.txt").write_text("not a message")
    with TestClient(create_mailbox_app(outbox), base_url="http://127.0.0.1:8025") as client:
        index = client.get("/")
        assert index.status_code == 200 and "2 messages" in index.text
        assert index.text.index("Second") < index.text.index("First &lt;b&gt;bold&lt;/b&gt;"), "newest first"
        assert "26 November 2026, 12:00:01 UTC" in index.text and "20261126T12" not in index.text.split("/m/")[0]
        shown = client.get("/m/20261126T120000-00001.eml")
        assert shown.text.index('class="html-part"') < shown.text.index('class="text-part"'), "the rendering first"
        assert "Date: 26 November 2026, 07:00:00 UTC-05:00" in shown.text  # the Date header, readable
        assert f'<a href="{LONG_LINK}">{LONG_LINK}</a>' in shown.text and 'src="/html/20261126T120000-00001.eml"' in shown.text
        part = client.get("/html/20261126T120000-00001.eml")
        assert '<head><base target="_top">' in part.text and f'href="{LONG_LINK}"' in part.text
        assert "default-src 'none'" in part.headers["content-security-policy"]
        raw = client.get("/raw/20261126T120001-00002.eml")
        assert raw.text.startswith("Subject: Second") and raw.headers["x-content-type-options"] == "nosniff"
        for bad in ("/m/..%2Fsecret.eml", "/m/notes.txt", "/html/20261126T999999-00009.eml", "/raw/x"):
            assert client.get(bad).status_code == 404, bad


def test_headers_and_parts_the_email_package_trips_on_come_out_empty() -> None:
    """The inbox hands every unsorted mail to view_message: one that raised stopped every read."""
    from digest.core.mailview import view_message

    broken_to = view_message(b"From: reader@example.org\r\nTo: =?utf-8?b?AAAA?= <\r\nSubject: q\r\n\r\nHow do I?\r\n")
    assert broken_to.to == "" and broken_to.text.strip() == "How do I?"
    assert view_message(b"From: r@example.org\r\nTo: a@b.cc, :=?x?R?=0A?= <c@d>\r\n\r\nHow?\r\n").sender == "r@example.org"
    broken_type = view_message(b"From: r@example.org\r\nSubject: q\r\nContent-Type: text/plain; charset*\r\n"
                               b"=utf-8''%ff%fe\r\n\r\nHow?\r\n")
    assert broken_type.html == ""  # the parser gives up on this one before any part: nothing, but no exception


def test_a_huge_header_is_not_handed_to_the_email_package() -> None:
    """The inbox reads unsorted mail with view_message: a 40,000-character To took 20 s in
    the email package's header parser (the square of its length, or worse); one under
    [inbox] max_message_bytes would take days."""
    from digest.core.mailview import view_message

    started = time.perf_counter()
    view = view_message(b"From: r@example.org\r\nTo: " + b"." * 40_000 + b"x\r\nSubject: q\r\n\r\nHow do I?\r\n")
    assert view.to == "" and time.perf_counter() - started < 2
    many = b"".join(b"--b\r\nContent-Type: text/plain; x=" + b"y" * 1_900 + b"\r\n\r\nx\r\n" for _ in range(500))
    started = time.perf_counter()
    view_message(b"From: r@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + many + b"--b--\r\n")
    assert time.perf_counter() - started < 2


def test_the_html_part_opened_on_its_own_is_as_sandboxed_as_in_its_frame(tmp_path: Path) -> None:
    """The page's iframe sandboxes the part, but /html/NAME opened directly (a link in another
    caught mail, a bookmark) had only default-src 'none': its forms posted anywhere."""
    from starlette.testclient import TestClient

    from digest.web.mailbox import create_mailbox_app

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "20261126T120000-00001.eml").write_bytes(_qp_message())
    with TestClient(create_mailbox_app(outbox), base_url="http://127.0.0.1:8025") as client:
        policy = client.get("/html/20261126T120000-00001.eml").headers["content-security-policy"]
    directives = {d.strip().split(" ")[0]: d.strip() for d in policy.split(";")}
    assert directives["form-action"] == "form-action 'none'"
    assert directives["sandbox"].startswith("sandbox") and "allow-scripts" not in policy and "allow-same-origin" not in policy


@pytest.mark.slow  # starts processes
def test_a_busy_web_port_names_the_web_option(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with digest_process("mailbox", "--port", str(free_port()), "--dir", str(tmp_path / "o"), "--web", str(taken)) as proc:
            out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 8 and out.count("\n") == 1, out
    assert "choose another port with --web" in out and "--port" not in out


@pytest.mark.slow  # starts processes
def test_the_mailbox_page_answers_only_its_own_host_names(tmp_path: Path) -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
    "Host: evil.example:PORT". A real `digest mailbox --web` refuses it, and serves its own names."""
    import httpx
    from browser import digest_process
    from mailserver import free_port

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "20261126T120000-00001.eml").write_bytes(_qp_message())
    smtp, web = free_port(), free_port()
    base = f"http://127.0.0.1:{web}"
    with digest_process("mailbox", "--port", str(smtp), "--dir", str(outbox), "--web", str(web), health=f"{base}/"):
        for host in (f"evil.example:{web}", "evil.example", f"127.0.0.1.evil.example:{web}", ""):
            refused = httpx.get(f"{base}/raw/20261126T120000-00001.eml", headers={"Host": host})
            assert refused.status_code == 400 and "news.example.com" not in refused.text, host
        for host in (f"127.0.0.1:{web}", f"localhost:{web}"):
            assert httpx.get(f"{base}/raw/20261126T120000-00001.eml", headers={"Host": host}).status_code == 200, host
