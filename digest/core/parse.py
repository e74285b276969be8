"""Feed bytes -> FeedPage of normalised Post records. Pure core: no network, no database,
no clock, no file writes. feedparser is handed bytes, never a URL.
"""

from __future__ import annotations

import calendar
import html
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser

from .entities import declares_entities
from .errors import FeedParseError
from .models import FeedPage, Post
from .sanitize import (
    clean_line,
    clean_title,
    excerpt,
    first_image,
    plain_text,
    safe_url,
    sanitize_html,
    sized_thumbnail,
)

BLOGGER_LABEL_SCHEME = "http://www.blogger.com/atom/ns#"


def _never() -> bool:
    return False


@dataclass(frozen=True)
class ParseOptions:
    """How posts are read. `expired()` says when the parse's deadline ([feed] parse_seconds,
    `deadline_seconds`) has passed: the adapter that reads the clock hands it in, and the
    parse asks it after feedparser and between posts (the core reads no clock)."""

    excerpt_chars: int = 220
    thumbnail_width: int = 800
    deadline_seconds: float = 0.0
    expired: Callable[[], bool] = _never


def parse_feed(data: bytes, url: str, options: ParseOptions = ParseOptions()) -> FeedPage:
    """Parse one fetched feed document; `url` is where it came from (for relative links)."""
    if not data.strip():
        raise FeedParseError(url, "the document is empty")
    try:
        if declares_entities(data):
            raise FeedParseError(url, "the document declares XML entities: refused as unsafe")
        # No content-location: feedparser would resolve non-URL guids against it, and a post's
        # id must not change when the blog moves. Links are resolved against `url` below.
        # BytesIO, never the bytes themselves: feedparser opens bytes that name a path, so
        # a server answering b"/etc/passwd" or b"/dev/zero" would have it read that file.
        parsed = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    except UnicodeError as exc:  # feedparser's own decoding fails this way for some codecs
        raise FeedParseError(url, f"cannot be decoded ({_short(exc)})") from exc
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception")
        what = "an HTML page" if b"<html" in data[:2048].lower() else "not a feed"
        raise FeedParseError(url, f"{what}, not an RSS or Atom feed" + (f" ({_short(reason)})" if reason else ""))
    posts: list[Post] = []
    for entry in parsed.entries:
        if options.expired():
            raise FeedParseError(url, f"not parsed within {options.deadline_seconds:g} s ([feed] parse_seconds), "
                                      f"{len(posts)} of {len(parsed.entries)} posts read: is a post nested very deep?")
        post = _post(entry, url, options)
        if post is not None:
            posts.append(post)
    feed = parsed.feed
    next_url = None
    for link in feed.get("links", []):
        if link.get("rel") == "next":
            next_url = safe_url(link.get("href"), url)
    return FeedPage(
        title=clean_line(feed.get("title", "")),
        link=safe_url(feed.get("link"), url) or "",
        posts=tuple(posts),
        next_url=next_url,
        bozo_reason=_short(parsed.get("bozo_exception")) if parsed.get("bozo") else None,
    )


def normalise_link(link: str) -> str:
    """A link as a post id: scheme and host lower-cased, fragment dropped."""
    parts = urlsplit(link)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _post(entry: Any, base: str, options: ParseOptions) -> Post | None:
    link = safe_url(entry.get("feedburner_origlink"), base) or safe_url(entry.get("link"), base)
    raw_id = (entry.get("id") or "").strip()
    post_id = raw_id or (normalise_link(link) if link else "")
    title_detail = entry.get("title_detail") or {}
    title = clean_title(entry.get("title", ""), "html" in title_detail.get("type", ""))
    if not post_id and not title:
        return None
    body = _body(entry)
    content = sanitize_html(body, base) if body else ""
    text = plain_text(content)
    thumb = _thumbnail(entry, content, base)
    return Post(
        id=post_id or title,
        title=title or "(untitled)",
        link=link or "",
        # dict.get: FeedParserDict maps a missing updated_parsed to published_parsed, with a warning.
        published=_date(dict.get(entry, "published_parsed")),
        updated=_date(dict.get(entry, "updated_parsed")),
        labels=_labels(entry),
        excerpt=excerpt(text, options.excerpt_chars),
        content_html=content,
        thumbnail=sized_thumbnail(thumb, options.thumbnail_width) if thumb else None,
        author=clean_line((entry.get("author_detail") or {}).get("name") or entry.get("author", "")),
    )


def _body(entry: Any) -> str:
    for item in entry.get("content", []):
        if item.get("value"):
            return _as_html(item)
    detail = entry.get("summary_detail")
    if detail and detail.get("value"):
        return _as_html(detail)
    return ""


def _as_html(detail: Any) -> str:
    value: str = detail.get("value", "")
    if "html" in (detail.get("type") or ""):
        return value
    # Declared text: feedparser does not sanitise it; escape it so it stays text.
    return "<p>" + html.escape(value) + "</p>"


def _labels(entry: Any) -> tuple[str, ...]:
    labels: list[str] = []
    for tag in entry.get("tags", []):
        scheme = (tag.get("scheme") or "").strip()
        term = clean_line(tag.get("term") or "")
        if term and scheme in ("", BLOGGER_LABEL_SCHEME) and term not in labels:
            labels.append(term)
    return tuple(labels)


def _thumbnail(entry: Any, content: str, base: str) -> str | None:
    for thumb in entry.get("media_thumbnail", []):
        url = safe_url(thumb.get("url"), base)
        if url:
            return url
    return first_image(content)


def _date(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)


def _short(reason: object) -> str | None:
    if reason is None:
        return None
    return clean_line(str(reason))[:160]


@dataclass(frozen=True)
class FetchOptions:
    timeout_seconds: float = 10.0
    deadline_seconds: float = 60.0
    user_agent: str = "blog-digest/0.1"
    max_bytes: int = 10_000_000
    max_pages: int = 20
    page_size: int = 25
    parse: ParseOptions = field(default_factory=ParseOptions)
