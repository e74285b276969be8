"""Send the next issue: the job of `digest send` and of the weekly schedule. Layer 3.

In order: fail what has been deferred too long; finish every interrupted issue (rows a
crash or a stop left pending: the crash-recovery promise); by hand, also retry at once
every deferred message of unfinished issues; then build the next issue (build.py), run the
offline deliverability checks on it (preflight.py: a problem stops the run there, with
nothing recorded and nobody mailed; a resumed issue is checked the same way before it goes
on), record it with its audience frozen and the checks' warnings (the ledger) and hand it
to the outbox (deliver.py, outbox.py); last, wait for this run's deferred messages within
[smtp] retry_window_minutes (retry.py). An older issue's deferred messages never hold back
or replace the new week's issue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from ..core.audience import in_weekly_audience, is_paused
from ..core.calendar import StartDecision, decide_on_start
from ..core.compose import subscriber_recipient
from ..core.config import NewsletterConfig, Publication, ScheduleConfig
from ..core.errors import InputError
from ..core.message import make_message_id, sender_domain
from ..core.models import DeliveryStatus
from ..core.questions import Question
from ..core.tokens import Links
from .answers import Linked, feed_state_for_answers, questions_hook
from .build import BuiltIssue, build_issue
from .deliver import SendReport
from .monthly import send_monthly
from .notices import NoticeReport
from .ports import IssueLedger, Progress, SendParts, Subscribers
from .questions import expire
from .retry import Sender, count_line, report_line

__all__ = ["SendOutcome", "count_line", "send_next", "start_decision", "summary"]
log = logging.getLogger("digest.send")


@dataclass(frozen=True)
class DryRun:
    """What a send would do: the subject, the posts, the recipients by the set of topics
    they follow (() is every topic), and a sample message of each set written to a folder."""

    subject: str
    posts: int
    by_topics: dict[tuple[str, ...], int]
    samples: dict[tuple[str, ...], Path]
    skipped: int  # confirmed subscribers whose topics hold nothing this week


@dataclass
class SendOutcome:
    """What a send did: a report for each issue it sent to (older ones first), whether the
    feed had nothing new, or what a dry run built."""

    reports: tuple[SendReport, ...] = ()
    no_posts: bool = False
    not_modified: bool = False
    dry_run: bool = False
    dry_run_messages: int = 0
    dry_run_bytes: int = 0
    dry_run_plan: DryRun | None = None
    warnings: tuple[str, ...] = ()
    answered: tuple[Question, ...] = ()  # readers' questions this run found answered (jobs/answers.py)
    notices: NoticeReport | None = None   # their askers' notices, and those waiting from earlier runs

    @property
    def report(self) -> SendReport | None:
        """The last issue sent to: the new one, else the last one resumed."""
        return self.reports[-1] if self.reports else None

    @property
    def resumed(self) -> bool:
        """True when no new issue went out and an earlier one was sent to."""
        return self.report is not None and self.report.resumed


def send_next(pub: Publication, parts: SendParts, *, feed: str | None = None, dry_run: bool = False,
              progress: Progress | None = None, on_issue: Callable[[str, int], None] | None = None,
              retry_deferred: bool = True, samples_dir: Path | None = None, note: str = "") -> SendOutcome:
    """Finish interrupted issues, retry deferred messages (every one, at once, when
    `retry_deferred`: a run by hand), then build the next issue and send it to every
    confirmed subscriber, with the editor's `note` (Markdown; a resumed issue keeps the note it
    was recorded with). `on_issue(subject, audience)` may abort before an issue is recorded or
    resumed. The parts (the ledger, the outbox and its stop signal, the clock) come from
    the process's wiring (cli/wiring.py)."""
    sender = Sender(pub, parts, progress=progress)
    ledger, store, clock = sender.ledger, parts.store, parts.clock
    if not dry_run:  # a dry run records nothing
        sender.sweep()
        expire(pub.question, parts.questions, clock())
    # What the new issue starts after, read before the unfinished issues: a run that starts
    # while another records this week's issue then either finishes that issue or builds the
    # same one (whose key the other holds) and sends it with the other, never "no new posts".
    last, sent_ids, state = ledger.last_issue(), ledger.sent_post_ids(), ledger.feed_state()
    reports: list[SendReport] = []
    for issue in ledger.unfinished_issues():
        counts = ledger.counts(issue.id)
        interrupted = bool(counts.get(DeliveryStatus.PENDING) or counts.get(DeliveryStatus.SENDING))
        if dry_run:
            if interrupted:  # the next send would finish this one first
                return SendOutcome(reports=(SendReport(issue.id, counts, resumed=True),), dry_run=True)
            continue
        if not interrupted and not (retry_deferred and counts.get(DeliveryStatus.DEFERRED)):
            continue  # deferred rows wait for their time (the retry timer)
        if interrupted and on_issue is not None:
            on_issue(f"{issue.subject} (interrupted earlier)", sum(counts.values()))
        if retry_deferred:
            ledger.retry_now(issue.id, clock())
        reports.append(sender.deliver(issue, resumed=True))
        if reports[-1].paused or reports[-1].cancelled:
            return SendOutcome(reports=tuple(reports))
    now = clock()
    linked = Linked()
    fetched, built = build_issue(pub, parts.fetch, now=now, feed=feed, cutoff=last.cutoff if last else None,
                                 sent_ids=sent_ids,
                                 state=feed_state_for_answers(parts.questions, state) if feed is None else None,
                                 number=ledger.next_issue_id(), note=note,
                                 questions=questions_hook(pub, parts.questions, now=now, record=not dry_run, linked=linked))
    if built is None:
        unused = (f"--note was not used: issue {reports[-1].issue_id} goes out as it was recorded",) \
            if note and reports else ("--note was not used: no new issue",) if note else ()
        if not dry_run and not any(r.paused or r.cancelled for r in reports):
            reports += _monthly(sender, now)
        return SendOutcome(reports=tuple(sender.retry_within_window(reports)), no_posts=True,
                           not_modified=fetched.not_modified, dry_run=dry_run, answered=tuple(linked.answered),
                           notices=None if dry_run else sender.notices(),
                           warnings=(*sender.warnings, *unused, *linked.warnings))
    checked = sender.check(built.composer)  # a problem stops here: nothing recorded, nobody mailed
    if dry_run:
        dry = _dry_run(pub, store, built, sender, now, samples_dir)
        return replace(dry, warnings=(*sender.warnings, *dry.warnings, *linked.warnings))
    if on_issue is not None:  # may abort: nothing is recorded yet
        on_issue(built.rendered.subject, store.count("confirmed"))
    archived = built.composer.archive()
    issue, created = ledger.create_issue(
        key=built.key, now=now, cutoff=max((p.date for p in built.posts if p.date), default=last.cutoff if last else now),
        subject=built.rendered.subject, posts=list(built.posts), html=archived.html, text=archived.text,
        domain=sender_domain(pub.newsletter.from_), state=fetched.state, note=note,
        issue_id=built.composer.number, warnings=checked, after=last.id if last else 0)
    # A fresh issue keeps the composer just built: its every-topic template is not inlined twice.
    # (Unless another run recorded these posts first: that issue goes out as it was recorded.)
    reports.append(sender.deliver(issue, composer=built.composer if created else None))
    halted = reports[-1].paused or reports[-1].cancelled
    if not halted:  # the first weekly send of a month also sends the monthly readers theirs
        reports += _monthly(sender, now)
        halted = reports[-1].paused or reports[-1].cancelled
    warnings = (*sender.warnings, *_warnings(pub.newsletter, built), *linked.warnings)
    if note and not created:
        warnings += (f"--note was not used: issue {issue.id} goes out as it was recorded",)
    return SendOutcome(reports=tuple(sender.retry_within_window(reports)), warnings=warnings,
                       answered=tuple(linked.answered),
                       notices=None if halted else sender.notices())


def _monthly(sender: Sender, now: datetime) -> list[SendReport]:
    """The monthly issues due at this send (jobs/monthly.py), through this run's sender."""
    return send_monthly(sender.pub, sender.ledger, sender.parts.questions,
                        lambda issue, composer: sender.deliver(issue, composer=composer), now, check=sender.check)


def _warnings(newsletter: NewsletterConfig, built: BuiltIssue | None) -> tuple[str, ...]:
    """The fetch's warnings, and the posts that [newsletter] max_posts kept out of the issue."""
    if built is None:
        return ()
    left_out = built.content.left_out
    if not left_out:
        return (*built.fetched.warnings, *built.composer.warnings)
    return (*built.fetched.warnings, *built.composer.warnings,
            f"{left_out} post{'s' if left_out != 1 else ''} left out by [newsletter] max_posts "
            f"({newsletter.max_posts}): the issue links to the blog for them")


def _dry_run(pub: Publication, store: Subscribers, built: BuiltIssue, sender: Sender, now: datetime,
             samples_dir: Path | None) -> SendOutcome:
    """Build every confirmed subscriber's message, send none, record nothing; write the
    first message of each set of topics to `samples_dir`."""
    links = Links(pub.base_url, sender.outbox.secret)
    count = size = skipped = 0
    by_topics: dict[tuple[str, ...], int] = {}
    samples: dict[tuple[str, ...], Path] = {}
    domain = sender_domain(pub.newsletter.from_)
    for sub in store.iter_subscribers("confirmed"):
        if not in_weekly_audience(sub) or is_paused(sub, now):
            continue  # monthly readers get theirs at the month's first send; paused ones nothing (core/audience.py)
        key = tuple(sorted(sub.topics))
        template = built.composer.template(key)
        if template is None:
            skipped += 1
            continue
        message = sender.outbox.build(template, subscriber_recipient(pub, sub, links, now=now),
                                      message_id=make_message_id(domain, "dry-run", sub.id), now=now)
        count, size = count + 1, size + len(message)
        by_topics[key] = by_topics.get(key, 0) + 1
        if samples_dir is not None and key not in samples:
            samples[key] = _write_sample(samples_dir, len(samples) + 1, key, message)
    plan = DryRun(built.rendered.subject, len(built.posts), by_topics, samples, skipped)
    return SendOutcome(dry_run=True, dry_run_messages=count, dry_run_bytes=size, dry_run_plan=plan,
                       warnings=_warnings(pub.newsletter, built))


def _write_sample(folder: Path, n: int, topics: tuple[str, ...], message: bytes) -> Path:
    """One sample message as a .eml file, whole or not at all."""
    name = "every-topic" if not topics else "-".join("".join(c if c.isalnum() else "_" for c in t) for t in topics)
    path = folder / f"{n:02d}-{name[:80]}.eml"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(message)
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"{folder}: cannot write the dry run's sample messages: {exc.strerror}") from exc
    return path


def summary(outcome: SendOutcome) -> str:
    """One line on what a send did."""
    parts = [report_line(r) for r in outcome.reports]
    if outcome.no_posts:
        parts.append("skipped: no new posts" + (" (feed not modified)" if outcome.not_modified else ""))
    elif outcome.dry_run and not outcome.reports:
        parts.append(f"dry run: {outcome.dry_run_messages} messages built")
    if outcome.notices is not None and outcome.notices.counts:
        parts.append(f"answer notices: {count_line(dict(outcome.notices.counts))}")
    return "; ".join(parts)


def start_decision(schedule: ScheduleConfig, ledger: IssueLedger, now: datetime) -> StartDecision:
    """What `serve` does on start about an interrupted issue or a missed week. An issue
    whose only open messages are deferred is not interrupted: the retry timer has it."""
    interrupted = ledger.interrupted_issue()
    last = ledger.last_issue()
    return decide_on_start(schedule, now=now, last_issue_at=last.created_at if last else None,
                           unfinished_at=interrupted.created_at if interrupted else None)
