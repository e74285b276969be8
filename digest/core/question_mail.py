"""Render the two mails an asker gets: the acknowledgement of their question and the notice
that it was answered. Pure core: reads templates, no network, no database, no clock, no
file writes. core/compose.py turns them into message templates.

Neither mail repeats what the asker wrote, nor the name they typed: the address a form
takes is unverified, and a stranger's text mailed to someone else's address would make
the form a way to send anything to anyone (an unverified address is the same abuse vector as a
subscribe form without double opt-in). The notice may show the
author's paraphrase, which is published anyway.
"""

from __future__ import annotations

import jinja2

from .config import Publication
from .models import RenderedIssue
from .questions import Question
from .render import format_date
from .sanitize import clean_line


def render_acknowledgement(pub: Publication, *, env: jinja2.Environment) -> RenderedIssue:
    """The acknowledgement: received, what happens next, how to withdraw."""
    subject = clean_line(f"We received your question - {pub.blog.name}")
    context = {"blog": pub.blog, "question": pub.question, "subject": subject,
               "subscribe_url": f"{pub.base_url}/subscribe"}
    return RenderedIssue(subject=subject, html=env.get_template("question_ack.html.j2").render(context),
                         text=env.get_template("question_ack.txt.j2").render(context))


def render_answer_notice(pub: Publication, question: Question, *, env: jinja2.Environment) -> RenderedIssue:
    """The notice: the question was answered, here is the post."""
    subject = clean_line(f"Your question has been answered - {pub.blog.name}")
    context = {"blog": pub.blog, "subject": subject, "title": clean_line(question.answer_title),
               "link": question.answer_url, "paraphrase": clean_line(question.paraphrase),
               "asked_on": format_date(question.created_at, pub.schedule.timezone),
               "subscribe_url": f"{pub.base_url}/subscribe"}
    return RenderedIssue(subject=subject, html=env.get_template("answer_notice.html.j2").render(context),
                         text=env.get_template("answer_notice.txt.j2").render(context))
