"""`digest preview|send|history|status`: the issue commands. Layer 4 (prints and exits).

Each command calls one job and formats what it returns; none reaches the store or SMTP
itself.
"""

from __future__ import annotations

import signal
import sys
import webbrowser
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..core.config import Config
from ..core.errors import DeliverabilityError, InputError
from ..core.models import open_count
from . import pass_wiring
from .progress import SendProgress
from .words import count, local_time

if TYPE_CHECKING:
    from ..core.models import InboxStats
    from ..jobs.send_issue import SendOutcome
    from .wiring import Wiring

EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: messages wait for a retry or the next run



def _counts_tail(counts: dict[str, int]) -> str:
    return (f"{counts.get('sent', 0)} delivered / {counts.get('failed', 0)} failed / {open_count(counts)} pending"
            f"{' / ' + str(counts['in_doubt']) + ' in doubt' if counts.get('in_doubt') else ''}")


_note_option = click.option("--note", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                            help="An editor's note (Markdown) at the top of this one issue.")


@click.command()
@pass_wiring
@click.option("--feed", help="A feed URL or file to use instead of [feed] url.")
@click.option("--all", "every_post", is_flag=True, help="Every post in the feed, not only the new ones.")
@click.option("--or-all", "or_all", is_flag=True, help="When no post is new, show every post in the feed instead.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
              show_default=True, help="Folder for issue.html, issue.txt and issue.eml.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@click.option("--to", "test_to", metavar="EMAIL", help="Send one test copy to EMAIL over [smtp].")
@_note_option
def preview(config: Config, wiring: Wiring, feed: str | None, every_post: bool, or_all: bool, out_dir: Path, open_browser: bool,
            test_to: str | None, note: Path | None) -> None:
    """Render the issue `digest send` would send next into files, to look at first. Changes no state."""
    from ..jobs import preview as job
    from ..jobs.build import read_note

    now = wiring.clock()
    note_text = read_note(note) if note else ""
    stored = wiring.store_exists()  # a preview never makes a store: none yet means no issue was sent
    history = job.preview_history(wiring.ledger if stored else None)  # --all too: the number the send will give it
    questions = wiring.questions if stored else None
    issue = job.build_preview(config.publication, wiring.fetch, now=now, feed=feed, every_post=every_post, history=history,
                              note=note_text, questions=questions)
    if issue is None:
        since = (f"since the last issue (its cut-off: {local_time(config, history.cutoff)})" if history.cutoff else
                 f"in the last {count(config.newsletter.first_issue_days, 'day')} ([newsletter] first_issue_days)")
        click.echo(f"No new posts {since}: digest send would send nothing now.")
        if not or_all:
            click.echo("Use --all to preview every post in the feed.")
            return
        issue = job.build_preview(config.publication, wiring.fetch, now=now, feed=feed, every_post=True, history=history,
                                  note=note_text, questions=questions)
        if issue is None:
            click.echo("The feed holds no posts at all.")
            return
        shown = count(len(issue.content.posts), "post")
        click.echo(f"This preview shows the feed's {shown} instead (--or-all), as an issue would if they were "
                   f"new: that is why it says \"{shown.replace('post', 'new post')}\".")
    elif not every_post:
        click.echo(_what_send_takes(config, history.cutoff))
    result = job.write_preview(config.publication, issue, out_dir, now=now)
    for path in (result.html_path, result.text_path, result.eml_path):
        click.echo(str(path.resolve()))
    content = issue.content
    in_sections = sum(len(s.posts) for s in content.sections)
    parts = [f"{in_sections} in {count(len(content.sections), 'section')}"]
    if content.featured:
        parts.append(f"{len(content.featured)} answering readers' questions")
    click.echo(f"Subject: {issue.rendered.subject}")
    click.echo(f"{count(len(content.posts), 'post')}: {', '.join(parts)}; HTML {result.html_bytes / 1000:.1f} KB")
    if content.left_out:
        click.echo(f"{count(content.left_out, 'post')} left out by [newsletter] max_posts ({config.newsletter.max_posts}): "
                   "the issue links to the blog for them.")
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if test_to:
        job.send_test_copy(config.publication, wiring.outbox, issue, test_to, now=now,
                           subscribers=wiring.store if stored else None)
        click.echo(f"Sent a test copy to {test_to}.")
    if open_browser:
        _open(result.html_path.resolve().as_uri())


def _what_send_takes(config: Config, cutoff: datetime | None) -> str:
    if cutoff is None:
        days = config.newsletter.first_issue_days
        return (f"No issue sent yet: the first issue holds the posts of the last {count(days, 'day')} "
                "([newsletter] first_issue_days).")
    return f"The next issue holds the posts after the last issue's cut-off, {local_time(config, cutoff)}."


def _open(uri: str) -> None:
    """Open `uri` in a browser, or say there is none (a headless machine) and where the file is."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        browser = None
    if browser is None or not browser.open(uri):
        click.echo(f"No browser to open here; open {uri} on a machine that has one.", err=True)


@click.command()
@pass_wiring
@click.option("--feed", help="A feed URL or file to use instead of [feed] url.")
@click.option("--dry-run", is_flag=True,
              help="Build every message, send none, record nothing; show who would get what.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/dry-run"),
              show_default=True, help="With --dry-run: the folder for one sample message per set of topics.")
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
@_note_option
def send(config: Config, wiring: Wiring, feed: str | None, dry_run: bool, out_dir: Path, yes: bool, note: Path | None) -> None:
    """Send the next issue to every confirmed subscriber (finishing interrupted ones first)."""
    from ..jobs.build import read_note
    from ..jobs.send_issue import count_line, send_next

    note_text = read_note(note) if note else ""

    def stop(signum: int, frame: object) -> None:
        click.echo("Stopping: the messages in flight settle, the rest wait for the next run.", err=True)
        wiring.cancel.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with SendProgress() as progress:
            def confirm(subject: str, audience: int) -> None:
                if yes:
                    return
                if not sys.stdin.isatty():
                    raise InputError("digest send asks before it sends, and no one is at a terminal to answer: "
                                     "run it with --yes to send without asking")
                click.confirm(f"Send \"{subject}\" to {count(audience, 'subscriber')}?", abort=True)

            try:
                outcome = send_next(config.publication, wiring, feed=feed, dry_run=dry_run, progress=progress, on_issue=confirm,
                                    samples_dir=out_dir if dry_run else None, note=note_text)
            except DeliverabilityError as exc:
                if not dry_run:  # the author hears of it too, once a week however often this is run
                    from ..jobs.author_mail import tell_stopped

                    why = tell_stopped(config.publication, config.author, wiring, None, exc, wiring.clock())
                    if why is not None:
                        click.echo(f"Warning: the author was not told: {why}", err=True)
                raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not dry_run:
        from ..jobs.author_mail import after_send

        # the author's report of each issue sent to (once per issue)
        after_send(config.publication, config.author, wiring, outcome)
    for warning in outcome.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for report in outcome.reports:
        click.echo(f"Issue {report.issue_id}{' (resumed)' if report.resumed else ''}: "
                   f"{count_line(report.counts) or 'no recipients'}.")
    if outcome.no_posts:
        click.echo("No new posts since the last issue" + (" (the feed has not changed)" if outcome.not_modified else "")
                   + ": nothing " + ("new " if outcome.reports else "") + "sent.")
    elif outcome.dry_run and not outcome.reports:
        _show_dry_run(outcome)
    for question in outcome.answered:
        click.echo(f"Question {question.id} answered by {question.answer_url}.")
    notices = outcome.notices
    if notices is not None and notices.counts:
        click.echo(f"Answer notices: {count_line(dict(notices.counts))}.")
    if notices is not None and notices.paused:
        click.echo(f"Answer notices wait for the next run: {notices.paused}", err=True)
    counts: Counter[str] = Counter()
    for report in outcome.reports:
        counts.update(report.counts)
    if counts["in_doubt"]:
        click.echo(f"Warning: {count(counts['in_doubt'], 'message')} may or may not have arrived (the connection "
                   "broke after the message was sent); they are not sent again.", err=True)
    paused = next((r.paused for r in outcome.reports if r.paused), "")
    if paused:
        click.echo(f"Paused: {paused}. Fix it and run digest send again.", err=True)
    unsent = counts["pending"] + counts["sending"]
    if unsent:
        click.echo(f"{count(unsent, 'message')} not sent yet: digest send sends them.", err=True)
    if counts["deferred"]:
        smtp = config.smtp
        click.echo(f"{count(counts['deferred'], 'message')} deferred; digest send retries them now, digest serve every "
                   f"{smtp.retry_interval_minutes:g} minutes, for up to {smtp.give_up_hours:g} hours.", err=True)
    if notices is not None and notices.waiting and not notices.paused:
        click.echo(f"{count(notices.waiting, 'answer notice')} deferred; digest send and digest serve retry them.", err=True)
    notices_wait = notices is not None and bool(notices.waiting or notices.paused)
    if unsent or counts["deferred"] or paused or notices_wait:
        sys.exit(EXIT_TEMPFAIL)


def _show_dry_run(outcome: SendOutcome) -> None:
    plan = outcome.dry_run_plan
    if plan is not None:
        click.echo(f"Subject: {plan.subject}")
        click.echo(f"Posts: {plan.posts}")
        click.echo("Recipients by the topics they follow:")
        for topics, n in sorted(plan.by_topics.items(), key=lambda item: (-item[1], item[0])):
            sample = plan.samples.get(topics)
            click.echo(f"  {count(n, 'subscriber'):>16}  {', '.join(topics) or 'every topic'}"
                       + (f"  (sample: {sample.resolve()})" if sample else ""))
        if plan.skipped:
            click.echo(f"  {count(plan.skipped, 'subscriber'):>16}  nothing this week for the topics they follow")
    click.echo(f"Dry run: built {count(outcome.dry_run_messages, 'message')} "
               f"({outcome.dry_run_bytes / 1000:,.0f} KB); sent none, recorded nothing.")


@click.command()
@pass_wiring
def history(config: Config, wiring: Wiring) -> None:
    """List the issues sent: date, posts, recipients delivered / failed / pending, and what
    the checks before the send warned of."""
    from ..jobs.report import history as issue_history

    rows = issue_history(wiring.ledger)
    if not rows:
        click.echo("No issue sent yet.")
        return
    for row in rows:
        issue, counts = row.issue, row.counts
        click.echo(f"#{issue.id}  {local_time(config, issue.created_at)}  {issue.status:<7}  {count(len(issue.posts), 'post')}  "
                   f"{_counts_tail(counts)}"
                   f"{' / ' + str(counts['skipped']) + ' skipped' if counts.get('skipped') else ''}  {issue.subject}")
        for warning in issue.warnings:
            click.echo(f"  Warned before it went out: {warning}")


@click.command()
@pass_wiring
def status(config: Config, wiring: Wiring) -> None:
    """The next scheduled send, the last issue and its counts, the feed's state, the questions."""
    from zoneinfo import ZoneInfo

    from ..core.models import STATUSES
    from ..jobs.report import status as read_status

    now = wiring.clock()
    report = read_status(config.schedule, config.inbox, ledger=wiring.ledger, store=wiring.store,
                         questions=wiring.questions, inbox_book=wiring.inbox_book, now=now)
    upcoming = report.next_send.astimezone(ZoneInfo(config.schedule.timezone))
    days = (upcoming - now).total_seconds() / 86400
    click.echo(f"Next send: {local_time(config, upcoming, '%a %d %b %Y %H:%M')} ({config.schedule.timezone}, "
               f"in {days:.1f} days), when `digest serve` runs")
    if report.last is None:
        click.echo("Last issue: none yet")
    else:
        last = report.last.issue
        click.echo(f"Last issue: #{last.id} of {local_time(config, last.created_at)}, {last.status}: "
                   f"{_counts_tail(report.last.counts)}; {last.subject}")
        for warning in last.warnings:
            click.echo(f"  Warned before it went out: {warning}")
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
    q = report.questions
    if q is not None:
        median = "no answer yet" if q.median_days is None else f"median {q.median_days:.1f} days to answer"
        click.echo(f"Questions: {q.received} received, {q.answered} answered, {median}")
    click.echo(_inbox_line(config, report.inbox))


def _inbox_line(config: Config, stats: InboxStats | None) -> str:
    """Inbox: when it was last read and how that went, messages by kind, this week's changes."""
    if stats is None:
        return "Inbox: not set up ([inbox] host is empty: see README, \"Reading the mail that comes back\")"
    where = f"{config.inbox.folder} on {config.inbox.host}"
    if stats.read_at is None:
        return f"Inbox: {where}, not read yet (digest inbox, or digest serve every [inbox] poll_minutes)"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(stats.kinds.items())) or "none"
    return (f"Inbox: {where}, last read {local_time(config, stats.read_at)} ({stats.read_outcome}); "
            f"messages handled: {kinds}; last 7 days by mail: {stats.bounced} bounced, {stats.unsubscribed} unsubscribed")
