"""The `digest` command line. Layer 4: the only module that prints and exits.

Every DigestError becomes one `Error: ...` line and its exit code; --debug shows the
traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import traceback
import webbrowser
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from . import pipeline
from .config import Config, read_config
from .errors import DigestError
from .message import build_message, make_message_id, sender_address, sender_domain
from .cli_subscribers import register as register_subscribers
from .send import send_one

F = TypeVar("F", bound=Callable[..., Any])
EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: messages wait for the next run


class SendProgress:
    """A rich progress bar on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()  # the connections' threads report here

    def __enter__(self) -> SendProgress:
        return self

    def start(self, total: int) -> None:
        if not sys.stderr.isatty():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                            TimeElapsedColumn(), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("send", total=total, detail="")

    def advance(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.bar is not None:
            elapsed = self.bar.tasks[0].elapsed or 1e-9
            done = sum(self.counts.values())
            detail = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) + f"  {done / elapsed:.0f}/s"
            self.bar.update(self.task, advance=1, detail=detail)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def with_config(func: F) -> F:
    """Give a command --config and --debug, and load the config before it runs."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                  default=None, help="config.toml to use (default: ./config.toml or $DIGEST_CONFIG).")
    @click.option("--debug", is_flag=True, help="Show the traceback of errors.")
    @functools.wraps(func)
    def wrapper(*args: Any, config_path: Path | None, debug: bool, **kwargs: Any) -> Any:
        path = config_path or Path(os.environ.get("DIGEST_CONFIG", "config.toml"))
        config = read_config(path, os.environ)
        return func(config, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blog-digest")
def cli() -> None:
    """Turn a blog's feed into a weekly email newsletter."""


@cli.command()
@with_config
@click.option("--feed", help="A feed URL or file to use instead of [feed] url.")
@click.option("--all", "every_post", is_flag=True, help="Every post in the feed, not only the new ones.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
              show_default=True, help="Folder for issue.html, issue.txt and issue.eml.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@click.option("--to", "test_to", metavar="EMAIL", help="Send one test copy to EMAIL over [smtp].")
def preview(config: Config, feed: str | None, every_post: bool, out_dir: Path, open_browser: bool, test_to: str | None) -> None:
    """Render the next issue into files, to look at before it goes out. Changes no state."""
    now = _now()
    cutoff, sent_ids = (None, frozenset[str]()) if every_post else pipeline.history_for_preview(config)
    issue = pipeline.build_issue(config, now=now, feed=feed, every_post=every_post, cutoff=cutoff, sent_ids=sent_ids)
    if issue is None:
        since = f"since the last issue ({cutoff:%Y-%m-%d %H:%M} UTC)" if cutoff else \
            f"in the last {config.newsletter.first_issue_days} days"
        click.echo(f"No new posts {since}: nothing to preview (use --all for every post in the feed).")
        return
    result = pipeline.write_preview(config, issue, out_dir, now=now)
    for path in (result.html_path, result.text_path, result.eml_path):
        click.echo(str(path))
    sections = issue.content.sections
    click.echo(f"Subject: {issue.rendered.subject}")
    click.echo(f"{len(issue.content.posts)} posts in {len(sections)} sections"
               f"{' + ' + str(len(issue.content.featured)) + ' answered questions' if issue.content.featured else ''}; "
               f"HTML {result.html_bytes / 1000:.1f} KB")
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if test_to:
        recipient = pipeline.preview_recipient(config, test_to)
        message = build_message(issue.template, recipient, date=now,
                                message_id=make_message_id(sender_domain(config.newsletter.from_), "test"))
        reply = send_one(config.smtp, sender_address(config.newsletter.from_), recipient.email, message)
        if reply.code != 250:
            raise DigestError(f"the test copy to {test_to} was refused: {reply.code} {reply.text}")
        click.echo(f"Sent a test copy to {test_to}.")
    if open_browser:
        webbrowser.open(result.html_path.resolve().as_uri())


@cli.command()
@with_config
@click.option("--feed", help="A feed URL or file to use instead of [feed] url.")
@click.option("--dry-run", is_flag=True, help="Build every message, send none, record nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
def send(config: Config, feed: str | None, dry_run: bool, yes: bool) -> None:
    """Send the next issue to every confirmed subscriber (or finish an interrupted one)."""
    from .store import Store

    import signal

    from . import dispatch

    store = Store.open(config.store.url)
    cancel = threading.Event()

    def stop(signum: int, frame: object) -> None:
        click.echo("Stopping: the messages in flight settle, the rest wait for the next run.", err=True)
        cancel.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with SendProgress() as progress:
            def confirm(subject: str, audience: int) -> None:
                if not yes and sys.stdin.isatty():
                    click.confirm(f"Send \"{subject}\" to {audience} subscribers?", abort=True)
                progress.start(audience)

            outcome = dispatch.send_next(config, store, clock=_now, feed=feed, dry_run=dry_run,
                                         progress=progress.advance, on_issue=confirm, cancel=cancel)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
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
    summary = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in
                        ("sent", "deferred", "pending", "failed", "in_doubt", "skipped") if counts.get(k))
    click.echo(f"Issue {report.issue_id}{' (resumed)' if outcome.resumed else ''}: {summary or 'no recipients'}.")
    if counts.get("in_doubt"):
        click.echo(f"Warning: {counts['in_doubt']} messages may or may not have arrived (the connection broke after "
                   "the message was sent); they are not sent again.", err=True)
    if report.paused:
        click.echo(f"Paused: {report.paused}. Fix it and run digest send again.", err=True)
    if report.remaining or report.paused:
        click.echo(f"{report.remaining} messages wait for the next run.", err=True)
        sys.exit(EXIT_TEMPFAIL)


@cli.command()
@with_config
def history(config: Config) -> None:
    """List the issues sent: date, posts, recipients delivered / failed / pending."""
    from .ledger import Ledger
    from .store import Store

    store = Store.open(config.store.url)
    try:
        rows = Ledger(store).history()
    finally:
        store.close()
    if not rows:
        click.echo("No issue sent yet.")
        return
    for issue, counts in rows:
        waiting = sum(counts.get(k, 0) for k in ("pending", "sending", "deferred"))
        click.echo(f"#{issue.id}  {issue.created_at:%Y-%m-%d %H:%M} UTC  {issue.status:<7}  {len(issue.posts)} posts  "
                   f"{counts.get('sent', 0)} delivered / {counts.get('failed', 0)} failed / {waiting} pending"
                   f"{' / ' + str(counts['in_doubt']) + ' in doubt' if counts.get('in_doubt') else ''}"
                   f"{' / ' + str(counts['skipped']) + ' skipped' if counts.get('skipped') else ''}  {issue.subject}")


@cli.command()
@with_config
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--no-scheduler", is_flag=True, help="Serve the pages only; send nothing on schedule.")
def serve(config: Config, host: str, port: int, no_scheduler: bool) -> None:
    """Serve the web pages and send the newsletter every week on [schedule]."""
    import logging
    from contextlib import asynccontextmanager
    from collections.abc import AsyncIterator

    import uvicorn
    from starlette.concurrency import run_in_threadpool

    from . import dispatch
    from .schedule import WeeklySender
    from .store import Store
    from .tokens import require_secret
    from .web import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler"):  # digest.send logs one line per run instead
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("digest.serve")
    require_secret(config)
    store = Store.open(config.store.url)
    cancel = threading.Event()
    weekly = None if no_scheduler else WeeklySender(config.schedule, lambda: dispatch.run_logged(config, cancel=cancel))

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if weekly is not None:
            decision = dispatch.start_decision(config, store, _now())
            weekly.start()
            log.info("on start: %s", decision.reason)
            if decision.send_now:
                weekly.run_now()
            log.info("next weekly send: %s", weekly.next_run_time())
        yield
        cancel.set()  # a send in progress settles its message in flight and stops
        if weekly is not None:
            await run_in_threadpool(weekly.shutdown)
        log.info("stopped")

    try:
        app = create_app(config, store, lifespan=lifespan)
        click.echo(f"Serving {config.blog.name} on http://{host}:{port}/subscribe (public address {config.web.base_url})"
                   + ("" if no_scheduler else f"; weekly send {config.schedule.cron} {config.schedule.timezone}"))
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
    finally:
        store.close()


@cli.command()
@with_config
def status(config: Config) -> None:
    """The next scheduled send, the last issue and its counts, the feed's state."""
    from zoneinfo import ZoneInfo

    from .ledger import Ledger
    from .models import STATUSES
    from .schedule import next_run
    from .store import Store

    now = _now()
    zone = ZoneInfo(config.schedule.timezone)
    upcoming = next_run(config.schedule, now).astimezone(zone)
    days = (upcoming - now).total_seconds() / 86400
    click.echo(f"Next send: {upcoming:%a %d %b %Y %H:%M} {config.schedule.timezone} (in {days:.1f} days), "
               "when `digest serve` runs")
    store = Store.open(config.store.url)
    try:
        ledger = Ledger(store)
        last, unfinished, state = ledger.last_issue(), ledger.unfinished_issue(), ledger.feed_state()
        counts = {s: store.count(s) for s in STATUSES}
        if last is None:
            click.echo("Last issue: none yet")
        else:
            c = ledger.counts(last.id)
            waiting = sum(c.get(k, 0) for k in ("pending", "sending", "deferred"))
            click.echo(f"Last issue: #{last.id} of {last.created_at:%Y-%m-%d %H:%M} UTC, {last.status}: "
                       f"{c.get('sent', 0)} delivered / {c.get('failed', 0)} failed / {waiting} pending"
                       f"{' / ' + str(c['in_doubt']) + ' in doubt' if c.get('in_doubt') else ''}; {last.subject}")
        if unfinished is not None and unfinished is not last:
            click.echo(f"Unfinished issue: #{unfinished.id} (digest send finishes it)")
    finally:
        store.close()
    if state is None:
        click.echo(f"Feed: {config.feed.url} (not fetched by a send yet)")
    else:
        validators = ", ".join(v for v in (f"ETag {state.etag}" if state.etag else "",
                                          f"Last-Modified {state.last_modified}" if state.last_modified else "") if v)
        click.echo(f"Feed: {state.url}{'; ' + validators if validators else ''}")
        if state.moved_to:
            click.echo(f"Warning: the feed moved permanently to {state.moved_to}: update [feed] url in config.toml", err=True)
    click.echo("Subscribers: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES))


@cli.command()
@with_config
def snippet(config: Config) -> None:
    """Print a subscribe form to paste into a Blogger HTML/JavaScript gadget."""
    from .render import make_environment
    from .subscriptions import topic_names

    env = make_environment(config.newsletter.templates_dir)
    click.echo(env.get_template("snippet.html.j2").render(
        blog=config.blog, base_url=config.web.base_url, consent_text=config.web.consent_text,
        topics=topic_names(config.topics)).strip())


@cli.command()
@click.option("--port", default=1025, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--dir", "folder", default=Path("outbox"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the .eml files.")
def mailbox(port: int, folder: Path) -> None:
    """A local SMTP server that stores every message it receives as a .eml file."""
    import time

    from .mailbox import start_mailbox

    try:
        controller = start_mailbox(folder, port, click.echo)
    except (OSError, RuntimeError) as exc:
        raise DigestError(f"cannot listen on 127.0.0.1:{port}: {exc}") from exc
    click.echo(f"Listening on 127.0.0.1:{port}; saving messages in {folder}/ (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


register_subscribers(cli, with_config)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; turn errors into one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="digest", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DigestError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
