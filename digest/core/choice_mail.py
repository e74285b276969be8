"""Render the mails of readers' choices: the congratulation of "I got the job!" (with the
link to come back), the confirmation a new address gets, the word to a new address that is
already on the list, and the one notice to the old address once the subscription moved.
Pure core: reads templates, no network, no database, no clock, no file writes.
core/compose.py turns them into message templates, as it does the confirmation.

None of them carries a name: the new address is unverified until its link is used, and the
old one may since belong to someone else. The mail to a new address already on the list
says so to that address alone; the page the old address's reader sees is the same either way.
"""

from __future__ import annotations

import jinja2

from .config import Publication
from .models import RenderedIssue
from .sanitize import clean_line
from .templating import render_file

# kind -> (subject, paragraphs, button text); {blog} is the blog's name
_MAILS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "job": ("Congratulations on the new job! - {blog}", (
        "Congratulations on the new job! That is what {blog} is for, and we are glad it worked.",
        "Your newsletter is paused: nothing more comes from us until you come back. When you want it "
        "again (the next search, or to help a friend with theirs), this link starts it where you left off:",
    ), "Start my newsletter again"),
    "address": ("Confirm your new address for {blog}", (
        "Someone asked for the newsletter of {blog} to come to this address instead of the one it goes to now.",
        "If that was you, confirm it: your topics and your other choices come with it. If not, ignore this "
        "message: nothing changes, and the link expires.",
    ), "Move my subscription here"),
    "address-taken": ("Your address and {blog}", (
        "Someone asked for the newsletter of {blog} to come to this address instead of another one.",
        "This address is already on our list, so nothing was moved and nothing changed for it. If you want "
        "the other subscription gone, use the unsubscribe link at the end of any issue it gets.",
    ), ""),
    "address-moved": ("Your subscription to {blog} has moved", (
        "The newsletter of {blog} that came to this address now goes to the new address its reader confirmed.",
        "This is the only message about it this address gets. If you did not ask for this, reply to it and "
        "we will look into it.",
    ), ""),
}
KINDS = tuple(_MAILS)


def render_choice_mail(pub: Publication, kind: str, *, link: str, env: jinja2.Environment) -> RenderedIssue:
    """One of the choices' mails (KINDS), with its one link (or none)."""
    subject, paragraphs, button = _MAILS[kind]
    blog = pub.blog.name
    line = clean_line(subject.format(blog=blog))
    context = {"blog": pub.blog, "subject": line, "greeting": "Hello,",
               "paragraphs": [p.format(blog=blog) for p in paragraphs], "link": link if button else "",
               "button": button}
    return RenderedIssue(subject=line, html=render_file(env, "choice_email.html.j2", context),
                         text=render_file(env, "choice_email.txt.j2", context))
