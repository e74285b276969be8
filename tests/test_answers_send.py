"""digest send links answers, features them and sends each asker's notice exactly once:
a real SQLite store, feed files, and a real SMTP server (aiosmtpd) with injected replies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from feedgen import Entry, atom
from sending import START, Bed, make_bed

from digest.adapters.fetch import fetch_feed
from digest.adapters.notices import NoticeLedger
from digest.adapters.questions import QuestionStore
from digest.core.models import Consent
from digest.core.questions import ACCEPTED, ANSWERED, new_question
from digest.jobs.retry import retry_due

ASKER = "asker@example.com"


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any) -> Iterator[Bed]:
    b = make_bed(write_config, mail_server)
    yield b
    b.store.close()


def ask(bed: Bed, text: str = "How do I handle two offers?", *, accept: bool = True, paraphrase: str | None = None,
        email: str = ASKER, consent: bool = False, display_name: str = "") -> int:
    qs = QuestionStore(bed.store)
    q, _ = qs.record(new_question(email=email, name="Secret Name", text=text, source="web",
                                  consent_to_quote=consent, display_name=display_name), bed.now())
    if accept:
        qs.move(q.id, "accept", bed.now(), **({"paraphrase": paraphrase} if paraphrase else {}))
    return q.id


def feed(bed: Bed, tmp_path: Path, *entries: Entry, name: str = "feed.xml") -> str:
    path = tmp_path / name
    path.write_bytes(atom(list(entries)))
    return str(path)


def notices_to(bed: Bed, email: str = ASKER) -> list[Any]:
    return [m for m in bed.mail.received if m.recipients == [email]]


def newsletter_text(bed: Bed, index: int = 0) -> str:
    readers = [m for m in bed.mail.received if m.recipients != [ASKER]]
    return str(readers[index].message.get_body(("plain",)).get_content())


def test_a_labelled_post_answers_the_question_and_its_asker_is_told_once(bed: Bed, tmp_path: Path) -> None:
    bed.add(2)
    qid = ask(bed, paraphrase="Two offers, one deadline")
    path = feed(bed, tmp_path, Entry(1, "Juggling two offers", labels=["Salary & Offers", f"q-{qid}"]))
    outcome = bed.send(feed=path)
    assert [q.id for q in outcome.answered] == [qid] and outcome.notices is not None
    assert dict(outcome.notices.counts) == {"sent": 1}
    question = QuestionStore(bed.store).require(qid)
    assert question.status == ANSWERED and question.answer_title == "Juggling two offers"
    assert question.answered_at == START and question.noticed_at == START
    text = newsletter_text(bed)
    assert "Readers asked, we answered" in text and "Two offers, one deadline" in text
    assert question.answer_url in text and ASKER not in text and "Secret Name" not in text
    [notice] = notices_to(bed)
    body = notice.message.get_body(("plain",)).get_content()
    assert notice.message["Subject"] == "Your question has been answered - The Wise Job Search"
    assert question.answer_url in body and "Two offers, one deadline" in body and "two offers?" not in body
    assert notice.message["Auto-Submitted"] == "auto-generated" and notice.message["List-Unsubscribe"] is None
    again = bed.send(feed=path)
    assert again.no_posts and not again.answered and dict(again.notices.counts) == {}  # type: ignore[union-attr]
    assert len(notices_to(bed)) == 1


def test_the_url_the_author_gave_links_the_answer(bed: Bed, tmp_path: Path) -> None:
    qid = ask(bed)
    QuestionStore(bed.store).move(qid, "answer", START, answer_url="http://blog.example.com/2026/11/post-3.html?m=1")
    outcome = bed.send(feed=feed(bed, tmp_path, Entry(3, "An answer without a label")))
    assert [q.answer_title for q in outcome.answered] == ["An answer without a label"] and len(notices_to(bed)) == 1


def test_a_label_naming_a_question_not_accepted_is_a_warning(bed: Bed, tmp_path: Path) -> None:
    qid = ask(bed, accept=False)
    outcome = bed.send(feed=feed(bed, tmp_path, Entry(1, "Early answer", labels=[f"Q-{qid}", "Q-999"])))
    assert QuestionStore(bed.store).require(qid).status == "new" and notices_to(bed) == []
    assert f"question {qid} is new: accept it (digest questions accept {qid}) to link it" in " ".join(outcome.warnings)
    assert "there is no question 999" in " ".join(outcome.warnings)


def test_a_deferred_notice_is_retried_by_the_next_run_and_by_the_timer(bed: Bed, tmp_path: Path) -> None:
    first, second = ask(bed, "one?"), ask(bed, "two?", email="second@example.com")
    bed.mail.handler.inject("RCPT", "451 4.7.1 Greylisted")
    bed.mail.handler.inject("RCPT", "451 4.7.1 Greylisted")
    path = feed(bed, tmp_path, Entry(1, "Answer one", labels=[f"Q-{first}"]), Entry(2, "Answer two", labels=[f"Q-{second}"]))
    outcome = bed.send(feed=path)
    assert dict(outcome.notices.counts) == {"deferred": 2} and bed.mail.received == []  # type: ignore[union-attr]
    bed.advance(seconds=30)
    assert dict(bed.send(feed=path).notices.counts) == {}  # type: ignore[union-attr]  # not due yet
    bed.advance(minutes=1)
    assert dict(bed.send(feed=path).notices.counts) == {"sent": 2}  # type: ignore[union-attr]
    assert len(notices_to(bed)) == 1 and len(notices_to(bed, "second@example.com")) == 1
    third = ask(bed, "three?", email="third@example.com")
    bed.mail.handler.inject("RCPT", "451 4.7.1 Greylisted")
    bed.send(feed=feed(bed, tmp_path, Entry(4, "Answer three", labels=[f"Q-{third}"], published="2026-11-22T08:00:00Z"),
                       name="feed2.xml"))
    bed.advance(minutes=2)
    retry_due(bed.config.publication, bed.wiring())  # the serve timer's job
    assert len(notices_to(bed, "third@example.com")) == 1 and NoticeLedger(bed.store).counts() == {"sent": 3}


def test_no_notice_to_a_bounced_subscriber_and_a_bounce_blocks_the_address(bed: Bed, tmp_path: Path) -> None:
    bed.store.add("gone@example.com", "gone@example.com", "", (), confirmed=True, now=START, consent=Consent(START, "cli"))
    QuestionStore(bed.store).mark_bounced("gone@example.com", START)
    gone = ask(bed, email="gone@example.com")
    typo = ask(bed, "typo?", email="typo@example.com")
    bed.mail.handler.inject("RCPT", "550 5.1.1 No such user")
    outcome = bed.send(feed=feed(bed, tmp_path, Entry(1, "A", labels=[f"Q-{gone}", f"Q-{typo}"])))
    assert dict(outcome.notices.counts) == {"skipped": 1, "failed": 1}  # type: ignore[union-attr]
    assert QuestionStore(bed.store).notice_status(gone) == ("skipped", "not sent: the address bounced")
    assert QuestionStore(bed.store).blocked("typo@example.com") == "the address bounced"
    assert bed.mail.received == []


def test_a_notice_left_sending_by_a_dead_sender_goes_once(bed: Bed, tmp_path: Path) -> None:
    qid = ask(bed)
    path = feed(bed, tmp_path, Entry(1, "Answer", labels=[f"Q-{qid}"]))
    bed.mail.handler.inject("MAIL", "421 4.3.2 Shutting down")  # the notice waits
    bed.send(feed=path)
    ledger = NoticeLedger(bed.store)
    bed.advance(minutes=5)
    [claim] = ledger.claim("a-sender-that-died/0", bed.now(), 5)  # claimed, then the process was killed
    bed.send(feed=path)
    assert len(notices_to(bed)) == 1 and ledger.counts() == {"sent": 1} and claim.subscriber_id == qid


def test_a_quiet_week_links_answers_and_the_next_issue_features_them(bed: Bed, tmp_path: Path) -> None:
    bed.add(1)
    first = feed(bed, tmp_path, Entry(1, "Old post"))
    bed.send(feed=first)
    qid = ask(bed, paraphrase="Gap years on a resume")
    bed.advance(days=7)
    quiet = bed.send(feed=feed(bed, tmp_path, Entry(1, "Old post", labels=[f"Q-{qid}"]), name="relabelled.xml"))
    assert quiet.no_posts and [q.id for q in quiet.answered] == [qid] and len(notices_to(bed)) == 1
    assert bed.ledger.last_issue().id == 1  # type: ignore[union-attr]  # "skip": no issue
    bed.advance(days=7)
    bed.send(feed=feed(bed, tmp_path, Entry(2, "New post", published="2026-12-05T08:00:00Z"), name="next.xml"))
    assert "Gap years on a resume" in newsletter_text(bed, 1)


def test_a_quiet_week_sends_a_questions_only_issue_once(write_config: Callable[..., Path], mail_server: Any,
                                                       tmp_path: Path) -> None:
    bed = make_bed(write_config, mail_server, newsletter='quiet_week = "questions"')
    try:
        bed.add(1)
        bed.send(feed=feed(bed, tmp_path, Entry(1, "Old post")))
        qid = ask(bed, paraphrase="Is a cover letter dead?")
        ask(bed, "desk?", email="desk@example.com", paraphrase="Remote interviews", consent=True, display_name="Pat")
        bed.advance(days=7)
        labelled = feed(bed, tmp_path, Entry(1, "Old post", labels=[f"Q-{qid}"]), name="relabelled.xml")
        outcome = bed.send(feed=labelled)
        assert outcome.report is not None and outcome.report.counts == {"sent": 1}
        issue = bed.ledger.last_issue()
        assert issue is not None and issue.id == 2 and issue.posts == () and issue.subject == "The Wise Job Search: Old post"
        assert issue.cutoff == bed.ledger.get_issue(1).cutoff  # type: ignore[union-attr]
        text = newsletter_text(bed, 1)
        assert "Is a cover letter dead?" in text and "On the desk" in text and "Remote interviews" in text and "(Pat)" in text
        bed.advance(days=7)
        assert bed.send(feed=labelled).no_posts and bed.ledger.last_issue().id == 2  # type: ignore[union-attr]
    finally:
        bed.store.close()


def test_a_dry_run_links_nothing(bed: Bed, tmp_path: Path) -> None:
    bed.add(1)
    qid = ask(bed, paraphrase="Dry")
    outcome = bed.send(feed=feed(bed, tmp_path, Entry(1, "A", labels=[f"Q-{qid}"])), dry_run=True)
    assert outcome.dry_run and outcome.notices is None and not outcome.answered
    assert QuestionStore(bed.store).require(qid).status == ACCEPTED and NoticeLedger(bed.store).counts() == {}


def test_a_resumed_issue_still_shows_its_questions(bed: Bed, tmp_path: Path) -> None:
    bed.add(3)
    qid = ask(bed, paraphrase="Resumed paraphrase")
    path = feed(bed, tmp_path, Entry(1, "Answer", labels=[f"Q-{qid}"]))
    bed.mail.handler.inject("MAIL", "550 5.7.1 Sender blocked for now")  # pauses the issue after one try
    paused = bed.send(feed=path)
    assert paused.report is not None and paused.report.paused and paused.notices is None
    resumed = bed.send(feed=path)
    assert resumed.reports[0].resumed and resumed.reports[0].counts == {"sent": 3}
    assert all("Resumed paraphrase" in newsletter_text(bed, i) for i in range(3))
    assert len(notices_to(bed)) == 1


def test_preview_shows_what_the_send_would_link_and_changes_nothing(bed: Bed, tmp_path: Path) -> None:
    from digest.jobs.preview import build_preview

    qid = ask(bed, paraphrase="Previewed paraphrase")
    issue = build_preview(bed.config.publication, fetch_feed, now=bed.now(), feed=feed(bed, tmp_path, Entry(1, "A", labels=[f"Q-{qid}"])),
                          questions=QuestionStore(bed.store))
    assert issue is not None and "Previewed paraphrase" in issue.rendered.text
    assert QuestionStore(bed.store).require(qid).status == ACCEPTED and NoticeLedger(bed.store).counts() == {}


def test_a_question_accepted_after_its_answer_was_published_is_linked_despite_not_modified(
        write_config: Callable[..., Path], mail_server: Any, feed_server: Any) -> None:
    from conftest import Reply

    body = atom([Entry(1, "Published first", labels=["Q-1"])])

    def conditional(handler: Any) -> Reply:
        if handler.headers.get("If-None-Match") == '"v1"':
            return Reply(304)
        return Reply(body=body, headers={"ETag": '"v1"', "Content-Type": "application/atom+xml"})

    bed = make_bed(write_config, mail_server, feed=feed_server.serve("/feed", conditional))
    try:
        qid = ask(bed, accept=False)
        assert qid == 1
        bed.send()  # the post is there, labelled Q-1, but question 1 is new: a warning, nothing linked
        bed.advance(days=1)
        assert bed.send().not_modified  # nothing waits for an answer: the fetch is conditional
        QuestionStore(bed.store).move(qid, "accept", bed.now())
        linked = bed.send()
        assert [q.id for q in linked.answered] == [qid] and len(notices_to(bed)) == 1
        assert feed_server.requests[-1][1].get("if-none-match") is None
    finally:
        bed.store.close()


def test_the_issue_claims_its_questions_under_the_key_it_is_recorded_with(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    bed = make_bed(write_config, mail_server, max_posts=1)  # the issue keeps one of the two new posts
    try:
        bed.add(1)
        qid = ask(bed, paraphrase="Kept with its issue")
        bed.send(feed=feed(bed, tmp_path, Entry(1, "Answer", labels=[f"Q-{qid}"], published="2026-11-21T08:00:00Z"),
                           Entry(2, "Newer", published="2026-11-22T08:00:00Z")))
        issue = bed.ledger.last_issue()
        assert issue is not None and len(issue.posts) == 1
        assert QuestionStore(bed.store).require(qid).featured_key == issue.key
        assert QuestionStore(bed.store).unfeatured() == []  # the next issue does not feature it again
    finally:
        bed.store.close()


def test_a_question_answered_in_this_issue_is_not_on_its_desk_in_the_preview_nor_the_send(
        bed: Bed, tmp_path: Path) -> None:
    from digest.jobs.preview import build_preview

    bed.add(1)
    qid = ask(bed, paraphrase="Answered this week", consent=True, display_name="Pat")
    ask(bed, "still waiting?", email="two@example.com", paraphrase="Still on the desk", consent=True)
    path = feed(bed, tmp_path, Entry(1, "The answer", labels=[f"Q-{qid}"]))
    issue = build_preview(bed.config.publication, fetch_feed, now=bed.now(), feed=path, questions=QuestionStore(bed.store))
    assert issue is not None
    desk = issue.rendered.text.split("On the desk:")[1]
    assert "Still on the desk" in desk and "Answered this week" not in desk
    assert issue.rendered.text.count("Answered this week") == 1
    bed.send(feed=path)
    text = newsletter_text(bed)
    assert "Still on the desk" in text.split("On the desk:")[1] and "Answered this week" not in text.split("On the desk:")[1]
    assert text.count("Answered this week") == 1
