"""Link answers and pick an issue's questions while the issue is built. A job (layer 3):
reads and writes the questions through the QuestionBook port; the send calls it with the feed just
fetched (jobs/build.py's `questions` hook).

In a send (record=True): every accepted question that a fetched post answers (its label
Q-<id>, or the URL given by `digest questions answer`) is marked answered and gets its one
notice queued, in one transaction; then the issue claims the answered questions no
recorded issue features yet, under its key, so that a resumed or rebuilt issue shows the
same ones (issue_questions_for). A preview or dry run (record=False) changes nothing and
shows what the send would. A week with no new post links answers all the same; it makes
a questions-only issue only with [newsletter] quiet_week = "questions" and only when a
question was answered since the last issue (the desk alone does not make one), never
twice for the same questions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..core.answers import MAX_DESK, NO_QUESTIONS, AnswerLink, IssueQuestions, find_answers, issue_questions, label_ids
from ..core.compose import group_issue
from ..core.config import NewsletterConfig, Publication, QuestionConfig
from ..core.message import make_message_id, sender_domain
from ..core.models import FeedState, FetchResult, Post
from ..core.questions import ANSWERED, Question
from .build import issue_key
from .ports import QuestionBook

QuestionsHook = Callable[[FetchResult, Sequence[Post]], IssueQuestions]


@dataclass
class Linked:
    """What a send's linking did: the questions it answered, and labels it could not use."""

    answered: list[Question] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def questions_hook(pub: Publication, questions: QuestionBook, *, now: datetime, record: bool,
                   linked: Linked | None = None) -> QuestionsHook:
    """The hook jobs/build.py calls with the fetched feed and the issue's posts; it returns
    the questions the issue shows. `linked` collects what was linked (for the send's report)."""
    found = linked if linked is not None else Linked()

    def hook(fetched: FetchResult, posts: Sequence[Post]) -> IssueQuestions:
        everything = {p.id: p for p in (*fetched.posts, *posts)}.values()
        links = _answers(pub.question, questions, list(everything), found)
        quiet = not posts
        if quiet and pub.newsletter.quiet_week != "questions":
            if record:
                found.answered += questions.mark_answered(links, now, _message_id(pub.newsletter))
            return NO_QUESTIONS
        if not record:  # what the send would show: the planned answers off the desk, as marking takes them
            planned = [_as_answered(q, link, now) for q, link in _pairs(questions, links)]
            desk = questions.desk(MAX_DESK + len(planned))
            shown = issue_questions([*questions.unfeatured(), *planned], desk)
            return NO_QUESTIONS if quiet and not shown.answered else shown
        found.answered += questions.mark_answered(links, now, _message_id(pub.newsletter))
        desk = questions.desk(MAX_DESK)  # read after marking: a question answered now is not "On the desk"
        if not quiet:  # the key the issue is recorded with: its posts as grouped (max_posts may leave some out)
            key = issue_key(group_issue(pub, posts).posts)
            return issue_questions(questions.claim_features(key, now), desk)
        candidates = issue_questions(questions.unfeatured(), desk)
        if not candidates.answered or questions.issue_exists(candidates.key):
            return NO_QUESTIONS  # nothing newly answered: "On the desk" alone is no reason to write
        return issue_questions(questions.claim_features(candidates.key, now), desk)

    return hook


def feed_state_for_answers(questions: QuestionBook, state: FeedState | None) -> FeedState | None:
    """The validators for the send's feed fetch, or None (fetch it whole) while a question
    waits for its answer: the answer post may be older than the feed's last change (the
    author accepted the question, or gave its URL, after publishing it), and a feed that
    answers "not modified" shows no post to link."""
    return None if state is not None and questions.awaiting_answers() else state


def issue_questions_for(questions: QuestionBook, key: str) -> IssueQuestions:
    """The questions of the issue recorded under `key`, to build it again (a resumed send)."""
    return issue_questions(questions.featured(key), questions.desk(MAX_DESK))


def _answers(question: QuestionConfig, questions: QuestionBook, posts: list[Post], found: Linked) -> list[AnswerLink]:
    prefix = question.answer_label_prefix
    named = {qid for p in posts for qid in label_ids(p.labels, prefix)}
    search = find_answers(questions.accepted(), posts, prefix, statuses=questions.statuses(named))
    found.warnings += [w for w in search.warnings if w not in found.warnings]
    return list(search.links)


def _pairs(questions: QuestionBook, links: list[AnswerLink]) -> list[tuple[Question, AnswerLink]]:
    return [(q, link) for link in links if (q := questions.get(link.question_id)) is not None]


def _as_answered(question: Question, link: AnswerLink, now: datetime) -> Question:
    return replace(question, status=ANSWERED, answered_at=now, answer_url=link.post.link, answer_title=link.post.title)


def _message_id(newsletter: NewsletterConfig) -> Callable[[int], str]:
    domain = sender_domain(newsletter.from_)
    return lambda question_id: make_message_id(domain, "answer", question_id)
