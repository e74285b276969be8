"""Which posts go in the next issue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from digest.core.models import Post
from digest.core.select import dedupe_posts, select_posts, sort_posts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def post(pid: str, days_ago: float | None, *, updated_days_ago: float | None = None) -> Post:
    published = NOW - timedelta(days=days_ago) if days_ago is not None else None
    updated = NOW - timedelta(days=updated_days_ago) if updated_days_ago is not None else published
    return Post(id=pid, title=pid, link=f"https://b.example/{pid}", published=published, updated=updated)


CASES = [
    # (name, posts, cutoff days ago (None: first issue), sent ids, expected ids in order)
    ("first issue: last 7 days", [post("a", 1), post("b", 6.9), post("c", 8)], None, set(), ["a", "b"]),
    ("after the cut-off only", [post("a", 1), post("b", 3), post("c", 5)], 4, set(), ["a", "b"]),
    ("newest first whatever the feed order", [post("old", 3), post("new", 1)], 7, set(), ["new", "old"]),
    ("edited old post is not re-sent", [post("a", 30, updated_days_ago=1)], 7, set(), []),
    ("already sent id is not re-sent", [post("a", 1)], 7, {"a"}, []),
    ("no dates: new unless sent", [post("x", None), post("y", None)], 7, {"y"}, ["x"]),
    ("only updated: counts as published", [Post("u", "u", "l", None, NOW - timedelta(days=1))], 7, set(), ["u"]),
    ("future posts wait", [post("f", -1), post("a", 1)], 7, set(), ["a"]),
    ("post on two pages appears once", [post("a", 1), post("b", 2), post("a", 1)], 7, set(), ["a", "b"]),
    ("exactly at the cut-off belongs to the previous issue", [post("edge", 4)], 4, set(), []),
]


@pytest.mark.parametrize(("posts", "cutoff", "sent", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_select_posts(posts: list[Post], cutoff: float | None, sent: set[str], expected: list[str]) -> None:
    cut = NOW - timedelta(days=cutoff) if cutoff is not None else None
    chosen = select_posts(posts, cutoff=cut, now=NOW, first_issue_days=7, sent_ids=frozenset(sent))
    assert [p.id for p in chosen] == expected


def test_dedupe_keeps_the_first_copy() -> None:
    first = post("a", 1)
    second = Post("a", "changed", "l", None, None)
    assert dedupe_posts([first, second]) == [first]


def test_sort_puts_undated_last_in_feed_order() -> None:
    posts = [post("n1", None), post("d", 2), post("n2", None), post("e", 1)]
    assert [p.id for p in sort_posts(posts)] == ["e", "d", "n1", "n2"]
