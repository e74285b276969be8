"""What the asker's two mails and the newsletter show of a question: never the asker, never their words unasked."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from digest.core.answers import issue_questions
from digest.core.compose import Composer, compose_acknowledgement, compose_answer_notice
from digest.core.config import read_config
from digest.core.message import Recipient, build_message
from digest.core.models import Post
from digest.core.questions import ACCEPTED, ANSWERED, Question

ROOT = Path(__file__).resolve().parent.parent
CONFIG = read_config(ROOT / "config.toml", {})
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
SECRETS = ("asker@example.com", "Secret Name", "my boss Dana")


def answered(**kw: object) -> Question:
    base = Question(id=17, email="asker@example.com", email_key="asker@example.com", name="Secret Name",
                    text="I'm Secret Name and my boss Dana is awful. How do I negotiate?", source="web", status=ANSWERED,
                    consent_to_quote=False, display_name="J.", created_at=NOW, paraphrase="Negotiating with a hard boss",
                    answer_url="https://thewisejobsearch.blogspot.com/2026/11/hard-boss.html", answer_title="The hard boss")
    return replace(base, **kw)  # type: ignore[arg-type]


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_the_acknowledgement_is_the_same_for_everyone_and_says_it_is_automatic() -> None:
    raw = build_message(compose_acknowledgement(CONFIG.publication), Recipient("asker@example.com"), message_id="<a@x>", date=NOW)
    message = parsed(raw)
    assert message["Auto-Submitted"] == "auto-replied" and message["Precedence"] is None
    assert message["To"] == "asker@example.com"  # no name: the one typed into the form is unverified
    text = message.get_body(("plain",)).get_content()
    assert "reached us" in text and "Reply to this email" in text and "ignore this message" in text


def test_the_notice_links_the_answer_and_shows_only_the_paraphrase() -> None:
    raw = build_message(compose_answer_notice(CONFIG.publication, answered()), Recipient("asker@example.com"), message_id="<n@x>", date=NOW)
    message = parsed(raw)
    for part in ("plain", "html"):
        body = message.get_body((part,)).get_content()
        assert "https://thewisejobsearch.blogspot.com/2026/11/hard-boss.html" in body
        assert "Negotiating with a hard boss" in body and "The hard boss" in body
        assert not any(s in body for s in SECRETS[1:])
    assert message["Auto-Submitted"] == "auto-generated" and message["List-Unsubscribe"] is None


@pytest.mark.parametrize("consent", [False, True])
def test_the_issue_shows_the_paraphrase_and_the_display_name_only_with_consent(consent: bool) -> None:
    q = answered(consent_to_quote=consent)
    desk = replace(q, id=18, status=ACCEPTED, paraphrase="", answer_url="", answer_title="", display_name="Pat",
                   text="Me (asker@example.com, Secret Name): is a gap year bad?")
    post = Post(id="p1", title="A post", link="https://b.example/p1", published=NOW, updated=None)
    rendered = Composer(CONFIG.publication, [post], created_at=NOW, questions=issue_questions([q], [desk])).render()
    assert rendered is not None
    for body in (rendered.html, rendered.text):
        assert "Negotiating with a hard boss" in body and "The hard boss" in body
        assert ("J." in body) is consent and ("Pat" in body) is consent and ("gap year" in body) is consent
        assert not any(s in body for s in SECRETS)


def test_a_questions_only_issue_has_a_subject_and_no_issue_is_empty() -> None:
    rendered = Composer(CONFIG.publication, [], created_at=NOW, questions=issue_questions([answered()], [])).render()
    assert rendered is not None and rendered.subject == "This week: The hard boss"  # [newsletter] subject = "{{ headline }}"
    assert rendered.preheader == "The hard boss"
    assert Composer(CONFIG.publication, [], created_at=NOW).render() is None


def test_the_notice_dates_the_question_in_the_schedule_timezone() -> None:
    # 02:00 UTC on 26 November is 25 November in New York ([schedule] timezone).
    late = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
    rendered = compose_answer_notice(CONFIG.publication, answered(created_at=late))
    raw = build_message(rendered, Recipient("asker@example.com"), message_id="<n@x>", date=late)
    text = parsed(raw).get_body(("plain",)).get_content()
    assert "25 November 2026" in text and "26 November" not in text
