"""Send the next issue: the job of `digest send` and of the weekly schedule. Layer 3.

Finishes an unfinished issue first; else builds the next one (pipeline.py), records it
with its audience frozen (ledger.py) and hands it to the Deliverer (delivery.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import Config
from .delivery import Deliverer, SendReport, Variants
from .errors import ConfigError, DigestError
from .ledger import IssueRecord, Ledger
from .message import Recipient, build_message, make_message_id, personalise, sender_domain
from .models import Post
from .pipeline import BuiltIssue, assemble_issue, fetch_new_posts
from .schedule import StartDecision, decide_on_start
from .sign import Signer
from .store import Store
from .tokens import Links, require_secret

log = logging.getLogger("digest.send")


def issue_key(posts: list[Post]) -> str:
    """The unique key of an issue: a hash of its posts' ids, whoever builds it."""
    return hashlib.sha256("\n".join(sorted(p.id for p in posts)).encode("utf-8")).hexdigest()


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
              cancel: threading.Event | None = None) -> SendOutcome:
    """Finish an unfinished issue, else build the next one and send it to every confirmed subscriber."""
    secret = require_secret(config)
    signer = load_signer(config)
    ledger = Ledger(store)
    issue = ledger.unfinished_issue()
    resumed = issue is not None
    warnings: tuple[str, ...] = ()
    if issue is None:
        now = clock()
        last = ledger.last_issue()
        state = ledger.feed_state() if feed is None else None
        fetched, new_posts = fetch_new_posts(config, now=now, feed=feed, cutoff=last.cutoff if last else None,
                                             sent_ids=ledger.sent_post_ids(), state=state)
        if not new_posts:
            return SendOutcome(no_posts=True, not_modified=fetched.not_modified)
        built = assemble_issue(config, new_posts, now=now, fetched=fetched)
        posts = list(built.content.posts)
        warnings = built.fetched.warnings
        if dry_run:
            return _dry_run(config, store, built, secret, now, signer)
        if on_issue is not None:  # may abort: nothing is recorded yet
            on_issue(built.rendered.subject, store.count("confirmed"))
        archive = personalise(built.template.html, archive_recipient(config), as_html=True)
        issue, _ = ledger.create_issue(
            key=issue_key(posts), now=now, cutoff=max((p.date for p in posts if p.date), default=now),
            subject=built.rendered.subject, posts=posts, html=archive,
            text=personalise(built.template.text, archive_recipient(config), as_html=False),
            domain=sender_domain(config.newsletter.from_), state=built.fetched.state)
    elif dry_run:
        return SendOutcome(resumed=True, report=SendReport(issue.id, ledger.counts(issue.id)))
    elif on_issue is not None:
        on_issue(f"{issue.subject} (interrupted earlier)", sum(ledger.counts(issue.id).values()))
    # A fresh issue's all-topics template is the one just built: no second premailer run.
    report = Deliverer(config, store, issue, secret=secret, clock=clock, progress=progress, signer=signer,
                       cancel=cancel, prepared=None if resumed else built.template).run()
    return SendOutcome(resumed=resumed, report=report, warnings=warnings)


def archive_recipient(config: Config) -> Recipient:
    """The links of the archived copy: no one's personal links."""
    base = config.web.base_url
    return Recipient(email="", name="", unsubscribe_url=f"{base}/subscribe", preferences_url=f"{base}/subscribe",
                     archive_url=f"{base}/archive/")


def _dry_run(config: Config, store: Store, built: BuiltIssue, secret: str, now: datetime, signer: Signer | None) -> SendOutcome:
    """Build every confirmed subscriber's message, send none, record nothing."""
    issue = IssueRecord(id=0, key="dry-run", status="dry-run", created_at=now, cutoff=now, finished_at=None,
                        subject=built.rendered.subject, posts=built.content.posts, html="", text="")
    variants = Variants(config, issue, prepared=built.template)
    links = Links(config.web.base_url, secret)
    count = size = 0
    domain = sender_domain(config.newsletter.from_)
    for sub in store.iter_subscribers("confirmed"):
        template = variants.get(sub.topics)
        if template is None:
            continue
        recipient = Recipient(sub.email, sub.name, links.unsubscribe(sub.id, now), links.preferences(sub.id, now),
                              f"{config.web.base_url}/archive/")
        message = build_message(template, recipient, message_id=make_message_id(domain, "dry-run", sub.id), date=now)
        if signer is not None:
            message = signer.sign(message)
        count, size = count + 1, size + len(message)
    return SendOutcome(dry_run_messages=count, dry_run_bytes=size, warnings=built.fetched.warnings)


def run_logged(config: Config, *, cancel: threading.Event | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> str:
    """One scheduled send, the same path as `digest send`; returns (and logs) one line."""
    try:
        store = Store.open(config.store.url)
        try:
            outcome = send_next(config, store, clock=clock, cancel=cancel)
        finally:
            store.close()
    except DigestError as exc:
        line = f"send failed: {exc}"
        log.error(line)
        return line
    line = summary(outcome)
    log.info(line)
    return line


def summary(outcome: SendOutcome) -> str:
    """One line on what a send did."""
    if outcome.no_posts:
        return "skipped: no new posts" + (" (feed not modified)" if outcome.not_modified else "")
    if outcome.report is None:
        return f"dry run: {outcome.dry_run_messages} messages built"
    c = outcome.report.counts
    parts = [f"{c.get(k, 0)} {k.replace('_', ' ')}" for k in ("sent", "deferred", "pending", "failed", "in_doubt", "skipped")
             if c.get(k)]
    extra = " (paused: " + outcome.report.paused + ")" if outcome.report.paused else ""
    extra += " (stopped by a signal)" if outcome.report.cancelled else ""
    return f"issue {outcome.report.issue_id}{' resumed' if outcome.resumed else ''}: {', '.join(parts) or 'no recipients'}{extra}"


def start_decision(config: Config, store: Store, now: datetime) -> StartDecision:
    """What `serve` does on start about an interrupted issue or a missed week."""
    ledger = Ledger(store)
    unfinished = ledger.unfinished_issue()
    last = ledger.last_issue()
    return decide_on_start(config.schedule, now=now, last_issue_at=last.created_at if last else None,
                           unfinished_at=unfinished.created_at if unfinished else None)
