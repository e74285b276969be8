"""Which posts answer which questions, and what an issue shows of them. Pure core: no
network, no database, no clock (times come in), no file writes.

A post answers question 17 when one of its labels is [question] answer_label_prefix + 17
("Q-17", compared as labels are: case and Unicode form aside), or when its link is the
URL the author gave with `digest questions answer 17 URL` (compared without scheme, "www.",
a trailing slash, Blogger's ?m=1 or a #fragment). Only accepted questions are answered.

What an issue shows is public: the author's paraphrase (or, only when the asker agreed to
be quoted, their words with every address and their name taken out), the display name
they chose (only when they agreed), the answer's title and link. Never the asker's
address or name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from .group import label_key
from .models import Post
from .questions import ACCEPTED, ANSWERED, Question, scrub

MAX_DESK = 5  # "On the desk" lists at most this many questions


@dataclass(frozen=True, slots=True)
class AnswerLink:
    """Question `question_id` is answered by `post`; `how`: "label" or "link"."""

    question_id: int
    post: Post
    how: str


@dataclass(frozen=True, slots=True)
class AnswerSearch:
    """The answers found in a feed, and labels that name a question that cannot be answered."""

    links: tuple[AnswerLink, ...] = ()
    warnings: tuple[str, ...] = ()


def label_ids(labels: Iterable[str], prefix: str) -> set[int]:
    """The question ids that labels like "Q-17" name."""
    start = label_key(prefix)
    ids: set[int] = set()
    for label in labels:
        key = label_key(label)
        rest = key[len(start):].strip()
        if start and key.startswith(start) and rest.isascii() and rest.isdigit() and 0 < int(rest) < 2**31:
            ids.add(int(rest))
    return ids


def link_key(url: str) -> str:
    """A post's address as the same post, however it was written down."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "m"])
    path = parts.path.rstrip("/")
    return f"{host}{path}" + (f"?{query}" if query else "")


def find_answers(questions: Iterable[Question], posts: Sequence[Post], prefix: str,
                 statuses: dict[int, str] | None = None) -> AnswerSearch:
    """The accepted `questions` that `posts` answer, one post each (a link the author gave
    wins over a label; else the oldest labelled post). `statuses` maps the ids the labels
    name to their questions' status, to warn about a label naming a question that is not
    accepted or does not exist."""
    accepted = {q.id: q for q in questions if q.status == ACCEPTED}
    by_link = {link_key(q.answer_url): q.id for q in accepted.values() if q.answer_url}
    statuses = statuses or {}
    found: dict[int, AnswerLink] = {}
    warnings: list[str] = []
    for post in sorted(posts, key=lambda p: (p.date is None, p.date.timestamp() if p.date else 0.0)):
        if not post.link:
            continue  # nowhere to send the asker
        linked = by_link.get(link_key(post.link)) if post.link else None
        if linked is not None and (linked not in found or found[linked].how != "link"):
            found[linked] = AnswerLink(linked, post, "link")
        for qid in sorted(label_ids(post.labels, prefix)):
            status = ACCEPTED if qid in accepted else statuses.get(qid)
            if status == ACCEPTED:
                found.setdefault(qid, AnswerLink(qid, post, "label"))
            elif status is None:
                warnings.append(f"the post {post.title!r} is labelled {prefix}{qid}, but there is no question {qid}")
            elif status != ANSWERED:
                warnings.append(f"the post {post.title!r} is labelled {prefix}{qid}, but question {qid} is {status}: "
                                f"accept it (digest questions accept {qid}) to link it")
    return AnswerSearch(tuple(found[k] for k in sorted(found)), tuple(dict.fromkeys(warnings)))


# ---- what an issue shows ----

@dataclass(frozen=True, slots=True)
class AnsweredQuestion:
    """One answered question as the newsletter shows it."""

    text: str    # the paraphrase, or the asker's words when they agreed to be quoted; may be ""
    asker: str   # the display name they chose, when they agreed to be quoted; else ""
    title: str   # the answer post's title
    link: str    # the answer post's address


@dataclass(frozen=True, slots=True)
class DeskQuestion:
    """An accepted question, not answered yet, that its asker agreed to have mentioned."""

    text: str
    asker: str


@dataclass(frozen=True, slots=True)
class IssueQuestions:
    """The questions of one issue: those answered since the last issue, and "On the desk"."""

    answered: tuple[AnsweredQuestion, ...] = ()
    desk: tuple[DeskQuestion, ...] = ()
    ids: tuple[int, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return bool(self.answered or self.desk)

    @property
    def key(self) -> str:
        """The issue key of a questions-only issue: the same questions never go out twice."""
        return hashlib.sha256(("questions\n" + "\n".join(map(str, sorted(self.ids)))).encode()).hexdigest()

    @property
    def headline(self) -> str:
        """What a questions-only issue's subject names in place of a post title."""
        if self.answered:
            return self.answered[0].title or "Readers asked, we answered"
        return "On the desk: readers' questions"


NO_QUESTIONS = IssueQuestions()


def publishable(question: Question) -> str:
    """The words the newsletter may print: the paraphrase; else, if the asker agreed to be
    quoted, their own words with addresses and their name taken out; else nothing."""
    if question.paraphrase:
        return question.paraphrase
    if question.consent_to_quote and question.text:
        return scrub(question.text, email=question.email, name=question.name)
    return ""


def asker_label(question: Question) -> str:
    """The name the newsletter may print: the display name, only with consent to quote."""
    return question.display_name if question.consent_to_quote else ""


def issue_questions(answered: Sequence[Question], desk: Sequence[Question]) -> IssueQuestions:
    """The questions an issue shows: the answered ones (with their answer), and up to
    MAX_DESK accepted ones whose askers agreed to be quoted and that have words to show,
    none of them answered in this issue."""
    shown = [q for q in answered if q.status == ANSWERED and q.answer_url]
    answered_ids = {q.id for q in shown}  # a question answered in this issue is no longer on the desk
    waiting = [q for q in desk if q.status == ACCEPTED and q.consent_to_quote and publishable(q)
               and q.id not in answered_ids][:MAX_DESK]
    return IssueQuestions(
        answered=tuple(AnsweredQuestion(publishable(q), asker_label(q), q.answer_title or q.answer_url, q.answer_url)
                       for q in shown),
        desk=tuple(DeskQuestion(publishable(q), asker_label(q)) for q in waiting),
        ids=tuple(q.id for q in (*shown, *waiting)),
    )
