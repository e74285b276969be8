"""Real mail read right (issue 20), end to end: mail in the shapes real mail systems send
(tests/fixtures/inbox/README.md names each) goes into a real Dovecot (tests/imapserver.py)
and `digest inbox`'s reader sorts and acts on it against a real store. Each assertion
failed on the code before issue 20 (bench/corpora.py measures the same rules on the
shared corpora of real mail)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from imapserver import IMAPServer
from inboxbed import InboxBed, fixture, make_bed

from digest.adapters.questions import QuestionStore

pytestmark = pytest.mark.slow
ORDER = ["apple_unsubscribe.eml", "arf_opt_out.eml", "exchange_out_of_office.eml", "hotmail_complaint.eml",
         "mailer_daemon_bounce.eml", "bulk_bounce.eml", "full_mailbox_bounce.eml", "outlook_reply.eml"]


@pytest.fixture
def said(write_config: Callable[..., Path], dovecot: IMAPServer) -> Iterator[tuple[dict[str, str], InboxBed]]:
    bed = make_bed(write_config, dovecot)
    bed.append(*(fixture(name) for name in ORDER))
    lines = bed.read().lines
    yield dict(zip(ORDER, lines, strict=True)), bed
    bed.store.close()


def test_apple_mails_unsubscribe_mail_unsubscribes(said: tuple[dict[str, str], InboxBed]) -> None:
    lines, bed = said
    assert lines["apple_unsubscribe.eml"].startswith("#1 unsubscribe (mail to unsubscribe@example.com)")
    assert lines["apple_unsubscribe.eml"].endswith("subscriber 10 unsubscribed (mail)")
    assert bed.status(10) == "unsubscribed"


def test_an_arf_opt_out_unsubscribes(said: tuple[dict[str, str], InboxBed]) -> None:
    lines, bed = said
    assert lines["arf_opt_out.eml"] == ("#2 complaint (ARF opt-out report): via its VERP address; "
                                        "subscriber 12 unsubscribed (mail)")
    assert bed.status(12) == "unsubscribed"


def test_an_exchange_out_of_office_is_an_auto_reply_never_a_bounce_nor_a_question(said: tuple[dict[str, str], InboxBed]) -> None:
    lines, bed = said
    assert lines["exchange_out_of_office.eml"] == ("#3 auto-reply (X-MS-Exchange-Inbox-Rules-Loop header): "
                                                   "ignored, not answered")
    # it came to subscriber 12's VERP address: not a soft bounce for them (nor anything for its sender, 11)
    assert not [r for r in bed.returns() if r[2] in ("soft", "hard") and r[1] in (11, 12)]
    assert bed.status(11) == "confirmed"
    assert not [q for q in QuestionStore(bed.store).listed() if q.email == "dan@example.org"]


def test_an_old_hotmail_complaint_is_a_complaint(said: tuple[dict[str, str], InboxBed]) -> None:
    lines, _bed = said
    assert lines["hotmail_complaint.eml"] == ("#4 complaint (Hotmail complaint (before ARF)): via the Message-ID it quotes; "
                                              "subscriber 8 unsubscribed (complaint)")


def test_mailer_daemon_without_an_empty_return_path_and_precedence_bulk_are_still_bounces(
        said: tuple[dict[str, str], InboxBed]) -> None:
    lines, bed = said
    assert lines["mailer_daemon_bounce.eml"].startswith("#5 bounce (non-standard bounce): 5.1.1 via the Message-ID")
    assert lines["bulk_bounce.eml"].startswith("#6 bounce (")
    assert bed.status(4) == bed.status(6) == "bounced"


def test_a_bare_5_0_0_saying_the_mailbox_is_full_is_soft_and_final_recipient_is_the_one_named(
        said: tuple[dict[str, str], InboxBed]) -> None:
    lines, bed = said
    assert lines["full_mailbox_bounce.eml"] == ("#7 bounce (RFC 3464 report): 5.0.0 via the Message-ID it quotes; "
                                                "subscriber 5: 1 of 3 issues in a row came back")
    assert bed.status(5) == "confirmed"


def test_an_outlook_reply_keeps_only_the_readers_words(said: tuple[dict[str, str], InboxBed]) -> None:
    lines, bed = said
    assert "question" in lines["outlook_reply.eml"] and "from subscriber 10" in lines["outlook_reply.eml"]
    [question] = [q for q in QuestionStore(bed.store).listed() if q.email == "carla@example.org"]
    assert question.text == "How should I answer when they ask why I left my last job after six months?"
