"""Build the next issue: fetch the feed, pick the new posts, compose. A job (layer 3): does
I/O through the Fetch it is handed (ports.py) and prints nothing (the CLI does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..core.answers import NO_QUESTIONS, IssueQuestions
from ..core.compose import Composer
from ..core.config import FeedConfig, NewsletterConfig, Publication
from ..core.errors import InputError
from ..core.message import MessageTemplate
from ..core.models import FeedState, FetchResult, IssueContent, Post, RenderedIssue
from ..core.parse import FetchOptions, ParseOptions
from ..core.select import select_posts, sort_posts
from .ports import Fetch


@dataclass(frozen=True)
class BuiltIssue:
    """An issue ready to preview or send: its composer holds every topic set's template."""

    composer: Composer
    fetched: FetchResult

    @property
    def content(self) -> IssueContent:
        """The every-topic issue's sections and featured posts."""
        return self.composer.content

    @property
    def posts(self) -> tuple[Post, ...]:
        return self.composer.content.posts

    @property
    def rendered(self) -> RenderedIssue:
        """The every-topic issue as rendered (CSS not inlined)."""
        rendered = self.composer.render()
        assert rendered is not None, "a built issue has posts"
        return rendered

    @property
    def template(self) -> MessageTemplate:
        """The every-topic message template."""
        template = self.composer.template()
        assert template is not None, "a built issue has posts"
        return template

    @property
    def key(self) -> str:
        """The issue's unique key: its posts' (a questions-only issue: its questions')."""
        return issue_key(self.posts) if self.posts else self.composer.questions.key


def issue_key(posts: tuple[Post, ...] | list[Post]) -> str:
    """The unique key of an issue: a hash of its posts' ids, whoever builds it."""
    return hashlib.sha256("\n".join(sorted(p.id for p in posts)).encode("utf-8")).hexdigest()


def fetch_options(f: FeedConfig, n: NewsletterConfig) -> FetchOptions:
    """How [feed] (and [newsletter] for the excerpts and thumbnails) says to fetch and parse."""
    return FetchOptions(
        timeout_seconds=f.timeout_seconds, deadline_seconds=f.deadline_seconds, user_agent=f.user_agent,
        max_bytes=f.max_bytes, max_pages=f.max_pages, page_size=f.page_size,
        parse=ParseOptions(excerpt_chars=n.excerpt_chars, thumbnail_width=n.thumbnail_width,
                           deadline_seconds=f.parse_seconds),
    )


def feed_source(feed: FeedConfig, override: str | None) -> str:
    if not override:
        return feed.url
    if override.startswith(("http://", "https://")):
        return override
    return str(Path(override).expanduser().resolve())


def fetch_new_posts(
    pub: Publication,
    fetch: Fetch,
    *,
    now: datetime,
    feed: str | None = None,
    cutoff: datetime | None = None,
    sent_ids: frozenset[str] = frozenset(),
    every_post: bool = False,
    state: FeedState | None = None,
) -> tuple[FetchResult, list[Post]]:
    """The feed as fetched, and the posts of the next issue (every post with `every_post`).

    With `state` (the last issue's feed validators) the fetch is conditional: an unchanged
    feed comes back not_modified, with no posts.
    """
    since = None if every_post else (cutoff or now - timedelta(days=pub.newsletter.first_issue_days))
    fetched = fetch(feed_source(pub.feed, feed), fetch_options(pub.feed, pub.newsletter), since=since,
                    state=state)
    if every_post:
        return fetched, sort_posts(fetched.posts)
    return fetched, select_posts(fetched.posts, cutoff=cutoff, now=now,
                                 first_issue_days=pub.newsletter.first_issue_days, sent_ids=sent_ids)


def build_issue(
    pub: Publication,
    fetch: Fetch,
    *,
    now: datetime,
    feed: str | None = None,
    cutoff: datetime | None = None,
    sent_ids: frozenset[str] = frozenset(),
    every_post: bool = False,
    state: FeedState | None = None,
    number: int | None = None,
    note: str = "",
    questions: Callable[[FetchResult, Sequence[Post]], IssueQuestions] | None = None,
) -> tuple[FetchResult, BuiltIssue | None]:
    """Fetch the feed and compose the next issue: what was fetched, and the issue (None
    when no post is new and there are no readers' questions to show). `number` is the id
    the issue will be recorded with; `note` the editor's Markdown note (read_note);
    `questions` links answers in what was fetched and picks the questions the issue shows
    (jobs/answers.py)."""
    fetched, posts = fetch_new_posts(pub, fetch, now=now, feed=feed, cutoff=cutoff, sent_ids=sent_ids,
                                     every_post=every_post, state=state)
    shown = questions(fetched, posts) if questions is not None else NO_QUESTIONS
    if not posts and not shown:
        return fetched, None
    composer = Composer(pub, posts, created_at=now, number=number, note=note, questions=shown)
    return fetched, BuiltIssue(composer, fetched)


NOTE_MAX_BYTES = 20_000  # a note is a few paragraphs; more would push the issue towards Gmail's clip


def read_note(path: Path) -> str:
    """The Markdown of an editor's note file; InputError (one line naming the file) when it
    cannot be read, is not UTF-8, is empty or is too long."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the note: {exc.strerror or exc}") from exc
    if len(data) > NOTE_MAX_BYTES:
        raise InputError(f"{path}: the note is {len(data) / 1000:.0f} KB; keep it under {NOTE_MAX_BYTES // 1000} KB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the note is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise InputError(f"{path}: the note is empty")
    return text
