"""Sorting the mail that comes back (core/returns.py, core/reports.py), on the fixtures in
tests/fixtures/inbox/: each kind, each provider's bounce format, and hostile bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.core.reports import MAX_FAILURES, Failure
from digest.core.returns import Kind, Ours, sort_message
from digest.core.verp import envelope_sender

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "inbox"
SECRET = "inbox-secret-0123456789abcdef"
OURS = Ours("example.com", "bounces@example.com", "unsubscribe@example.com")
VERP = envelope_sender("newsletter@example.com", "bounces@example.com", SECRET, 1, 12)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().replace(b"%VERP%", VERP.encode())


def our_id(subscriber: int) -> str:
    return f"<digest.1.{subscriber}.0123456789@example.com>"


@pytest.mark.parametrize(("name", "address", "status", "subscriber", "how"), [
    ("gmail_bounce.eml", "no-such-reader@gmail.com", "5.1.1", 1, "RFC 3464 report"),
    ("outlook_bounce.eml", "gone.reader@outlook.com", "5.1.10", 2, "RFC 3464 report"),
    ("yahoo_bounce.eml", "closed.reader@yahoo.com", "5.0.0", 3, "non-standard bounce"),
    ("postfix_bounce.eml", "user.unknown@example.net", "5.1.1", 4, "RFC 3464 report"),
    ("exim_bounce.eml", "old.reader@example.net", "5.1.1", 5, "non-standard bounce"),
    ("qmail_bounce.eml", "nobody.home@example.org", "5.1.1", 6, "non-standard bounce"),
])
def test_permanent_bounces_of_each_format(name: str, address: str, status: str, subscriber: int, how: str) -> None:
    found = sort_message(fixture(name), OURS)
    assert found.kind is Kind.BOUNCE and found.why == how
    assert found.failures == (Failure(address, status),)
    assert found.failures[0].hard and found.status == status
    assert found.original_ids == (our_id(subscriber),)


@pytest.mark.parametrize(("name", "status"), [("exim_delayed.eml", "4.3.0"), ("postfix_delayed.eml", "4.4.1")])
def test_delay_warnings_are_transient(name: str, status: str) -> None:
    # flufl.bounce alone takes Exim's "has not yet been delivered" for a permanent failure
    found = sort_message(fixture(name), OURS)
    assert found.kind is Kind.BOUNCE
    assert found.failures == (Failure("slow.reader@example.net", status),)
    assert not found.failures[0].hard and found.original_ids == (our_id(7),)


@pytest.mark.parametrize(("status", "hard"), [("5.1.1", True), ("5.0.0", True), ("5.1.10", True), ("5.2.1", True),
                                              ("5.7.1", False), ("5.2.2", False), ("4.4.1", False)])
def test_which_statuses_blame_the_address(status: str, hard: bool) -> None:
    assert Failure("a@example.org", status).hard is hard


def test_a_complaint_names_our_message_even_with_the_recipient_redacted() -> None:
    found = sort_message(fixture("arf_complaint.eml"), OURS)
    assert found.kind is Kind.COMPLAINT and found.why == "ARF abuse report"
    assert found.original_ids == (our_id(8),)
    assert found.recipients == ("redacted@yahoo.com",)


def test_an_arf_report_with_original_rcpt_to_and_a_verp_return_path() -> None:
    raw = fixture("arf_complaint.eml").replace(b"Feedback-Type: abuse\n", b"Feedback-Type: abuse\nOriginal-Rcpt-To: <Ana@Example.org>\n")
    raw = raw.replace(b"Return-Path: <newsletter@example.com>\nReceived: from 192.0.2.25",
                      b"Return-Path: <" + VERP.encode() + b">\nReceived: from 192.0.2.25")
    found = sort_message(raw, OURS)
    assert found.kind is Kind.COMPLAINT and found.recipients == ("ana@example.org",)
    assert found.tokens == (VERP.split("+")[1].split("@")[0],)


def test_mail_to_the_unsubscribe_address_names_its_sender() -> None:
    found = sort_message(fixture("unsubscribe.eml"), OURS)
    assert found.kind is Kind.UNSUBSCRIBE and found.sender == "ben@example.net"
    # without an unsubscribe_mailto configured it is just mail
    assert sort_message(fixture("unsubscribe.eml"), Ours("example.com")).kind is Kind.UNSORTED


@pytest.mark.parametrize(("name", "why"), [
    ("auto_submitted.eml", "Auto-Submitted: auto-replied"),
    ("out_of_office.eml", "out-of-office reply to our newsletter"),
])
def test_auto_replies_are_recognised(name: str, why: str) -> None:
    found = sort_message(fixture(name), OURS)
    assert found.kind is Kind.AUTO_REPLY and found.why == why


def test_an_auto_reply_to_a_verp_address_with_an_empty_return_path_is_no_bounce() -> None:
    # RFC 3834 asks auto-replies to go to the envelope sender, from an empty one
    raw = fixture("auto_submitted.eml").replace(b"Delivered-To: newsletter@example.com", b"Delivered-To: " + VERP.encode())
    assert sort_message(raw, OURS).kind is Kind.AUTO_REPLY


def test_our_own_newsletter_coming_back_is_an_auto_reply() -> None:
    raw = (FIXTURES / "gmail_bounce.eml").read_bytes().split(b"Content-Type: message/rfc822\n\n")[1]
    raw = raw.split(b"\n--0000")[0]
    found = sort_message(raw, OURS)
    assert found.kind is Kind.AUTO_REPLY and found.why == "our own newsletter came back"


@pytest.mark.parametrize(("header", "why"), [
    (b"Precedence: bulk", "Precedence: bulk"), (b"X-Autoreply: yes", "X-Autoreply header"),
    (b"Auto-Submitted: auto-generated; owner-email=a@b.c", "Auto-Submitted: auto-generated"),
])
def test_other_auto_reply_headers(header: bytes, why: str) -> None:
    raw = fixture("question.eml").replace(b"MIME-Version: 1.0", header + b"\nMIME-Version: 1.0")
    assert sort_message(raw, OURS).why == why


def test_auto_submitted_no_is_a_person() -> None:
    raw = fixture("question.eml").replace(b"MIME-Version: 1.0", b"Auto-Submitted: no\nMIME-Version: 1.0")
    assert sort_message(raw, OURS).kind is Kind.UNSORTED


def test_an_out_of_office_subject_without_our_message_id_is_a_person_writing() -> None:
    raw = fixture("out_of_office.eml").replace(b"digest.1.11.", b"someone.else.")
    assert sort_message(raw, OURS).kind is Kind.UNSORTED


def test_a_verp_bounce_with_a_garbled_report_keeps_its_token_and_code() -> None:
    found = sort_message(fixture("verp_garbled.eml"), OURS)
    assert found.kind is Kind.BOUNCE and found.why.startswith("bounce to a VERP address, report unreadable")
    assert found.tokens == (VERP.split("+")[1].split("@")[0],)
    assert found.failures == (Failure("", "5.1.1"),) and found.status == "5.1.1"


def test_a_bounce_with_nothing_readable_counts_as_a_delay() -> None:
    raw = fixture("verp_garbled.eml").replace(b"550 5.1.1", b"xxx")
    found = sort_message(raw, OURS)
    assert found.kind is Kind.BOUNCE and found.failures == () and found.status == "4.0.0"


def test_a_forged_dsn_is_still_read_as_a_bounce() -> None:
    # the sorting believes what it reads; jobs/inbox.py decides it is about no one we mailed
    found = sort_message(fixture("forged_dsn.eml"), OURS)
    assert found.kind is Kind.BOUNCE
    assert [f.address for f in found.failures] == ["stranger@example.org", "late.subscriber@example.org"]


def test_a_question_is_unsorted_with_its_sender_and_subject() -> None:
    found = sort_message(fixture("question.eml"), OURS)
    assert found.kind is Kind.UNSORTED
    assert found.sender == "erin@example.org" and found.subject == "How do I explain a two-year gap on my resume?"


@pytest.mark.parametrize("name", ["broken_mime.eml", "unknown_charset.eml"])
def test_broken_mime_and_unknown_charsets_are_sorted_not_raised(name: str) -> None:
    found = sort_message(fixture(name), OURS)
    assert found.kind is Kind.UNSORTED and found.why == "for the questions loop"
    assert found.sender.endswith("@example.org") and found.message_id


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(p.name for p in FIXTURES.glob("*.eml"))), st.data())
def test_mangled_fixtures_never_raise(name: str, data: st.DataObject) -> None:
    raw = bytearray(fixture(name))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw)))
        what = data.draw(st.sampled_from(["cut", "insert", "flip"]))
        if what == "cut":
            del raw[at: at + data.draw(st.integers(1, 200))]
        elif what == "insert":
            raw[at:at] = data.draw(st.sampled_from([b"\n", b"\n\n", b"--", b"=?", b"?=", b"\xff", b":", b";", b"<", b"\r",
                                                    b"Content-Type: multipart/report; report-type=delivery-status\n"]))
        elif at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
    found = sort_message(bytes(raw), OURS)
    assert isinstance(found.kind, Kind)


@given(st.binary(max_size=2000))
def test_any_bytes_at_all_are_sorted(raw: bytes) -> None:
    assert isinstance(sort_message(raw, OURS).kind, Kind)


def test_a_bounce_with_an_unparseable_from_and_8bit_headers_still_names_its_recipient(
        caplog: pytest.LogCaptureFixture) -> None:
    # flufl.bounce's Yale detector indexes the From's first address unguarded, and some
    # detectors call .lower() on 8-bit headers: either used to stop every detector after it
    raw = fixture("qmail_bounce.eml").replace(b"From: MAILER-DAEMON@mail.example.org", b"From: <")
    raw = raw.replace(b"Subject: failure notice", b"Subject: failure notice \xe9\xff")
    found = sort_message(raw, OURS)
    assert found.kind is Kind.BOUNCE and found.failures == (Failure("nobody.home@example.org", "5.1.1"),)
    assert not [r for r in caplog.records if r.name.startswith("flufl")]


def test_what_a_message_says_about_itself_cannot_drive_a_terminal() -> None:
    raw = fixture("question.eml").replace(b"Subject: How do I", b"Subject: \x1b]0;owned\x07\x1b[2J\xe2\x80\xaeHow do I")
    raw = raw.replace(b"From: Erin Asker <erin@example.org>", b"From: \"\x1b[31m\" <erin\x1b@example.org>")
    found = sort_message(raw, OURS)
    assert "\x1b" not in found.subject + found.sender + found.why and "\u202e" not in found.subject
    assert found.subject.endswith("How do I explain a two-year gap on my resume?")


@pytest.mark.parametrize(("feedback_type", "complaint"), [("abuse", True), ("fraud", True), ("not-spam", False),
                                                          ("auth-failure", False), ("virus", False)])
def test_only_abuse_and_fraud_reports_are_complaints_to_act_on(feedback_type: str, complaint: bool) -> None:
    raw = fixture("arf_complaint.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: " + feedback_type.encode())
    found = sort_message(raw, OURS)
    assert found.kind is Kind.COMPLAINT and found.feedback_type == feedback_type
    assert found.is_complaint is complaint


# ---- issue 20: real mail read right (the rules name the standard or mail system they follow) ----

def _dsn(status: str, diagnostic: str, text: str = "", blocks: str = "") -> bytes:
    return ("Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nTo: newsletter@example.com\r\nSubject: failure\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
            f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.net\r\n\r\n"
            + (blocks or f"Final-Recipient: rfc822; reader@example.net\r\nAction: failed\r\nStatus: {status}\r\n"
               f"Diagnostic-Code: smtp; {diagnostic}\r\n") + "\r\n--b--\r\n").encode()


@pytest.mark.parametrize(("status", "diagnostic", "hard"), [
    ("5.0.0", "550 Requested action not taken: mailbox full", False),        # RFC 3463 5.2.2's cause in words
    ("5.0.0", "552 Message size exceeds fixed maximum message size", False),  # 5.3.4's
    ("5.0.0", "554 Message rejected as spam by Content Filtering", False),
    ("5.0.0", "550 Rejected by local policy", False),
    ("5.0.0", "550 Sender blocked", False),
    ("5.0.0", "retry timeout exceeded", False),
    ("5.7.1", "550 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org", False),
    ("5.0.0", "550 User unknown", True),
    ("5.7.1", "550 5.7.1 No such user here", True),       # sendmail's mislabelled "no such user"
    ("5.0.0", "550 Requested action not taken", True),    # nothing said: permanent
    ("5.1.1", "550 5.1.1 mailbox is full", True),         # the code blames the address: the code decides
    ("5.2.2", "552 5.2.2 over quota", False),
])
def test_a_failure_is_soft_when_its_text_names_a_cause_that_may_pass(status: str, diagnostic: str, hard: bool) -> None:
    found = sort_message(_dsn(status, diagnostic), OURS)
    assert [f.hard for f in found.failures] == [hard] and found.hard is hard


def test_the_report_text_decides_when_the_block_says_nothing() -> None:
    found = sort_message(_dsn("5.0.0", "", text="The recipient's mailbox is full."), OURS)
    assert found.failures == (Failure("reader@example.net", "5.0.0"),) and not found.hard


def test_final_recipient_is_named_rather_than_original_recipient() -> None:
    blocks = ("Original-Recipient: rfc822; alias@example.com\r\nFinal-Recipient: rfc822; reader@example.net\r\n"
              "Action: failed\r\nStatus: 5.1.1\r\n")
    assert [f.address for f in sort_message(_dsn("", "", blocks=blocks), OURS).failures] == ["reader@example.net"]
    only_original = "Original-Recipient: rfc822; alias@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    assert [f.address for f in sort_message(_dsn("", "", blocks=only_original), OURS).failures] == ["alias@example.com"]


def test_a_nonstandard_failed_action_and_a_bare_reply_code_are_read() -> None:
    blocks = "Final-Recipient: rfc822; reader@example.net\r\nAction: failure\r\nStatus: 553 Exceeded maximum inbound message size\r\n"
    found = sort_message(_dsn("", "", blocks=blocks), OURS)
    assert found.failures == (Failure("reader@example.net", "5.0.0"),) and not found.hard  # too large: soft


def test_numbers_in_prose_are_not_status_codes() -> None:
    prose = (f"Return-Path: <>\r\nFrom: someone@example.org\r\nTo: {VERP}\r\nSubject: hello\r\n\r\n"
             "Version 2.0.0 of the guide is out; see section 5.1.1 and call 550 1234.\r\n").encode()
    found = sort_message(prose, OURS)
    assert found.kind is Kind.BOUNCE and found.failures == ()  # to the VERP address: a bounce, but no code in it
    exim = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@x.example\r\nSubject: failed\r\n\r\nreader@example.net\r\n  550 5.1.1 unknown\r\n"
    assert sort_message(exim, OURS).status == "5.1.1"


def test_a_huge_bounce_is_read_with_bounded_work() -> None:
    body = "".join(f"  reader{i}@example.org\n    SMTP error from remote mail server after RCPT TO:<reader{i}@example.org>:\n"
                   "    550 5.1.1 User unknown\n" for i in range(3000))
    raw = ("Return-Path: <>\nFrom: Mail Delivery System <Mailer-Daemon@mx.example.net>\nTo: newsletter@example.com\n"
           "Subject: Mail delivery failed: returning message to sender\n\nThis message was created automatically by mail "
           "delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. "
           "This is a permanent error. The following address(es) failed:\n\n" + body).encode()
    found = sort_message(raw, OURS)
    assert found.kind is Kind.BOUNCE and 0 < len(found.failures) <= MAX_FAILURES


def test_an_exchange_automatic_reply_is_recognised_in_its_languages_but_a_question_about_absence_is_not() -> None:
    def mail(subject: str) -> bytes:
        return f"From: r@example.org\r\nTo: questions@example.com\r\nSubject: {subject}\r\n\r\nHi\r\n".encode()

    for subject in ("Automatic reply: The Wise Job Search", "=?utf-8?q?R=C3=A9ponse_automatique_=3A?= The Wise Job Search",
                    "Automatische Antwort: The Wise Job Search", "=?utf-8?q?Respuesta_autom=C3=A1tica=3A?= The Wise Job Search"):
        assert sort_message(mail(subject), OURS).kind is Kind.AUTO_REPLY, subject
    assert sort_message(mail("How do I explain an absence from work?"), OURS).kind is Kind.UNSORTED


def test_an_unsubscribe_subject_holds_a_token_only_in_its_signed_form() -> None:
    def mail(subject: str) -> bytes:
        return f"From: r@example.org\r\nTo: unsubscribe@example.com\r\nSubject: {subject}\r\n\r\n".encode()

    assert sort_message(mail("unsubscribe please-remove-me-from-this-list"), OURS).unsubscribe_token == ""
    assert sort_message(mail("unsubscribe WzcsMTc2NDU1MDAwMF0.abcdefghijklmnop"), OURS).unsubscribe_token == (
        "WzcsMTc2NDU1MDAwMF0.abcdefghijklmnop")


def test_final_recipient_is_named_even_when_the_report_is_not_declared_one() -> None:
    """A delivery-status part inside multipart/mixed (some gateways): read as RFC 3464 says,
    not by flufl.bounce's heuristics, which took Original-Recipient."""
    raw = fixture("full_mailbox_bounce.eml").replace(b"multipart/report; report-type=delivery-status;", b"multipart/mixed;")
    found = sort_message(raw, OURS)
    assert found.kind is Kind.BOUNCE and [f.address for f in found.failures] == ["old.reader@example.net"]


def test_a_final_recipient_that_is_not_an_internet_address_gives_way_to_the_original() -> None:
    blocks = ("Original-Recipient: rfc822; reader@example.net\r\nFinal-Recipient: x400; /S=reader/ADMD= /C=GB/\r\n"
              "Action: failed\r\nStatus: 5.1.1\r\n")
    assert [f.address for f in sort_message(_dsn("", "", blocks=blocks), OURS).failures] == ["reader@example.net"]
    forwarded = ("Original-Recipient: rfc822; reader@example.net\r\nFinal-Recipient: rfc822; reader@forward.example\r\n"
                 "Action: failed\r\nStatus: 5.1.1\r\n")
    [failure] = sort_message(_dsn("", "", blocks=forwarded), OURS).failures
    assert (failure.address, failure.also) == ("reader@forward.example", "reader@example.net")


def test_addresses_listed_under_a_failure_sentence_are_read() -> None:
    """Novell GroupWise's layout, which flufl.bounce does not know."""
    raw = (b"From: postmaster@gw.example.net\r\nSubject: Undeliverable mail\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain\r\n\r\nThe message that you sent was undeliverable to the following:\r\n\r\n"
           b"\treader@example.net (user not found)\r\n")
    found = sort_message(raw, OURS)
    assert found.kind is Kind.BOUNCE and found.failures == (Failure("reader@example.net", "5.0.0"),) and found.hard


@pytest.mark.parametrize(("diagnostic", "hard"), [
    ("550 Postfach voll", False), ("550 Empfänger unbekannt", True),
    ("550 Boîte aux lettres pleine", False), ("550 Destinataire inconnu", True),
    ("550 Buzón lleno", False), ("550 El usuario no existe", True),
    ("550 Casella piena", False), ("550 Utente sconosciuto", True),
])
def test_the_cause_is_read_in_the_languages_ndrs_are_written_in(diagnostic: str, hard: bool) -> None:
    blocks = (f"Final-Recipient: rfc822; reader@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\n"
              f"Diagnostic-Code: smtp; {diagnostic}\r\n")
    raw = _dsn("", "", blocks=blocks).replace(b"Content-Type: message/delivery-status\r\n",
                                              b"Content-Type: message/delivery-status; charset=utf-8\r\n")
    assert sort_message(raw.decode().encode("utf-8"), OURS).hard is hard


# ---- hostile sizes: a message under [inbox] max_message_bytes is read in a bounded time ----

def test_blank_lines_do_not_make_the_status_search_quadratic() -> None:
    """"^\\s*" (re.M) ran from every line start over all the blank lines below it: the
    50,000 characters of human text read of a report took 9 s, the GIL held."""
    import time

    from digest.core.reports import status_in_text

    started = time.perf_counter()
    assert status_in_text("\r\n " * 16_000 + "end") is None
    assert status_in_text("said: 550 5.2.2 full\n" + "  \n" * 16_000) == "5.2.2"
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("line", ["\n", "a\n", "=\n"], ids=["blank", "letter", "soft-break"])
def test_a_two_megabyte_bounce_of_short_lines_is_sorted_in_seconds(line: str) -> None:
    """flufl.bounce's detectors test every line against every pattern in Python: 2 MB of
    short lines (under [inbox] max_message_bytes) in a bounce they find nothing in took 30
    to 55 s a message, for anyone who cares to send them. They read the first FLUFL_BYTES."""
    import time

    raw = ("Subject: Undelivered Mail Returned to Sender\nFrom: MAILER-DAEMON@mx.example.org\nReturn-Path: <>\n\n"
           + line * (1_900_000 // len(line))).encode()
    started = time.perf_counter()
    found = sort_message(raw, OURS)
    took = time.perf_counter() - started
    assert found.kind is Kind.BOUNCE
    assert took < 10, f"{took:.1f} s to sort one message"


def test_the_failures_of_a_bounce_are_found_before_the_long_message_it_returns() -> None:
    raw = fixture("exim_bounce.eml") + b"a\n" * 900_000  # a long returned message
    found = sort_message(raw, OURS)
    assert found.kind is Kind.BOUNCE and [(f.address, f.status) for f in found.failures] == [
        ("old.reader@example.net", "5.1.1")]
