"""The README's local try-out, end to end, as a newcomer follows it: digest init --sample,
digest mailbox --web, digest serve, subscribe in Chromium, open the confirmation from the
mailbox page and click its link, digest send, read the issue in the mailbox page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, ROOT, chromium_page, digest_process, screenshot
from conftest import require
from mailserver import free_port

pytestmark = pytest.mark.browser


def _open_newest(page: Any, mailbox: str, subject_part: str, timeout: float = 20) -> None:
    """Reload the mailbox page until a message whose subject holds `subject_part` is listed; open it."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(mailbox)
        link = page.locator("td a", has_text=subject_part)
        if link.count():
            link.first.click()
            page.wait_for_selector("h1")
            return
        assert time.monotonic() < deadline, f"no message with {subject_part!r} in the mailbox page"
        time.sleep(0.2)


def test_the_readme_try_out_end_to_end(tmp_path: Path) -> None:
    require(os.path.exists(CHROMIUM), "Chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DIGEST_SECRET", None)  # the try-out uses the secret file init made
    folder = tmp_path / "tryout"
    made = subprocess.run([sys.executable, "-m", "digest", "init", str(folder), "--sample"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    config = folder / "config.toml"
    # The README's ports (1025, 8025, 8000) may be taken on a test machine: free ones instead.
    smtp, mailbox_port, web = free_port(), free_port(), free_port()
    # Only the ports change: base_url stays "localhost" while serve prints 127.0.0.1, as for a newcomer.
    base = f"http://localhost:{web}"
    text = config.read_text().replace("port = 1025", f"port = {smtp}")
    assert 'base_url = "http://localhost:8000"' in text
    config.write_text(text.replace('base_url = "http://localhost:8000"', f'base_url = "{base}"'))
    mailbox = f"http://127.0.0.1:{mailbox_port}/"

    with digest_process("mailbox", "--port", str(smtp), "--dir", str(tmp_path / "outbox"), "--web", str(mailbox_port),
                        health=mailbox), \
            digest_process("serve", "--config", str(config), "--port", str(web), "--no-scheduler",
                           health=f"http://127.0.0.1:{web}/healthz") as serve, \
            chromium_page(width=1000, height=900) as page:
        printed = _printed_address(serve)
        assert printed == f"http://127.0.0.1:{web}/subscribe"
        page.goto(printed)  # the address serve prints, not base_url: its form must work there too
        page.fill("#email", "newcomer@example.com")
        page.fill("#name", "Nia")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your inbox")

        _open_newest(page, mailbox, "Confirm")
        screenshot(page, "tryout-1-confirmation-in-mailbox")
        confirm = page.locator("pre.text-part a", has_text="/confirm/")
        assert confirm.count() == 1, page.content()
        page.wait_for_load_state("load")  # the HTML part's frame above it has loaded: nothing moves any more
        confirm.scroll_into_view_if_needed()
        with page.expect_navigation(url=f"{base}/confirm/*"):
            confirm.click()
        page.click("button:has-text('Confirm my subscription')")  # the link opens a page with one button
        page.wait_for_selector("text=You're subscribed")
        assert page.url.startswith(f"{base}/confirm/") and "subscribed, Nia" in page.inner_text("h1")
        screenshot(page, "tryout-2-confirmed")
        # The preferences page of an all-topics reader: none ticked ("none ticked: all of them"), its address named.
        page.click("text=Choose your topics now")
        page.wait_for_selector("h1:has-text('Your newsletter settings')")
        assert "newcomer@example.com" in page.inner_text("main" if page.locator("main").count() else "body")
        boxes = page.locator("input[name=topics]")
        assert boxes.count() == 5 and page.locator("input[name=topics]:checked").count() == 0
        page.check("input[name=topics][value='Networking']")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Saved.")
        assert [page.locator("input[name=topics]:checked").get_attribute("value")] == ["Networking"]
        screenshot(page, "tryout-2b-preferences")
        page.goto(f"http://127.0.0.1:{web}/")
        assert page.url == printed, "the site's root leads to the subscribe page"

        sent = subprocess.run([sys.executable, "-m", "digest", "send", "--yes", "--config", str(config)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "1 sent" in sent.stdout

        page.goto(mailbox)
        assert page.locator("td a", has_text="Welcome").count() == 1, "the welcome mail after confirming"
        _open_newest(page, mailbox, "This week: ")  # the issue: its subject says it is the week's digest
        assert "newcomer@example.com" in page.inner_text(".meta")
        frame = page.frame_locator("iframe.html-part")
        frame.locator("text=Have a question?").wait_for()
        unsubscribe = page.locator("pre.text-part a", has_text="/unsubscribe/")
        assert unsubscribe.count() >= 1, "the text part's unsubscribe link must be whole and clickable"
        screenshot(page, "tryout-3-issue-in-mailbox")
        # A link in the HTML part opens in the mailbox's tab: the issue's own unsubscribe link works.
        frame.locator("a", has_text="Unsubscribe").first.click()
        page.wait_for_url(f"{base}/unsubscribe/*")
        page.wait_for_selector("button:has-text('Unsubscribe')")
        screenshot(page, "tryout-4-unsubscribe-from-the-issue")
        page.click("button:has-text('Unsubscribe')")
        page.wait_for_selector("h1")
        serve.terminate()
        serve.wait(10)
        log = serve.stdout.read().decode()  # type: ignore[union-attr]
    # One format, one line per event that matters, times in [schedule] timezone (New York).
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines and all(LOG_LINE.match(line) for line in lines), log
    for event in ("asked to subscribe", "confirmation mail to subscriber 1 sent", "subscriber 1 confirmed",
                  "welcome mail to subscriber 1 sent", "subscriber 1 unsubscribed (web)"):
        assert sum(event in line for line in lines) == 1, (event, log)


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T (INFO|WARNING|ERROR) [a-z.]+: \S")


def _printed_address(proc: Any) -> str:
    """The address `digest serve` prints when it starts ("Serving ... on http://...")."""
    for _ in range(20):
        line = proc.stdout.readline().decode()
        found = re.search(r"Serving .* on (http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError("digest serve printed no address")
