"""Render an issue's HTML, text and subject with Jinja2. Pure core: reads templates,
no network, no database, no clock (the issue date comes in), no file writes.

Per-subscriber values are not known here: the output carries PLACEHOLDERS, which the
message builder replaces (escaped) for each recipient, so that CSS is inlined once.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import jinja2

from .answers import NO_QUESTIONS, IssueQuestions
from .config import Config
from .models import PLACEHOLDERS, IssueContent, RenderedIssue
from .sanitize import clean_line

_PACKAGE = Path(__file__).resolve().parent.parent


def _builtin_templates() -> Path:
    """The built-in templates: inside the package in an installed wheel (the build maps the
    top-level templates/ folder to digest/templates), else the source tree's templates/."""
    installed = _PACKAGE / "templates"
    return installed if (installed / "issue.html.j2").is_file() else _PACKAGE.parent / "templates"


BUILTIN_TEMPLATES = _builtin_templates()


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
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["post_date"] = format_date
    env.filters["wrap"] = lambda text: textwrap.fill(str(text), width=72)
    return env


def format_date(value: datetime | None) -> str:
    """A date as readers write it: 23 November 2026."""
    return f"{value.day} {value:%B %Y}" if value else ""


def render_issue(content: IssueContent, config: Config, *, date: datetime, env: jinja2.Environment,
                 questions: IssueQuestions = NO_QUESTIONS) -> RenderedIssue:
    """The issue's subject, HTML (CSS not yet inlined) and text; `questions`: the readers'
    questions it shows (answered since the last issue, "On the desk")."""
    posts = content.posts
    headline = questions.headline if questions and not posts else ""  # a questions-only issue
    subject = render_subject(config, content, date, env, fallback_title=headline)
    preheader = config.newsletter.preheader or "; ".join(p.title for p in posts[:3]) or headline
    context = {
        "blog": config.blog,
        "question": config.question,
        "sections": content.sections,
        "featured": content.featured,
        "post_count": len(posts),
        "date_label": format_date(date),
        "subject": subject,
        "preheader": preheader,
        "placeholders": PLACEHOLDERS,
        "answered_questions": questions.answered,
        "desk_questions": questions.desk,
    }
    html = env.get_template("issue.html.j2").render(context)
    text = env.get_template("issue.txt.j2").render(context)
    return RenderedIssue(subject=subject, html=html, text=text, preheader=preheader)


def render_subject(config: Config, content: IssueContent, date: datetime, env: jinja2.Environment,
                   fallback_title: str = "") -> str:
    """The [newsletter] subject template rendered as one clean line (`fallback_title` is
    first_title when the issue has no post)."""
    posts = content.posts
    template = env.from_string(config.newsletter.subject)
    subject = template.render(
        blog=config.blog.name,
        date=format_date(date),
        count=len(posts),
        first_title=posts[0].title if posts else fallback_title,
        topics=", ".join(s.title for s in content.sections),
    )
    return clean_line(subject)


def render_confirmation(config: Config, *, name: str, confirm_url: str, env: jinja2.Environment) -> RenderedIssue:
    """The double opt-in mail: subject, HTML (CSS not yet inlined) and text."""
    subject = clean_line(f"Confirm your subscription to {config.blog.name}")
    context = {
        "blog": config.blog,
        "subject": subject,
        "greeting": f"Hi {clean_line(name)}," if clean_line(name) else "Hello,",
        "confirm_url": confirm_url,
        "hours": f"{config.web.confirm_hours:g}",
    }
    return RenderedIssue(
        subject=subject,
        html=env.get_template("confirm_email.html.j2").render(context),
        text=env.get_template("confirm_email.txt.j2").render(context),
    )
