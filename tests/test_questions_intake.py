"""take_question and the acknowledgement, against a real SQLite store and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sending import START, Bed, make_bed

from digest.adapters.questions import QuestionStore
from digest.cli.wiring import Wiring
from digest.core.contact_form import parse_contact_form
from digest.core.errors import InputError
from digest.core.models import Consent
from digest.jobs.questions import Intake, take_question

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "contact_form"


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any) -> Iterator[Bed]:
    b = make_bed(write_config, mail_server)
    yield b
    b.store.close()


def take(bed: Bed, email: str = "asker@example.com", text: str = "How do I negotiate two offers?", **kw: Any) -> Intake:
    values: dict[str, Any] = {"name": "Secret Name", "source": "web", "consent_to_quote": False, "display_name": "",
                              "now": bed.now()}
    values.update(kw)
    wiring = bed.wiring()
    return take_question(bed.config.publication, wiring, email=email, text=text, **values)


def test_a_question_is_kept_and_acknowledged_once_without_quoting_it(bed: Bed) -> None:
    intake = take(bed, text="My boss Dana Smith at Acme: should I quit? <b>Call me</b> http://spam.example/")
    assert intake.created and intake.acknowledged and intake.question.acknowledged_at == START
    [mail] = bed.mail.received
    assert mail.recipients == ["asker@example.com"]
    message = mail.message
    assert message["Subject"] == "We received your question - The Wise Job Search"
    assert message["Auto-Submitted"] == "auto-replied" and message["Precedence"] is None
    body = message.get_body(("plain",)).get_content() + message.get_body(("html",)).get_content()
    for secret in ("Dana", "Acme", "quit", "spam.example", "Secret Name", "Call me"):
        assert secret not in body and secret not in str(message)
    assert "reply to this email" in body.lower() or "Reply to this email" in body


def test_the_same_question_again_is_merged_and_not_acknowledged_again(bed: Bed) -> None:
    first = take(bed)
    bed.advance(days=3)
    again = take(bed, text="  how do I NEGOTIATE two offers?  ")
    assert not again.created and again.question.id == first.question.id
    assert again.why_not == f"the same question was kept before, as question {first.question.id}"
    assert len(bed.mail.received) == 1


def test_one_acknowledgement_per_address_per_window(bed: Bed) -> None:
    take(bed)
    second = take(bed, text="And another thing: references?")
    assert second.created and not second.acknowledged and "acknowledge_window_hours" in second.why_not
    bed.advance(hours=25)
    third = take(bed, text="A third one, a day later")
    assert third.acknowledged and len(bed.mail.received) == 2


def test_a_flood_of_addresses_gets_no_more_than_the_hourly_cap(write_config: Callable[..., Path], mail_server: Any) -> None:
    """Forged mail for many addresses: each a new mailbox, so the per-mailbox window does not
    hold them; the hourly cap on all acknowledgements does. The questions are kept."""
    bed = make_bed(write_config, mail_server, extra_question="acknowledge_per_hour = 3\n")
    try:
        intakes = [take(bed, email=f"victim{i}@example.com", text=f"Question number {i}?") for i in range(5)]
        assert [i.acknowledged for i in intakes] == [True, True, True, False, False]
        assert "acknowledge_per_hour" in intakes[3].why_not and all(i.created for i in intakes)
        assert len(bed.mail.received) == 3
        bed.advance(minutes=61)
        assert take(bed, email="victim9@example.com", text="Later, when the hour has passed?").acknowledged
    finally:
        bed.store.close()


def test_nothing_to_a_bounced_or_complaining_address_or_an_auto_reply(bed: Bed) -> None:
    consent = Consent(at=START, method="cli")
    bed.store.add("gone@example.com", "gone@example.com", "", (), confirmed=True, now=START, consent=consent)
    bed.store.add("angry@example.com", "angry@example.com", "", (), confirmed=True, now=START, consent=consent)
    QuestionStore(bed.store).mark_bounced("gone@example.com", START)
    bed.store.unsubscribe(bed.store.find("angry@example.com").id, how="complaint", now=START)  # type: ignore[union-attr]
    assert take(bed, email="gone@example.com").why_not == "nothing goes to this address: the address bounced"
    assert "complained" in take(bed, email="angry@example.com").why_not
    auto = take(bed, email="ooo@example.com", auto_reply=True)
    assert auto.created and auto.why_not == "it came from an auto-responder, which is never answered"
    assert bed.mail.received == []


def test_a_refusal_for_a_bad_mailbox_blocks_the_address(bed: Bed) -> None:
    bed.mail.handler.inject("RCPT", "550 5.1.1 No such user")
    intake = take(bed, email="typo@example.com")
    assert not intake.acknowledged and intake.why_not == "refused: 550 5.1.1 No such user"
    assert QuestionStore(bed.store).blocked("typo@example.com") == "the address bounced"


def test_acknowledgements_can_be_turned_off(write_config: Callable[..., Path], mail_server: Any) -> None:
    bed = make_bed(write_config, mail_server, extra="")
    path = bed.config.path
    path.write_text(path.read_text().replace('labels = ["Reader Questions"]', 'labels = ["Reader Questions"]\nacknowledge = false'))
    from digest.core.config import read_config

    config = read_config(path, {"DIGEST_SECRET": "x" * 20})
    wiring = Wiring(config, store=bed.store, clock=bed.now)
    intake = take_question(config.publication, wiring, email="a@example.com", name="", text="q?", source="web",
                           consent_to_quote=False, display_name="", now=START)
    assert intake.why_not == "acknowledgements are off ([question] acknowledge)" and mail_server.received == []
    bed.store.close()


def test_a_reply_is_linked_to_its_subscriber_by_in_reply_to_not_by_from(bed: Bed) -> None:
    [reader] = bed.add(1)
    bed.send()
    issue_mid = bed.mail.received[0].message["Message-ID"]
    by_from = take(bed, email="reader0@example.com", text="Forged From only", source="reply")
    assert by_from.question.subscriber_id is None
    linked = take(bed, email="other.address@example.com", text="Replying to the issue", source="reply",
                  in_reply_to=f"<unrelated@x.example> {issue_mid}", message_id="<reply-1@example.com>")
    assert linked.question.subscriber_id == reader and linked.question.email == "other.address@example.com"


def test_the_contact_form_seam(bed: Bed) -> None:
    found = parse_contact_form((FIXTURES / "plain_labels.eml").read_bytes())
    assert found is not None
    intake = take(bed, email=found.email, name=found.name, text=found.text, source="contact-form",
                  message_id="<cf-plain-1@blogger.com>")
    assert intake.acknowledged and bed.mail.received[0].recipients == ["jane.reader@example.org"]
    again = take(bed, email=found.email, name=found.name, text=found.text + " (read twice)", source="contact-form",
                 message_id="<cf-plain-1@blogger.com>")
    assert not again.created and len(bed.mail.received) == 1


@pytest.mark.parametrize(("email", "text", "message"), [
    ("not-an-address", "q?", "not a valid email address"),
    ("a@example.com", "> only quoted\n-- \nsig", "the question is empty"),
])
def test_unusable_questions_are_one_line_errors(bed: Bed, email: str, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        take(bed, email=email, text=text)
    assert QuestionStore(bed.store).listed() == [] and bed.mail.received == []


def test_a_window_counts_from_the_last_acknowledgement(bed: Bed) -> None:
    take(bed, text="one")
    bed.advance(hours=23)
    assert not take(bed, text="two").acknowledged
    bed.advance(hours=1, seconds=1)
    assert take(bed, text="three").acknowledged
    assert [m.recipients for m in bed.mail.received] == [["asker@example.com"]] * 2
    assert timedelta(hours=24) <= bed.now() - START


def test_a_from_line_the_address_parser_recurses_on_is_kept_unsorted(bed: Bed) -> None:
    """500 nested comments in From made parseaddr raise RecursionError out of the intake: every
    `digest inbox` stopped at that message."""
    from digest.core.returns import Ours, sort_message
    from digest.jobs.intake import take_mailed_question

    raw = b"From: " + b"(" * 2_000 + b"\r\nTo: questions@example.com\r\nSubject: q\r\n\r\nHow do I negotiate?\r\n"
    wiring = bed.wiring()
    outcome = take_mailed_question(bed.config.publication, wiring, raw, sort_message(raw, Ours("example.com")),
                                   now=bed.now())
    assert outcome == "no address to answer: kept unsorted" and bed.mail.received == []


def test_a_contact_form_email_field_naming_the_form_service_is_never_acknowledged(bed: Bed) -> None:
    """The form's Email field is typed by anyone: the service's own no-reply address is no
    reader's, whichever line of the notification names it."""
    from digest.core.returns import Ours, sort_message
    from digest.jobs.intake import take_mailed_question

    raw = (b"From: Blogger <no-reply@blogger.com>\r\nSubject: Message from The Wise Job Search\r\n"
           b"Message-ID: <cf-self-1@blogger.com>\r\n\r\nName: A\r\nEmail: no-reply@blogger.com\r\nMessage: hello\r\n")
    wiring = bed.wiring()
    outcome = take_mailed_question(bed.config.publication, wiring, raw, sort_message(raw, Ours("example.com")),
                                   now=bed.now())
    assert outcome.endswith(": kept unsorted") and bed.mail.received == []
    assert QuestionStore(bed.store).listed() == []


def test_forged_mail_never_uses_up_the_acknowledgements_of_real_askers(
        write_config: Callable[..., Path], mail_server: Any) -> None:
    """Anyone can send Contact-form look-alikes by the hundred; [question] acknowledge_per_hour
    holds them back, and a question from /ask or a subscriber's reply is still acknowledged:
    they have their own budget of the same size."""
    bed = make_bed(write_config, mail_server, extra_question="acknowledge_per_hour = 3\n")
    try:
        forged = [take(bed, email=f"stranger{i}@example.com", text=f"Forged question {i}?", source=source)
                  for i, source in enumerate(["contact-form", "mail", "contact-form", "contact-form", "reply"])]
        assert [i.acknowledged for i in forged] == [True, True, True, False, False]
        assert "to questions by mail" in forged[3].why_not
        reader, _ = bed.store.add("reader@example.com", "reader@example.com", "", (), confirmed=True, now=START,
                                  consent=Consent(at=START, method="cli"))
        reply = take(bed, email="reader@example.com", text="A real reader's reply?", source="reply",
                     subscriber_id=reader.id)
        asked = take(bed, email="asker@example.com", text="Asked on the /ask page?", source="web")
        assert reply.acknowledged and asked.acknowledged, (reply.why_not, asked.why_not)
        more = [take(bed, email=f"web{i}@example.com", text=f"Web question {i}?", source="web") for i in range(2)]
        assert [i.acknowledged for i in more] == [True, False]  # the known budget has its own cap
        assert "to subscribers and /ask" in more[1].why_not
        assert len(bed.mail.received) == 6
    finally:
        bed.store.close()


def test_plus_and_dot_variants_of_one_mailbox_get_one_acknowledgement(bed: Bed) -> None:
    """victim+1@, victim+2@, v.ictim@gmail.com... are one person's mailbox: one mail per window."""
    variants = ["victim@gmail.com", "victim+1@gmail.com", "vic.tim@gmail.com", "victim+x@googlemail.com"]
    intakes = [take(bed, email=email, text=f"Question from {email}?", source="contact-form") for email in variants]
    assert [i.acknowledged for i in intakes] == [True, False, False, False] and all(i.created for i in intakes)
    assert "plus or Gmail dot variant" in intakes[1].why_not
    assert [r.recipients for r in bed.mail.received] == [["victim@gmail.com"]]
    bed.advance(hours=25)
    assert take(bed, email="victim+1@gmail.com", text="A day later?", source="contact-form").acknowledged
