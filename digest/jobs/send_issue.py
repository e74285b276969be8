"""Send the next issue: the job of `digest send` and of the weekly schedule. Layer 3.

Finishes an unfinished issue first; else builds the next one (build.py), records it with
its audience frozen (the ledger) and hands it to the Deliverer (deliver.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..adapters.ledger import Ledger
from ..adapters.smtp import SMTPMailer
from ..adapters.store import Store, open_store
from ..core.calendar import StartDecision, decide_on_start
from ..core.compose import subscriber_recipient
from ..core.config import Config
from ..core.errors import ConfigError, DigestError
from ..core.message import build_message, make_message_id, sender_domain
from ..core.models import REPORT_ORDER
from ..core.sign import Signer
from ..core.tokens import Links, require_secret
from .build import BuiltIssue, build_issue
from .deliver import Deliverer, SendReport
from .ports import Mailer

log = logging.getLogger("digest.send")


def load_signer(config: Config) -> Signer | None:
    n = config.newsletter
    if not n.dkim_selector:
        return None
    try:
        key = Path(n.dkim_key_file).read_bytes()
    except OSError as exc:
        raise ConfigError(str(config.path), f"[newsletter] dkim_key_file {n.dkim_key_file!r} cannot be read: {exc.strerror}") from exc
    return Signer(n.dkim_selector, sender_domain(n.from_), key)


@dataclass
class SendOutcome:
    """What `digest send` did: nothing new, a dry run, or a (resumed) issue's report."""

    no_posts: bool = False
    not_modified: bool = False
    resumed: bool = False
    dry_run_messages: int = 0
    dry_run_bytes: int = 0
    report: SendReport | None = None
    warnings: tuple[str, ...] = ()


def send_next(config: Config, store: Store, *, clock: Callable[[], datetime], feed: str | None = None,
              dry_run: bool = False, progress: Callable[[str], None] | None = None,
              on_issue: Callable[[str, int], None] | None = None,
              cancel: threading.Event | None = None, mailer: Mailer | None = None, note: str = "") -> SendOutcome:
    """Finish an unfinished issue, else build the next one (with the editor's `note`, Markdown)
    and send it to every confirmed subscriber. A resumed issue keeps the note it was recorded with."""
    secret = require_secret(config)
    signer = load_signer(config)
    ledger = Ledger(store)
    issue = ledger.unfinished_issue()
    built: BuiltIssue | None = None
    created = False
    if issue is None:
        now = clock()
        last = ledger.last_issue()
        fetched, built = build_issue(config, now=now, feed=feed, cutoff=last.cutoff if last else None,
                                     sent_ids=ledger.sent_post_ids(), state=ledger.feed_state() if feed is None else None,
                                     number=ledger.next_issue_id(), note=note)
        if built is None:
            return SendOutcome(no_posts=True, not_modified=fetched.not_modified)
        if dry_run:
            return _dry_run(config, store, built, secret, now, signer)
        if on_issue is not None:  # may abort: nothing is recorded yet
            on_issue(built.rendered.subject, store.count("confirmed"))
        archived = built.composer.archive()
        issue, created = ledger.create_issue(
            key=built.key, now=now, cutoff=max((p.date for p in built.posts if p.date), default=now),
            subject=built.rendered.subject, posts=list(built.posts), html=archived.html, text=archived.text,
            domain=sender_domain(config.newsletter.from_), state=fetched.state, note=note,
            issue_id=built.composer.number)
    elif dry_run:
        return SendOutcome(resumed=True, report=SendReport(issue.id, ledger.counts(issue.id)))
    elif on_issue is not None:
        on_issue(f"{issue.subject} (interrupted earlier)", sum(ledger.counts(issue.id).values()))
    # A fresh issue keeps the composer just built: its every-topic template is not inlined twice.
    # (Unless another run recorded these posts first: that issue goes out as it was recorded.)
    composer = built.composer if built is not None and created else None
    report = Deliverer(config, issue, ledger=ledger, subscribers=store, mailer=mailer or SMTPMailer(config.smtp),
                       secret=secret, clock=clock, composer=composer, progress=progress,
                       signer=signer, cancel=cancel).run()
    warnings = _warnings(config, built)
    if note and composer is None:
        warnings += (f"--note was not used: issue {issue.id} goes out as it was recorded",)
    return SendOutcome(resumed=built is None, report=report, warnings=warnings)


def _warnings(config: Config, built: BuiltIssue | None) -> tuple[str, ...]:
    """The fetch's warnings, and the posts that [newsletter] max_posts kept out of the issue."""
    if built is None:
        return ()
    left_out = built.content.left_out
    if not left_out:
        return built.fetched.warnings
    return (*built.fetched.warnings, f"{left_out} post{'s' if left_out != 1 else ''} left out by [newsletter] max_posts "
                                     f"({config.newsletter.max_posts}): the issue links to the blog for them")


def _dry_run(config: Config, store: Store, built: BuiltIssue, secret: str, now: datetime, signer: Signer | None) -> SendOutcome:
    """Build every confirmed subscriber's message, send none, record nothing."""
    links = Links(config.web.base_url, secret)
    count = size = 0
    domain = sender_domain(config.newsletter.from_)
    for sub in store.iter_subscribers("confirmed"):
        template = built.composer.template(sub.topics)
        if template is None:
            continue
        message = build_message(template, subscriber_recipient(config, sub, links, now=now),
                                message_id=make_message_id(domain, "dry-run", sub.id), date=now)
        if signer is not None:
            message = signer.sign(message)
        count, size = count + 1, size + len(message)
    return SendOutcome(dry_run_messages=count, dry_run_bytes=size, warnings=_warnings(config, built))


def run_logged(config: Config, *, cancel: threading.Event | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> str:
    """One scheduled send, the same path as `digest send`; returns (and logs) one line."""
    try:
        with open_store(config) as store:
            outcome = send_next(config, store, clock=clock, cancel=cancel)
    except DigestError as exc:
        line = f"send failed: {exc}"
        log.error(line)
        return line
    line = summary(outcome)
    log.info(line)
    return line


def count_line(counts: dict[str, int]) -> str:
    """"3 sent, 1 deferred": the non-zero delivery counts in report order."""
    return ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in REPORT_ORDER if counts.get(s))


def summary(outcome: SendOutcome) -> str:
    """One line on what a send did."""
    if outcome.no_posts:
        return "skipped: no new posts" + (" (feed not modified)" if outcome.not_modified else "")
    if outcome.report is None:
        return f"dry run: {outcome.dry_run_messages} messages built"
    extra = " (paused: " + outcome.report.paused + ")" if outcome.report.paused else ""
    extra += " (stopped by a signal)" if outcome.report.cancelled else ""
    resumed = " resumed" if outcome.resumed else ""
    return f"issue {outcome.report.issue_id}{resumed}: {count_line(outcome.report.counts) or 'no recipients'}{extra}"


def start_decision(config: Config, store: Store, now: datetime) -> StartDecision:
    """What `serve` does on start about an interrupted issue or a missed week."""
    ledger = Ledger(store)
    unfinished = ledger.unfinished_issue()
    last = ledger.last_issue()
    return decide_on_start(config.schedule, now=now, last_issue_at=last.created_at if last else None,
                           unfinished_at=unfinished.created_at if unfinished else None)
