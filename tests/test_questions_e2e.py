"""The questions loop end to end on real parts, with the /ask page as intake (the inbox's
Contact-form mail joins when the inbox reader lands): `digest serve` as a subprocess on a
real port, aiosmtpd as the relay, the feed over HTTP, the CLI for the rest.

POST /ask -> the acknowledgement at the SMTP server -> `digest questions accept ID --as` ->
a feed with a post labelled Q-<id> -> `digest send --yes`: the newsletter features the
paraphrase and the link, the asker's notice arrives exactly once, a second send (and a
third, with a new post) sends no second notice, and the asker's address and name are in
no issue, no newsletter and no archive page.
"""

from __future__ import annotations

import functools
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from browser import digest_process
from conftest import FeedServer, Reply, Run
from feedgen import Entry, atom
from mailserver import free_port

SECRET = "e2e-secret-0123456789abcdef"
ASKER, NAME = "asker@example.com", "Secret Name"
PARAPHRASE = "How do I choose between two job offers with different deadlines?"


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode("utf-8"))


def post_form(url: str, fields: dict[str, str]) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10) as response:
        return int(response.status), str(response.read().decode("utf-8"))


def wait_for_mail(server: Any, count: int, timeout: float = 10.0) -> None:
    """The acknowledgement goes after the page has answered: wait for it."""
    deadline = time.monotonic() + timeout
    while len(server.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def plain(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content()) + str(message.get_body(("html",)).get_content())


def test_a_question_from_ask_to_the_answer_in_the_askers_inbox(
        write_config: Callable[..., Path], mail_server: Any, feed_server: FeedServer, run_cli: Callable[..., Run],
        monkeypatch: Any) -> None:
    # `digest serve` runs on the wall clock, so the commands beside it do too, and every date
    # in the test is reckoned from that same now: nothing depends on which day it runs.
    cli = functools.partial(run_cli, clock=lambda: datetime.now(timezone.utc))
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    config = write_config(feed_server.url + "/feeds/posts/default", smtp_port=mail_server.port)
    assert cli("subscribers", "add", "reader@example.com", "--confirmed", "--config", config).code == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    with digest_process("serve", "--no-scheduler", "--port", str(port), "--config", str(config),
                        env={"DIGEST_SECRET": SECRET}, health=f"{base}/healthz"):
        # 1. A reader asks, on the /ask page of `digest serve`.
        status, page = post_form(f"{base}/ask", {
            "email": ASKER, "name": NAME, "question": "I have two offers and one expires Friday. What do I do?",
            "quote": "yes", "display_name": "J.", "website": ""})
        assert status == 200 and "Thank you for your question" in page and ASKER not in page and NAME not in page

        # 2. The acknowledgement arrives, once, without the question in it.
        wait_for_mail(mail_server, 1)
        [ack] = mail_server.received
        assert ack.recipients == [ASKER] and ack.message["Subject"].startswith("We received your question")
        assert "expires Friday" not in plain(ack.message) and NAME not in ack.data.decode()

        # 3. The author accepts it with a paraphrase.
        listed = cli("questions", "list", "--config", config)
        qid = int(listed.out.split("\t")[0].lstrip("#"))
        accepted = cli("questions", "accept", str(qid), "--as", PARAPHRASE, "--config", config)
        assert accepted.code == 0 and f"Label its answer post Q-{qid}" in accepted.out

        # 4. The answer is published: a post labelled Q-<id>, served over HTTP.
        recent = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        answer = Entry(1, "Two offers, one deadline", labels=["Salary & Offers", f"Q-{qid}"], published=recent)
        feed_server.serve("/feeds/posts/default", Reply(body=atom([answer]), headers={"Content-Type": "application/atom+xml"}))
        sent = cli("send", "--yes", "--config", config)
        assert sent.code == 0, sent.err
        assert f"Question {qid} answered by" in sent.out and "Answer notices: 1 sent." in sent.out

        newsletters = [m for m in mail_server.received if m.recipients == ["reader@example.com"]]
        [notice] = [m for m in mail_server.received if m.recipients == [ASKER] and m is not ack]
        [issue_mail] = newsletters
        text = plain(issue_mail.message)
        assert PARAPHRASE in text and "Two offers, one deadline" in text and "blog.example.com/2026/11/post-1.html" in text
        assert notice.message["Subject"].startswith("Your question has been answered")
        assert "blog.example.com/2026/11/post-1.html" in plain(notice.message)

        # 5. A second send (nothing new) and a third (a new post) send no second notice.
        again = cli("send", "--yes", "--config", config)
        assert again.code == 0 and "Answer notices" not in again.out
        newer = Entry(2, "Networking in December", labels=["Networking"],
                      published=(datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        feed_server.serve("/feeds/posts/default", Reply(body=atom([newer, answer]), headers={"Content-Type": "application/atom+xml"}))
        third = cli("send", "--yes", "--config", config)
        assert third.code == 0 and "Issue 2: 1 sent." in third.out
        assert [m.recipients for m in mail_server.received].count([ASKER]) == 2  # the acknowledgement and one notice
        assert PARAPHRASE not in plain(mail_server.received[-1].message)  # featured once, in its own week

        # 6. The asker is in no newsletter, no issue as recorded, no archive page.
        for message in (m for m in mail_server.received if m.recipients != [ASKER]):
            assert ASKER not in message.data.decode() and NAME not in message.data.decode()
        for path in ("/archive/", "/archive/1", "/archive/2", "/ask", "/subscribe"):
            body = get(base + path)
            assert ASKER not in body and NAME not in body, path
        assert PARAPHRASE in get(f"{base}/archive/1")

    status_out = cli("status", "--config", config).out
    assert "Questions: 1 received, 1 answered, median 0.0 days to answer" in status_out
