"""A run's sending, and what becomes of deferred messages. A job (layer 3).

A Sender holds what one run of the program shares between the issues it sends to: the
ledger, the outbox (outbox.py: the mailer, the DKIM signer, the stop signal and the retry
policy of core/retry.py), the progress and one composer per issue. It hands each issue to
deliver_issue (deliver.py), which drains the issue's rows through the outbox.
Deferred messages are tried again

- within the run, after their short backoff, while the next one falls within [smtp]
  retry_window_minutes of the run's start (retry_within_window; the progress shows the
  wait);
- at once by a `digest send` run by hand (send_issue.py makes them due first);
- by `digest serve` every [smtp] retry_interval_minutes (retry_due, its timer's job),
  which never builds an issue;

and each run first fails those still deferred [smtp] give_up_hours after their first
attempt, with their last reply (sweep).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from ..core.compose import Composer, issue_composer
from ..core.config import Publication
from ..core.models import REPORT_ORDER, IssueRecord, open_count
from .answers import issue_questions_for
from .deliver import SendReport, deliver_issue
from .drain import Silent
from .monthly import monthly_questions
from .notices import NoticeReport, send_notices
from .ports import Progress, SendParts
from .preflight import gate

log = logging.getLogger("digest.send")


class Sender:
    """What one run shares between the issues it sends to; see the module's docstring."""

    def __init__(self, pub: Publication, parts: SendParts, *, progress: Progress | None = None) -> None:
        self.pub, self.parts = pub, parts
        self.ledger, self.outbox, self.clock = parts.ledger, parts.outbox, parts.clock
        self.cancel = self.outbox.cancel
        self.progress = progress or Silent()
        self.composers: dict[int, Composer] = {}
        self.warnings: list[str] = []  # the deliverability checks' warnings (preflight.py), for the outcome
        self.deadline = time.monotonic() + self.outbox.policy.window.total_seconds()  # the window counts from the run's start

    def sweep(self) -> int:
        """Fail the messages deferred past [smtp] give_up_hours; finish the issues that leaves done."""
        now = self.clock()
        failed = self.outbox.give_up(self.ledger)
        for issue_id, count in failed.items():
            log.warning("issue %s: %s messages still deferred %g hours after their first attempt failed", issue_id, count,
                        self.outbox.policy.give_up.total_seconds() / 3600)
            self.ledger.finish_if_done(issue_id, now)
        return sum(failed.values())

    def deliver(self, issue: IssueRecord, *, composer: Composer | None = None, deferred_only: bool = False,
                resumed: bool = False) -> SendReport:
        """Send what is due of one issue (only its deferred rows, when `deferred_only`)."""
        if composer is not None:
            self.composers[issue.id] = composer
        elif issue.id not in self.composers:  # a resumed issue: rebuilt with its note and the questions it claimed
            shown = monthly_questions(self.ledger, self.parts.questions, issue) if issue.kind == "monthly" \
                else issue_questions_for(self.parts.questions, issue.key)
            self.composers[issue.id] = issue_composer(self.pub, issue, questions=shown)
        if resumed:  # a new issue was checked before it was recorded (send_issue.py)
            self.check(self.composers[issue.id], unfinished=issue.id)
        counts = self.ledger.counts(issue.id)
        if deferred_only:
            self.progress.begin(f"issue {issue.id}, deferred", counts.get("deferred", 0))
        else:
            self.progress.begin(f"issue {issue.id}", open_count(counts))
        report = deliver_issue(self.outbox, self.pub, issue, ledger=self.ledger, subscribers=self.parts.store,
                               composer=self.composers[issue.id], progress=self.progress, deferred_only=deferred_only)
        return replace(report, resumed=resumed)

    def check(self, composer: Composer, *, unfinished: int | None = None) -> tuple[str, ...]:
        """The offline deliverability checks on an issue about to go out (or, `unfinished`, to
        go on): a problem raises DeliverabilityError before anyone (else) is mailed; warnings
        are kept for the outcome and returned, for the ledger to record with the issue."""
        lines = gate(self.pub, composer.template(), composer.number, self.clock(), unfinished=unfinished)
        for line in lines:
            if line not in self.warnings:
                self.warnings.append(line)
        return lines

    def retry_within_window(self, reports: Sequence[SendReport]) -> list[SendReport]:
        """Wait for the deferred messages of these issues and retry them, while the next one
        falls due within the window; the reports, brought up to date."""
        reports = list(reports)
        ids = [r.issue_id for r in reports]
        while ids and not self.cancel.is_set() and not any(r.paused or r.cancelled for r in reports):
            due, count = self.ledger.next_deferred(ids)
            if due is None:
                break
            wait = max(0.0, (due - self.clock()).total_seconds())
            if time.monotonic() + wait > self.deadline:
                break
            log.info("waiting %.0f s for %s deferred messages", wait, count)
            if not self._wait(wait, count):
                break
            for issue in self.ledger.due_issues(self.clock()):
                if issue.id in ids:
                    i = ids.index(issue.id)
                    reports[i] = self.deliver(issue, deferred_only=True, resumed=reports[i].resumed)
            time.sleep(0.05)  # never a busy loop, whatever the clock says
        return [replace(r, counts=self.ledger.counts(r.issue_id)) for r in reports]

    def _wait(self, seconds: float, deferred: int) -> bool:
        """Wait, telling the progress each second; False when the run is stopped meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.progress.waiting(left, deferred)
            if self.cancel.wait(min(1.0, left)):
                return False
        return True


    def notices(self) -> NoticeReport:
        """The answer notices waiting, through the same outbox."""
        return send_notices(self.outbox, self.pub, self.parts.notices, self.parts.questions)


def retry_due(pub: Publication, parts: SendParts) -> list[SendReport]:
    """The job of `digest serve`'s retry timer: give up what is too old, then send the
    deferred messages whose time has come, in every unfinished issue, then the answer
    notices waiting. Builds no issue."""
    sender = Sender(pub, parts)
    sender.sweep()
    reports: list[SendReport] = []
    for issue in sender.ledger.due_issues(sender.clock()):
        reports.append(sender.deliver(issue, deferred_only=True, resumed=True))
        if reports[-1].paused or reports[-1].cancelled:
            break
    else:  # answer notices left pending or deferred by a send
        sender.notices()
    return reports


def retried_line(reports: Sequence[SendReport]) -> str:
    """One line on a tick of the retry timer ("" when nothing was due)."""
    return "retried " + "; ".join(report_line(r) for r in reports) if reports else ""


def count_line(counts: dict[str, int]) -> str:
    """"3 sent, 1 deferred": the non-zero delivery counts in report order."""
    return ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in REPORT_ORDER if counts.get(s))


def report_line(report: SendReport) -> str:
    """`issue 3 resumed: 12 sent, 1 deferred (paused: ...)`"""
    extra = " (paused: " + report.paused + ")" if report.paused else ""
    extra += " (stopped by a signal)" if report.cancelled else ""
    resumed = " resumed" if report.resumed else ""
    return f"issue {report.issue_id}{resumed}: {count_line(report.counts) or 'no recipients'}{extra}"
