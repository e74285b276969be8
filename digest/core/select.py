"""Choose the posts of the next issue. Pure core: no network, no database, no file
writes, and no clock: `now` comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from .models import Post


def dedupe_posts(posts: Iterable[Post]) -> list[Post]:
    """Each post once, by id (a post can sit on two pages of a paged feed); first copy wins."""
    seen: set[str] = set()
    out = []
    for post in posts:
        if post.id not in seen:
            seen.add(post.id)
            out.append(post)
    return out


def select_posts(
    posts: Iterable[Post],
    *,
    cutoff: datetime | None,
    now: datetime,
    first_issue_days: int,
    sent_ids: frozenset[str] = frozenset(),
) -> list[Post]:
    """The posts of the next issue, newest first.

    A post belongs to it when its date (published, else updated) is after the previous
    issue's cut-off (on the first issue: within `first_issue_days` before `now`), is not
    in the future, and its id was not in an earlier issue. A post with no date at all is
    new when its id was never sent. An edit moves only `updated`, so an edited old post is
    not sent again.
    """
    since = cutoff if cutoff is not None else now - timedelta(days=first_issue_days)
    chosen = []
    for post in dedupe_posts(posts):
        if post.id in sent_ids:
            continue
        date = post.date
        if date is None or since < date <= now:
            chosen.append(post)
    return sort_posts(chosen)


def sort_posts(posts: Iterable[Post]) -> list[Post]:
    """Newest first; posts without a date last, in feed order."""
    posts = list(posts)
    dated = [p for p in posts if p.date is not None]
    dated.sort(key=lambda p: p.date, reverse=True)  # type: ignore[arg-type, return-value]
    return dated + [p for p in posts if p.date is None]
