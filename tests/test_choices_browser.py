"""End to end in the system Chromium: a reader sets each choice on the preferences page
(monthly, a two-week pause and its end, "I got the job!" and the link back from the caught
mail, a new address confirmed from the mail it got) and the unsubscribe page's alternative.
`digest serve` runs under faketime at a date the test chooses."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, chromium_page, digest_process, screenshot
from conftest import require
from mailserver import free_port

from digest.adapters.store import Store
from digest.core.models import Consent
from digest.core.tokens import Links

pytestmark = pytest.mark.browser
SECRET = "choices-e2e-secret-0123456789abcdef"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def wait_for_mail(server: Any, to: str, count: int = 1, timeout: float = 15) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r.message for r in server.received if to in r.recipients]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} arrived")


def link_in(message: Any, base: str, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(rf"{re.escape(base)}/{path}/\S+", text).group(0)  # type: ignore[union-attr]


def test_each_choice_on_the_preferences_page_in_chromium(write_config: Callable[..., Path], mail_server: Any) -> None:
    require(os.path.exists(CHROMIUM), "Chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    require(shutil.which("faketime") is not None, "faketime not installed (apt-get install faketime)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(smtp_port=mail_server.port)
    config.write_text(config.read_text().replace('base_url = "https://news.example.com"', f'base_url = "{base}"'))
    db = config.parent / "subscribers.db"
    store = Store.open(f"sqlite:///{db}")
    sub, _ = store.add("ana@example.com", "ana@example.com", "Ana", ("Interviews",), confirmed=True, now=NOW,
                       consent=Consent(at=NOW, method="cli"))
    links = Links(base, SECRET)
    prefs, unsubscribe = links.preferences(sub.id, NOW), links.unsubscribe(sub.id, NOW)
    env = {"DIGEST_SECRET": SECRET, "FAKETIME": "@2026-11-25 12:00:00", "LD_PRELOAD": _libfaketime()}
    try:
        with digest_process("serve", "--config", str(config), "--port", str(port), "--no-scheduler", env=env,
                            health=f"{base}/healthz"), chromium_page(width=480, height=1000) as page:
            # how often
            page.goto(prefs)
            assert page.is_checked("input[value='weekly']")
            page.check("input[value='monthly']")
            page.click("button:has-text('Save')")
            page.wait_for_selector("text=You will get one issue a month")
            assert page.is_checked("input[value='monthly']") and page.is_checked("input[value='Interviews']")
            screenshot(page, "choices-1-monthly")
            assert _get(store, sub.id).frequency == "monthly"

            # a pause of two weeks, and its end
            page.select_option("#weeks", "2")
            page.click("button:has-text('Pause')")
            page.wait_for_selector("text=Paused for 2 weeks")
            assert "Paused until 9 December 2026" in page.content()
            screenshot(page, "choices-2-paused")
            assert _get(store, sub.id).paused_until is not None
            page.click("button:has-text('Start my newsletter again')")
            page.wait_for_selector("text=Welcome back")
            assert _get(store, sub.id).pause_reason == ""

            # "I got the job!": a congratulation by mail, whose link brings them back
            page.click("button:has-text('I got the job!')")
            page.wait_for_selector("text=Congratulations on the new job!")
            assert _get(store, sub.id).pause_reason == "job"
            [congratulation] = wait_for_mail(mail_server, "ana@example.com")
            assert congratulation["Subject"].startswith("Congratulations on the new job!")
            page.goto(link_in(congratulation, base, "comeback"))
            page.wait_for_selector("button:has-text('Start my newsletter again')")
            screenshot(page, "choices-3-come-back")
            assert _get(store, sub.id).pause_reason == "job"  # opening the link changed nothing
            page.click("button:has-text('Start my newsletter again')")
            page.wait_for_selector("text=Your newsletter starts again")
            assert _get(store, sub.id).pause_reason == ""

            # a new address, confirmed from the mail it got
            page.goto(prefs)
            page.fill("#new-email", "ana@new.example")
            page.click("button:has-text('Change my address')")
            page.wait_for_selector("text=We sent a message to ana@new.example")
            assert _get(store, sub.id).email == "ana@example.com"
            [confirmation] = wait_for_mail(mail_server, "ana@new.example")
            page.goto(link_in(confirmation, base, "address"))
            page.click("button:has-text('Move my subscription here')")
            page.wait_for_selector("text=now comes to this address")
            screenshot(page, "choices-4-address-moved")
            moved = _get(store, sub.id)
            assert moved.email == "ana@new.example" and moved.frequency == "monthly" and moved.topics == ("Interviews",)
            notices = wait_for_mail(mail_server, "ana@example.com", 2)
            assert notices[1]["Subject"].startswith("Your subscription to")

            # the unsubscribe page's alternatives: a pause instead of leaving (the link of a mail
            # to the new address: the old address's links no longer reach the subscription)
            page.goto(unsubscribe)
            assert "Pause for 4 weeks" not in page.content()
            page.goto(links.unsubscribe(sub.id, NOW + timedelta(minutes=5)))
            page.click("button:has-text('Pause for 4 weeks')")
            page.wait_for_selector("text=You are still subscribed")
            after = _get(store, sub.id)
            assert after.status == "confirmed" and after.paused_until is not None
            assert timedelta(weeks=4) <= after.paused_until - NOW < timedelta(weeks=4, minutes=5)  # faketime ticks
    finally:
        store.close()


def _get(store: Store, subscriber_id: int) -> Any:
    sub = store.get(subscriber_id)
    assert sub is not None
    return sub


def _libfaketime() -> str:
    for candidate in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                      "/usr/lib/faketime/libfaketime.so.1"):
        if os.path.exists(candidate):
            return candidate
    pytest.skip("libfaketime.so.1 not found")
