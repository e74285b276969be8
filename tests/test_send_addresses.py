"""One recipient is never everyone's problem: addresses that are not ASCII, messages that
cannot be built, and a database that fails mid-send, against aiosmtpd with and without
SMTPUTF8 and a real SQLite file."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Run
from mailserver import MailServer, Received
from sending import START, Bed, make_bed

from digest.core.errors import ConfigError, StoreError
from digest.core.models import Consent
from digest.core.subscriptions import normalise_email


@pytest.fixture(params=[(False, False), (True, False), (False, True), (True, True)],
                ids=["stepwise", "pipelined", "stepwise-smtputf8", "pipelined-smtputf8"])
def server(request: pytest.FixtureRequest) -> Iterator[MailServer]:
    pipelining, smtputf8 = request.param
    s = MailServer(enable_SMTPUTF8=smtputf8).start()
    s.handler.pipelining = pipelining
    yield s
    s.stop()


@pytest.fixture
def bed(write_config: Callable[..., Path], server: MailServer) -> Iterator[Bed]:
    b = make_bed(write_config, server, extra_smtp="max_per_second = 0\n")
    yield b
    b.store.close()


def subscribe(bed: Bed, raw: str, *, checked: bool = True) -> int:
    """Add a confirmed subscriber; checked=False stores the address as given (an old row)."""
    email, key = normalise_email(raw) if checked else (raw, raw.casefold())
    sub, _ = bed.store.add(email, key, "", (), confirmed=True, now=START, consent=Consent(at=START, method="cli"))
    return sub.id


def reply_of(bed: Bed, email: str) -> str:
    from digest.adapters.schema import deliveries, subscribers

    with bed.store.tx() as conn:
        return str(conn.execute(sa.select(deliveries.c.last_reply).join(
            subscribers, subscribers.c.id == deliveries.c.subscriber_id).where(subscribers.c.email == email)).scalar_one())


def by_recipient(server: MailServer) -> dict[str, Received]:
    return {m.recipients[0]: m for m in server.received}


def test_an_idn_domain_goes_out_in_a_labels(bed: Bed, server: MailServer) -> None:
    bed.add(1)
    subscribe(bed, "User@BÜCHER.example")
    bed.add(1, prefix="last")
    outcome = bed.send()
    assert outcome.report is not None and outcome.report.counts == {"sent": 3}
    got = by_recipient(server)
    assert set(got) == {"reader0@example.com", "User@xn--bcher-kva.example", "last0@example.com"}
    idn = got["User@xn--bcher-kva.example"]
    assert idn.message["To"] == "User@xn--bcher-kva.example" and idn.data.isascii()
    assert "SMTPUTF8" not in idn.options  # an ASCII local part needs no extension
    assert bed.ledger.last_issue().status == "done"  # type: ignore[union-attr]


def test_a_local_part_that_is_not_ascii_goes_with_smtputf8_or_fails_alone(bed: Bed, server: MailServer) -> None:
    bed.add(1)
    subscribe(bed, "josé@bücher.example")
    bed.add(1, prefix="last")
    outcome = bed.send()
    assert outcome.report is not None and outcome.report.remaining == 0
    got = by_recipient(server)
    assert {"reader0@example.com", "last0@example.com"} <= set(got)
    if server.controller.SMTP_kwargs.get("enable_SMTPUTF8"):
        assert outcome.report.counts == {"sent": 3}
        mail = got["josé@xn--bcher-kva.example"]
        assert "SMTPUTF8" in mail.options and mail.message["To"] == "josé@xn--bcher-kva.example"
    else:
        assert outcome.report.counts == {"sent": 2, "failed": 1}
        assert bed.statuses()["josé@bücher.example"] == "failed"
        assert "SMTPUTF8" in reply_of(bed, "josé@bücher.example")
        assert bed.store.find(normalise_email("josé@bücher.example")[1]).status == "confirmed"  # type: ignore[union-attr]  # not their fault


def test_a_message_that_cannot_be_built_fails_only_its_recipient(bed: Bed, server: MailServer) -> None:
    bed.add(1)
    subscribe(bed, "two words@example.com", checked=False)  # rows written before addresses were checked
    subscribe(bed, "user@\u2615.example", checked=False)
    bed.add(1, prefix="last")
    outcome = bed.send()
    assert outcome.report is not None and outcome.report.counts == {"sent": 2, "failed": 2}
    assert set(by_recipient(server)) == {"reader0@example.com", "last0@example.com"}
    assert reply_of(bed, "two words@example.com") == "not sent: not a usable email address: 'two words@example.com'"
    assert "IDNA 2008" in reply_of(bed, "user@\u2615.example")
    assert bed.ledger.last_issue().status == "done"  # type: ignore[union-attr]


def test_a_fault_every_message_shares_stops_the_send_before_anyone_fails(
        write_config: Callable[..., Path], mail_server: MailServer, tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    bed = make_bed(write_config, mail_server, newsletter=f'dkim_selector = "s1"\ndkim_key_file = "{key}"')
    try:
        bed.add(3)
        with pytest.raises(ConfigError, match="the messages of issue 1 cannot be built"):
            bed.send()
        assert set(bed.statuses().values()) == {"pending"} and mail_server.received == []
    finally:
        bed.store.close()


def drop_the_deliveries_table(url: str) -> Callable[[Received], None]:
    """A database that breaks while the first message is on the wire: its outcome cannot
    be recorded (the subscribers were read with the claim; nothing else is read)."""
    done = threading.Event()

    def drop(_: Received) -> None:
        if done.is_set():
            return
        done.set()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE deliveries RENAME TO deliveries_gone"))
        engine.dispose()

    return drop


def test_a_store_error_during_a_send_is_a_store_error(write_config: Callable[..., Path], mail_server: MailServer) -> None:
    bed = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\n")
    try:
        bed.add(3)
        mail_server.handler.on_received = drop_the_deliveries_table(bed.config.store.url)
        with pytest.raises(StoreError, match=r"the database failed: .*no such table: deliveries"):
            bed.send()
        assert len(mail_server.received) == 1
    finally:
        bed.store.close()


def test_send_exits_6_on_a_store_error(write_config: Callable[..., Path], mail_server: MailServer,
                                        run_cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "cli-secret-0123456789abcdef")
    cfg = write_config(smtp_port=mail_server.port)
    for email in ("a@example.com", "b@example.com"):
        assert run_cli("subscribers", "add", email, "--confirmed", "--config", cfg).code == 0
    config_text = cfg.read_text()
    url = config_text.split('[store]\nurl = "')[1].split('"')[0]
    mail_server.handler.on_received = drop_the_deliveries_table(url)
    result = run_cli("send", "--yes", "--config", cfg)
    assert result.code == 6, result.err
    assert result.err.startswith("Error: the database failed: ") and "SMTP" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_an_undeliverable_address_is_refused_at_every_door(write_config: Callable[..., Path], run_cli: Callable[..., Run],
                                                           tmp_path: Path) -> None:
    cfg = write_config()
    assert run_cli("subscribers", "add", "user@bücher.example", "--confirmed", "--config", cfg).code == 0
    assert run_cli("subscribers", "add", "josé@example.com", "--confirmed", "--config", cfg).code == 0  # via SMTPUTF8
    refused = run_cli("subscribers", "add", "user@\u2615.example", "--config", cfg)
    assert refused.code == 2 and refused.err.startswith("Error: not a valid email address: 'user@\u2615.example'")
    data = tmp_path / "list.csv"
    data.write_text("email\nana@xn--bcher-kva.example\nuser@\u2615.example\n", encoding="utf-8")
    imported = run_cli("subscribers", "import", data, "--confirmed", "--config", cfg)
    assert imported.code == 2 and "line 3: not a valid email address" in imported.err
    assert run_cli("subscribers", "list", "--config", cfg).out.splitlines() == [
        "user@bücher.example\tconfirmed\t\tall topics\tweekly", "josé@example.com\tconfirmed\t\tall topics\tweekly",
        "ana@bücher.example\tconfirmed\t\tall topics\tweekly"]
