"""Group an issue's posts into topic sections by their labels. Pure core: no network, no
database, no clock, no file writes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from .models import IssueContent, Post, Section

FALLBACK_KEY = "_fallback"


def label_key(label: str) -> str:
    """How labels compare: NFC, trimmed, case-folded ("Résumé " == "RÉSUMÉ" == "résumé")."""
    return unicodedata.normalize("NFC", label).strip().casefold()


def group_posts(
    posts: Iterable[Post],
    topics: Sequence[tuple[str, str]],
    *,
    fallback_topic: str,
    question_labels: Iterable[str] = (),
    max_posts: int = 20,
    max_sections: int = 6,
) -> IssueContent:
    """Sections in the order [topics] lists them, then the fallback; question posts featured.

    A post goes under its first label that maps to a topic (the post's own label order),
    once. Posts carrying a question label are featured instead. Posts beyond `max_posts`
    are left out (the newest are kept) and counted in `left_out`, so that the issue can say
    so; sections beyond `max_sections` fold into the fallback topic.
    """
    label_to_topic: dict[str, str] = {}
    order: list[str] = []
    for label, topic in topics:
        label_to_topic.setdefault(label_key(label), topic)
        if topic not in order:
            order.append(topic)
    questions = {label_key(q) for q in question_labels}

    featured: list[Post] = []
    by_topic: dict[str, list[Post]] = {}
    every = list(posts)
    for post in every[:max_posts]:
        keys = [label_key(label) for label in post.labels]
        if questions.intersection(keys):
            featured.append(post)
            continue
        topic = next((label_to_topic[k] for k in keys if k in label_to_topic), FALLBACK_KEY)
        by_topic.setdefault(topic, []).append(post)

    present = [t for t in order if t in by_topic]
    keep, fold = present[: max_sections - 1], present[max_sections - 1 :]
    if len(present) <= max_sections and FALLBACK_KEY not in by_topic:
        keep, fold = present, []
    sections = [Section(key=label_key(t), title=t, posts=tuple(by_topic[t])) for t in keep]
    rest = [p for t in fold for p in by_topic[t]] + by_topic.get(FALLBACK_KEY, [])
    if rest:
        sections.append(Section(key=FALLBACK_KEY, title=fallback_topic, posts=tuple(rest)))
    return IssueContent(sections=tuple(sections), featured=tuple(featured), left_out=max(len(every) - max_posts, 0))


def for_topics(content: IssueContent, topics: Iterable[str]) -> IssueContent:
    """The issue as a reader who follows `topics` gets it (empty: every topic).

    Their chosen sections, plus the fallback section and the featured question posts,
    which belong to no topic a reader can leave.
    """
    chosen = {label_key(t) for t in topics}
    if not chosen:
        return content
    sections = tuple(s for s in content.sections if s.key == FALLBACK_KEY or s.key in chosen)
    return IssueContent(sections=sections, featured=content.featured, left_out=content.left_out)


def answered_questions(posts: Iterable[Post], question_labels: Iterable[str], limit: int = 3) -> tuple[Post, ...]:
    """The posts that answer readers' questions (they carry a [question] label), in the order
    given (newest issue first), each once, at most `limit`."""
    questions = {label_key(q) for q in question_labels}
    found: dict[str, Post] = {}
    for post in posts:
        if len(found) >= limit:
            break
        if post.id not in found and questions.intersection(label_key(label) for label in post.labels):
            found[post.id] = post
    return tuple(found.values())
