"""`digest serve|snippet|mailbox`: the long-running commands and the gadget snippet.
Layer 4 (prints and exits). `serve` wires the web app, the weekly job and the mailer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from ..core.config import Config
from ..core.errors import DigestError
from . import current_clock, pass_config
from .words import local_time

if TYPE_CHECKING:
    from .wiring import Wiring

class _LocalFormatter(logging.Formatter):
    """`2026-12-06 07:00:01 EST INFO digest.web: ...`: the time in the blog's zone."""

    def __init__(self, zone: ZoneInfo) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def weekly_send(config: Config, wiring: Wiring) -> Callable[[], str]:
    """The weekly timer's job: the path of `digest send`, except that deferred messages are
    left to the retry timer, and as the author decided (jobs/desk.py: held or unapproved,
    it does not go; the note; the report after); it logs and returns one line."""
    from ..jobs.desk import gated_send

    return _logged("send", lambda: gated_send(config.publication, config.author, wiring))


def _logged(what: str, work: Callable[[], str]) -> Callable[[], str]:
    """A timer's job: run `work`, log its one line (or why it failed) and return it. The
    one place a scheduled send, retry or inbox read meets the log."""
    log = logging.getLogger("digest.send" if what != "inbox read" else "digest.inbox")

    def run() -> str:
        try:
            line = work()
        except DigestError as exc:
            line = f"{what} failed: {exc}"
            log.error(line)
            return line
        if line:
            log.info(line)
        return line

    return run


@click.command()
@pass_config
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--no-scheduler", is_flag=True, help="Serve the pages only: no weekly send, no inbox reads.")
def serve(config: Config, host: str, port: int, no_scheduler: bool) -> None:
    """Serve the web pages and send the newsletter every week on [schedule]."""
    import uvicorn
    from starlette.concurrency import run_in_threadpool

    from ..adapters.listen import bind_sockets
    from ..adapters.scheduler import WeeklySender
    from ..jobs.choices import choice_mailer
    from ..jobs.mail import confirmation_mailer, preferences_link_mailer, welcome_mailer
    from ..jobs.questions import question_acknowledger
    from ..jobs.retry import retried_line, retry_due
    from ..jobs.send_issue import start_decision
    from ..web import create_app
    from .wiring import Wiring

    # One format for every line (uvicorn's included: log_config=None below), one line per
    # event, its time in [schedule] timezone like every time a person reads here.
    handler = logging.StreamHandler()
    handler.setFormatter(_LocalFormatter(ZoneInfo(config.schedule.timezone)))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("alembic", "apscheduler"):  # digest.send logs one line per run instead
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("digest.serve")
    wiring = Wiring(config, clock=current_clock())  # one store, ledger, mailer and outbox for the pages and the timers
    secret = wiring.secret
    sockets = bind_sockets(host, port)  # before anything starts: a port in use is one ListenError line
    weekly = None if no_scheduler else WeeklySender(
        config.schedule, weekly_send(config, wiring),
        retry=_logged("retry", lambda: retried_line(retry_due(config.publication, wiring))),
        retry_every=timedelta(minutes=config.smtp.retry_interval_minutes))
    reads_inbox = weekly is not None and bool(config.inbox.host and config.inbox.poll_minutes)
    if weekly is not None and config.author.email:
        from ..jobs.author_questions import mail_questions
        from ..jobs.desk import proof

        # The proof looks every quarter hour (each look within proof_hours with nothing new fetches the feed);
        # a change (hold, approve, a note) mails the new proof at once, not on this timer.
        pub, author = config.publication, config.author
        weekly.every(15, "author-proof", _logged("proof", lambda: proof(pub, author, wiring)))
        weekly.every(1, "author-questions", _logged("questions mail", lambda: mail_questions(pub, author, wiring)))
    if weekly is not None and reads_inbox:
        from ..jobs import inbox as inbox_job

        weekly.read_inbox_every(config.inbox.poll_minutes, _logged("inbox read", lambda: inbox_job.read_line(
            config.inbox, inbox_job.read_inbox(config.publication, config.inbox, wiring,
                                               on_line=logging.getLogger("digest.inbox").info))))

    try:
        with wiring:
            store = wiring.store
            wiring.outbox  # noqa: B018 - built before the threads that share it; a DKIM key it cannot read stops here

            @asynccontextmanager
            async def lifespan(app: Any) -> AsyncIterator[None]:
                if weekly is not None:
                    decision = start_decision(config.schedule, wiring.ledger, wiring.clock())
                    weekly.start()
                    log.info("on start: %s", decision.reason)
                    if decision.send_now:
                        weekly.run_now()
                    upcoming = weekly.next_run_time()
                    log.info("next weekly send: %s", local_time(config, upcoming) if upcoming else "none")
                yield
                wiring.cancel.set()  # a send in progress settles its message in flight and stops
                if weekly is not None:
                    await run_in_threadpool(weekly.shutdown)
                log.info("stopped")

            from ..jobs.desk import desk_hooks

            hooks = desk_hooks(config.publication, config.author, wiring) if config.author.email else None
            app = create_app(config, store, desk=hooks, send_confirmation=confirmation_mailer(config.publication, wiring),
                             send_welcome=welcome_mailer(config.publication, wiring), lifespan=lifespan,
                             send_preferences_link=preferences_link_mailer(config.publication, wiring),
                             acknowledge_question=question_acknowledger(config.publication, wiring),
                             secret=secret, ledger=wiring.ledger, questions=wiring.questions,
                             send_choice_mail=choice_mailer(config.publication, wiring))
            log.info(f"Serving {config.blog.name} on http://{host}:{port}/subscribe (public address {config.web.base_url})"
                       + ("" if no_scheduler else f"; weekly send {config.schedule.cron} {config.schedule.timezone}, "
                          f"deferred messages retried every {config.smtp.retry_interval_minutes:g} minutes")
                       + (f"; inbox read every {config.inbox.poll_minutes:g} min" if reads_inbox else ""))
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None, proxy_headers=False,
                                                   server_header=False))
            try:
                server.run(sockets=sockets)
            except SystemExit:  # uvicorn's own exit when the app's startup fails (it logged why)
                if server.started:
                    raise
            if not server.started:
                raise DigestError("the web app did not start (its log above says why)")
    finally:
        for sock in sockets:
            sock.close()


@click.command()
@pass_config
@click.option("--ask", "ask", is_flag=True, help="The ask-a-question form (posts to /ask) instead.")
def snippet(config: Config, ask: bool) -> None:
    """Print a subscribe form (or, with --ask, a question form) to paste into a Blogger HTML/JavaScript gadget."""
    from ..core.questions import MAX_DISPLAY_NAME, MAX_QUESTION_CHARS
    from ..core.render import make_environment
    from ..core.subscriptions import topic_names

    env = make_environment(config.newsletter.templates_dir)
    if ask:
        click.echo(env.get_template("ask_snippet.html.j2").render(
            blog=config.blog, base_url=config.web.base_url, max_chars=MAX_QUESTION_CHARS,
            max_display=MAX_DISPLAY_NAME).strip())
        return
    click.echo(env.get_template("snippet.html.j2").render(
        blog=config.blog, base_url=config.web.base_url, consent_text=config.web.consent_text,
        topics=topic_names(config.topics)).strip())


@click.command()
@click.option("--port", default=1025, show_default=True, type=click.IntRange(1, 65535), help="SMTP port to listen on.")
@click.option("--dir", "folder", default=Path("outbox"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the .eml files.")
@click.option("--web", "web_port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Also serve a page on PORT that lists the messages and shows them with working links.")
def mailbox(port: int, folder: Path, web_port: int | None) -> None:
    """A local SMTP server that stores every message it receives as a .eml file."""
    from ..adapters.listen import bind_sockets
    from ..adapters.mailbox import start_mailbox
    from ..core.errors import ListenError

    sockets = bind_sockets("127.0.0.1", web_port, option="--web") if web_port is not None else []  # before SMTP starts
    try:
        try:
            controller = start_mailbox(folder, port, click.echo)
        except (OSError, RuntimeError) as exc:
            raise ListenError("127.0.0.1", port, str(exc), hint="choose another port with --port") from exc
        click.echo(f"Listening on 127.0.0.1:{port}; saving messages in {folder}/ (Ctrl-C to stop)")
        try:
            if web_port is None:
                while True:
                    time.sleep(3600)
            import uvicorn

            from ..web.mailbox import create_mailbox_app

            click.echo(f"Messages at http://127.0.0.1:{web_port}/")
            uvicorn.Server(uvicorn.Config(create_mailbox_app(folder), log_level="warning",
                                          server_header=False)).run(sockets=sockets)
        finally:
            controller.stop()
    finally:
        for sock in sockets:
            sock.close()
