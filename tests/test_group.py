"""Grouping posts into topic sections by label."""

from __future__ import annotations

import pytest

from digest.core.group import FALLBACK_KEY, for_topics, group_posts, label_key
from digest.core.models import Post

TOPICS = (("Interviewing", "Interviews"), ("Résumés", "Resumes"), ("CV", "Resumes"), ("Networking", "Networking"))


def p(pid: str, *labels: str) -> Post:
    return Post(id=pid, title=pid, link="https://b.example/" + pid, published=None, updated=None, labels=labels)


def grouped(posts: list[Post], **kw: object) -> dict[str, list[str]]:
    content = group_posts(posts, TOPICS, fallback_topic="More", question_labels=("Reader Questions",), **kw)  # type: ignore[arg-type]
    out = {s.title: [x.id for x in s.posts] for s in content.sections}
    out["featured"] = [x.id for x in content.featured]
    return out


def test_label_key_folds_case_and_unicode_form() -> None:
    decomposed = "Re\u0301sume\u0301s"
    assert label_key(" RÉSUMÉS ") == label_key("résumés") == label_key(decomposed)


CASES = [
    ("no labels go to the fallback", [p("a")], {"More": ["a"], "featured": []}),
    ("unknown labels go to the fallback", [p("a", "Cooking")], {"More": ["a"], "featured": []}),
    ("first matching label wins, once", [p("a", "Cooking", "Networking", "Interviewing")], {"Networking": ["a"], "featured": []}),
    ("labels differing by case match", [p("a", "INTERVIEWING"), p("b", "interviewing ")], {"Interviews": ["a", "b"], "featured": []}),
    ("labels differing by Unicode form match", [p("a", "Re\u0301sume\u0301s")], {"Resumes": ["a"], "featured": []}),
    ("two labels, one topic", [p("a", "CV"), p("b", "Résumés")], {"Resumes": ["a", "b"], "featured": []}),
    ("sections in [topics] order", [p("n", "Networking"), p("i", "Interviewing")], {"Interviews": ["i"], "Networking": ["n"], "featured": []}),
    ("question posts are featured, not in a section", [p("q", "Interviewing", "reader questions"), p("i", "Interviewing")],
     {"Interviews": ["i"], "featured": ["q"]}),
]


@pytest.mark.parametrize(("posts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_group_posts(posts: list[Post], expected: dict[str, list[str]]) -> None:
    result = grouped(posts)
    assert result == expected
    assert list(result) == list(expected)  # order too


def test_section_cap_folds_the_rest_into_the_fallback() -> None:
    posts = [p("i", "Interviewing"), p("r", "CV"), p("n", "Networking"), p("x")]
    assert grouped(posts, max_sections=2) == {"Interviews": ["i"], "More": ["r", "n", "x"], "featured": []}
    assert grouped(posts[:3], max_sections=3) == {"Interviews": ["i"], "Resumes": ["r"], "Networking": ["n"], "featured": []}


def test_post_cap_keeps_the_first_posts() -> None:
    posts = [p(str(i), "Interviewing") for i in range(10)]
    assert grouped(posts, max_posts=3)["Interviews"] == ["0", "1", "2"]


def test_fallback_section_key() -> None:
    content = group_posts([p("a")], TOPICS, fallback_topic="More")
    assert content.sections[0].key == FALLBACK_KEY


def test_post_cap_counts_what_it_leaves_out() -> None:
    posts = [p(str(i), "Interviewing") for i in range(5)] + [p("q", "Reader Questions")]
    content = group_posts(posts, TOPICS, fallback_topic="More", question_labels=("Reader Questions",), max_posts=4)
    assert content.left_out == 2 and len(content.posts) == 4
    assert group_posts(posts, TOPICS, fallback_topic="More", max_posts=6).left_out == 0
    assert for_topics(content, ["Networking"]).left_out == 2  # every reader is told, whatever their topics


def test_answered_questions_newest_first_each_once_a_few() -> None:
    from digest.core.group import answered_questions

    posts = [p("a", "Reader Questions"), p("b", "Networking"), p("a", "reader questions"), p("c", "READER QUESTIONS"),
             p("d", "Reader Questions")]
    assert [x.id for x in answered_questions(posts, ["Reader Questions"], limit=2)] == ["a", "c"]
    assert [x.id for x in answered_questions(posts, ["Reader Questions"])] == ["a", "c", "d"]
    assert answered_questions(posts, []) == ()
