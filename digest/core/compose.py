"""Compose mails: issue content -> rendered, CSS-inlined message template, per topic set.
Pure core: reads templates, no network, no database, no clock (dates come in), no file
writes.

The one place where group -> render -> inline -> prepare happens, for preview, send, the
archive and the single mails (confirmation, welcome, a question's acknowledgement and
answer notice), and the one place where a Recipient (whose personal values fill the
placeholders) is made.
premailer runs once per distinct set of topics, never per subscriber.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from .answers import NO_QUESTIONS, IssueQuestions
from .audience import away_line
from .choice_mail import render_choice_mail
from .config import Publication
from .group import for_topics, group_posts
from .inline import inline_css_checked
from .message import MessageTemplate, Recipient, prepare_message
from .models import IssueContent, IssueRecord, Post, RenderedIssue, Subscriber
from .note import Note, render_note
from .question_mail import render_acknowledgement, render_answer_notice
from .questions import Question
from .render import make_environment, render_confirmation, render_issue, render_preferences_link, render_welcome
from .tokens import Links


@dataclass(frozen=True)
class ArchiveCopy:
    """The public copy of an issue that /archive/{id} serves."""

    html: str
    text: str


def group_issue(pub: Publication, posts: Iterable[Post]) -> IssueContent:
    """The issue's posts in their topic sections, as [topics] and [newsletter] order them."""
    n = pub.newsletter
    return group_posts(list(posts), pub.topics, fallback_topic=n.fallback_topic,
                       question_labels=pub.question.labels, max_posts=n.max_posts, max_sections=n.max_sections)


def issue_date(pub: Publication, when: datetime) -> datetime:
    """The issue's date as its readers see it: in [schedule] timezone."""
    return when.astimezone(ZoneInfo(pub.schedule.timezone))


def prepare(pub: Publication, rendered: RenderedIssue, *, bulk: bool = True,
            warnings: list[str] | None = None) -> MessageTemplate:
    """Inline the rendered mail's CSS (once) and encode the headers every recipient shares;
    what premailer could not use is added to `warnings`."""
    n = pub.newsletter
    html, dropped = inline_css_checked(rendered.html)
    if warnings is not None:
        warnings.extend(w for w in dropped if w not in warnings)
    rendered = replace(rendered, html=html)
    if not bulk:
        return prepare_message(rendered, sender=n.from_, reply_to=n.reply_to, bulk=False)
    return prepare_message(rendered, sender=n.from_, reply_to=n.reply_to, list_id=n.list_id,
                           unsubscribe_mailto=n.unsubscribe_mailto)


class Composer:
    """One issue's message templates: one per distinct set of topics, built on first use.

    Safe to share between the threads of a send (a lock guards the cache). `number` is the
    issue's number as recorded (the masthead shows it); `note` the editor's Markdown note.
    """

    def __init__(self, pub: Publication, posts: Iterable[Post], *, created_at: datetime,
                 env: jinja2.Environment | None = None, number: int | None = None, note: str = "",
                 questions: IssueQuestions = NO_QUESTIONS, monthly: bool = False) -> None:
        self.pub = pub
        self.monthly = monthly  # the monthly issue (core/audience.py): "this month", the month in the subject
        self.questions = questions  # readers' questions: every reader gets them, whatever their topics
        self.content = group_issue(pub, posts)
        self.date = issue_date(pub, created_at)
        self.env = env or make_environment(pub.newsletter.templates_dir)
        self.number = number
        self.note_source = note
        self.note: Note = render_note(note)
        self._cache: dict[tuple[str, ...], MessageTemplate | None] = {}
        self._rendered: dict[tuple[str, ...], RenderedIssue] = {}
        self._lock = threading.Lock()
        self.warnings: list[str] = []  # CSS the inliner dropped, in the author's templates

    def render(self, topics: Iterable[str] = ()) -> RenderedIssue | None:
        """The issue as a reader of `topics` gets it (empty: every topic), CSS not inlined;
        None when it holds nothing for them."""
        key = tuple(sorted(topics))
        with self._lock:
            if key not in self._rendered:
                content = for_topics(self.content, key)
                if not content.posts and not self.questions:
                    return None
                self._rendered[key] = render_issue(content, self.pub, date=self.date, env=self.env,
                                                   number=self.number, note=self.note, questions=self.questions,
                                                   monthly=self.monthly)
            return self._rendered[key]

    def archive(self) -> ArchiveCopy:
        """The public copy that /archive/{id} serves: the whole issue as a web page, with no
        greeting and no one's links, a Subscribe button instead (CSS left in its <style>)."""
        rendered = render_issue(self.content, self.pub, date=self.date, env=self.env, number=self.number,
                                note=self.note, archive=True, questions=self.questions, monthly=self.monthly)
        return ArchiveCopy(rendered.html, rendered.text)

    def template(self, topics: Iterable[str] = ()) -> MessageTemplate | None:
        """The message template for readers of `topics` (empty: every topic); None when
        the issue holds nothing for them."""
        key = tuple(sorted(topics))
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        rendered = self.render(key)
        dropped: list[str] = []
        template = None if rendered is None else prepare(self.pub, rendered, warnings=dropped)
        with self._lock:  # the connections' threads share this composer
            self.warnings.extend(w for w in dropped if w not in self.warnings)
            return self._cache.setdefault(key, template)


def compose_confirmation(pub: Publication, *, confirm_url: str,
                         env: jinja2.Environment | None = None) -> MessageTemplate:
    """The double opt-in mail, ready for build_message (no bulk headers: filters treat
    Precedence: bulk specially); no name in it (render_confirmation says why)."""
    env = env or make_environment(pub.newsletter.templates_dir)
    return prepare(pub, render_confirmation(pub, confirm_url=confirm_url, env=env), bulk=False)


def compose_preferences_link(pub: Publication, *, preferences_url: str,
                             env: jinja2.Environment | None = None) -> MessageTemplate:
    """The mail with a fresh settings link (one person's mail: no bulk headers)."""
    env = env or make_environment(pub.newsletter.templates_dir)
    return prepare(pub, render_preferences_link(pub, preferences_url=preferences_url, env=env), bulk=False)


def compose_welcome(pub: Publication, *, name: str, answered: Iterable[Post], preferences_url: str,
                    env: jinja2.Environment | None = None) -> MessageTemplate:
    """The welcome mail sent once a subscription is confirmed: when issues come, how to ask
    a question, a few answered questions (`answered`). One person's mail: no bulk headers."""
    env = env or make_environment(pub.newsletter.templates_dir)
    rendered = render_welcome(pub, name=name, answered=list(answered), preferences_url=preferences_url, env=env)
    return prepare(pub, rendered, bulk=False)


def compose_choice_mail(pub: Publication, kind: str, *, link: str = "",
                        env: jinja2.Environment | None = None) -> MessageTemplate:
    """A mail of readers' choices (core/choice_mail.py KINDS): one person's mail, no bulk headers."""
    env = env or make_environment(pub.newsletter.templates_dir)
    return prepare(pub, render_choice_mail(pub, kind, link=link, env=env), bulk=False)


def compose_acknowledgement(pub: Publication, *, env: jinja2.Environment | None = None) -> MessageTemplate:
    """The mail that tells an asker their question arrived (the same for every asker). It
    answers a message, so it says so (RFC 3834 Auto-Submitted: auto-replied): a well-behaved
    auto-responder at the other end does not answer it back."""
    env = env or make_environment(pub.newsletter.templates_dir)
    template = prepare(pub, render_acknowledgement(pub, env=env), bulk=False)
    return replace(template, head=template.head + "Auto-Submitted: auto-replied\r\n")


def compose_answer_notice(pub: Publication, question: Question, *, env: jinja2.Environment | None = None) -> MessageTemplate:
    """The one mail that tells an asker where their question was answered."""
    env = env or make_environment(pub.newsletter.templates_dir)
    template = prepare(pub, render_answer_notice(pub, question, env=env), bulk=False)
    return replace(template, head=template.head + "Auto-Submitted: auto-generated\r\n")


# ---- who a message is for ----

def issue_composer(pub: Publication, issue: IssueRecord, **kw: Any) -> Composer:
    """The Composer of a recorded issue (a resumed send, a retry): it renders as it did."""
    return Composer(pub, issue.posts, created_at=issue.created_at, number=issue.id, note=issue.note,
                    monthly=issue.kind == "monthly", **kw)


def subscriber_recipient(pub: Publication, sub: Subscriber, links: Links, *, now: datetime,
                         issue_id: int | None = None) -> Recipient:
    """A subscriber's copy: their name, their own signed links and, in the first issue after
    a pause, what they missed (core/audience.py)."""
    archive = f"{pub.base_url}/archive/" + (str(issue_id) if issue_id else "")
    return Recipient(sub.email, sub.name, links.unsubscribe(sub.id, now), links.preferences(sub.id, now), archive,
                     away=away_line(sub, issue_id, pub.schedule.timezone))


def preview_recipient(pub: Publication, email: str, number: int | None = None) -> Recipient:
    """The links a preview or test copy shows: the web app's real addresses, a dummy token;
    the archive link the issue will have once sent as issue `number`."""
    base = pub.base_url
    return Recipient(email=email, name="", unsubscribe_url=f"{base}/unsubscribe/preview",
                     preferences_url=f"{base}/preferences/preview", archive_url=f"{base}/archive/{number or ''}")

