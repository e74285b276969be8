"""The monthly issues: at the first weekly send of each calendar month, one issue per group
of monthly readers holding every post since their last issue (core/audience.py says who and
which posts). A job (layer 3), run by send_issue.py after the weekly issue, through the
ports in ports.py; the monthly issues go through the same ledger and sender as the weekly
one, so the crash promise is the weekly one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..core.answers import MAX_DESK, IssueQuestions, issue_questions
from ..core.audience import month_of, month_start, monthly_groups, monthly_key
from ..core.compose import Composer
from ..core.config import Publication
from ..core.message import sender_domain
from ..core.models import IssueRecord, Post
from .books import FeaturedQuestions, MonthlyBook
from .deliver import SendReport

Deliver = Callable[[IssueRecord, Composer | None], SendReport]


def gathered(ledger: MonthlyBook, since: int | None, upto: int | None = None) -> list[IssueRecord]:
    """The weekly issues after issue `since` (and before issue `upto`): a monthly issue's sources."""
    return [i for i in ledger.weekly_issues_after(since) if upto is None or i.id < upto]


def monthly_questions(ledger: MonthlyBook, questions: FeaturedQuestions, issue: IssueRecord) -> IssueQuestions:
    """The questions a recorded monthly issue shows (to build it again): those its weekly sources featured."""
    since = int(issue.key.rsplit("-", 1)[1]) or None
    return _questions(questions, gathered(ledger, since, issue.id))


def _questions(questions: FeaturedQuestions, sources: list[IssueRecord]) -> IssueQuestions:
    return issue_questions([q for i in sources for q in questions.featured(i.key)], questions.desk(MAX_DESK))


def _posts(sources: list[IssueRecord]) -> list[Post]:
    seen: set[str] = set()
    posts = []
    for issue in sources:
        for post in issue.posts:
            if post.id not in seen:
                seen.add(post.id)
                posts.append(post)
    return posts


def send_monthly(pub: Publication, ledger: MonthlyBook, questions: FeaturedQuestions, deliver: Deliver,
                 now: datetime, check: Callable[[Composer], tuple[str, ...]] | None = None) -> list[SendReport]:
    """Record and send (`deliver`) the monthly issues due at `now`; their reports (none when none is due).
    `check` runs the offline deliverability checks on each before it is recorded (preflight.py);
    their warnings are recorded with it."""
    tz = pub.schedule.timezone
    month = month_of(now, tz)
    first_send = ledger.first_issue_since(month_start(now, tz)) or now
    groups = monthly_groups(ledger.monthly_readers(monthly_key(month, None)[:-1]), first_send, now)
    reports: list[SendReport] = []
    for since in sorted(groups, key=lambda s: s or 0):
        sources = gathered(ledger, since)
        posts = _posts(sources)
        shown = _questions(questions, sources)
        if not posts and not shown.answered:
            continue  # nothing new since their last issue: the next send of the month that has some
        number = ledger.next_issue_id()
        composer = Composer(pub, posts, created_at=now, number=number, questions=shown, monthly=True)
        rendered = composer.render()
        if rendered is None:
            continue
        checked = check(composer) if check is not None else ()  # a problem stops here: not recorded, nobody mailed
        archived = composer.archive()
        issue, created = ledger.create_issue(
            key=monthly_key(month, since), now=now, cutoff=max((p.date for p in posts if p.date), default=now),
            subject=rendered.subject, posts=posts, html=archived.html, text=archived.text,
            domain=sender_domain(pub.newsletter.from_), state=None, issue_id=number, kind="monthly",
            members=groups[since], warnings=checked)
        reports.append(deliver(issue, composer if created else None))
        if reports[-1].paused or reports[-1].cancelled:
            break
    return reports
