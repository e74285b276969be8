"""A run's sending, and what becomes of deferred messages. A job (layer 3).

A Sender holds what one run of the program shares between the issues it sends to: the
ledger, the mailer, the DKIM signer, the progress, the stop signal, one composer per issue
and the retry policy (core/retry.py). It hands each issue to a Deliverer (deliver.py).
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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..adapters.ledger import Ledger
from ..adapters.secret import load_or_create_secret
from ..adapters.smtp import SMTPMailer
from ..adapters.store import Store, open_store
from ..core.compose import Composer
from ..core.config import Config
from ..core.errors import ConfigError, DigestError
from ..core.message import sender_domain
from ..core.models import REPORT_ORDER, IssueRecord, open_count
from ..core.retry import BACKOFF, RetryPolicy
from ..core.sign import Signer
from .answers import issue_questions_for
from .deliver import Deliverer, SendReport, Silent
from .notices import send_notices
from .ports import Mailer, Progress
from .preflight import gate

log = logging.getLogger("digest.send")
Clock = Callable[[], datetime]


def load_signer(config: Config) -> Signer | None:
    n = config.newsletter
    if not n.dkim_selector:
        return None
    try:
        key = Path(n.dkim_key_file).read_bytes()
    except OSError as exc:
        raise ConfigError(str(config.path), f"[newsletter] dkim_key_file {n.dkim_key_file!r} cannot be read: {exc.strerror}") from exc
    return Signer(n.dkim_selector, sender_domain(n.from_), key)


class Sender:
    """What one run shares between the issues it sends to; see the module's docstring."""

    def __init__(self, config: Config, store: Store, *, clock: Clock, mailer: Mailer | None = None,
                 progress: Progress | None = None, cancel: threading.Event | None = None,
                 backoff: Sequence[timedelta] = BACKOFF) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.ledger = Ledger(store)
        self.secret = load_or_create_secret(config)
        self.signer = load_signer(config)
        self.mailer = mailer or SMTPMailer(config.smtp)
        self.progress = progress or Silent()
        self.cancel = cancel or threading.Event()
        self.policy = RetryPolicy.of(config.smtp, backoff)
        self.composers: dict[int, Composer] = {}
        self.warnings: list[str] = []  # the deliverability checks' warnings (preflight.py), for the outcome
        self.deadline = time.monotonic() + self.policy.window.total_seconds()  # the window counts from the run's start

    def sweep(self) -> int:
        """Fail the messages deferred past [smtp] give_up_hours; finish the issues that leaves done."""
        now = self.clock()
        failed = self.ledger.give_up(self.policy.give_up_before(now), self.policy.gave_up, now)
        for issue_id, count in failed.items():
            log.warning("issue %s: %s messages still deferred %g hours after their first attempt failed", issue_id, count,
                        self.policy.give_up.total_seconds() / 3600)
            self.ledger.finish_if_done(issue_id, now)
        return sum(failed.values())

    def deliver(self, issue: IssueRecord, *, composer: Composer | None = None, deferred_only: bool = False,
                resumed: bool = False) -> SendReport:
        """Send what is due of one issue (only its deferred rows, when `deferred_only`)."""
        if composer is not None:
            self.composers[issue.id] = composer
        elif issue.id not in self.composers:  # a resumed issue: rebuilt with its note and the questions it claimed
            self.composers[issue.id] = Composer(self.config, issue.posts, created_at=issue.created_at, number=issue.id,
                                                note=issue.note,
                                                questions=issue_questions_for(self.config, self.store, issue.key))
        if resumed:  # a new issue was checked before it was recorded (send_issue.py)
            self.check(self.composers[issue.id])
        counts = self.ledger.counts(issue.id)
        if deferred_only:
            self.progress.begin(f"issue {issue.id}, deferred", counts.get("deferred", 0))
        else:
            self.progress.begin(f"issue {issue.id}", open_count(counts))
        report = Deliverer(self.config, issue, ledger=self.ledger, subscribers=self.store, mailer=self.mailer,
                           secret=self.secret, clock=self.clock, composer=self.composers[issue.id],
                           progress=self.progress, signer=self.signer, cancel=self.cancel, policy=self.policy,
                           deferred_only=deferred_only).run()
        return replace(report, resumed=resumed)

    def check(self, composer: Composer) -> None:
        """The offline deliverability checks on an issue about to go out: a problem raises
        DeliverabilityError before anyone is mailed; warnings are kept for the outcome."""
        for line in gate(self.config, composer.template(), composer.number, self.clock()):
            if line not in self.warnings:
                self.warnings.append(line)

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


def retry_due(config: Config, store: Store, *, clock: Clock, cancel: threading.Event | None = None,
              mailer: Mailer | None = None, backoff: Sequence[timedelta] = BACKOFF) -> list[SendReport]:
    """The job of `digest serve`'s retry timer: give up what is too old, then send the
    deferred messages whose time has come, in every unfinished issue. Builds no issue."""
    sender = Sender(config, store, clock=clock, mailer=mailer, cancel=cancel, backoff=backoff)
    sender.sweep()
    reports: list[SendReport] = []
    for issue in sender.ledger.due_issues(clock()):
        reports.append(sender.deliver(issue, deferred_only=True, resumed=True))
        if reports[-1].paused or reports[-1].cancelled:
            break
    else:  # answer notices left pending or deferred by a send
        send_notices(config, store, clock=clock, mailer=sender.mailer, policy=sender.policy, signer=sender.signer,
                     cancel=sender.cancel)
    return reports


def run_logged(config: Config, *, cancel: threading.Event | None = None,
               clock: Clock = lambda: datetime.now(timezone.utc)) -> str:
    """One tick of the retry timer; returns (and logs) one line, or "" when nothing was due."""
    try:
        with open_store(config) as store:
            reports = retry_due(config, store, clock=clock, cancel=cancel)
    except DigestError as exc:
        line = f"retry failed: {exc}"
        log.error(line)
        return line
    if not reports:
        return ""
    line = "retried " + "; ".join(report_line(r) for r in reports)
    log.info(line)
    return line


def count_line(counts: dict[str, int]) -> str:
    """"3 sent, 1 deferred": the non-zero delivery counts in report order."""
    return ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in REPORT_ORDER if counts.get(s))


def report_line(report: SendReport) -> str:
    """`issue 3 resumed: 12 sent, 1 deferred (paused: ...)`"""
    extra = " (paused: " + report.paused + ")" if report.paused else ""
    extra += " (stopped by a signal)" if report.cancelled else ""
    resumed = " resumed" if report.resumed else ""
    return f"issue {report.issue_id}{resumed}: {count_line(report.counts) or 'no recipients'}{extra}"
