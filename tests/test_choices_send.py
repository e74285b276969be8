"""Readers' choices on the sending side (core/audience.py, jobs/monthly.py), on SQLite and
PostgreSQL, with a real SMTP server: a monthly reader across five weekly sends spanning a
month boundary, a two-week pause, "I got the job!", and the line that says what they missed."""

from __future__ import annotations

import email
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from feedgen import Entry, atom
from sending import START, Bed, make_bed

from digest.adapters.choices import Choices
from digest.adapters.schema import deliveries
from digest.adapters.store import Store

WEEK = timedelta(weeks=1)


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any, store_url: str, tmp_path: Path) -> Iterator[Bed]:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(atom([]))
    b = make_bed(write_config, mail_server, extra_smtp="max_per_second = 0\n", feed=feed, max_posts=5)
    b.store.close()
    config = replace(b.config, store=replace(b.config.store, url=store_url))
    b = Bed(config, Store.open(store_url), mail_server, [START])
    try:
        yield b
    finally:
        b.store.close()


def publish(bed: Bed, week: int, count: int = 2, labels: tuple[str, ...] = ()) -> list[str]:
    """`count` new posts of week `week` (0: the week of START), dated the day before its send
    (the first with `labels`); the feed holds every post so far. Their titles."""
    path = Path(bed.config.feed.url)
    entries = getattr(bed, "_entries", [])
    titles = []
    for i in range(count):
        n = week * 10 + i
        day = START + week * WEEK - timedelta(days=1)
        entries.append(Entry(n, title=f"Week {week} post {i}", published=day.isoformat(),
                             labels=list(labels) if i == 0 else []))
        titles.append(f"Week {week} post {i}")
    bed._entries = entries  # type: ignore[attr-defined]
    path.write_bytes(atom(entries))
    return titles


def mails_to(bed: Bed, address: str) -> list[Message]:
    return [email.message_from_bytes(m.data) for m in bed.mail.received if address in m.recipients]


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8")
    raise AssertionError("no text part")


def rows_of(bed: Bed, subscriber_id: int) -> dict[int, tuple[str, str]]:
    """issue id -> (status, reply) of one reader's ledger rows"""
    with bed.store.tx() as conn:
        rows = conn.execute(sa.select(deliveries.c.issue_id, deliveries.c.status, deliveries.c.last_reply)
                            .where(deliveries.c.subscriber_id == subscriber_id)).all()
    return {r.issue_id: (r.status, r.last_reply) for r in rows}


def weekly_send(bed: Bed, week: int) -> None:
    bed.clock[0] = START + week * WEEK
    outcome = bed.send(feed=bed.config.feed.url)
    assert all(r.remaining == 0 for r in outcome.reports), outcome


def test_a_monthly_reader_gets_two_issues_over_five_weekly_sends_across_a_month_boundary(bed: Bed) -> None:
    _, monthly = bed.add(2)
    choices = Choices(bed.store)
    assert choices.set_frequency(monthly, "monthly", how="cli", now=START - timedelta(hours=1)) is not None
    titles = {}
    for week in range(5):  # Mondays 23 and 30 November, 7, 14 and 21 December
        titles[week] = publish(bed, week)
        weekly_send(bed, week)
        weekly_send(bed, week)  # a second run the same day sends nobody anything twice
    assert len(mails_to(bed, "reader0@example.com")) == 5
    got = mails_to(bed, "reader1@example.com")
    assert len(got) == 2, [m["Subject"] for m in got]
    first, second = text_of(got[0]), text_of(got[1])
    assert all(t in first for t in titles[0]) and "this month" in first, first
    # 7 December: the first send of December holds every post since the first monthly issue
    assert all(t in second for w in (1, 2) for t in titles[w])
    assert not any(t in second for t in titles[0])
    assert "Have a question?" in second
    assert got[1]["Subject"].startswith("December: ")


def test_a_reader_who_chooses_monthly_after_the_month_s_first_send_waits_for_the_next_month(bed: Bed) -> None:
    _, late = bed.add(2)
    publish(bed, 0)
    weekly_send(bed, 0)
    Choices(bed.store).set_frequency(late, "monthly", how="web", now=START + timedelta(days=1))
    for week in (1, 2):  # 30 November (no longer the first send of November), 7 December
        publish(bed, week)
        weekly_send(bed, week)
    got = mails_to(bed, "reader1@example.com")
    assert len(got) == 2  # the weekly issue of 23 November, then December's monthly one
    assert "Week 1 post 0" in text_of(got[1]) and "Week 2 post 1" in text_of(got[1])


def test_a_monthly_issue_a_halted_run_left_out_is_sent_by_the_next_run(bed: Bed) -> None:
    _, monthly = bed.add(2)
    Choices(bed.store).set_frequency(monthly, "monthly", how="cli", now=START - timedelta(hours=1))
    publish(bed, 0)
    stop = threading.Event()
    stop.set()  # SIGTERM as the weekly issue begins: the run stops before the monthly step
    bed.clock[0] = START
    outcome = bed.send(feed=bed.config.feed.url, cancel=stop)
    assert outcome.reports[-1].cancelled and len(bed.ledger.unfinished_issues()) == 1
    assert len(bed.mail.received) == 0
    bed.clock[0] = START + timedelta(hours=2)
    bed.send(feed=bed.config.feed.url)  # no new post, but November's monthly issue is still due
    bed.send(feed=bed.config.feed.url)
    assert len(mails_to(bed, "reader0@example.com")) == 1
    assert len(mails_to(bed, "reader1@example.com")) == 1


def test_a_two_week_pause_skips_exactly_the_sends_inside_it_and_the_next_issue_says_so(bed: Bed) -> None:
    _, paused = bed.add(2)
    publish(bed, 0)
    weekly_send(bed, 0)
    Choices(bed.store).pause(paused, weeks=2, how="web", now=START + timedelta(days=1))  # until 8 December
    for week in (1, 2, 3, 4):
        publish(bed, week)
        weekly_send(bed, week)
    rows = rows_of(bed, paused)
    assert rows == {1: ("sent", rows[1][1]), 2: ("skipped", "paused"), 3: ("skipped", "paused"),
                    4: ("sent", rows[4][1]), 5: ("sent", rows[5][1])}
    got = [text_of(m) for m in mails_to(bed, "reader1@example.com")]
    assert len(got) == 3
    assert "While you were away 2 issues went out since 30 November" in got[1], got[1][:600]
    assert "While you were away" not in got[0] and "While you were away" not in got[2]
    assert not any("While you were away" in text_of(m) for m in mails_to(bed, "reader0@example.com"))


def test_i_got_the_job_stops_every_issue_until_they_come_back_and_is_counted(bed: Bed) -> None:
    _, hired = bed.add(2)
    choices = Choices(bed.store)
    publish(bed, 0)
    weekly_send(bed, 0)
    choices.pause(hired, weeks=None, how="web", now=START + timedelta(days=1))
    for week in (1, 2, 3):
        publish(bed, week)
        weekly_send(bed, week)
    assert len(mails_to(bed, "reader1@example.com")) == 1
    assert choices.got_the_job() == 1
    choices.resume(hired, how="web", now=START + 3 * WEEK + timedelta(days=1))
    publish(bed, 4)
    weekly_send(bed, 4)
    got = mails_to(bed, "reader1@example.com")
    assert len(got) == 2 and "While you were away 3 issues went out" in text_of(got[1])
    assert choices.got_the_job() == 1  # coming back does not undo the news
    assert [c.kind for c in choices.trail(hired)] == ["job", "resume"]


class StopInIssue:
    """A Progress that stops the send (as SIGTERM does) at the first message of one issue."""

    def __init__(self, label: str, stop: threading.Event) -> None:
        self.label, self.stop, self.current = label, stop, ""

    def begin(self, label: str, total: int) -> None:
        self.current = label

    def advance(self, outcome: str) -> None:
        if self.current == self.label:
            self.stop.set()

    def waiting(self, seconds: float, deferred: int) -> None:
        pass


def test_a_monthly_issue_stopped_halfway_is_finished_by_the_next_run_as_it_was_recorded(bed: Bed) -> None:
    first, second = bed.add(3)[1:]
    choices = Choices(bed.store)
    for reader in (first, second):
        choices.set_frequency(reader, "monthly", how="cli", now=START - timedelta(hours=1))
    titles = publish(bed, 0)
    stop = threading.Event()
    bed.clock[0] = START
    outcome = bed.send(feed=bed.config.feed.url, cancel=stop, progress=StopInIssue("issue 2", stop))
    assert outcome.reports[-1].issue_id == 2 and outcome.reports[-1].cancelled
    assert len(mails_to(bed, "reader1@example.com")) == 1 and mails_to(bed, "reader2@example.com") == []
    bed.clock[0] = START + timedelta(hours=1)
    bed.send(feed=bed.config.feed.url)  # a restart: the monthly issue is finished, not made again
    bed.send(feed=bed.config.feed.url)
    assert len(mails_to(bed, "reader1@example.com")) == 1
    [resumed] = mails_to(bed, "reader2@example.com")
    assert resumed["Subject"].startswith("November: ") and "this month" in text_of(resumed)
    assert all(t in text_of(resumed) for t in titles)
    assert len(mails_to(bed, "reader0@example.com")) == 1


def test_a_monthly_issue_keeps_to_max_posts_and_says_how_many_more_are_on_the_blog(bed: Bed) -> None:
    _, monthly = bed.add(2)
    Choices(bed.store).set_frequency(monthly, "monthly", how="cli", now=START - timedelta(hours=1))
    publish(bed, 0)
    weekly_send(bed, 0)
    for week, count in ((1, 4), (2, 3)):  # seven posts for December's monthly issue; max_posts is 5
        publish(bed, week, count)
        weekly_send(bed, week)
    [_, december] = mails_to(bed, "reader1@example.com")
    text = text_of(december)
    assert "2 more posts on the blog" in text
    assert sum(f"Week {w} post {i}" in text for w, n in ((1, 4), (2, 3)) for i in range(n)) == 5


def test_a_monthly_issue_shows_the_questions_answered_since_the_reader_s_last_issue(bed: Bed) -> None:
    from digest.adapters.questions import QuestionStore
    from digest.core.questions import new_question

    _, monthly = bed.add(2)
    Choices(bed.store).set_frequency(monthly, "monthly", how="cli", now=START - timedelta(hours=1))
    publish(bed, 0)
    weekly_send(bed, 0)
    questions = QuestionStore(bed.store)
    asked, _ = questions.record(new_question(email="asker@example.com", name="", text="Two offers, one deadline?",
                                             source="web", consent_to_quote=False, display_name=""), START)
    questions.move(asked.id, "accept", START, paraphrase="Juggling two offers with one deadline")
    publish(bed, 1, labels=(f"Q-{asked.id}",))  # the answer, in the week of 30 November
    weekly_send(bed, 1)
    publish(bed, 2)
    weekly_send(bed, 2)
    [_, december] = mails_to(bed, "reader1@example.com")
    assert "Juggling two offers with one deadline" in text_of(december)
    assert "Juggling two offers with one deadline" in text_of(mails_to(bed, "reader0@example.com")[1])


def test_a_monthly_reader_paused_at_the_month_s_first_send_gets_theirs_at_the_first_send_after(bed: Bed) -> None:
    _, monthly = bed.add(2)
    choices = Choices(bed.store)
    choices.set_frequency(monthly, "monthly", how="cli", now=START - timedelta(hours=1))
    titles = {}
    titles[0] = publish(bed, 0)
    weekly_send(bed, 0)  # 23 November: November's monthly issue
    choices.pause(monthly, weeks=2, how="web", now=START + timedelta(days=1))  # until 8 December
    for week in (1, 2, 3, 4):  # 30 November, 7 December (paused), 14 December, 21 December
        titles[week] = publish(bed, week)
        weekly_send(bed, week)
    got = mails_to(bed, "reader1@example.com")
    assert len(got) == 2
    assert got[1]["Date"] and "14 Dec 2026" in got[1]["Date"]
    text = text_of(got[1])  # every post since November's issue: six, five shown (max_posts)
    assert sum(t in text for w in (1, 2, 3) for t in titles[w]) == 5 and "1 more post on the blog" in text
    assert len({i for i, (status, _) in rows_of(bed, monthly).items() if status == "skipped"}) == 0
