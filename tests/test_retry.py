"""A server that says "try later" costs minutes, not a week: deferred messages retried in
the same run, by a run by hand, on `digest serve`'s timer, and given up after
[smtp] give_up_hours; an older issue's stragglers never hold back the new week's issue.
aiosmtpd greylists for real (451 to a new (sender, recipient) pair until a delay has
passed); the store is a real SQLite file, or PostgreSQL where SQL differs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CLI_NOW, Run
from feedgen import Entry, atom
from mailserver import GreylistHandler, MailServer
from sending import SECRET, START, Bed

from digest.adapters.schema import deliveries
from digest.adapters.store import Store
from digest.core.config import read_config
from digest.jobs.send_issue import send_next

SECONDS = (timedelta(seconds=0.25),)  # the backoff table, scaled for tests (the greylisting delay: 0.1 s)


def feed_file(path: Path, days: list[float], now: datetime = START, first: int = 0) -> str:
    """A feed of posts published `days` before `now` (negative: after), numbered from `first`."""
    entries = [Entry(first + i, title=f"Post {first + i}", labels=["Interviewing"],
                     published=(now - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ")) for i, d in enumerate(days)]
    path.write_bytes(atom(entries))
    return str(path)


def bed_with(write_config: Callable[..., Path], server: MailServer, tmp_path: Path, *, smtp: str = "",
             store_url: str | None = None, clock: list[datetime] | None = None) -> Bed:
    path = write_config(feed=feed_file(tmp_path / "feed.xml", [1, 2, 3]), smtp_port=server.port)
    text = path.read_text().replace("retry_window_minutes = 0\n", "max_per_second = 0\n" + (smtp or "retry_window_minutes = 0\n"))
    if store_url:
        text = text.replace(f'url = "sqlite:///{tmp_path / "subscribers.db"}"', f'url = "{store_url}"')
    path.write_text(text)
    config = read_config(path, {"DIGEST_SECRET": SECRET})
    return Bed(config, Store.open(config.store.url), server, clock or [START])


@pytest.fixture
def greylist() -> Iterator[MailServer]:
    server = MailServer(GreylistHandler(delay=0.1)).start()
    yield server
    server.stop()


class Watch:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.begun: list[tuple[str, int]] = []
        self.outcomes: list[str] = []
        self.waits: list[tuple[float, int]] = []
        self.lock = threading.Lock()

    def begin(self, label: str, total: int) -> None:
        self.begun.append((label, total))

    def advance(self, outcome: str) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def waiting(self, seconds: float, deferred: int) -> None:
        self.waits.append((seconds, deferred))


def real_clock() -> Callable[[], datetime]:
    """START, moving on in real time: the window and the backoff are waited for."""
    t0 = time.monotonic()
    return lambda: START + timedelta(seconds=time.monotonic() - t0)


def attempts(bed: Bed, issue_id: int = 1) -> list[int]:
    with bed.store.tx() as conn:
        return list(conn.execute(sa.select(deliveries.c.attempts).where(deliveries.c.issue_id == issue_id)
                                 .order_by(deliveries.c.id)).scalars())


def test_greylisted_messages_go_out_in_the_same_run(write_config: Callable[..., Path], greylist: MailServer,
                                                    tmp_path: Path) -> None:
    bed = bed_with(write_config, greylist, tmp_path, smtp="retry_window_minutes = 0.2\n")  # 12 s
    try:
        bed.add(3)
        watch = Watch()
        started = time.monotonic()
        outcome = send_next(bed.config.publication, bed.wiring(clock=real_clock(), backoff=SECONDS), progress=watch)
        assert time.monotonic() - started < 8
        assert outcome.report is not None and outcome.report.counts == {"sent": 3}
        assert bed.received_by() == {f"reader{i}@example.com": 1 for i in range(3)}
        assert greylist.handler.refusals >= 3 and all(n >= 2 for n in attempts(bed))
        assert bed.ledger.last_issue().status == "done"  # type: ignore[union-attr]
        assert watch.waits and all(d == 3 for _, d in watch.waits[:1])  # the wait was shown
        assert watch.begun[0] == ("issue 1", 3) and ("issue 1, deferred", 3) in watch.begun
    finally:
        bed.store.close()


def test_a_window_of_zero_leaves_them_to_a_second_send_by_hand(write_config: Callable[..., Path], greylist: MailServer,
                                                                run_cli: Callable[..., Run], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    cfg = write_config(feed=feed_file(tmp_path / "feed.xml", [1, 2, 3], CLI_NOW),
                       smtp_port=greylist.port)
    for i in range(3):
        assert run_cli("subscribers", "add", f"r{i}@example.com", "--confirmed", "--config", cfg).code == 0
    first = run_cli("send", "--yes", "--config", cfg)
    assert first.code == 75 and first.out == "Issue 1: 3 deferred.\n"
    assert "3 messages deferred; digest send retries them now, digest serve every 5 minutes, for up to 72 hours." in first.err
    time.sleep(0.15)  # the greylisting delay; the backoff (1 minute) has not passed
    second = run_cli("send", "--yes", "--config", cfg)
    assert second.code == 0, second.err
    assert second.out == "Issue 1 (resumed): 3 sent.\nNo new posts since the last issue: nothing new sent.\n"
    assert sorted(r for m in greylist.received for r in m.recipients) == [f"r{i}@example.com" for i in range(3)]


def test_the_retry_timer_sends_deferred_messages_and_builds_no_issue(write_config: Callable[..., Path],
                                                                     greylist: MailServer, tmp_path: Path) -> None:
    from digest.jobs import retry

    bed = bed_with(write_config, greylist, tmp_path)
    try:
        bed.add(3)
        assert bed.send().report.counts == {"deferred": 3}  # type: ignore[union-attr]
        feed_file(tmp_path / "feed.xml", [-0.5], first=10)  # a new post: only the weekly send may pick it up
        time.sleep(0.15)  # the server's greylisting delay, in its own time
        bed.advance(seconds=30)
        assert retry.retry_due(bed.config.publication, bed.wiring()) == []  # not due before the 1-minute backoff
        bed.advance(seconds=31)
        reports = retry.retry_due(bed.config.publication, bed.wiring())
        assert [(r.issue_id, r.counts) for r in reports] == [(1, {"sent": 3})]
        assert len(bed.ledger.history()) == 1 and bed.ledger.last_issue().status == "done"  # type: ignore[union-attr]
        assert bed.received_by() == {f"reader{i}@example.com": 1 for i in range(3)}
    finally:
        bed.store.close()


def test_the_scheduler_runs_the_retry_job_on_its_own_timer(write_config: Callable[..., Path], greylist: MailServer,
                                                           tmp_path: Path) -> None:
    from digest.adapters.scheduler import WeeklySender
    from digest.jobs import retry

    bed = bed_with(write_config, greylist, tmp_path)
    clock = real_clock()
    weekly_runs: list[int] = []
    try:
        bed.add(3)
        send_next(bed.config.publication, bed.wiring(clock=clock, backoff=SECONDS))
        assert set(bed.statuses().values()) == {"deferred"}
        sender = WeeklySender(bed.config.schedule, lambda: weekly_runs.append(1),
                              retry=lambda: retry.retry_due(bed.config.publication, bed.wiring(clock=clock)),
                              retry_every=timedelta(seconds=0.2))
        sender.start()
        try:
            deadline = time.monotonic() + 15
            while len(greylist.received) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            sender.shutdown()
        assert bed.received_by() == {f"reader{i}@example.com": 1 for i in range(3)}
        assert weekly_runs == [] and len(bed.ledger.history()) == 1
    finally:
        bed.store.close()


@pytest.mark.parametrize("by_hand", [True, False], ids=["digest-send", "weekly-slot"])
def test_a_new_week_goes_out_while_an_older_issue_has_deferred_messages(
        write_config: Callable[..., Path], mail_server: MailServer, tmp_path: Path, by_hand: bool) -> None:
    from digest.jobs import retry

    bed = bed_with(write_config, mail_server, tmp_path, smtp="retry_window_minutes = 0\ngive_up_hours = 500\n")
    try:
        bed.add(3)
        mail_server.handler.inject("RCPT", "451 4.7.1 Greylisted, please try again later")
        assert bed.send().report.counts == {"sent": 2, "deferred": 1}  # type: ignore[union-attr]
        bed.advance(days=7)
        feed_file(tmp_path / "feed.xml", [1, 2, 3], bed.now(), first=10)  # the new week's posts
        outcome = bed.send(retry_deferred=by_hand)
        new = outcome.reports[-1]
        assert (new.issue_id, new.counts, new.resumed) == (2, {"sent": 3}, False)
        if by_hand:  # the straggler went first, at once, and did not hold the new issue back
            assert [(r.issue_id, r.counts, r.resumed) for r in outcome.reports[:-1]] == [(1, {"sent": 3}, True)]
        else:  # the weekly slot leaves it to the retry timer
            assert len(outcome.reports) == 1 and bed.statuses(1)["reader0@example.com"] == "deferred"
            assert [r.counts for r in retry.retry_due(bed.config.publication, bed.wiring())] == [{"sent": 3}]
        assert all(i.status == "done" for i, _ in bed.ledger.history())
        assert bed.received_by() == {f"reader{i}@example.com": 2 for i in range(3)}  # both issues, once each
    finally:
        bed.store.close()


def test_an_interrupted_issue_is_finished_first_then_the_new_one_goes_out(
        write_config: Callable[..., Path], mail_server: MailServer, tmp_path: Path) -> None:
    bed = bed_with(write_config, mail_server, tmp_path)
    try:
        bed.add(3)
        mail_server.handler.inject("MAIL", "550 5.7.1 Sender blocked for now")  # pauses issue 1 after one try
        assert bed.send().report.paused  # type: ignore[union-attr]
        bed.advance(days=7)
        feed_file(tmp_path / "feed.xml", [1, 2], bed.now(), first=10)
        outcome = bed.send()
        assert [(r.issue_id, r.counts, r.resumed) for r in outcome.reports] == [(1, {"sent": 3}, True), (2, {"sent": 3}, False)]
    finally:
        bed.store.close()


def always_refusing() -> MailServer:
    return MailServer(GreylistHandler(delay=10_000)).start()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_message_still_deferred_after_give_up_hours_is_failed_at_the_next_run(
        write_config: Callable[..., Path], tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    server = always_refusing()
    url = None if backend == "sqlite" else str(request.getfixturevalue("fresh_postgres"))
    bed = bed_with(write_config, server, tmp_path, store_url=url)
    try:
        bed.add(2)
        assert bed.send().report.counts == {"deferred": 2}  # type: ignore[union-attr]
        bed.advance(hours=71)
        assert bed.send().report.counts == {"deferred": 2}  # type: ignore[union-attr]  # retried, refused again
        bed.advance(hours=1, seconds=1)
        outcome = bed.send()  # the sweep at the start of the run
        assert outcome.no_posts and outcome.reports == ()
        assert set(bed.statuses().values()) == {"failed"} and attempts(bed) == [2, 2]
        with bed.store.tx() as conn:
            replies = set(conn.execute(sa.select(deliveries.c.last_reply)).scalars())
        assert replies == {"gave up after 72 hours: RCPT: 451 4.7.1 Greylisted, please try again later"}
        assert bed.ledger.last_issue().status == "done"  # type: ignore[union-attr]
        assert bed.store.get(1).status == "confirmed"  # type: ignore[union-attr]  # a slow server is nobody's fault
    finally:
        bed.store.close()
        server.stop()


def test_a_message_that_comes_up_past_give_up_hours_is_failed_with_its_last_reply(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    server = always_refusing()
    bed = bed_with(write_config, server, tmp_path, smtp="retry_window_minutes = 0.1\ngive_up_hours = 0.0001\n")  # 0.36 s
    try:
        bed.add(1)
        outcome = send_next(bed.config.publication, bed.wiring(clock=real_clock(), backoff=SECONDS))
        assert outcome.report is not None and outcome.report.counts == {"failed": 1}
        with bed.store.tx() as conn:
            reply = conn.execute(sa.select(deliveries.c.last_reply)).scalar_one()
        assert reply == "gave up after 0.0001 hours: RCPT: 451 4.7.1 Greylisted, please try again later"
        assert attempts(bed)[0] >= 2  # failed as it came up again, not by a sweep (which runs at a run's start)
    finally:
        bed.store.close()
        server.stop()


def test_the_first_attempt_is_kept_across_retries(write_config: Callable[..., Path], mail_server: MailServer,
                                                       tmp_path: Path) -> None:
    bed = bed_with(write_config, mail_server, tmp_path)
    try:
        bed.add(1)
        mail_server.handler.inject("RCPT", "451 4.3.0 Try later")
        bed.send()
        bed.advance(minutes=2)
        mail_server.handler.inject("RCPT", "451 4.3.0 Try later")
        bed.send()
        with bed.store.tx() as conn:
            first, count = conn.execute(sa.select(deliveries.c.first_attempt_at, deliveries.c.attempts)).one()
        assert (first, count) == (START, 2)
    finally:
        bed.store.close()
