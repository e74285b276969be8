"""`digest preview|send|history|status`: the issue commands. Layer 4 (prints and exits).

Each command calls one job and formats what it returns; none reaches the store or SMTP
itself.
"""

from __future__ import annotations

import signal
import sys
import threading
import webbrowser
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..core.config import Config
from ..core.models import open_count
from . import pass_config
from .progress import SendProgress

if TYPE_CHECKING:
    from ..adapters.inbox_ledger import InboxStats

EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: messages wait for the next run


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _counts_tail(counts: dict[str, int]) -> str:
    return (f"{counts.get('sent', 0)} delivered / {counts.get('failed', 0)} failed / {open_count(counts)} pending"
            f"{' / ' + str(counts['in_doubt']) + ' in doubt' if counts.get('in_doubt') else ''}")


@click.command()
@pass_config
@click.option("--feed", help="A feed URL or file to use instead of [feed] url.")
@click.option("--all", "every_post", is_flag=True, help="Every post in the feed, not only the new ones.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
              show_default=True, help="Folder for issue.html, issue.txt and issue.eml.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@click.option("--to", "test_to", metavar="EMAIL", help="Send one test copy to EMAIL over [smtp].")
def preview(config: Config, feed: str | None, every_post: bool, out_dir: Path, open_browser: bool, test_to: str | None) -> None:
    """Render the next issue into files, to look at before it goes out. Changes no state."""
    from ..jobs import preview as job

    now = _now()
    history = job.PreviewHistory() if every_post else job.preview_history(config)
    issue = job.build_preview(config, now=now, feed=feed, every_post=every_post, history=history)
    if issue is None:
        since = f"since the last issue ({history.cutoff:%Y-%m-%d %H:%M} UTC)" if history.cutoff else \
            f"in the last {config.newsletter.first_issue_days} days"
        click.echo(f"No new posts {since}: nothing to preview (use --all for every post in the feed).")
        return
    result = job.write_preview(config, issue, out_dir, now=now)
    for path in (result.html_path, result.text_path, result.eml_path):
        click.echo(str(path))
    content = issue.content
    click.echo(f"Subject: {issue.rendered.subject}")
    click.echo(f"{len(content.posts)} posts in {len(content.sections)} sections"
               f"{' + ' + str(len(content.featured)) + ' answered questions' if content.featured else ''}; "
               f"HTML {result.html_bytes / 1000:.1f} KB")
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if test_to:
        job.send_test_copy(config, issue, test_to, now=now)
        click.echo(f"Sent a test copy to {test_to}.")
    if open_browser:
        webbrowser.open(result.html_path.resolve().as_uri())


@click.command()
@pass_config
@click.option("--feed", help="A feed URL or file to use instead of [feed] url.")
@click.option("--dry-run", is_flag=True, help="Build every message, send none, record nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
def send(config: Config, feed: str | None, dry_run: bool, yes: bool) -> None:
    """Send the next issue to every confirmed subscriber (or finish an interrupted one)."""
    from ..adapters.store import open_store
    from ..jobs.send_issue import count_line, send_next

    cancel = threading.Event()

    def stop(signum: int, frame: object) -> None:
        click.echo("Stopping: the messages in flight settle, the rest wait for the next run.", err=True)
        cancel.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with open_store(config) as store, SendProgress() as progress:
            def confirm(subject: str, audience: int) -> None:
                if not yes and sys.stdin.isatty():
                    click.confirm(f"Send \"{subject}\" to {audience} subscribers?", abort=True)
                progress.start(audience)

            outcome = send_next(config, store, clock=_now, feed=feed, dry_run=dry_run,
                                progress=progress.advance, on_issue=confirm, cancel=cancel)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for warning in outcome.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if outcome.no_posts:
        click.echo("No new posts since the last issue" + (" (the feed has not changed)" if outcome.not_modified else "")
                   + ": nothing sent.")
        return
    if outcome.report is None:
        click.echo(f"Dry run: built {outcome.dry_run_messages} messages ({outcome.dry_run_bytes / 1000:,.0f} KB); "
                   "sent none, recorded nothing.")
        return
    report = outcome.report
    counts = report.counts
    click.echo(f"Issue {report.issue_id}{' (resumed)' if outcome.resumed else ''}: {count_line(counts) or 'no recipients'}.")
    if counts.get("in_doubt"):
        click.echo(f"Warning: {counts['in_doubt']} messages may or may not have arrived (the connection broke after "
                   "the message was sent); they are not sent again.", err=True)
    if report.paused:
        click.echo(f"Paused: {report.paused}. Fix it and run digest send again.", err=True)
    if report.remaining or report.paused:
        click.echo(f"{report.remaining} messages wait for the next run.", err=True)
        sys.exit(EXIT_TEMPFAIL)


@click.command()
@pass_config
def history(config: Config) -> None:
    """List the issues sent: date, posts, recipients delivered / failed / pending."""
    from ..jobs.report import history as issue_history

    rows = issue_history(config)
    if not rows:
        click.echo("No issue sent yet.")
        return
    for row in rows:
        issue, counts = row.issue, row.counts
        click.echo(f"#{issue.id}  {issue.created_at:%Y-%m-%d %H:%M} UTC  {issue.status:<7}  {len(issue.posts)} posts  "
                   f"{_counts_tail(counts)}"
                   f"{' / ' + str(counts['skipped']) + ' skipped' if counts.get('skipped') else ''}  {issue.subject}")


@click.command()
@pass_config
def status(config: Config) -> None:
    """The next scheduled send, the last issue and its counts, the feed's state."""
    from zoneinfo import ZoneInfo

    from ..core.models import STATUSES
    from ..jobs.report import status as read_status

    now = _now()
    report = read_status(config, now)
    upcoming = report.next_send.astimezone(ZoneInfo(config.schedule.timezone))
    days = (upcoming - now).total_seconds() / 86400
    click.echo(f"Next send: {upcoming:%a %d %b %Y %H:%M} {config.schedule.timezone} (in {days:.1f} days), "
               "when `digest serve` runs")
    if report.last is None:
        click.echo("Last issue: none yet")
    else:
        last = report.last.issue
        click.echo(f"Last issue: #{last.id} of {last.created_at:%Y-%m-%d %H:%M} UTC, {last.status}: "
                   f"{_counts_tail(report.last.counts)}; {last.subject}")
    if report.unfinished is not None:
        click.echo(f"Unfinished issue: #{report.unfinished.id} (digest send finishes it)")
    state = report.feed
    if state is None:
        click.echo(f"Feed: {config.feed.url} (not fetched by a send yet)")
    else:
        validators = ", ".join(v for v in (f"ETag {state.etag}" if state.etag else "",
                                          f"Last-Modified {state.last_modified}" if state.last_modified else "") if v)
        click.echo(f"Feed: {state.url}{'; ' + validators if validators else ''}")
        if state.moved_to:
            click.echo(f"Warning: the feed moved permanently to {state.moved_to}: update [feed] url in config.toml", err=True)
    click.echo("Subscribers: " + ", ".join(f"{report.subscribers[s]} {s}" for s in STATUSES))
    click.echo(_inbox_line(config, report.inbox))


def _inbox_line(config: Config, stats: InboxStats | None) -> str:
    """Inbox: when it was last read and how that went, messages by kind, this week's changes."""
    if stats is None:
        return "Inbox: not set up ([inbox] host is empty: see README, \"Reading the mail that comes back\")"
    where = f"{config.inbox.folder} on {config.inbox.host}"
    if stats.read_at is None:
        return f"Inbox: {where}, not read yet (digest inbox, or digest serve every [inbox] poll_minutes)"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(stats.kinds.items())) or "none"
    return (f"Inbox: {where}, last read {stats.read_at:%Y-%m-%d %H:%M} UTC ({stats.read_outcome}); "
            f"messages handled: {kinds}; last 7 days by mail: {stats.bounced} bounced, {stats.unsubscribed} unsubscribed")
