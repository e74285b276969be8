"""End to end in the system Chromium: subscribe on the form, confirm from the mail, leave."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, ROOT, chromium_page, digest_process, screenshot
from conftest import ANY_DAY, require
from mailserver import free_port

pytestmark = pytest.mark.browser
SECRET = "e2e-secret-0123456789abcdef"


def wait_for_mail(server: Any, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(server.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(server.received) >= count, "no mail arrived"


def test_subscribe_confirm_unsubscribe_in_chromium(write_config: Callable[..., Path], mail_server: Any) -> None:
    require(os.path.exists(CHROMIUM), "Chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(smtp_port=mail_server.port, first_issue_days=ANY_DAY)  # `serve` reads the wall clock
    config.write_text(config.read_text().replace('base_url = "https://news.example.com"', f'base_url = "{base}"'))
    env = {"DIGEST_SECRET": SECRET}
    with digest_process("serve", "--config", str(config), "--port", str(port), env=env, health=f"{base}/healthz"), \
            chromium_page(width=420, height=900) as page:
        page.goto(f"{base}/subscribe")
        page.fill("#email", "Reader@Example.com")
        page.fill("#name", "Riley <Reader>")
        page.check("input[value='Networking']")
        screenshot(page, "1-subscribe-form")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your inbox")
        screenshot(page, "2-check-inbox")

        wait_for_mail(mail_server, 1)
        message = mail_server.received[0].message
        assert mail_server.received[0].recipients == ["Reader@example.com"]
        link = re.search(rf"{re.escape(base)}/confirm/\S+", message.get_body(("plain",)).get_content()).group(0)  # type: ignore[union-attr]
        page.goto(link)  # what a link scanner does too: it shows a button, and confirms nothing
        page.wait_for_selector("button:has-text('Confirm my subscription')")
        assert page.input_value("#name") == "Riley <Reader>"  # the typed name, for its owner to keep or change
        screenshot(page, "3-confirm-button")
        pending = subprocess.run([sys.executable, "-m", "digest", "subscribers", "list", "--status", "pending", "--config",
                                  str(config)], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                 timeout=60)
        assert "Reader@example.com\tpending" in pending.stdout, "opening the link alone confirmed the address"
        page.click("button:has-text('Confirm my subscription')")
        page.wait_for_selector("text=You're subscribed")
        assert "subscribed, Riley <Reader>!" in page.inner_text("h1")
        screenshot(page, "3-confirmed")
        wait_for_mail(mail_server, 2)  # the welcome mail, once
        assert mail_server.received[1].message["Subject"] == "Welcome to The Wise Job Search"

        listed = subprocess.run([sys.executable, "-m", "digest", "subscribers", "list", "--config", str(config)],
                                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert "Reader@example.com\tconfirmed\tRiley <Reader>\tNetworking\tweekly" in listed.stdout.splitlines()

        page.click("text=Choose your topics now")
        page.wait_for_selector("text=Your newsletter settings")
        assert page.is_checked("input[value='Networking']") and not page.is_checked("input[value='Offers']")
        screenshot(page, "4-preferences")
        page.click("text=Unsubscribe")
        page.wait_for_selector("button:has-text('Unsubscribe')")
        screenshot(page, "5-unsubscribe")
        page.click("button:has-text('Unsubscribe')")
        page.wait_for_selector("text=You're unsubscribed")
        screenshot(page, "6-unsubscribed")

        # An issue goes out (to no one: the only reader left), then shows in the archive.
        sent = subprocess.run([sys.executable, "-m", "digest", "send", "--yes", "--config", str(config)], capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=120)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        page.goto(f"{base}/archive/")
        page.wait_for_selector("text=Past issues")
        screenshot(page, "7-archive")
        page.click("li a")
        page.wait_for_selector("text=Have a question?")
        assert "/unsubscribe/" not in page.content()
        assert "Hello" not in page.inner_text("body") and page.is_visible("a.button-link:has-text('Subscribe')")
        page.set_viewport_size({"width": 600, "height": 900})
        screenshot(page, "8-archived-issue")

    listed = subprocess.run([sys.executable, "-m", "digest", "subscribers", "list", "--status", "unsubscribed",
                             "--config", str(config)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert listed.stdout.startswith("Reader@example.com\tunsubscribed")
