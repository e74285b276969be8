"""The pure rules of readers' questions: cleaning, duplicates, states, finding answers, what may be shown."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.core.answers import find_answers, issue_questions, label_ids, link_key, publishable
from digest.core.errors import InputError
from digest.core.models import Post
from digest.core.questions import (
    ACCEPTED,
    ANSWERED,
    DECLINED,
    MAX_QUESTION_CHARS,
    NEW,
    Question,
    check_move,
    clean_question_text,
    duplicate_key,
    new_question,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def question(qid: int = 17, status: str = ACCEPTED, **kw: object) -> Question:
    base = Question(id=qid, email="asker@example.com", email_key="asker@example.com", name="Secret Name",
                    text="How do I negotiate?", source="web", status=status, consent_to_quote=False,
                    display_name="", created_at=NOW)
    return replace(base, **kw)  # type: ignore[arg-type]


def post(n: int, labels: tuple[str, ...] = (), link: str = "", day: int = 20) -> Post:
    return Post(id=f"p{n}", title=f"Post {n}", link=link or f"https://blog.example.com/2026/11/post-{n}.html",
                published=datetime(2026, 11, day, tzinfo=timezone.utc), updated=None, labels=labels)


# ---- cleaning ----

def test_quoted_lines_the_wrote_line_and_the_signature_go() -> None:
    text = ("Hi,\n\nHow do I follow up after an interview?\n\n-- \nJane Reader\nSenior Analyst\n")
    assert clean_question_text(text) == "Hi,\n\nHow do I follow up after an interview?"
    reply = ("Thanks for the issue! My question: is a gap year a problem?\n\n"
             "On Mon, 23 Nov 2026 at 07:00, The Wise Job Search <\nnewsletter@example.com> wrote:\n"
             "> Here is what's new\n> this week\n")
    assert clean_question_text(reply) == "Thanks for the issue! My question: is a gap year a problem?"


def test_a_question_below_the_quote_is_kept() -> None:
    text = "On Mon, Nov 23, 2026, The Wise Job Search wrote:\n> Have a question?\n\nYes: what about references?"
    assert clean_question_text(text) == "Yes: what about references?"


def test_an_unquoted_original_below_its_header_goes() -> None:
    outlook = "Is a cover letter still needed?\n\n-----Original Message-----\nFrom: Newsletter\nHello readers"
    assert clean_question_text(outlook) == "Is a cover letter still needed?"
    gmail_unquoted = "Short question here.\nOn Tue, 24 Nov 2026, Someone wrote:\nThe whole issue, unquoted"
    assert clean_question_text(gmail_unquoted) == "Short question here."


def test_html_is_reduced_to_its_text_and_quotes_dropped() -> None:
    text = ('<div>Should I <b>accept</b> a counter-offer?<br>It&#39;s 10% more.</div>'
            '<div class="gmail_quote"><div>On Mon, X wrote:</div><blockquote>old issue</blockquote></div>'
            '<script>steal()</script><img src="https://tracker.example/p.gif">')
    assert clean_question_text(text, is_html=True) == "Should I accept a counter-offer?\nIt's 10% more."


def test_control_characters_go_and_the_text_is_capped() -> None:
    assert clean_question_text("a\x00b\u202ec\n\n\n\n\nd") == "a b c\n\nd"
    assert len(clean_question_text("x" * (MAX_QUESTION_CHARS + 50))) == MAX_QUESTION_CHARS


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=3000))
def test_cleaning_never_grows_and_is_stable(text: str) -> None:
    once = clean_question_text(text)
    assert len(once) <= MAX_QUESTION_CHARS and clean_question_text(once) == once


# ---- intake ----

def test_the_duplicate_key_ignores_case_and_spacing_but_not_the_address() -> None:
    a = duplicate_key("a@example.com", "How do I   negotiate?")
    assert a == duplicate_key("a@example.com", "how do i negotiate?")
    assert a != duplicate_key("b@example.com", "How do I negotiate?")


def test_new_question_checks_the_address_and_needs_words() -> None:
    new = new_question(email=" Asker@Example.COM ", name="Secret\nName", text="> quoted\nReal question?",
                       source="web", display_name="  J.  ")
    assert (new.email, new.email_key, new.name, new.text, new.display_name) == (
        "Asker@example.com", "asker@example.com", "Secret Name", "Real question?", "J.")
    assert new.consent_to_quote is False
    with pytest.raises(InputError, match="not a valid email address"):
        new_question(email="nope", name="", text="q", source="web")
    with pytest.raises(InputError, match="the question is empty"):
        new_question(email="a@example.com", name="", text="> only a quote\n-- \nsig", source="web")


# ---- states ----

@pytest.mark.parametrize(("status", "action", "result"), [
    (NEW, "accept", ACCEPTED), (ACCEPTED, "accept", ACCEPTED), (DECLINED, "accept", ACCEPTED),
    (NEW, "decline", DECLINED), (ACCEPTED, "decline", DECLINED), (ACCEPTED, "answer", ACCEPTED),
])
def test_allowed_moves(status: str, action: str, result: str) -> None:
    assert check_move(question(status=status), action) == result


@pytest.mark.parametrize(("status", "action", "message"), [
    (ANSWERED, "accept", "question 17 cannot be accepted: an answered question is final"),
    (ANSWERED, "decline", "question 17 cannot be declined: an answered question is final"),
    (DECLINED, "decline", "question 17 cannot be declined: it is declined"),
    (NEW, "answer", "question 17 cannot be linked to an answer: it is new (accept it first"),
])
def test_refused_moves_say_why_in_one_line(status: str, action: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        check_move(question(status=status), action)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


# ---- answers ----

def test_labels_name_questions_whatever_their_case() -> None:
    assert label_ids(["Q-17", "q-3", "Interviewing", "Q-", "Q-x1", "Q-٣", "Q-99999999999"], "Q-") == {17, 3}


def test_links_compare_as_the_same_post() -> None:
    assert link_key("http://www.blog.example.com/2026/11/a.html?m=1#more") == link_key("https://blog.example.com/2026/11/a.html")
    assert link_key("https://blog.example.com/a.html?x=1") != link_key("https://blog.example.com/a.html")


def test_find_answers_by_label_and_by_link() -> None:
    q17, q18 = question(17), question(18, answer_url="http://blog.example.com/2026/11/post-9.html?m=1")
    posts = [post(1, ("Q-17",), day=22), post(2, ("q-17",), day=21), post(9)]
    found = find_answers([q17, q18], posts, "Q-")
    assert [(a.question_id, a.post.id, a.how) for a in found.links] == [(17, "p2", "label"), (18, "p9", "link")]
    assert found.warnings == ()


def test_labels_naming_questions_not_accepted_are_warnings() -> None:
    found = find_answers([], [post(1, ("Q-5", "Q-6", "Q-7"))], "Q-", statuses={5: NEW, 6: ANSWERED})
    assert found.links == ()
    assert found.warnings == ("the post 'Post 1' is labelled Q-5, but question 5 is new: accept it (digest questions accept 5) to link it",
                              "the post 'Post 1' is labelled Q-7, but there is no question 7")


# ---- what an issue may show ----

def test_only_the_paraphrase_or_consented_scrubbed_words_and_never_the_name() -> None:
    plain = question(status=ANSWERED, answer_url="https://b/x", answer_title="The answer")
    assert publishable(plain) == ""
    assert publishable(replace(plain, paraphrase="How to negotiate twice")) == "How to negotiate twice"
    quoted = replace(plain, consent_to_quote=True, display_name="J.",
                     text="I'm Secret Name (asker@example.com, or me@else.example): how to negotiate?")
    assert publishable(quoted) == "I'm [name] ([address], or [address]): how to negotiate?"
    shown = issue_questions([plain, quoted, replace(quoted, id=3, status=ACCEPTED)], [])
    assert [(a.text, a.asker, a.title) for a in shown.answered] == [("", "", "The answer"), (publishable(quoted), "J.", "The answer")]
    assert "Secret Name" not in repr(shown) and "asker@example.com" not in repr(shown)


def test_the_desk_lists_only_consented_accepted_questions() -> None:
    desk = [question(1, paraphrase="Gap years", consent_to_quote=True, display_name="Pat"),
            question(2, paraphrase="Hidden", consent_to_quote=False), question(3, status=NEW, consent_to_quote=True)]
    shown = issue_questions([], desk)
    assert [(d.text, d.asker) for d in shown.desk] == [("Gap years", "Pat")] and shown.ids == (1,)
    assert bool(shown) and not issue_questions([], [])
    assert shown.key == issue_questions([], desk).key != issue_questions([], desk[:0]).key


# ---- issue 20: replies from Outlook and mobile programs ----

@pytest.mark.parametrize("header", [
    "From: The Wise Job Search <news@example.com>\nSent: Monday, 23 November 2026 13:01\nTo: Carla\nSubject: Issue 1",
    "*From:* The Wise Job Search [mailto:news@example.com]\n*Sent:* Monday\n*To:* carla@example.org\n*Subject:* Issue 1",
    "Von: The Wise Job Search <news@example.com>\nGesendet: Montag, 23. November 2026 13:01\nAn: Carla\nBetreff: Ausgabe 1",
    "De : The Wise Job Search <news@example.com>\nEnvoyé : lundi 23 novembre 2026 13:01\nÀ : Carla\nObjet : Numéro 1",
    "De: The Wise Job Search <news@example.com>\nEnviado: lunes, 23 de noviembre de 2026 13:01\nPara: Carla\nAsunto: Número 1",
])
def test_outlooks_reply_header_and_the_quoted_issue_below_it_go(header: str) -> None:
    text = f"How do I explain a gap in my resume?\n\n{header}\n\nHi Carla,\nThis week: five posts about interviews.\n"
    assert clean_question_text(text) == "How do I explain a gap in my resume?"


def test_a_from_line_in_the_readers_own_words_stays() -> None:
    text = "From: my manager, I heard that references matter.\nHow many should I give?"
    assert clean_question_text(text) == text


def test_a_wrote_line_wrapped_over_three_lines_goes() -> None:
    text = "Thanks!\n\nOn Dec 16, 2011, at 12:47 PM, The Wise Job Search\n<news@example.com>\nwrote:\n\n> Hi\n"
    assert clean_question_text(text) == "Thanks!"


@pytest.mark.parametrize("signature", ["Sent from my iPhone", "Sent from my Verizon Wireless BlackBerry", "-Abhishek"])
def test_a_mobile_programs_signature_or_a_dashed_sign_off_at_the_end_goes(signature: str) -> None:
    assert clean_question_text(f"Is a cover letter still needed?\n\n{signature}") == "Is a cover letter still needed?"


def test_a_reply_is_never_emptied() -> None:
    below = "From: The Wise Job Search <news@example.com>\nSent: Monday\nTo: Carla\nSubject: Issue 1\n\nMy question is below."
    assert clean_question_text(below) != ""
    assert clean_question_text("Sent from my iPhone") == "Sent from my iPhone"  # the only line: kept


# ---- a question by mail is anyone's: its cleaning takes time in proportion to what it reads ----

@pytest.mark.parametrize(("text", "is_html"), [
    ("My question.\n" + "-A\n" * 650_000, False),                 # a sign-off line, 650,000 times: 7 hours
    ("My question.\n" + "Sent from my phone\n" * 100_000, False),  # the mobile signature as often
    ("My question.\n" + "On Monday, a wrote:\n> q\n" * 60_000, False),  # quote intros
    ("<p>My question.</p>" + "<div>" * 400_000, True),            # nesting: nh3 is quadratic in depth
])
def test_a_two_megabyte_question_mail_is_cleaned_in_seconds(text: str, is_html: bool) -> None:
    """The questions loop reads every mail to the questions address, up to [inbox]
    max_message_bytes (2 MB); the web form's 5,000 characters never applied to it. Popping
    trailing signature lines counted the lines left for each one popped (quadratic), and an
    HTML body went to nh3 whatever its depth."""
    import time

    started = time.perf_counter()
    cleaned = clean_question_text(text, is_html=is_html)
    took = time.perf_counter() - started
    assert cleaned.startswith("My question.")
    assert took < 10, f"{took:.1f} s to clean one question"
