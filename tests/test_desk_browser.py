"""Done-when of issue 23, end to end: `digest serve` as a subprocess with its real scheduler on
a slot two minutes ahead, a real SMTP server (aiosmtpd), the system Chromium. The proof
arrives before the slot; Hold is clicked and the slot passes with nothing sent; Approve is
clicked and the issue goes out; the report arrives with the right counts; a question asked
on /ask reaches the author's mail, is accepted on the desk with a paraphrase and shows in
`digest questions list --status accepted`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from browser import ROOT, chromium_page, digest_process, screenshot
from mailserver import MailServer, free_port
from test_serve_schedule import SECRET, cron_at, setup, stop_and_read, wait_for

AUTHOR = "author@example.com"
READERS = {f"s{i}@example.com" for i in range(5)}


def mails_to(server: MailServer, address: str, subject: str = "") -> list[Any]:
    return [m for m in server.received if m.recipients == [address] and m.message["Subject"].startswith(subject)]


def text_of(received: Any) -> str:
    return str(received.message.get_body(("plain",)).get_content())


def link_in(received: Any, label: str) -> str:
    found = re.findall(rf"^{re.escape(label)}: (http://\S+)", text_of(received), flags=re.M)
    assert found, f"no {label} link in {received.message['Subject']}"
    return str(found[0])


def submit(page: Any, button: Any) -> None:
    """Click a form's button and wait for the page it leads to (after any redirect)."""
    button.click(trial=True, timeout=10_000)  # actionable: fails here, with why, rather than as a missing navigation
    with page.expect_navigation():
        button.click()


def test_a_week_run_from_the_inbox_and_a_browser(write_config: Callable[..., Path], tmp_path: Path) -> None:
    server = MailServer().start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    slot = (datetime.now(timezone.utc) + timedelta(seconds=120)).replace(microsecond=0)
    config, _ = setup(write_config, tmp_path, server, cron=cron_at(slot))
    config.write_text(config.read_text().replace('base_url = "https://news.example.com"', f'base_url = "{base}"')
                      + f'\n[author]\nemail = "{AUTHOR}"\nproof_hours = 1\n')
    try:
        with ExitStack() as stack:
            proc = stack.enter_context(digest_process("serve", "--config", str(config), "--port", str(port),
                                                      env={"DIGEST_SECRET": SECRET}, health=f"{base}/healthz"))
            page = stack.enter_context(chromium_page())
            # The proof arrives before the slot, the issue as readers will get it.
            wait_for(lambda: bool(mails_to(server, AUTHOR, "[Proof]")), 70)
            [proof] = mails_to(server, AUTHOR, "[Proof]")
            assert "Readers it will reach: 5" in text_of(proof) and "Fresh post 0" in text_of(proof)
            # Hold: the page has one button; opening it changes nothing, clicking holds.
            page.goto(link_in(proof, "Hold"))
            assert page.locator("button").count() == 1
            submit(page, page.locator("button"))
            assert "is held" in page.inner_text("main")
            wait_for(lambda: len(mails_to(server, AUTHOR, "[Proof]")) == 2, 30)  # a new proof follows the change
            assert "held: it will not go" in text_of(mails_to(server, AUTHOR, "[Proof]")[-1])
            # A reader's question, asked on /ask, reaches the author's mail.
            page.goto(f"{base}/ask")
            page.fill("#question", "How do I explain a two-year gap in my resume?")
            page.fill("#email", "maria@example.com")
            page.fill("#name", "Maria Lopez")
            submit(page, page.locator("button[type=submit]"))
            wait_for(lambda: bool(mails_to(server, AUTHOR, "1 new reader question")), 75)
            questions_mail = mails_to(server, AUTHOR, "1 new reader question")[0]
            assert "from Maria (via web)" in text_of(questions_mail) and "two-year gap" in text_of(questions_mail)
            # The mail's link to the question: sign in by the mailed link, back to the question, accept it
            # with a paraphrase (filled in with the question's text).
            question_link = link_in(questions_mail, "Accept or decline it")
            page.goto(question_link)
            page.fill("#email", AUTHOR)
            submit(page, page.locator("button[type=submit]"))
            wait_for(lambda: bool(mails_to(server, AUTHOR, "Your sign-in link")), 20)
            signin = re.findall(r"(http://\S+/desk/signin/\S+)", text_of(mails_to(server, AUTHOR, "Your sign-in link")[0]))[0]
            page.goto(signin)
            submit(page, page.locator("button"))
            assert page.url == question_link
            paraphrase = page.locator("#paraphrase")
            assert paraphrase.input_value() == "How do I explain a two-year gap in my resume?"
            paraphrase.fill("Explaining a gap in a resume")
            submit(page, page.locator("button", has_text="Accept"))
            assert "Accepted question" in page.inner_text("#notice")
            # The desk: the next issue held, and as it will go, in a frame (as the mailbox page shows a message).
            assert "The next issue" in page.inner_text("main") and "held" in page.inner_text("#status")
            page.frame_locator("iframe").locator("text=Fresh post 0").first.wait_for(timeout=15_000)
            screenshot(page, "desk")
            # The slot passes with nothing sent to readers; the author is told.
            wait_for(lambda: bool(mails_to(server, AUTHOR, "Not sent")), max(5.0, (slot - datetime.now(timezone.utc)).total_seconds() + 40))
            assert not READERS & {r for m in server.received for r in m.recipients}
            # Approve (the first proof's link, still good after the slot): the issue goes out at once.
            page.goto(link_in(proof, "Approve"))
            assert page.locator("button").count() == 1
            submit(page, page.locator("button"))
            assert "approved late" in page.inner_text("main")
            wait_for(lambda: {r for m in server.received for r in m.recipients} >= READERS, 30)
            wait_for(lambda: bool(mails_to(server, AUTHOR, "Report")), 30)
            report = text_of(mails_to(server, AUTHOR, "Report")[0])
            for line in ("Delivered: 5", "Deferred: 0", "Failed: 0", "New subscribers: 5", "Unsubscribed by link: 0",
                         "Bounced: 0", "Questions received: 1", "Questions answered: 0", f"In the archive: {base}/archive/1"):
                assert line in report, line
            out = stop_and_read(proc)
        assert sorted(r for m in server.received for r in m.recipients if r in READERS) == sorted(READERS)  # once each
        listed = subprocess.run([sys.executable, "-m", "digest", "--config", str(config), "questions", "list",
                                 "--status", "accepted"], capture_output=True, text=True, cwd=ROOT,
                                env={"DIGEST_SECRET": SECRET, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
        assert listed.returncode == 0, listed.stderr
        assert "Explaining a gap in a resume" in listed.stdout, listed.stdout
        assert "not sent: the issue of" in out
    finally:
        server.stop()
