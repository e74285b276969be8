"""The questions mail: new readers' questions, mailed to the author at most once a day
([author] questions_digest = "daily"), each with a link to accept (the paraphrase filled
in with the text) or decline it on the desk. A job (layer 3): through the outbox, claimed
before it goes (adapters/author.py), as every author mail.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from ..core.compose import prepare
from ..core.config import AuthorConfig, Publication
from ..core.desk import author_mail, desk_on
from ..core.message import Recipient
from ..core.questions import Question
from .ports import AuthorParts

KIND = "questions"


def asker_label(question: Question) -> str:
    """The asker as the author's mail names them: their first name, else "a reader"."""
    words = (question.name or "").split()
    return words[0] if words else "a reader"


def question_lines(pub: Publication, fresh: list[Question]) -> list[str]:
    lines = [f"{len(fresh)} new question{'s' if len(fresh) != 1 else ''} from your readers:", ""]
    for q in fresh:
        lines += [f"Question {q.id}, from {asker_label(q)} (via {q.source}):", q.text,
                  f"Accept or decline it: {pub.base_url}/desk/questions/{q.id}", ""]
    return lines


def mail_questions(pub: Publication, author: AuthorConfig, parts: AuthorParts) -> str:
    """Mail the author the questions that came since the last questions mail, once a day at
    most; one line on what was done ("" when nothing was due)."""
    if not desk_on(author) or author.questions_digest != "daily":
        return ""
    now = parts.clock()
    since = parts.author.last_mail(KIND)
    fresh = [q for q in parts.questions.listed("new") if since is None or q.created_at > since]
    if not fresh:
        return ""
    day = now.astimezone(ZoneInfo(pub.schedule.timezone)).date().isoformat()
    if not parts.author.claim_mail(KIND, day, now):
        return ""  # today's went; these wait for tomorrow's
    template = prepare(pub, author_mail(f"{len(fresh)} new reader question{'s' if len(fresh) != 1 else ''}",
                                           question_lines(pub, fresh)), bulk=False)
    sent = parts.outbox.send_now(template, Recipient(author.email), kind=KIND, ref=None, now=now)
    parts.author.settle_mail(KIND, day, "sent" if sent.refusal is None else "failed", now)
    return f"questions mail: {len(fresh)} to {author.email}" + (f" ({sent.refusal})" if sent.refusal else "")
