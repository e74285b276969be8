"""Forged mail changes nothing (issue 20), end to end: the forgeries go into a real Dovecot
(tests/imapserver.py) and `digest inbox`'s reader acts on them against a real store whose
issue went to twelve readers, with [newsletter] return_path (VERP) set as the bed sets it.

The attacker runs the program on the same public feed, so knows the issue's key and the
readers' small ids: before this issue that was every reader's Message-ID."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from imapserver import IMAPServer
from inboxbed import KEY, READERS, InboxBed, fixture, make_bed

from digest.adapters.questions import QuestionStore
from digest.adapters.schema import deliveries
from digest.core.message import acknowledgement_message_id, unguessable
from digest.core.questions import new_question
from digest.jobs.subscribers import person_export

pytestmark = pytest.mark.slow
COMPUTED = "<digest.1.{n}." + KEY[:10] + "@example.com>"  # the old scheme, from the public feed's key


@pytest.fixture
def bed(write_config: Callable[..., Path], dovecot: IMAPServer) -> Iterator[InboxBed]:
    made = make_bed(write_config, dovecot, known_ids=False)  # the Message-IDs the ledger itself made
    yield made
    made.store.close()


def arf(n: int, quoted: str, rcpt: str = "") -> bytes:
    """An ARF abuse report from a stranger, quoting `quoted` as the original's Message-ID."""
    rcpt_line = f"Original-Rcpt-To: {rcpt}\r\n" if rcpt else ""
    return (f"From: <abuse@forger.example>\r\nTo: questions@example.com\r\nSubject: Abuse report {n}\r\n"
            f"Message-ID: <arf.{n}@forger.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
            f"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n{rcpt_line}\r\n"
            "--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: newsletter@example.com\r\nTo: redacted@example.net\r\n"
            f"Subject: The Wise Job Search\r\nMessage-ID: {quoted}\r\n\r\nbody\r\n--b--\r\n").encode()


def dsn(n: int, addresses: list[str], quoted: str = "", status: str = "5.1.1", to: str = "newsletter@example.com") -> bytes:
    """A well-formed RFC 3464 report from a stranger's MAILER-DAEMON for `addresses`."""
    blocks = "".join(f"Final-Recipient: rfc822; {a}\r\nAction: failed\r\nStatus: {status}\r\n\r\n" for a in addresses)
    original = (f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: newsletter@example.com\r\n"
                f"Message-ID: {quoted}\r\n\r\n") if quoted else ""
    return ("Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.forger.example>\r\n"
            f"To: {to}\r\nSubject: Undelivered Mail\r\nMessage-ID: <dsn.{n}@mx.forger.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nUser unknown.\r\n"
            f"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.forger.example\r\n\r\n{blocks}"
            f"{original}--b--\r\n").encode()


def statuses(bed: InboxBed) -> list[str]:
    return [bed.status(i + 1) for i in range(len(READERS))]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_ledger_gives_each_reader_an_unguessable_message_id(database: str, request: pytest.FixtureRequest,
                                                               write_config: Callable[..., Path], dovecot: IMAPServer) -> None:
    url = None if database == "sqlite" else str(request.getfixturevalue("fresh_postgres"))
    made = make_bed(write_config, dovecot, store_url=url, known_ids=False)
    try:
        with made.store.tx() as conn:
            ids = conn.execute(sa.select(deliveries.c.message_id)).scalars().all()
    finally:
        made.store.close()
    assert len(ids) == len(set(ids)) == len(READERS)
    assert all(unguessable(m) and KEY[:10] not in m for m in ids), ids


def test_eleven_forged_abuse_reports_quoting_computed_message_ids_unsubscribe_no_one(bed: InboxBed) -> None:
    bed.append(*(arf(n, COMPUTED.format(n=n)) for n in range(1, 12)))
    lines = bed.read().lines
    assert len(lines) == 11 and all(line.endswith(": nothing changed") for line in lines), lines
    assert statuses(bed) == ["confirmed"] * len(READERS)


def test_a_forged_report_naming_six_readers_bounces_no_one(bed: InboxBed) -> None:
    bed.append(dsn(1, READERS[:6]), dsn(2, READERS[:6], quoted=COMPUTED.format(n=1)))
    lines = bed.read().lines
    assert "names 6 of our readers" in lines[0] and lines[0].endswith("nothing changed"), lines
    assert lines[1].endswith("nothing changed"), lines
    assert statuses(bed) == ["confirmed"] * len(READERS) and bed.returns() == []


def test_a_report_quoting_a_message_we_did_not_send_changes_nothing(bed: InboxBed) -> None:
    bed.append(dsn(1, [READERS[3]], quoted="<someone.else@mail.elsewhere.example>"))
    [line] = bed.read().lines
    assert line.endswith("returns a message we did not send: nothing changed"), line
    assert bed.status(4) == "confirmed"


def test_with_verp_reports_naming_a_reader_by_address_only_count_for_nothing(bed: InboxBed) -> None:
    bed.append(dsn(1, [READERS[3]]), arf(2, "<none@forger.example>", rcpt=READERS[7]).replace(
        b"Content-Type: message/rfc822\r\n\r\nFrom: newsletter@example.com\r\nTo: redacted@example.net\r\n"
        b"Subject: The Wise Job Search\r\nMessage-ID: <none@forger.example>\r\n\r\nbody\r\n", b""))
    bounce, complaint = bed.read().lines
    assert bounce.endswith("5.1.1 via the address it names, an address anyone can name; subscriber 4: recorded, not counted"), \
        bounce
    assert complaint.endswith("via the address it names, an address anyone can name: nothing changed"), complaint
    assert bed.status(4) == bed.status(8) == "confirmed"
    # sent again for every issue, it would never add up: nothing soft was counted
    assert [r[2] for r in bed.returns()] == ["weak"]


def test_with_verp_an_unsubscribe_mail_in_a_readers_name_without_the_signed_token_changes_nothing(bed: InboxBed) -> None:
    forged = fixture("unsubscribe.eml")
    subject = next(line for line in forged.split(b"\n") if line.startswith(b"Subject:"))
    bed.append(forged.replace(subject, b"Subject: unsubscribe"),
               forged.replace(subject, b"Subject: unsubscribe " + b"x" * 20 + b"." + b"y" * 27).replace(b"<CAB1x2y3z4@", b"<other@"))
    plain, bad_token = bed.read().lines
    assert "by its From line only, which anyone can write: nothing changed" in plain, plain
    assert bad_token.endswith("its unsubscribe token is not one of ours: nothing changed"), bad_token
    assert bed.status(9) == "confirmed"


def test_a_reply_quoting_a_computed_message_id_is_not_linked_to_a_reader(bed: InboxBed) -> None:
    with bed.store.tx() as conn:
        real = conn.execute(sa.select(deliveries.c.message_id).where(deliveries.c.subscriber_id == 3)).scalar_one()
    reply = ("From: Stranger <stranger@elsewhere.example>\r\nTo: questions@example.com\r\nSubject: Re: The Wise Job Search\r\n"
             "Message-ID: <{mid}@elsewhere.example>\r\nIn-Reply-To: {irt}\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n\r\nHow do I negotiate a {what} offer?\r\n")
    bed.append(reply.format(mid="forged", irt=COMPUTED.format(n=3), what="forged").encode(),
               reply.format(mid="real", irt=real, what="real").encode())
    bed.read()
    asked = {q.text: q for q in QuestionStore(bed.store).listed()}
    assert asked["How do I negotiate a forged offer?"].subscriber_id is None
    assert asked["How do I negotiate a real offer?"].subscriber_id == 3  # the reader's own id still links
    # ... and reader 3's export holds that question (their forwarded copy drew it), never its writer's address or name
    exported = person_export(bed.store, QuestionStore(bed.store), READERS[2], now=datetime.now(UTC))
    assert [q["text"] for q in exported["questions"]] == ["How do I negotiate a real offer?"]
    assert "stranger" not in json.dumps(exported).lower()


def test_a_bounce_that_is_not_about_our_question_mail_does_not_stop_mail_to_an_asker(bed: InboxBed) -> None:
    qs = QuestionStore(bed.store)
    now = datetime.now(UTC)
    asked, _ = qs.record(new_question(email="asker@elsewhere.example", name="", text="One?", source="web"), now)
    assert qs.claim_acknowledgement(asked, now, timedelta(hours=24))
    bed.append(dsn(1, ["asker@elsewhere.example"]))
    bed.read()
    assert qs.blocked("asker@elsewhere.example") is None


def test_a_bounce_quoting_one_askers_acknowledgement_stops_mail_to_that_asker_only(bed: InboxBed) -> None:
    qs = QuestionStore(bed.store)
    now = datetime.now(UTC)
    one, _ = qs.record(new_question(email="one@elsewhere.example", name="", text="One?", source="web"), now)
    other, _ = qs.record(new_question(email="other@elsewhere.example", name="", text="Two?", source="web"), now)
    for asked in (one, other):
        assert qs.claim_acknowledgement(asked, now, timedelta(hours=24))
    ack = acknowledgement_message_id("example.com", one.id, qs.require(one.id).dup_key)  # as its mail carried it
    guessed = f"<ack.{other.id}.{'ab' * 12}@example.com>"  # its number known, the rest made up
    bed.append(dsn(1, ["other@elsewhere.example"], quoted=ack), dsn(2, ["one@elsewhere.example"], quoted=ack),
               dsn(3, ["other@elsewhere.example"], quoted=guessed),
               arf(4, guessed, rcpt="other@elsewhere.example"))
    bed.read()
    assert qs.blocked("other@elsewhere.example") is None
    assert qs.blocked("one@elsewhere.example") == "the address bounced"


def test_a_report_to_one_readers_verp_address_affects_that_reader_only(bed: InboxBed) -> None:
    verp = fixture("verp_garbled.eml").split(b"To: ", 1)[1].split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode().strip()
    bed.append(dsn(1, READERS[:6] + [READERS[11]], to=verp),
               dsn(2, READERS[:6], to=verp).replace(b"Status: 5.1.1\r\n\r\n--b", b"Status: 4.2.2\r\n\r\n--b"))
    hard, mixed = bed.read().lines
    assert hard.endswith("5.1.1 via its VERP address; subscriber 12 bounced"), hard
    assert statuses(bed) == ["confirmed"] * 11 + ["bounced"]
    # another reader's 5.1.1 beside a 4.2.2 makes no one hard-bounced (subscriber 12 is bounced already)
    assert "via its VERP address" in mixed and "subscriber 12 was not subscribed" not in mixed, mixed
