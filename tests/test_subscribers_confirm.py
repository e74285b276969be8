"""Pending is not a dead end: `subscribers add` mails the confirmation link, the author can
confirm by hand (and it is recorded) or send the link again. Real SQLite, real aiosmtpd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_NOW, Run

from digest.adapters.store import Store
from digest.core.config import read_config


@pytest.fixture
def cfg(write_config: Callable[..., Path], mail_server: Any) -> Path:
    return write_config(smtp_port=mail_server.port)


def _sub(cfg: Path, email: str) -> Any:
    store = Store.open(read_config(cfg, {}).store.url)
    try:
        return store.find(email)
    finally:
        store.close()


def _links(mail_server: Any) -> list[str]:
    import re

    return [m for r in mail_server.received for m in re.findall(r"https://news\.example\.com/confirm/\S+",
                                                                 r.message.get_body(("plain",)).get_content())]


def test_add_mails_the_confirmation_link_and_the_link_confirms(cfg: Path, run_cli: Callable[..., Run],
                                                              mail_server: Any) -> None:
    result = run_cli("subscribers", "add", "bo@example.com", "--name", "Bo", "--config", cfg)
    assert result.code == 0, result.err
    assert result.out == "Added bo@example.com (pending); mailed the confirmation link to bo@example.com.\n"
    assert [r.recipients for r in mail_server.received] == [["bo@example.com"]]
    (link,) = _links(mail_server)
    from starlette.testclient import TestClient

    from digest.jobs.mail import confirmation_mailer
    from digest.web import create_app

    config = read_config(cfg, {})
    from digest.cli.wiring import Wiring

    store = Store.open(config.store.url)
    try:
        app = create_app(config, store, send_confirmation=confirmation_mailer(config.publication, Wiring(config, store=store)),
                         clock=lambda: CLI_NOW)
        with TestClient(app, base_url="https://news.example.com") as client:
            path = link.removeprefix("https://news.example.com")
            assert "Confirm my subscription" in client.get(path).text  # the link shows a button...
            assert _sub(cfg, "bo@example.com").status == "pending"
            assert "subscribed" in client.post(path).text.lower()     # ...and its click confirms
    finally:
        store.close()
    sub = _sub(cfg, "bo@example.com")
    assert sub.status == "confirmed" and sub.confirmed_how == "link"


def test_confirming_by_hand_is_recorded_and_resend_mails_again(cfg: Path, run_cli: Callable[..., Run],
                                                                 mail_server: Any) -> None:
    run_cli("subscribers", "import", _csv(cfg.parent, "cy@example.com,Cy\ndi@example.com,Di\n"), "--config", cfg)
    assert mail_server.received == []  # an import mails no one by itself
    resent = run_cli("subscribers", "confirm", "cy@example.com", "--resend", "--config", cfg)
    assert resent.code == 0 and "mailed the confirmation link to cy@example.com" in resent.out
    assert [r.recipients for r in mail_server.received] == [["cy@example.com"]] and len(_links(mail_server)) == 1
    done = run_cli("subscribers", "confirm", "di@example.com", "--config", cfg)
    assert done.out == "Confirmed di@example.com: recorded as confirmed by you.\n"
    di = _sub(cfg, "di@example.com")
    assert di.status == "confirmed" and di.confirmed_how == "author" and di.confirmed_at is not None
    again = run_cli("subscribers", "confirm", "di@example.com", "--config", cfg)
    assert again.code == 2 and again.err == "Error: di@example.com is confirmed, not pending: nothing to confirm\n"
    missing = run_cli("subscribers", "confirm", "zed@example.com", "--config", cfg)
    assert missing.code == 2 and "not on the list" in missing.err


def test_add_confirmed_on_a_pending_address_confirms_it(cfg: Path, run_cli: Callable[..., Run]) -> None:
    run_cli("subscribers", "add", "ed@example.com", "--config", cfg)
    result = run_cli("subscribers", "add", "ed@example.com", "--confirmed", "--config", cfg)
    assert result.out == "Confirmed ed@example.com: it was pending; recorded as confirmed by you.\n"
    assert _sub(cfg, "ed@example.com").confirmed_how == "author"


def test_a_relay_that_is_down_is_said_with_the_way_to_try_again(write_config: Callable[..., Path],
                                                                 run_cli: Callable[..., Run]) -> None:
    from mailserver import free_port

    cfg = write_config(smtp_port=free_port())
    result = run_cli("subscribers", "add", "fay@example.com", "--config", cfg)
    assert result.code == 5 and "Traceback" not in result.err
    assert result.err.startswith("Added fay@example.com (pending), but the confirmation link was not mailed: SMTP ")
    assert "digest subscribers confirm --resend fay@example.com" in result.err
    assert _sub(cfg, "fay@example.com").status == "pending"


def _csv(folder: Path, text: str) -> Path:
    path = folder / "people.csv"
    path.write_text(text)
    return path
