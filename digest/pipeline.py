"""Wire the core and the adapters for one job: build an issue, preview it, send it.
Layer 3: may do I/O through the adapters; prints nothing (cli.py does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from .config import Config
from .delivery import Deliverer, SendReport, Variants
from .errors import ConfigError, DigestError, InputError
from .fetch import FetchOptions, fetch_feed
from .group import group_posts
from .inline import inline_css
from .message import MessageTemplate, Recipient, build_message, make_message_id, prepare_message, personalise, sender_domain
from .ledger import IssueRecord, Ledger
from .models import FeedState, FetchResult, IssueContent, Post, RenderedIssue
from .parse import ParseOptions
from .render import make_environment, render_issue
from .schedule import StartDecision, decide_on_start
from .select import select_posts, sort_posts
from .sign import Signer
from .store import Store
from .tokens import Links, require_secret

GMAIL_CLIP_BYTES = 102_000
log = logging.getLogger("digest.send")


@dataclass(frozen=True)
class BuiltIssue:
    """An issue ready to preview or send."""

    content: IssueContent
    rendered: RenderedIssue
    template: MessageTemplate
    fetched: FetchResult


@dataclass(frozen=True)
class Preview:
    html_path: Path
    text_path: Path
    eml_path: Path
    issue: BuiltIssue
    html_bytes: int
    warnings: tuple[str, ...]


def fetch_options(config: Config) -> FetchOptions:
    f, n = config.feed, config.newsletter
    return FetchOptions(
        timeout_seconds=f.timeout_seconds, deadline_seconds=f.deadline_seconds, user_agent=f.user_agent,
        max_bytes=f.max_bytes, max_pages=f.max_pages, page_size=f.page_size,
        parse=ParseOptions(excerpt_chars=n.excerpt_chars, thumbnail_width=n.thumbnail_width),
    )


def feed_source(config: Config, override: str | None) -> str:
    if not override:
        return config.feed.url
    if override.startswith(("http://", "https://")):
        return override
    return str(Path(override).expanduser().resolve())


def build_issue(
    config: Config,
    *,
    now: datetime,
    feed: str | None = None,
    cutoff: datetime | None = None,
    sent_ids: frozenset[str] = frozenset(),
    every_post: bool = False,
    state: FeedState | None = None,
) -> BuiltIssue | None:
    """Fetch the feed and build the next issue; None when it has no new posts.

    With `state` (the last issue's feed validators) the fetch is conditional; an
    unchanged feed gives a BuiltIssue with no posts.
    """
    since = None if every_post else (cutoff or now - timedelta(days=config.newsletter.first_issue_days))
    fetched = fetch_feed(feed_source(config, feed), fetch_options(config), since=since, state=state)
    if fetched.not_modified:
        return BuiltIssue(IssueContent(sections=()), RenderedIssue("", "", ""), MessageTemplate("", "", "", ""), fetched)
    posts: list[Post]
    if every_post:
        posts = sort_posts(fetched.posts)
    else:
        posts = select_posts(fetched.posts, cutoff=cutoff, now=now,
                             first_issue_days=config.newsletter.first_issue_days, sent_ids=sent_ids)
    if not posts:
        return None
    return assemble_issue(config, posts, now=now, fetched=fetched)


def assemble_issue(config: Config, posts: list[Post], *, now: datetime, fetched: FetchResult) -> BuiltIssue:
    """Group, render, inline once, and prepare the shared message headers."""
    n = config.newsletter
    content = group_posts(posts, config.topics, fallback_topic=n.fallback_topic,
                          question_labels=config.question.labels, max_posts=n.max_posts, max_sections=n.max_sections)
    local = now.astimezone(ZoneInfo(config.schedule.timezone))
    rendered = render_issue(content, config, date=local, env=make_environment(n.templates_dir))
    rendered = replace(rendered, html=inline_css(rendered.html))
    template = prepare_message(rendered, sender=n.from_, reply_to=n.reply_to, list_id=n.list_id,
                               unsubscribe_mailto=n.unsubscribe_mailto)
    return BuiltIssue(content=content, rendered=rendered, template=template, fetched=fetched)


def history_for_preview(config: Config) -> tuple[datetime | None, frozenset[str]]:
    """The last issue's cut-off and the posts already sent, if a store exists; a preview
    never creates one (a missing SQLite file means no issue was sent yet)."""
    url = config.store.url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None, frozenset()
    store = Store.open(url)
    try:
        ledger = Ledger(store)
        last = ledger.last_issue()
        return (last.cutoff if last else None), ledger.sent_post_ids()
    finally:
        store.close()


def preview_recipient(config: Config, email: str | None = None) -> Recipient:
    """The links a preview shows: real addresses of the web app, with a dummy token."""
    base = config.web.base_url
    from email.utils import parseaddr

    return Recipient(
        email=email or parseaddr(config.newsletter.from_)[1],
        name="",
        unsubscribe_url=f"{base}/unsubscribe/preview",
        preferences_url=f"{base}/preferences/preview",
        archive_url=f"{base}/archive/",
    )


def write_preview(config: Config, issue: BuiltIssue, out_dir: Path, *, now: datetime) -> Preview:
    """Write issue.html, issue.txt and issue.eml into `out_dir`; each file appears whole."""
    recipient = preview_recipient(config)
    html = personalise(issue.template.html, recipient, as_html=True)
    text = personalise(issue.template.text, recipient, as_html=False)
    eml = build_message(issue.template, recipient, date=now,
                        message_id=make_message_id(sender_domain(config.newsletter.from_), "preview"))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = (out_dir / "issue.html", out_dir / "issue.txt", out_dir / "issue.eml")
        for path, data in zip(paths, (html.encode("utf-8"), text.encode("utf-8"), eml)):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot write the preview: {exc.strerror}") from exc
    size = len(html.encode("utf-8"))
    warnings = list(issue.fetched.warnings)
    if size > GMAIL_CLIP_BYTES:
        warnings.append(f"the HTML is {size / 1000:.0f} KB: Gmail clips messages above about 102 KB (lower [newsletter] max_posts)")
    return Preview(*paths, issue=issue, html_bytes=size, warnings=tuple(warnings))


def issue_key(posts: list[Post]) -> str:
    """The unique key of an issue: a hash of its posts' ids, whoever builds it."""
    import hashlib

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
        built = build_issue(config, now=now, feed=feed, cutoff=last.cutoff if last else None,
                            sent_ids=ledger.sent_post_ids(), state=state)
        if built is None or not built.content.posts:
            return SendOutcome(no_posts=True, not_modified=built is not None)
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
    report = Deliverer(config, store, issue, secret=secret, clock=clock, progress=progress, signer=signer,
                       cancel=cancel).run()
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
    variants = Variants(config, issue)
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
