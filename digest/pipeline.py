"""Wire the core and the adapters to build an issue and preview it (dispatch.py sends it).
Layer 3: may do I/O through the adapters; prints nothing (cli.py does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .config import Config
from .errors import InputError
from .fetch import FetchOptions, fetch_feed
from .group import group_posts
from .inline import inline_css
from .message import (MessageTemplate, Recipient, build_message, make_message_id, personalise, prepare_message,
                      sender_address, sender_domain)
from .models import FeedState, FetchResult, IssueContent, Post, RenderedIssue
from .parse import ParseOptions
from .render import make_environment, render_issue
from .select import select_posts, sort_posts

GMAIL_CLIP_BYTES = 102_000


@dataclass(frozen=True)
class BuiltIssue:
    """An issue ready to preview or send."""

    content: IssueContent
    rendered: RenderedIssue
    template: MessageTemplate
    fetched: FetchResult


@dataclass(frozen=True)
class Preview:
    html_path: Path
    text_path: Path
    eml_path: Path
    issue: BuiltIssue
    html_bytes: int
    warnings: tuple[str, ...]


def fetch_options(config: Config) -> FetchOptions:
    f, n = config.feed, config.newsletter
    return FetchOptions(
        timeout_seconds=f.timeout_seconds, deadline_seconds=f.deadline_seconds, user_agent=f.user_agent,
        max_bytes=f.max_bytes, max_pages=f.max_pages, page_size=f.page_size,
        parse=ParseOptions(excerpt_chars=n.excerpt_chars, thumbnail_width=n.thumbnail_width),
    )


def feed_source(config: Config, override: str | None) -> str:
    if not override:
        return config.feed.url
    if override.startswith(("http://", "https://")):
        return override
    return str(Path(override).expanduser().resolve())


def build_issue(
    config: Config,
    *,
    now: datetime,
    feed: str | None = None,
    cutoff: datetime | None = None,
    sent_ids: frozenset[str] = frozenset(),
    every_post: bool = False,
) -> BuiltIssue | None:
    """Fetch the feed and build the next issue; None when it has no new posts."""
    fetched, posts = fetch_new_posts(config, now=now, feed=feed, cutoff=cutoff, sent_ids=sent_ids, every_post=every_post)
    return assemble_issue(config, posts, now=now, fetched=fetched) if posts else None


def fetch_new_posts(
    config: Config,
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
    since = None if every_post else (cutoff or now - timedelta(days=config.newsletter.first_issue_days))
    fetched = fetch_feed(feed_source(config, feed), fetch_options(config), since=since, state=state)
    if every_post:
        return fetched, sort_posts(fetched.posts)
    return fetched, select_posts(fetched.posts, cutoff=cutoff, now=now,
                                 first_issue_days=config.newsletter.first_issue_days, sent_ids=sent_ids)


def assemble_issue(config: Config, posts: list[Post], *, now: datetime, fetched: FetchResult) -> BuiltIssue:
    """Group, render, inline once, and prepare the shared message headers."""
    n = config.newsletter
    content = group_posts(posts, config.topics, fallback_topic=n.fallback_topic,
                          question_labels=config.question.labels, max_posts=n.max_posts, max_sections=n.max_sections)
    local = now.astimezone(ZoneInfo(config.schedule.timezone))
    rendered = render_issue(content, config, date=local, env=make_environment(n.templates_dir))
    rendered = replace(rendered, html=inline_css(rendered.html))
    template = prepare_message(rendered, sender=n.from_, reply_to=n.reply_to, list_id=n.list_id,
                               unsubscribe_mailto=n.unsubscribe_mailto)
    return BuiltIssue(content=content, rendered=rendered, template=template, fetched=fetched)


def history_for_preview(config: Config) -> tuple[datetime | None, frozenset[str]]:
    """The last issue's cut-off and the posts already sent, if a store exists; a preview
    never creates one (a missing SQLite file means no issue was sent yet)."""
    url = config.store.url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None, frozenset()
    from .ledger import Ledger  # the database libraries load only when there is a store to read
    from .store import Store

    store = Store.open(url)
    try:
        ledger = Ledger(store)
        last = ledger.last_issue()
        return (last.cutoff if last else None), ledger.sent_post_ids()
    finally:
        store.close()


def preview_recipient(config: Config, email: str | None = None) -> Recipient:
    """The links a preview shows: real addresses of the web app, with a dummy token."""
    base = config.web.base_url
    return Recipient(
        email=email or sender_address(config.newsletter.from_),
        name="",
        unsubscribe_url=f"{base}/unsubscribe/preview",
        preferences_url=f"{base}/preferences/preview",
        archive_url=f"{base}/archive/",
    )


def write_preview(config: Config, issue: BuiltIssue, out_dir: Path, *, now: datetime) -> Preview:
    """Write issue.html, issue.txt and issue.eml into `out_dir`; each file appears whole."""
    recipient = preview_recipient(config)
    html = personalise(issue.template.html, recipient, as_html=True)
    text = personalise(issue.template.text, recipient, as_html=False)
    eml = build_message(issue.template, recipient, date=now,
                        message_id=make_message_id(sender_domain(config.newsletter.from_), "preview"))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = (out_dir / "issue.html", out_dir / "issue.txt", out_dir / "issue.eml")
        for path, data in zip(paths, (html.encode("utf-8"), text.encode("utf-8"), eml)):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot write the preview: {exc.strerror}") from exc
    size = len(html.encode("utf-8"))
    warnings = list(issue.fetched.warnings)
    if size > GMAIL_CLIP_BYTES:
        warnings.append(f"the HTML is {size / 1000:.0f} KB: Gmail clips messages above about 102 KB (lower [newsletter] max_posts)")
    return Preview(*paths, issue=issue, html_bytes=size, warnings=tuple(warnings))
