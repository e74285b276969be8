"""The whole questions loop on real parts, from the Contact form's mail: the Blogger
notification delivered into a throwaway Dovecot -> `digest inbox` -> the acknowledgement
at aiosmtpd -> `digest questions accept` -> a feed over HTTP with the answer post labelled
Q-<id> -> `digest send`: the newsletter features it, the asker's notice arrives exactly
once, a second send sends no second notice, and the asker's address is in no issue or
page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_NOW, FeedServer, Reply, Run
from feedgen import Entry, atom
from imap_tools import MailBox
from imapserver import PASSWORD, IMAPServer

pytestmark = pytest.mark.slow
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "contact_form" / "plain_labels.eml"
ASKER, NAME = "jane.reader@example.org", "Jane Reader"
PARAPHRASE = "How do I ask one employer to speed up when another offer expires Friday?"


def _plain(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def test_a_contact_form_question_travels_the_whole_loop(
        dovecot: IMAPServer, write_config: Callable[..., Path], mail_server: Any, feed_server: FeedServer,
        run_cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "loop-secret-0123456789abcdef")
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    user = dovecot.add_user()
    config = write_config(feed_server.url + "/feeds/posts/default", smtp_port=mail_server.port)
    config.write_text(config.read_text() + (
        f'\n[inbox]\nhost = "127.0.0.1"\nport = {dovecot.imaps_port}\nsecurity = "ssl"\nusername = "{user}"\n'
        f'password_env = "DIGEST_IMAP_PASSWORD"\ndone_folder = "Digest Done"\nca_file = "{dovecot.ca_file}"\n'))
    assert run_cli("subscribers", "add", "reader@example.com", "--confirmed", "--config", config).code == 0
    with MailBox("127.0.0.1", dovecot.imaps_port, ssl_context=dovecot.context()).login(user, PASSWORD) as box:
        box.append(FIXTURE.read_bytes(), "INBOX")

    # 1. digest inbox takes the question out of the Contact form's notification and acknowledges it.
    read = run_cli("inbox", "--config", config)
    assert read.code == 0, read.err
    assert "question 1 (contact-form), acknowledged" in read.out and ASKER not in read.out
    [ack] = mail_server.received
    assert ack.recipients == [ASKER] and "expires on Friday" not in _plain(ack.message)
    assert run_cli("inbox", "--config", config).out.count("question") == 0  # read again: nothing twice
    assert len(mail_server.received) == 1

    # 2. The author accepts it; 3. the answer post is published, labelled Q-1.
    shown = run_cli("questions", "show", "1", "--config", config)
    assert "two offers on the table" in shown.out and ASKER in shown.out  # the author sees who asked
    assert run_cli("questions", "accept", "1", "--as", PARAPHRASE, "--config", config).code == 0
    recent = (CLI_NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the commands run at CLI_NOW
    answer = Entry(1, "When one offer has a deadline", labels=["Salary & Offers", "Q-1"], published=recent)
    feed_server.serve("/feeds/posts/default", Reply(body=atom([answer]), headers={"Content-Type": "application/atom+xml"}))

    # 4. digest send: the newsletter features it; the asker's notice goes once.
    sent = run_cli("send", "--yes", "--config", config)
    assert sent.code == 0, sent.err
    [newsletter] = [m for m in mail_server.received if m.recipients == ["reader@example.com"]]
    assert PARAPHRASE in _plain(newsletter.message) and "When one offer has a deadline" in _plain(newsletter.message)
    notices = [m for m in mail_server.received if m.recipients == [ASKER] and m is not ack]
    assert len(notices) == 1 and "blog.example.com/2026/11/post-1.html" in _plain(notices[0].message)
    again = run_cli("send", "--yes", "--config", config)
    assert again.code == 0 and [m.recipients for m in mail_server.received].count([ASKER]) == 2

    # 5. The asker is in no newsletter, no recorded issue, no archive page.
    for message in mail_server.received:
        if message.recipients != [ASKER]:
            assert ASKER not in message.data.decode() and NAME not in message.data.decode()
    from starlette.testclient import TestClient

    from digest.adapters.ledger import Ledger
    from digest.adapters.store import open_store
    from digest.core.config import read_config
    from digest.web import create_app

    loaded = read_config(config, {"DIGEST_SECRET": "loop-secret-0123456789abcdef"})
    with open_store(loaded) as store:
        for issue, _ in Ledger(store).history():
            assert ASKER not in issue.html + issue.text and NAME not in issue.html + issue.text
        with TestClient(create_app(loaded, store, send_confirmation=lambda sub, now: None)) as client:
            for path in ("/archive/", "/archive/1", "/archive/feed.xml", "/ask", "/subscribe"):
                body = client.get(path).text
                assert ASKER not in body and NAME not in body, path
    status = run_cli("status", "--config", config).out
    assert "Questions: 1 received, 1 answered" in status


def test_a_notification_in_an_unknown_layout_is_never_answered(write_config: Callable[..., Path], mail_server: Any,
                                                               tmp_path: Path) -> None:
    """Its From is the form service's own address: an acknowledgement there would reach no reader."""
    from digest.cli.wiring import Wiring
    from digest.core.config import read_config
    from digest.core.returns import Ours, sort_message
    from digest.jobs.intake import take_mailed_question

    raw = (b"From: Blogger <no-reply@blogger.com>\r\nTo: owner@example.com\r\nSubject: Message from The Wise Job Search\r\n"
           b"Message-ID: <cf-odd-1@blogger.com>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
           b"Somebody wrote to you, in a layout no fixture shows.\r\nSender says: how do I negotiate?\r\n")
    config = read_config(write_config(smtp_port=mail_server.port), {"DIGEST_SECRET": "loop-secret-0123456789abcdef"})
    found = sort_message(raw, Ours("example.com"))
    with Wiring(config, clock=lambda: CLI_NOW) as wiring:
        outcome = take_mailed_question(config.publication, wiring, raw, found, now=CLI_NOW)
    assert outcome.endswith("in a layout not known (core/contact_form.py): kept unsorted") and mail_server.received == []
