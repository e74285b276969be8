"""The records that flow through the pipeline. Standard library only; no I/O."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Post:
    """One blog post, normalised and sanitised."""

    id: str
    title: str
    link: str
    published: datetime | None
    updated: datetime | None
    labels: tuple[str, ...] = ()
    excerpt: str = ""
    content_html: str = ""
    thumbnail: str | None = None
    author: str = ""

    @property
    def date(self) -> datetime | None:
        """When the post counts as published: its published date, else its updated one."""
        return self.published or self.updated


@dataclass(frozen=True, slots=True)
class FeedPage:
    """What one fetched document of a feed holds."""

    title: str
    link: str
    posts: tuple[Post, ...]
    next_url: str | None = None
    bozo_reason: str | None = None


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the fetcher remembers between runs for conditional GET and moved feeds."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The posts of every page fetched, and the state to keep for next time."""

    posts: tuple[Post, ...]
    state: FeedState
    not_modified: bool = False
    pages: int = 0
    warnings: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A topic of the issue and its posts, in display order."""

    key: str
    title: str
    posts: tuple[Post, ...]


@dataclass(frozen=True, slots=True)
class IssueContent:
    """The posts of one issue, grouped: topic sections and the featured question posts;
    `left_out` counts the posts that [newsletter] max_posts kept out (the oldest)."""

    sections: tuple[Section, ...]
    featured: tuple[Post, ...] = ()
    left_out: int = 0

    @property
    def posts(self) -> tuple[Post, ...]:
        """Every post of the issue, each once: sections first, then the featured ones."""
        return tuple(p for s in self.sections for p in s.posts) + self.featured


@dataclass(frozen=True, slots=True)
class RenderedIssue:
    """An issue ready to send: subject, CSS-inlined HTML and text, with link placeholders."""

    subject: str
    html: str
    text: str
    preheader: str = ""
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Placeholders:
    """Markers the templates write where each recipient's own values go; the message
    builder replaces them (escaped), so that an issue is rendered and inlined once.

    Each marker carries a random part drawn when the program starts: feed text (a title,
    an excerpt, a link) could otherwise hold a marker and have the reader's unsubscribe
    link put in its place. Escaping cannot do it: premailer re-serialises the HTML and
    the text part has no escapes. The markers never leave the process (every copy that is
    sent, written or archived has them replaced), so no one can learn the random part.
    """

    greeting: str
    unsubscribe_url: str
    preferences_url: str
    archive_url: str
    away: str  # the first issue after a pause: what the reader missed, in one sentence

    @classmethod
    def unguessable(cls) -> Placeholders:
        """Markers like "%%UNSUBSCRIBE_URL-<16 random hex digits>%%"."""
        tag = secrets.token_hex(8)
        return cls(*(f"%%{f.name.upper()}-{tag}%%" for f in fields(cls)))


PLACEHOLDERS = Placeholders.unguessable()

STATUSES = ("pending", "confirmed", "unsubscribed", "bounced")


class DeliveryStatus(StrEnum):
    """Where one message of one issue stands in the delivery ledger."""

    PENDING = "pending"      # not tried yet
    SENDING = "sending"      # claimed by a connection; settled after the server's reply
    DEFERRED = "deferred"    # refused for now (4xx, no answer): tried again when next_attempt_at comes
    SENT = "sent"            # accepted by the server
    FAILED = "failed"        # refused for good, or given up on
    IN_DOUBT = "in_doubt"    # the connection broke after the final dot: maybe delivered, never resent
    SKIPPED = "skipped"      # not sent: unsubscribed or removed meanwhile, or nothing for their topics


OPEN_STATUSES = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED})
"""A row in one of these is not accounted for yet: the issue is not done."""

REPORT_ORDER = (DeliveryStatus.SENT, DeliveryStatus.DEFERRED, DeliveryStatus.PENDING, DeliveryStatus.FAILED,
                DeliveryStatus.IN_DOUBT, DeliveryStatus.SKIPPED)


def open_count(counts: dict[str, int]) -> int:
    """How many of an issue's messages still wait (pending, sending or deferred)."""
    return sum(counts.get(s, 0) for s in OPEN_STATUSES)


@dataclass(frozen=True)
class IssueRecord:
    """An issue as recorded: its posts, its archived copy, whether it is done; `note` is the
    editor's Markdown note, so that a resumed send renders the same mail; `warnings`, what
    the checks before the send warned of (the report and `digest status` show them)."""

    id: int
    key: str
    status: str
    created_at: datetime
    cutoff: datetime
    finished_at: datetime | None
    subject: str
    posts: tuple[Post, ...]
    html: str
    text: str
    note: str = ""
    kind: str = "weekly"  # or "monthly": every post since the reader's last issue (core/audience.py)
    warnings: tuple[str, ...] = ()  # the deliverability checks' warnings when it was recorded (jobs/preflight.py)


@dataclass(frozen=True)
class Claim:
    """One ledger row a connection has claimed: the message to send next, with its
    subscriber as read when it was claimed (None: removed since the issue began). That
    subscriber carries what a message needs (address, name, status, topics), not the
    consent record."""

    delivery_id: int
    subscriber_id: int | None
    message_id: str
    attempts: int
    first_attempt_at: datetime | None = None
    subscriber: Subscriber | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the ledger records of one claimed message: its status, the server's reply
    and what the outcome adds (the next attempt of a deferred one; the subscriber to mark
    bounced). `attempted` is False for a message never handed to a server."""

    delivery_id: int
    status: str
    now: datetime
    code: int | None = None
    reply: str = ""
    next_attempt_at: datetime | None = None
    attempted: bool = True
    bounce: int | None = None


@dataclass(frozen=True)
class Reply:
    """A server's answer to one message: code 250 means accepted."""

    code: int
    text: str
    stage: str = "DATA"       # the command answered: MAIL, RCPT or DATA
    after_data: bool = False  # the connection failed after the final dot: in doubt


@dataclass(frozen=True, slots=True)
class Consent:
    """How a subscriber agreed to receive the newsletter."""

    at: datetime
    method: str  # "web", "import" or "cli"
    ip: str = ""
    user_agent: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One address on the list and what we know of it."""

    id: int
    email: str
    name: str
    status: str
    topics: tuple[str, ...]
    consent: Consent | None
    created_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    unsubscribed_how: str = ""
    confirm_nonce: str = ""
    confirm_sent_at: datetime | None = None
    confirmed_how: str = ""  # "link", "author" (confirmed by hand) or "import"; "" before it was recorded
    frequency: str = "weekly"  # readers' choices (core/audience.py): weekly or monthly
    pause_reason: str = ""     # "", "weeks" or "job" (until they come back)
    paused_at: datetime | None = None
    paused_until: datetime | None = None
    away_issues: int = 0       # issues skipped while paused, told once in the first issue after
    away_since: datetime | None = None
    away_issue: int | None = None
    new_email: str = ""        # an address change waiting for its confirmation
    new_email_at: datetime | None = None


def post_to_dict(post: Post) -> dict[str, object]:
    """A Post as JSON-ready data (for the issue record)."""
    return {
        "id": post.id, "title": post.title, "link": post.link,
        "published": post.published.isoformat() if post.published else None,
        "updated": post.updated.isoformat() if post.updated else None,
        "labels": list(post.labels), "excerpt": post.excerpt, "thumbnail": post.thumbnail, "author": post.author,
    }


def post_from_dict(data: dict[str, Any]) -> Post:
    """The Post that post_to_dict wrote (without its full content, which issues do not need)."""
    def when(value: object) -> datetime | None:
        return datetime.fromisoformat(str(value)) if value else None

    return Post(
        id=str(data["id"]), title=str(data["title"]), link=str(data["link"]),
        published=when(data.get("published")), updated=when(data.get("updated")),
        labels=tuple(str(x) for x in data.get("labels") or ()),
        excerpt=str(data.get("excerpt") or ""), thumbnail=str(data["thumbnail"]) if data.get("thumbnail") else None,
        author=str(data.get("author") or ""),
    )


@dataclass(frozen=True)
class InboxStats:
    """What `digest status` shows of the inbox."""

    read_at: datetime | None
    read_outcome: str
    kinds: dict[str, int]
    bounced: int        # subscribers bounced by mail in the window
    unsubscribed: int   # subscribers unsubscribed by mail (complaints included) in the window
