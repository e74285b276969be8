"""Shared fixtures: a real HTTP server for feeds, configs written to tmp_path, the CLI."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_FEEDS = ROOT.parent / "shared" / "feeds"
# "Now" for the commands a test runs in this process: the day after the sample feed's newest
# post (22 November 2026). No test may pass or fail by the calendar.
CLI_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
# [newsletter] first_issue_days for a process that reads the wall clock: every sample post is new.
ANY_DAY = 36500


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true", help="Rewrite tests/golden/ from the current output.")


# Modules whose tests start processes (digest send/serve, the wheel's venv) or wait on timers.
SLOW_MODULES = {"test_send_processes", "test_serve_schedule", "test_serve", "test_secret", "test_packaging",
                "test_e2e_browser", "test_tryout_browser", "test_questions_e2e",
                "test_doctor", "test_desk_browser"}  # dnsmasq and spamassassin processes, links that time out on purpose


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark as slow what `make test-fast` leaves out: browsers, PostgreSQL, processes."""
    for item in items:
        module = item.module.__name__ if isinstance(item, pytest.Function) and item.module else ""
        callspec = getattr(item, "callspec", None)
        if (module in SLOW_MODULES or item.get_closest_marker("browser")
                or {"postgres_url", "fresh_postgres"} & set(getattr(item, "fixturenames", ()))
                or (callspec is not None and "postgresql" in callspec.id)):
            item.add_marker(pytest.mark.slow)


def require(condition: bool, why: str) -> None:
    """Skip when a system tool is missing, unless CI said everything must run."""
    if not condition:
        if os.environ.get("DIGEST_REQUIRE_ALL"):
            pytest.fail(f"required in CI but missing: {why}")
        pytest.skip(why)


# ---- a real HTTP server on port 0 ----

@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Route = Callable[[BaseHTTPRequestHandler], Reply | None]


@dataclass
class FeedServer:
    url: str
    routes: dict[str, Reply | Route]
    requests: list[tuple[str, dict[str, str]]]

    def serve(self, path: str, reply: Reply | Route) -> str:
        self.routes[path] = reply
        return self.url + path


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    routes: dict[str, Reply | Route] = {}
    requests: list[tuple[str, dict[str, str]]] = []
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = routes.get(self.path) or routes.get(self.path.split("?")[0])
            reply = route(self) if callable(route) else route
            if reply is None:
                reply = Reply(404, b"not found")
            if reply.delay:
                stop.wait(reply.delay)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.body:
                try:
                    self.wfile.write(reply.body)
                except OSError:
                    pass

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client hanging up mid-body is what some tests do on purpose

    server = Server(("127.0.0.1", 0), Handler)
    # shutdown() waits for the loop's next poll: at 0.05 s that was most of a short test's time
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield FeedServer(f"http://127.0.0.1:{server.server_address[1]}", routes, requests)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


# ---- configuration written to a file ----

BASE_CONFIG = """
[blog]
name = "The Wise Job Search"
url = "https://thewisejobsearch.blogspot.com/"
contact_url = "https://thewisejobsearch.blogspot.com/p/contact.html"
postal_address = "100 Example Street, Springfield"

[feed]
url = "{feed}"
timeout_seconds = 2
deadline_seconds = 5

[newsletter]
from = "The Wise Job Search <newsletter@example.com>"
subject = "{{{{ blog }}}}: {{{{ first_title }}}}"
max_posts = {max_posts}
first_issue_days = {first_issue_days}
{newsletter}
[question]
text = "Send us your question."
url = "https://thewisejobsearch.blogspot.com/p/contact.html"
email = "questions@example.com"
labels = ["Reader Questions"]

[topics]
"Interviewing" = "Interviews"
"Resumes" = "Resumes"
"Networking" = "Networking"
"Salary & Offers" = "Offers"

[schedule]
cron = "mon 07:00"
timezone = "America/New_York"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
timeout_seconds = 5
# Most tests' clocks stand still: a run waits for deferred messages only where a test asks.
retry_window_minutes = 0

[store]
url = "sqlite:///{db}"

[web]
base_url = "https://news.example.com"
"""


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """`first_issue_days` is how far back the first issue reaches: a test that runs the CLI
    in-process has CLI_NOW as its clock; one whose process reads the wall clock (a subprocess)
    passes ANY_DAY, so that every post of the sample is new whatever the date.
    `newsletter` adds lines to [newsletter]; `extra`, whole sections at the end."""
    def write(feed: str | Path = ROOT / "examples" / "sample-feed.xml", *, max_posts: int = 20,
              smtp_port: int = 25, extra: str = "", name: str = "config.toml", first_issue_days: int = 7,
              newsletter: str = "") -> Path:
        path = tmp_path / name
        text = BASE_CONFIG.format(feed=str(feed), max_posts=max_posts, smtp_port=smtp_port,
                                  db=tmp_path / "subscribers.db", first_issue_days=first_issue_days,
                                  newsletter=newsletter.strip() + "\n" if newsletter.strip() else "")
        path.write_text(text + extra, encoding="utf-8")
        return path

    return write


# ---- the command line, in-process ----

@pytest.fixture(autouse=True)
def _template_cache_of_the_run(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`digest` keeps compiled templates in $XDG_CACHE_HOME (adapters/template_cache.py): a
    command run in this process keeps them in a folder of the test run, never the tester's
    ~/.cache, and leaves the next test no cache folder (core/render.py's use_bytecode_cache: this
    process's memory only)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    yield
    from digest.core.render import use_bytecode_cache

    use_bytecode_cache(None)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """The `digest` command in this process, at CLI_NOW (or at the `clock` a call passes)."""
    from digest.cli import main

    def run(*args: str | Path, clock: Callable[[], datetime] = lambda: CLI_NOW) -> Run:
        capsys.readouterr()
        try:
            main([str(a) for a in args], clock=clock)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Any]:
    """A throwaway Dovecot (tests/imapserver.py) for the tests of one module."""
    from imapserver import dovecot_available, imap_server

    require(dovecot_available(), "Dovecot not found (apt-get install dovecot-imapd): the inbox tests need a real IMAP server")
    with imap_server() as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system Chromium for the tests of one module (tests/browser.py)."""
    from browser import CHROMIUM, chromium

    require(os.path.exists(CHROMIUM), "Chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    with chromium() as running:
        yield running


@pytest.fixture
def mail_server() -> Iterator[Any]:
    from mailserver import MailServer

    server = MailServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session (skips, or fails in CI, without the binaries)."""
    from pg import pg_bin, postgres_server

    require(pg_bin() is not None, "PostgreSQL server binaries not found (apt-get install postgresql)")
    with postgres_server() as url:
        yield url


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """An empty database on the session's server."""
    import uuid

    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on a real SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'subscribers.db'}"
    return str(request.getfixturevalue("fresh_postgres"))
