"""`digest subscribers set`, `list` (frequency and pause), `export --person` (choices,
deliveries, returns) and `export --status` (the suppression list), against a real SQLite
file and a real SMTP server, at dates the tests choose."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_NOW, Run


@pytest.fixture
def cfg(write_config: Callable[..., Path], mail_server: Any, store_url: str, tmp_path: Path) -> Path:
    """A config whose [store] url is SQLite or PostgreSQL (store_url)."""
    path = write_config(smtp_port=mail_server.port)
    path.write_text(path.read_text().replace(f'url = "sqlite:///{tmp_path / "subscribers.db"}"', f'url = "{store_url}"'))
    assert store_url in path.read_text()
    return path


def _add(run_cli: Callable[..., Run], cfg: Path, *emails: str) -> None:
    for address in emails:
        assert run_cli("subscribers", "add", address, "--confirmed", "--config", cfg).code == 0


def test_set_frequency_and_pauses_and_list_shows_them(cfg: Path, run_cli: Callable[..., Run]) -> None:
    _add(run_cli, cfg, "ana@example.com", "bo@example.com", "cy@example.com")
    assert run_cli("subscribers", "set", "ana@example.com", "--frequency", "monthly", "--config", cfg).out == \
        "ana@example.com: monthly, not paused.\n"
    assert run_cli("subscribers", "set", "bo@example.com", "--pause-weeks", "2", "--config", cfg).out == \
        "bo@example.com: weekly, paused until 7 December 2026.\n"
    assert run_cli("subscribers", "set", "cy@example.com", "--pause", "--config", cfg).out == \
        "cy@example.com: weekly, paused until resumed.\n"
    listed = run_cli("subscribers", "list", "--config", cfg).out.splitlines()
    assert listed == ["ana@example.com\tconfirmed\t\tall topics\tmonthly",
                      "bo@example.com\tconfirmed\t\tall topics\tweekly\tpaused until 7 December 2026",
                      "cy@example.com\tconfirmed\t\tall topics\tweekly\tpaused until resumed"]
    # two weeks later bo's pause is over by itself; cy's ends with --resume
    later = run_cli("subscribers", "list", "--config", cfg, clock=lambda: CLI_NOW + timedelta(weeks=2)).out
    assert "bo@example.com\tconfirmed\t\tall topics\tweekly\n" in later
    assert run_cli("subscribers", "set", "cy@example.com", "--resume", "--config", cfg).out == \
        "cy@example.com: weekly, not paused.\n"


@pytest.mark.parametrize(("args", "message"), [
    (("ana@example.com",), "Error: nothing to set: give --frequency, --pause-weeks N, --pause or --resume"),
    (("ana@example.com", "--pause", "--resume"), "Error: --pause-weeks, --pause and --resume: give one of them"),
    (("ana@example.com", "--frequency", "daily"), "Invalid value for '--frequency'"),
    (("ana@example.com", "--pause-weeks", "0"), "Invalid value for '--pause-weeks'"),
    (("nobody@example.com", "--resume"), "Error: nobody@example.com is not on the list"),
])
def test_set_mistakes_are_one_line(cfg: Path, run_cli: Callable[..., Run], args: tuple[str, ...], message: str) -> None:
    _add(run_cli, cfg, "ana@example.com")
    result = run_cli("subscribers", "set", *args, "--config", cfg)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


def test_monthly_is_refused_when_the_config_does_not_offer_it(write_config: Callable[..., Path],
                                                              run_cli: Callable[..., Run]) -> None:
    cfg = write_config(newsletter='frequencies = ["weekly"]')
    _add(run_cli, cfg, "ana@example.com")
    result = run_cli("subscribers", "set", "ana@example.com", "--frequency", "monthly", "--config", cfg)
    assert result.code == 2 and "[newsletter] frequencies" in result.err and "does not offer it" in result.err


def test_export_person_holds_choices_deliveries_and_returns(cfg: Path, run_cli: Callable[..., Run],
                                                             tmp_path: Path) -> None:
    _add(run_cli, cfg, "ana@example.com")
    run_cli("subscribers", "set", "ana@example.com", "--pause-weeks", "4", "--config", cfg)
    run_cli("subscribers", "set", "ana@example.com", "--resume", "--config", cfg)
    assert run_cli("send", "--yes", "--config", cfg).code == 0
    _record_return(cfg, "ana@example.com", "soft")  # what `digest inbox` records of a bounce about her
    out = tmp_path / "ana.json"
    assert run_cli("subscribers", "export", "--person", "ana@example.com", str(out), "--config", cfg).code == 0
    data = json.loads(out.read_text())
    assert [c["kind"] for c in data["choices"]] == ["pause", "resume"]
    assert data["subscription"]["frequency"] == "weekly"
    [delivery] = data["deliveries"]
    assert delivery["issue"] == 1 and delivery["status"] == "sent" and delivery["issue_date"].startswith("2026-11-23")
    assert [(r["kind"], r["issue"], r["at"]) for r in data["returns"]] == [("soft", 1, "2026-11-24T08:00:00+00:00")]
    # removing the address takes its choices with it
    assert run_cli("subscribers", "remove", "ana@example.com", "--config", cfg).code == 0
    import sqlalchemy as sa

    from digest.adapters.schema import reader_choices
    from digest.adapters.store import Store
    from digest.core.config import read_config

    store = Store.open(read_config(cfg, {"DIGEST_SECRET": "x" * 32}).store.url)
    with store.tx() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(reader_choices)).scalar_one() == 0
    store.close()


def test_export_status_writes_the_suppression_list_with_dates(cfg: Path, run_cli: Callable[..., Run],
                                                              tmp_path: Path) -> None:
    from digest.adapters.store import Store
    from digest.core.config import read_config

    _add(run_cli, cfg, "ana@example.com", "bo@example.com", "cy@example.com")
    config = read_config(cfg, {"DIGEST_SECRET": "x" * 32})
    store = Store.open(config.store.url)
    ana, bo = store.find("ana@example.com"), store.find("bo@example.com")
    assert ana and bo
    store.unsubscribe(ana.id, how="link", now=CLI_NOW + timedelta(days=3))
    with store.tx() as conn:
        from digest.adapters.schema import subscribers
        conn.execute(subscribers.update().where(subscribers.c.id == bo.id)
                     .values(status="bounced", updated_at=CLI_NOW + timedelta(days=5)))
    store.close()
    out = tmp_path / "suppressed.csv"
    result = run_cli("subscribers", "export", "--status", "unsubscribed,bounced", str(out), "--config", cfg)
    assert result.code == 0 and "Wrote 2 addresses" in result.out
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows == [["email", "status", "since"], ["ana@example.com", "unsubscribed", "2026-11-26T12:00:00+00:00"],
                    ["bo@example.com", "bounced", "2026-11-28T12:00:00+00:00"]]
    wrong = run_cli("subscribers", "export", "--status", "gone", "--config", cfg)
    assert wrong.code == 2 and "--status 'gone'" in wrong.err


def _record_return(cfg: Path, address: str, kind: str) -> None:
    import sqlalchemy as sa

    from digest.adapters.schema import inbox_messages, inbox_returns
    from digest.adapters.store import Store
    from digest.core.config import read_config

    store = Store.open(read_config(cfg, {"DIGEST_SECRET": "x" * 32}).store.url)
    sub = store.find(address)
    assert sub is not None
    at = CLI_NOW + timedelta(hours=20)
    with store.tx() as conn:
        row = conn.execute(inbox_messages.insert().values(folder="INBOX", uidvalidity=1, uid=1, state="handled",
                                                          kind="bounce", claimed_at=at, handled_at=at)).inserted_primary_key
        conn.execute(inbox_returns.insert().values(message_row=row[0], subscriber_id=sub.id, issue_id=1, kind=kind,
                                                   status="4.2.2", changed=False, at=at))
        assert conn.execute(sa.select(sa.func.count()).select_from(inbox_returns)).scalar_one() == 1
    store.close()
