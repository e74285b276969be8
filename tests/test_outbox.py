"""The outbox (jobs/outbox.py) is the one way out: the issue's deliveries, the answer
notices and the single mails are judged, recorded, retried, given up, rate-limited and
signed by the same engine. Real SQLite, real aiosmtpd server with injected replies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest
import sqlalchemy as sa
from feedgen import Entry, atom
from sending import START, Bed, make_bed
from test_send_lint import dkim_key

from digest.adapters.questions import QuestionStore
from digest.adapters.schema import deliveries, notices
from digest.core.config import read_config
from digest.core.models import Consent
from digest.core.questions import new_question
from digest.jobs.mail import send_confirmation, send_welcome
from digest.jobs.notices import NoticeMail
from digest.jobs.questions import acknowledge
from digest.jobs.retry import retry_due

READER, ASKER = "reader0@example.com", "asker@example.com"
COLUMNS = ("status", "last_code", "last_reply", "attempts", "next_attempt_at", "first_attempt_at")


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any) -> Iterator[Bed]:
    b = make_bed(write_config, mail_server)
    yield b
    b.store.close()


def answered_question(bed: Bed, tmp_path: Path, email: str = ASKER) -> tuple[int, str]:
    """A question accepted and a feed whose post answers it: the next send notices its asker."""
    qs = QuestionStore(bed.store)
    q, _ = qs.record(new_question(email=email, name="", text="Two offers?", source="web", consent_to_quote=False,
                                  display_name=""), bed.now())
    qs.move(q.id, "accept", bed.now())
    path = tmp_path / "feed.xml"
    path.write_bytes(atom([Entry(1, "Two offers, one deadline", labels=[f"Q-{q.id}"])]))
    return q.id, str(path)


def delivery_row(bed: Bed) -> tuple[Any, ...]:
    with bed.store.tx() as conn:
        return tuple(conn.execute(sa.select(*(deliveries.c[c] for c in COLUMNS))).one())


def notice_row(bed: Bed) -> tuple[Any, ...]:
    with bed.store.tx() as conn:
        return tuple(conn.execute(sa.select(*(notices.c[c] for c in COLUMNS))).one())


@pytest.mark.parametrize(("command", "reply", "status"), [
    ("RCPT", "451 4.2.0 Try again later", "deferred"),
    ("RCPT", "550 5.1.1 No such user", "failed"),
    ("RCPT", "554 5.0.0 Not today", "failed"),
    ("DATA", "DROP", "in_doubt"),
])
def test_a_notice_is_judged_and_recorded_as_an_issue_delivery_is(bed: Bed, tmp_path: Path, command: str, reply: str,
                                                                 status: str) -> None:
    bed.add(1)
    _, feed = answered_question(bed, tmp_path)
    bed.mail.handler.inject(command, reply)  # the reader's copy of the issue goes first...
    bed.mail.handler.inject(command, reply)  # ... then the answer notice
    outcome = bed.send(feed=feed)
    assert outcome.notices is not None and dict(outcome.notices.counts) == {status: 1}
    issue, notice = delivery_row(bed), notice_row(bed)
    assert issue[0] == status and notice == issue, f"the notice was recorded {notice}, the delivery {issue}"
    if status == "failed" and "5.1.1" in reply:  # a bounce marks whom it names, reader and asker alike
        assert bed.store.find(READER).status == "bounced"  # type: ignore[union-attr]
        assert QuestionStore(bed.store).blocked(ASKER) == "the address bounced"


def test_a_deferred_notice_is_retried_and_given_up_with_the_deliveries(bed: Bed, tmp_path: Path) -> None:
    bed.add(1)
    _, feed = answered_question(bed, tmp_path)
    for _ in range(4):
        bed.mail.handler.inject("RCPT", "451 4.2.0 Try again later")
    bed.send(feed=feed)
    assert delivery_row(bed)[0] == notice_row(bed)[0] == "deferred"
    bed.advance(minutes=1)  # the first step of the back-off: both are due, and both are deferred again
    retry_due(bed.config.publication, bed.wiring())
    assert notice_row(bed) == delivery_row(bed) and delivery_row(bed)[3] == 2
    bed.advance(hours=bed.config.smtp.give_up_hours)
    retry_due(bed.config.publication, bed.wiring())
    issue, notice = delivery_row(bed), notice_row(bed)
    assert issue[0] == "failed" and issue[2].startswith("gave up after ") and notice == issue
    assert bed.mail.received == []


def test_the_answer_notices_are_a_queue_the_outbox_drains(bed: Bed, tmp_path: Path) -> None:
    """No loop of their own: the outbox drains the notices' ledger with the notice's Kind,
    and each notice is claimed (committed "sending") before the server has it."""
    _, feed = answered_question(bed, tmp_path)
    bed.mail.handler.inject("RCPT", "451 4.2.0 Try again later")
    bed.send(feed=feed)  # no reader: the send links the answer and queues its notice, which is deferred
    assert notice_row(bed)[0] == "deferred"
    bed.advance(minutes=1)
    wiring = bed.wiring()
    seen: list[tuple[Any, ...]] = []
    bed.mail.handler.on_received = lambda got: seen.append(notice_row(bed))
    drained = wiring.outbox.drain(wiring.notices, NoticeMail(bed.config.publication, wiring.questions), connections=1)
    assert drained.counts == {"sent": 1} and [r[0] for r in seen] == ["sending"]
    assert [m.recipients for m in bed.mail.received] == [[ASKER]]


def test_one_rate_ceiling_holds_across_the_issue_and_the_notices(write_config: Callable[..., Path], mail_server: Any,
                                                                 tmp_path: Path) -> None:
    bed = make_bed(write_config, mail_server, extra_smtp="max_per_second = 4\n")  # a message every 0.25 s
    try:
        bed.add(1)
        _, feed = answered_question(bed, tmp_path)
        arrived: list[float] = []
        bed.mail.handler.on_received = lambda got: arrived.append(time.monotonic())
        outcome = bed.send(feed=feed)
        assert outcome.report is not None and outcome.report.counts == {"sent": 1}
        assert len(arrived) == 2 and arrived[1] - arrived[0] >= 0.19, \
            f"the notice went {arrived[1] - arrived[0]:.2f} s after the issue: over [smtp] max_per_second = 4"
    finally:
        bed.store.close()


def test_a_single_mails_hard_bounce_is_recorded_as_a_deliverys(bed: Bed) -> None:
    """The welcome goes to a confirmed subscriber: its 5.1.1 marks them bounced, as the
    same reply to their issue would; a 4xx or a policy refusal marks nobody."""
    [sid] = bed.add(1)
    sub = bed.store.get(sid)
    assert sub is not None
    wiring = bed.wiring()
    bed.mail.handler.inject("RCPT", "451 4.2.0 Try again later")
    assert not send_welcome(bed.config.publication, wiring, sub, bed.now())
    bed.mail.handler.inject("RCPT", "550 5.7.1 Policy says no")
    assert not send_welcome(bed.config.publication, wiring, sub, bed.now())
    assert bed.store.get(sid).status == "confirmed"  # type: ignore[union-attr]
    bed.mail.handler.inject("RCPT", "550 5.1.1 No such user")
    assert not send_welcome(bed.config.publication, wiring, sub, bed.now())
    assert bed.store.get(sid).status == "bounced"  # type: ignore[union-attr]


def test_an_acknowledgements_refusal_is_classified_as_a_notices(bed: Bed) -> None:
    qs = QuestionStore(bed.store)
    wiring = bed.wiring()
    polite, _ = qs.record(new_question(email="polite@example.com", name="", text="One?", source="web",
                                       consent_to_quote=False, display_name=""), bed.now())
    bed.mail.handler.inject("RCPT", "550 5.7.1 Policy says no")  # the server's problem with us, not the address
    assert acknowledge(bed.config.publication, wiring, polite, now=bed.now()) == "refused: 550 5.7.1 Policy says no"
    assert qs.blocked("polite@example.com") is None
    typo, _ = qs.record(new_question(email="typo@example.com", name="", text="Two?", source="web",
                                     consent_to_quote=False, display_name=""), bed.now())
    bed.mail.handler.inject("RCPT", "550 5.1.1 No such user")
    assert acknowledge(bed.config.publication, wiring, typo, now=bed.now()) == "refused: 550 5.1.1 No such user"
    assert qs.blocked("typo@example.com") == "the address bounced"


def test_every_kind_of_mail_is_dkim_signed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    """The engine signs: the issue, the answer notice, and the single mails (they were not)."""
    key_file, dns_record = dkim_key(tmp_path)
    bed = make_bed(write_config, mail_server)
    try:
        text = bed.config.path.read_text().replace(
            "max_posts = 20\n", f'max_posts = 20\ndkim_selector = "news"\ndkim_key_file = "{key_file}"\n')
        bed.config.path.write_text(text)
        bed.config = read_config(bed.config.path, {"DIGEST_SECRET": "send-secret-0123456789abcdef"})
        [sid] = bed.add(1)
        pending, _ = bed.store.add("new@example.com", "new@example.com", "", (), confirmed=False, now=START,
                                   consent=Consent(START, "web"))
        _, feed = answered_question(bed, tmp_path)
        bed.send(feed=feed)
        wiring = bed.wiring()
        assert send_confirmation(bed.config.publication, wiring, pending, bed.now())
        assert send_welcome(bed.config.publication, wiring, bed.store.get(sid), bed.now())  # type: ignore[arg-type]
        ask, _ = wiring.questions.record(new_question(email="ask2@example.com", name="", text="Three?", source="web",
                                                      consent_to_quote=False, display_name=""), bed.now())
        assert acknowledge(bed.config.publication, wiring, ask, now=bed.now()) is None
        got = {m.recipients[0]: m.data for m in bed.mail.received}
        assert len(bed.mail.received) == 5 and set(got) == {READER, ASKER, "new@example.com", "ask2@example.com"}
        for message in bed.mail.received:
            assert dkim.verify(message.data, dnsfunc=lambda name, timeout=5: dns_record), \
                f"the mail to {message.recipients} is not signed: {message.message['Subject']}"
    finally:
        bed.store.close()
