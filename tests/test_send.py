"""digest send against a real aiosmtpd server with injected replies; the ledger checked after each."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sending import Bed, make_bed

from digest.core.errors import SendError


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelined"])
def bed(write_config: Callable[..., Path], mail_server: Any, request: pytest.FixtureRequest) -> Iterator[Bed]:
    mail_server.handler.pipelining = request.param
    b = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\n")
    yield b
    b.store.close()


def test_250_everyone_once_and_the_issue_is_done(bed: Bed) -> None:
    bed.add(5)
    outcome = bed.send()
    assert outcome.report is not None and outcome.report.counts == {"sent": 5}
    assert set(bed.statuses().values()) == {"sent"}
    assert bed.received_by() == {f"reader{i}@example.com": 1 for i in range(5)}
    issue = bed.ledger.last_issue()
    assert issue is not None and issue.status == "done" and issue.finished_at == bed.now()
    assert len(issue.posts) == 5  # the sample's posts of the 7 days before START (17 to 22 November)
    again = bed.send()
    assert again.no_posts and len(bed.mail.received) == 5


def test_no_confirmed_subscriber_still_records_the_issue(bed: Bed) -> None:
    outcome = bed.send()
    assert outcome.report is not None and outcome.report.counts == {}
    assert bed.ledger.last_issue().status == "done"  # type: ignore[union-attr]


@pytest.mark.parametrize(("stage", "reply", "status", "subscriber"), [
    ("RCPT", "450 4.2.1 Mailbox busy", "deferred", "confirmed"),
    ("DATA", "451 4.3.0 Local error", "deferred", "confirmed"),
    ("RCPT", "452 4.2.2 Mailbox full", "deferred", "confirmed"),
    ("RCPT", "552 5.2.2 Mailbox full", "deferred", "confirmed"),
    ("RCPT", "550 5.1.1 No such user", "failed", "bounced"),
    ("RCPT", "550 5.2.1 Mailbox disabled", "failed", "bounced"),
    ("DATA", "554 5.6.0 Message refused", "failed", "confirmed"),
    ("MAIL", "421 4.7.0 Try again later", "deferred", "confirmed"),
])
def test_reply_classes(bed: Bed, stage: str, reply: str, status: str, subscriber: str) -> None:
    ids = bed.add(3)
    bed.mail.handler.inject(stage, reply)
    outcome = bed.send()
    statuses = bed.statuses()
    assert statuses["reader0@example.com"] == status
    assert statuses["reader1@example.com"] == statuses["reader2@example.com"] == "sent"
    assert bed.store.get(ids[0]).status == subscriber  # type: ignore[union-attr]
    assert outcome.report is not None
    assert outcome.report.remaining == (1 if status == "deferred" else 0)
    if status == "deferred":
        bed.advance(minutes=2)
        retry = bed.send()
        assert retry.resumed and retry.report is not None and retry.report.counts == {"sent": 3}
    assert bed.received_by() == {f"reader{i}@example.com": 1 for i in range(3) if not (i == 0 and status == "failed")}


def test_rate_limit_policy_reply_pauses_without_blaming_anyone(bed: Bed) -> None:
    ids = bed.add(4)
    bed.mail.handler.inject("RCPT", "550 5.7.1 Rate limit exceeded, slow down")
    outcome = bed.send()
    assert outcome.report is not None and "5.7.1" in outcome.report.paused
    statuses = bed.statuses()
    assert statuses["reader0@example.com"] == "deferred"
    assert {statuses[f"reader{i}@example.com"] for i in (1, 2, 3)} == {"pending"}  # untouched
    assert all(bed.store.get(i).status == "confirmed" for i in ids)  # type: ignore[union-attr]
    assert bed.mail.received == []
    bed.advance(minutes=2)
    assert bed.send().report.counts == {"sent": 4}  # type: ignore[union-attr]


def test_drop_after_the_final_dot_is_in_doubt_and_never_resent(bed: Bed) -> None:
    bed.add(3)
    bed.mail.handler.inject("DATA", "DROP")
    outcome = bed.send()
    statuses = bed.statuses()
    assert statuses["reader0@example.com"] == "in_doubt"
    assert statuses["reader1@example.com"] == statuses["reader2@example.com"] == "sent"
    assert outcome.report is not None and outcome.report.remaining == 0
    assert bed.ledger.last_issue().status == "done"  # type: ignore[union-attr]
    bed.advance(hours=1)
    assert bed.send().no_posts
    assert bed.received_by()["reader0@example.com"] == 1  # it did arrive, once


def test_421_and_disconnect_reconnects_and_continues(bed: Bed) -> None:
    bed.add(3)
    bed.mail.handler.inject("RCPT", "421 4.3.2 Shutting down")
    bed.send()
    statuses = bed.statuses()
    assert statuses["reader0@example.com"] == "deferred"
    assert statuses["reader1@example.com"] == statuses["reader2@example.com"] == "sent"


def test_unsubscribed_before_the_message_gets_nothing(bed: Bed) -> None:
    ids = bed.add(3)
    bed.store.unsubscribe(ids[1], how="web", now=bed.now())
    # Unsubscribed before the issue is built: the frozen audience leaves them out
    # (test_unsubscribe_during_a_slow_send unsubscribes someone mid-send).
    bed.send()
    assert "reader1@example.com" not in bed.statuses()
    assert bed.received_by()["reader1@example.com"] == 0


def test_unsubscribe_during_a_slow_send(write_config: Callable[..., Path], mail_server: Any) -> None:
    """Subscribers are read with each claim of CLAIM_BATCH rows and read again when the
    batch is still in hand FRESH_FOR seconds (here a tenth of a second) later: an
    unsubscribe made while the third message is on the wire, with more than the window's
    worth of sending to go before the last reader's turn, is honoured."""
    from digest.jobs.drain import CLAIM_BATCH

    fresh_for = 0.1
    bed = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\n")
    count = 20
    assert count <= CLAIM_BATCH  # one claim holds them all: only the re-read can see the unsubscribe
    ids = bed.add(count)
    mail_server.handler.data_delay = 2.5 * fresh_for / (count - 3)  # the last 17 messages take 2.5 windows at least
    received = 0

    def unsubscribe_the_last(_: Any) -> None:
        nonlocal received
        received += 1
        if received == 3:  # before the server answers the third message: the fourth cannot have left
            bed.store.unsubscribe(ids[-1], how="one-click", now=bed.now())

    mail_server.handler.on_received = unsubscribe_the_last
    bed.send(fresh_for=fresh_for)
    last = f"reader{count - 1}@example.com"
    assert bed.statuses()[last] == "skipped"
    assert bed.received_by()[last] == 0
    assert sum(bed.received_by().values()) == count - 1
    bed.store.close()


def test_topics_choose_the_sections_and_empty_ones_are_skipped(bed: Bed) -> None:
    bed.add(1, prefix="all")
    bed.add(1, topics=("Networking",), prefix="net")
    outcome = bed.send()
    assert outcome.report is not None and outcome.report.counts == {"sent": 2}
    by = {m.recipients[0]: m.message for m in bed.mail.received}
    net = by["net0@example.com"].get_body(("plain",)).get_content()
    full = by["all0@example.com"].get_body(("plain",)).get_content()
    assert "== Networking ==" in net and "== Interviews ==" not in net and "== Interviews ==" in full
    assert "Have a question?" in net  # the answered questions belong to everyone


def test_a_server_that_never_greets_is_an_error_and_loses_nothing(write_config: Callable[..., Path], mail_server: Any) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    path = write_config(smtp_port=silent.getsockname()[1])
    path.write_text(path.read_text().replace("timeout_seconds = 5\n", "timeout_seconds = 0.5\n"))
    from sending import SECRET, START, Bed

    from digest.adapters.store import Store
    from digest.core.config import read_config

    config = read_config(path, {"DIGEST_SECRET": SECRET})
    bed = Bed(config, Store.open(config.store.url), mail_server, [START])
    try:
        bed.add(2)
        with pytest.raises(SendError, match=r"no answer within 0\.5 s"):
            bed.send()
        assert set(bed.statuses().values()) == {"pending"}
        assert bed.ledger.unfinished_issue() is not None
    finally:
        silent.close()
        bed.store.close()


def test_dry_run_builds_every_message_and_records_nothing(bed: Bed) -> None:
    bed.add(4)
    outcome = bed.send(dry_run=True)
    assert outcome.dry_run_messages == 4 and outcome.dry_run_bytes > 4 * 10_000
    assert bed.ledger.last_issue() is None and bed.mail.received == []


def test_the_rate_ceiling_spaces_messages() -> None:
    import time

    from digest.jobs.drain import RateLimiter

    limiter = RateLimiter(50)
    started = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - started >= 0.19  # ten intervals of 20 ms at least
    unlimited = RateLimiter(0)
    started = time.monotonic()
    for _ in range(1000):
        unlimited.wait()
    assert time.monotonic() - started < 0.5


def test_each_message_is_its_own_readers_when_built_ahead(write_config: Callable[..., Path], mail_server: Any) -> None:
    """A connection builds its next message while the server reads the one before: every
    message that arrives is the envelope recipient's own (To, Message-ID, signed links, the
    sections of their topics), also next to a reader refused by the server and one who
    unsubscribed mid-send (skipped once their claim is read again)."""
    import sqlalchemy as sa
    from sending import SECRET

    from digest.adapters.schema import deliveries, subscribers
    from digest.core.tokens import read_token

    bed = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\nconnections = 2\n")
    ids = bed.add(30)
    ids += bed.add(10, topics=("Networking",), prefix="net")
    unsubscribed = ids[17]
    bed.mail.handler.inject("RCPT", "550 5.1.1 no such user")

    def unsubscribe_one(message: Any) -> None:
        if len(bed.mail.received) == 3:
            bed.store.unsubscribe(unsubscribed, how="one-click", now=bed.now())

    bed.mail.handler.on_received = unsubscribe_one
    # One connection claims all 40: reader 17's message comes 13 messages, over a quarter of a
    # second, after the unsubscribe: more than twice the window of 0.1 s (Outbox.fresh_for)
    # after which its claim is read again.
    bed.mail.handler.data_delay = 0.02
    bed.send(fresh_for=0.1)
    ledger_ids = {}
    with bed.store.tx() as conn:
        for email, sub_id, message_id in conn.execute(sa.select(subscribers.c.email, subscribers.c.id, deliveries.c.message_id)
                                                      .join(deliveries, deliveries.c.subscriber_id == subscribers.c.id)):
            ledger_ids[email] = (sub_id, message_id)
    assert len(bed.mail.received) == 38  # 40, less the refused and the unsubscribed
    for received in bed.mail.received:
        (address,) = received.recipients
        sub_id, message_id = ledger_ids[address]
        message = received.message
        assert message["To"].addresses[0].addr_spec == address and message["Message-ID"] == message_id
        token = message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0].rpartition("/")[2]
        assert read_token(SECRET, token, "unsubscribe", now=bed.now()).subscriber_id == sub_id
        text = message.get_body(("plain",)).get_content()
        assert ("== Interviews ==" in text) == address.startswith("reader"), address
    assert bed.statuses()["reader17@example.com"] == "skipped" and bed.statuses()["reader0@example.com"] == "failed"
    bed.store.close()


def test_a_long_run_of_skipped_readers_is_recorded_as_it_goes(write_config: Callable[..., Path], mail_server: Any) -> None:
    """Skipped rows are written with a connection's next message, and at the latest before
    it claims more: a run of hundreds (readers who left after the issue was recorded) ends
    recorded, and the send ends."""
    bed = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\nconnections = 2\n")
    ids = bed.add(620)
    bed.mail.handler.inject("RCPT", "550 5.7.1 sending rate exceeded")  # pauses the first send at once
    first = bed.send()
    assert first.report is not None and first.report.paused
    # The refusal goes to whichever connection asks first; the other's first message may have
    # gone out, to one of rows 1 to 10 (who stay) or 51 to 100 (who leave).
    before = set(bed.received_by())
    assert len(before) < 50
    for sub_id in ids[10:610]:
        bed.store.unsubscribe(sub_id, how="web", now=bed.now())
    bed.send()
    counts = bed.ledger.counts(1)
    got = bed.received_by()
    stay = {f"reader{i}@example.com" for i in [*range(10), *range(610, 620)]}
    assert set(got) == stay | before and all(n == 1 for n in got.values()), got  # nobody twice
    left_but_sent = len(before - stay)  # sent in the first run, before they left
    assert counts == {"skipped": 600 - left_but_sent, "sent": 20 + left_but_sent}, counts
    bed.store.close()


def test_two_sends_at_once_never_mail_one_post_in_two_issues(write_config: Callable[..., Path], mail_server: Any,
                                                             tmp_path: Path) -> None:
    """Two sends at once (two `digest serve` at the weekly slot, or one and `digest send`):
    each reads the last issue, fetches the feed and records the posts after it. When a post
    came out between their fetches, the one that recorded second built different posts (so
    another key), numbered after the first one's issue, and recorded it: every reader got
    the first issue's posts twice, in two issues. The first send runs here, as another
    process, after the second read the last issue and before it numbered and built its own."""
    from feedgen import Entry, atom
    from interleave import meanwhile

    from digest.adapters.store import Store
    from digest.cli.wiring import Wiring
    from digest.core.errors import StoreError
    from digest.jobs.send_issue import send_next

    bed = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\n")
    try:
        bed.add(3)
        before, after = tmp_path / "before.xml", tmp_path / "after.xml"
        before.write_bytes(atom([Entry(1), Entry(2)]))
        after.write_bytes(atom([Entry(1), Entry(2), Entry(3, published="2026-11-22T08:00:00.000-05:00")]))
        other = Store.open(bed.config.store.url)  # the first send, in another process
        try:
            first = lambda: send_next(bed.config.publication, Wiring(bed.config, store=other, clock=bed.now),  # noqa: E731
                                      feed=str(before))
            refused: list[StoreError] = []
            with meanwhile(bed.store.engine, "SELECT coalesce(max(issues.id)", first, patience=60):
                try:
                    bed.send(feed=str(after))
                except StoreError as exc:
                    refused.append(exc)
        finally:
            other.close()
        per_reader = bed.received_by()
        assert per_reader == {f"reader{i}@example.com": 1 for i in range(3)}  # posts 1 and 2 once, in one issue
        assert [len(i.posts) for i, _ in bed.ledger.history()] == [2]
        assert refused and "another send recorded issue 1 meanwhile" in str(refused[0])
        again = bed.send(feed=str(after))  # run again: post 3 goes, alone
        assert again.report is not None and [p.title for p in bed.ledger.last_issue().posts] == ["Post number 3"]  # type: ignore[union-attr]
    finally:
        bed.store.close()
