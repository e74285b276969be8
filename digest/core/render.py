"""Render an issue's HTML, text and subject with Jinja2. Pure core: reads templates,
no network, no database, no clock (the issue date comes in), no file writes.

Per-subscriber values are not known here: the output carries PLACEHOLDERS, which the
message builder replaces (escaped) for each recipient, so that CSS is inlined once.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from .answers import NO_QUESTIONS, AnsweredQuestion, IssueQuestions, link_key
from .config import Publication, ScheduleConfig
from .message import greeting
from .models import PLACEHOLDERS, IssueContent, Post, RenderedIssue
from .note import NO_NOTE, Note
from .sanitize import clean_line, excerpt
from .templating import MEMORY_BYTECODE, render_file, template_errors

SUBJECT_CHARS = 50     # what a phone's inbox list shows of a subject, about
PREHEADER_CHARS = 150  # the preview text shown after the subject, at most
PREHEADER_FILL = 100   # "&zwnj;&nbsp;" pairs after it: invisible, they keep the greeting out of the preview
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_PACKAGE = Path(__file__).resolve().parent.parent


def _builtin_templates() -> Path:
    """The built-in templates: inside the package in an installed wheel (the build maps the
    top-level templates/ folder to digest/templates), else the source tree's templates/."""
    installed = _PACKAGE / "templates"
    return installed if (installed / "issue.html.j2").is_file() else _PACKAGE.parent / "templates"


BUILTIN_TEMPLATES = _builtin_templates()
_AUTOESCAPED = ("html", "html.j2")
_TRIM, _LSTRIP, _KEEP_NEWLINE = True, True, True  # trim_blocks, lstrip_blocks, keep_trailing_newline
# What shapes a template's compiled code besides its source: a bytecode cache keeps apart
# the code of environments that differ in it (adapters/template_cache.py).
ENVIRONMENT_TAG = hashlib.sha256(repr((_AUTOESCAPED, _TRIM, _LSTRIP, _KEEP_NEWLINE)).encode()).hexdigest()[:12]
BytecodeChoice = jinja2.BytecodeCache | Callable[[], jinja2.BytecodeCache | None] | None
_BYTECODE: list[BytecodeChoice] = [None]


def use_bytecode_cache(cache: BytecodeChoice) -> None:
    """Keep compiled templates in `cache` (adapters/template_cache.py), for every
    environment made after: set once per process, by the command line's entry point. A
    function that makes the cache is called when the first environment is made (a command
    that renders nothing, `digest --help`, makes no cache folder). None: in this process's
    memory only (core/templating.py's MEMORY_BYTECODE)."""
    _BYTECODE[0] = cache


def _bytecode_cache() -> jinja2.BytecodeCache:
    chosen = _BYTECODE[0]
    if chosen is not None and not isinstance(chosen, jinja2.BytecodeCache):
        chosen = _BYTECODE[0] = chosen()  # two threads at once may both make it: the same folder
    return MEMORY_BYTECODE if chosen is None else chosen


def make_environment(user_dir: str = "") -> jinja2.Environment:
    """Templates from `user_dir` first, then the built-in ones; a user template can extend
    the built-in one it replaces as "default:issue.html.j2"."""
    builtin = jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES))
    loaders: list[jinja2.BaseLoader] = []
    if user_dir:
        loaders.append(jinja2.FileSystemLoader(user_dir))
    loaders += [jinja2.PrefixLoader({"default": builtin}, delimiter=":"), builtin]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(_AUTOESCAPED, default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=_TRIM,
        lstrip_blocks=_LSTRIP,
        keep_trailing_newline=_KEEP_NEWLINE,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["post_date"] = format_date
    # Long words (URLs) stay whole: a link cut across two lines no longer works.
    env.filters["wrap"] = lambda text: textwrap.fill(str(text), width=72, break_long_words=False, break_on_hyphens=False)
    return env


def format_date(value: datetime | None, zone: str = "") -> str:
    """A date as readers write it: 23 November 2026; in the IANA `zone` ([schedule]
    timezone) when given, as every date a reader sees is."""
    if value is None:
        return ""
    if zone and value.tzinfo is not None:
        value = value.astimezone(ZoneInfo(zone))
    return f"{value.day} {value:%B %Y}"


def render_issue(content: IssueContent, pub: Publication, *, date: datetime, env: jinja2.Environment,
                 number: int | None = None, note: Note = NO_NOTE, archive: bool = False,
                 questions: IssueQuestions = NO_QUESTIONS, monthly: bool = False) -> RenderedIssue:
    """The issue's subject, HTML (CSS not yet inlined) and text.

    `number` is the issue's number (shown in the masthead), `note` the editor's note;
    `archive` renders the public web copy: no greeting, no personal links, a Subscribe
    button instead; `questions` the readers' questions it shows (answered since the last
    issue, "On the desk"); `monthly`: the monthly issue (every post since the reader's last).
    """
    posts = content.posts
    questions_title = questions.headline if questions and not posts else ""  # a questions-only issue
    subject = render_subject(pub, content, date, env, number=number, fallback_title=questions_title)
    if monthly:
        subject = clean_line(f"{date:%B}: {subject}")
    preheader = issue_preheader(pub, content, subject) or questions_title
    base = pub.base_url
    replies_welcome = bool(pub.newsletter.reply_to) and not archive
    ask_url = ask_address(pub)
    featured, answered = _answers_once(content.featured, questions)
    context = {
        "blog": pub.blog,
        "question": pub.question,
        "replies_welcome": replies_welcome,
        "ask_url": ask_url,
        "ask": bool(ask_url or pub.question.email or replies_welcome),  # a box that leads somewhere, or none
        "sections": content.sections,
        "featured": featured,
        "post_count": len(posts),
        "left_out": content.left_out,
        "number": number,
        "date_label": format_date(date, pub.schedule.timezone),
        "zone": pub.schedule.timezone,
        "schedule_label": schedule_label(pub.schedule, with_time=False),
        "subject": subject,
        "preheader": preheader,
        "preheader_fill": PREHEADER_FILL,
        "note_html": Markup(note.html),  # sanitised by core/note.py
        "note_text": note.text,
        "archive": archive,
        "subscribe_url": f"{base}/subscribe",
        "archive_index_url": f"{base}/archive/",
        "placeholders": PLACEHOLDERS,
        "period": "month" if monthly else "week",
        "answered_questions": answered,
        "desk_questions": questions.desk,
    }
    html = render_file(env, "issue.html.j2", context)
    text = render_file(env, "issue.txt.j2", context)
    return RenderedIssue(subject=subject, html=html, text=text, preheader=preheader)


def ask_address(pub: Publication) -> str:
    """Where the "Ask your question" button leads: [question] url, else the blog's Contact page."""
    return pub.question.url or pub.blog.contact_url


def _answers_once(posts: Sequence[Post], questions: IssueQuestions) -> tuple[list[dict[str, object]],
                                                                              tuple[AnsweredQuestion, ...]]:
    """The featured answer posts, each with the question it answers (when one was asked and
    answered through the loop), and the answered questions whose post is not featured: one
    answer is shown once."""
    asked = {link_key(q.link): q for q in questions.answered}
    featured: list[dict[str, object]] = [{"post": p, "asked": asked.get(link_key(p.link))} for p in posts]
    shown = {link_key(p.link) for p in posts}
    return featured, tuple(q for q in questions.answered if link_key(q.link) not in shown)


def render_subject(pub: Publication, content: IssueContent, date: datetime, env: jinja2.Environment,
                   number: int | None = None, fallback_title: str = "") -> str:
    """The [newsletter] subject template rendered as one clean line (`fallback_title` is
    first_title when the issue has no post)."""
    posts = content.posts
    first_title = posts[0].title if posts else fallback_title
    with template_errors(f"{pub.source}: [newsletter] subject"):
        subject = env.from_string(pub.newsletter.subject).render(
            blog=pub.blog.name,
            date=format_date(date, pub.schedule.timezone),
            count=len(posts),
            more=max(len(posts) - 1, 0),
            first_title=first_title,
            headline=headline(first_title, len(posts), [sec.title for sec in content.sections]),
            topics=", ".join(s.title for s in content.sections),
            number=number or "",
        )
    return clean_line(subject)


def headline(first_title: str, count: int, topics: Sequence[str] = (), limit: int = SUBJECT_CHARS) -> str:
    """A subject a phone shows whole, in whole words, that says it is this week's digest:
    "This week: <first title> and N more" when that fits in `limit` characters, else "This
    week: N new posts on <topics>" (as many topics as fit), else "This week: N new posts".
    With no post (a questions-only issue) `first_title` names what it shows."""
    lead = "This week: "
    candidates: list[str] = []
    if first_title:
        more = count - 1
        candidates.append(lead + first_title + (f" and {more} more" if more > 0 else ""))
    if not count:
        return next((c for c in candidates if len(c) <= limit), lead + "readers' questions, answered")
    posts = f"{count} new post{'s' if count != 1 else ''}"
    for shown in range(len(topics), 0, -1):
        candidates.append(f"{lead}{posts} on {_join(topics[:shown], more=shown < len(topics))}")
    candidates.append(lead + posts)
    return next((c for c in candidates if len(c) <= limit), candidates[-1])


def _join(words: Sequence[str], *, more: bool) -> str:
    """"A, B and C", or "A, B and more" when `more`."""
    items = [*words, "more"] if more else list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def issue_preheader(pub: Publication, content: IssueContent, subject: str) -> str:
    """The preview line inboxes show after the subject: [newsletter] preheader, else what the
    subject does not say (the answered questions first, then the other titles; the first
    post's excerpt when there is nothing else)."""
    if pub.newsletter.preheader:
        return clean_line(pub.newsletter.preheader)
    posts = content.posts
    if not posts:
        return ""
    others = [p for p in (*content.featured, *posts) if p is not posts[0]]
    titles = list(dict.fromkeys(p.title for p in others if p.title not in subject))
    return excerpt(" · ".join(titles) if titles else posts[0].excerpt, PREHEADER_CHARS)


def schedule_label(schedule: ScheduleConfig, *, with_time: bool = True) -> str:
    """When issues come out, as readers say it: "every Monday at 7:00 a.m., New York time"."""
    day = f"every {_DAY_NAMES[schedule.weekday]}"
    if not with_time:
        return day
    hour, minute, _ = schedule.time_of_day
    clock = f"{hour % 12 or 12}:{minute:02d} {'a.m.' if hour < 12 else 'p.m.'}"
    return f"{day} at {clock}, {zone_label(schedule.timezone)}"


def zone_label(zone: str) -> str:
    """An IANA zone as people name it: "America/New_York" -> "New York time"; "UTC" stays."""
    if "/" not in zone:
        return zone
    return zone.rsplit("/", 1)[1].replace("_", " ") + " time"


def render_confirmation(pub: Publication, *, confirm_url: str, env: jinja2.Environment) -> RenderedIssue:
    """The double opt-in mail: subject, HTML (CSS not yet inlined) and text. It takes no
    name: whoever typed the address may not own it, and a name typed into the form ("URGENT:
    verify your account at ...") must never reach a stranger from the blog's address. The
    name greets the reader once the address is confirmed (the welcome mail, the issues)."""
    subject = clean_line(f"Confirm your subscription to {pub.blog.name}")
    context = {
        "blog": pub.blog,
        "subject": subject,
        "greeting": greeting(""),
        "confirm_url": confirm_url,
        "hours": f"{pub.confirm_hours:g}",
    }
    return RenderedIssue(
        subject=subject,
        html=render_file(env, "confirm_email.html.j2", context),
        text=render_file(env, "confirm_email.txt.j2", context),
    )


def render_preferences_link(pub: Publication, *, preferences_url: str, env: jinja2.Environment) -> RenderedIssue:
    """The mail with a fresh settings link, asked for on an expired one's page: no name in
    it either (whoever asked may have been handed the newsletter)."""
    subject = clean_line(f"Your settings link for {pub.blog.name}")
    context = {"blog": pub.blog, "subject": subject, "greeting": greeting(""), "preferences_url": preferences_url,
               "days": f"{pub.preferences_days:g}"}
    return RenderedIssue(subject=subject, html=render_file(env, "preferences_link_email.html.j2", context),
                         text=render_file(env, "preferences_link_email.txt.j2", context))


def render_welcome(pub: Publication, *, name: str, answered: Sequence[Post], preferences_url: str,
                   env: jinja2.Environment) -> RenderedIssue:
    """The welcome mail: subject, HTML (CSS not yet inlined) and text."""
    subject = clean_line(f"Welcome to {pub.blog.name}")
    context = {
        "blog": pub.blog,
        "question": pub.question,
        "replies_welcome": bool(pub.newsletter.reply_to),
        "ask_url": ask_address(pub),  # as in the issue: [question] url, else the Contact page
        "subject": subject,
        "greeting": greeting(name),
        "schedule_label": schedule_label(pub.schedule),
        "topics": list(dict.fromkeys(topic for _, topic in pub.topics)),
        "answered": answered,
        "preferences_url": preferences_url,
        "archive_index_url": f"{pub.base_url}/archive/",
    }
    return RenderedIssue(
        subject=subject,
        html=render_file(env, "welcome_email.html.j2", context),
        text=render_file(env, "welcome_email.txt.j2", context),
    )
