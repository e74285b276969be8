"""Fetching feeds from a real HTTP server on loopback (port 0)."""

from __future__ import annotations

import gzip
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import trustme
from conftest import FeedServer, Reply
from feedgen import Entry, atom

from digest.adapters.deadline import Deadline
from digest.adapters.fetch import FetchOptions, blogger_page_url, fetch_feed
from digest.core.errors import FeedParseError, FetchError
from digest.core.models import FeedState

OPTS = FetchOptions(timeout_seconds=1.0, deadline_seconds=3.0, user_agent="digest-test/1", max_bytes=1_000_000)
FEED = atom([Entry(1), Entry(2)])


def test_plain_fetch_sends_our_user_agent_and_accepts_gzip(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed", Reply(body=FEED, headers={"Content-Type": "application/atom+xml"}))
    result = fetch_feed(url, OPTS)
    assert [p.id for p in result.posts] == ["tag:blogger.com,1999:blog-1.post-1", "tag:blogger.com,1999:blog-1.post-2"]
    headers = feed_server.requests[0][1]
    assert headers["user-agent"] == "digest-test/1"
    assert "gzip" in headers["accept-encoding"]


def test_etag_makes_the_next_fetch_conditional(feed_server: FeedServer) -> None:
    def route(handler: BaseHTTPRequestHandler) -> Reply:
        if handler.headers.get("If-None-Match") == '"v1"':
            return Reply(304)
        return Reply(body=FEED, headers={"ETag": '"v1"'})

    url = feed_server.serve("/feed", route)
    first = fetch_feed(url, OPTS)
    assert first.state.etag == '"v1"' and not first.not_modified
    second = fetch_feed(url, OPTS, state=first.state)
    assert second.not_modified and second.posts == ()
    assert second.state.etag == '"v1"'


def test_last_modified_makes_the_next_fetch_conditional(feed_server: FeedServer) -> None:
    stamp = "Wed, 25 Nov 2026 10:00:00 GMT"

    def route(handler: BaseHTTPRequestHandler) -> Reply:
        if handler.headers.get("If-Modified-Since") == stamp:
            return Reply(304)
        return Reply(body=FEED, headers={"Last-Modified": stamp})

    url = feed_server.serve("/feed", route)
    first = fetch_feed(url, OPTS)
    assert first.state.last_modified == stamp
    assert fetch_feed(url, OPTS, state=first.state).not_modified


def test_state_of_another_url_is_not_used(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed", Reply(body=FEED))
    fetch_feed(url, OPTS, state=FeedState(url="https://elsewhere.example/feed", etag='"x"'))
    assert "if-none-match" not in feed_server.requests[0][1]


def test_permanent_redirect_is_reported(feed_server: FeedServer) -> None:
    new = feed_server.serve("/new-feed", Reply(body=FEED))
    old = feed_server.serve("/feed", Reply(301, headers={"Location": "/new-feed"}))
    result = fetch_feed(old, OPTS)
    assert result.state.moved_to == new
    assert len(result.posts) == 2
    assert any("moved permanently" in w and new in w for w in result.warnings)


def test_temporary_redirect_is_followed_but_not_reported(feed_server: FeedServer) -> None:
    feed_server.serve("/tmp-feed", Reply(body=FEED))
    old = feed_server.serve("/feed", Reply(302, headers={"Location": "/tmp-feed"}))
    result = fetch_feed(old, OPTS)
    assert result.state.moved_to is None and len(result.posts) == 2


def test_redirect_loop_is_an_error(feed_server: FeedServer) -> None:
    url = feed_server.serve("/loop", Reply(302, headers={"Location": "/loop"}))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch_feed(url, OPTS)


@pytest.mark.parametrize(("status", "message"), [(410, "HTTP 410 Gone: the feed was removed"), (404, "HTTP 404"), (500, "HTTP 500")])
def test_http_errors(feed_server: FeedServer, status: int, message: str) -> None:
    url = feed_server.serve("/feed", Reply(status, b"nope"))
    with pytest.raises(FetchError, match=message):
        fetch_feed(url, OPTS)


def test_gzip_body_is_decoded(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed", Reply(body=gzip.compress(FEED), headers={"Content-Encoding": "gzip"}))
    assert len(fetch_feed(url, OPTS).posts) == 2


def test_gzip_bomb_stops_at_the_cap(feed_server: FeedServer) -> None:
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip at its fastest level: a third of the default's second
    spaces = b" " * 1_000_000
    bomb = packer.compress(b"<") + b"".join(packer.compress(spaces) for _ in range(200)) + packer.flush()
    # ~870 KB that unpacks to 200 MB
    assert len(bomb) < OPTS.max_bytes
    url = feed_server.serve("/feed", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    started = time.monotonic()
    with pytest.raises(FetchError, match="unpacks to over the 1,000,000 byte cap"):
        fetch_feed(url, OPTS)
    assert time.monotonic() - started < 3


def test_oversized_body_is_refused(feed_server: FeedServer) -> None:
    url = feed_server.serve("/big", Reply(body=b" " * 1_500_000))
    with pytest.raises(FetchError, match="over the 1,000,000 byte cap"):
        fetch_feed(url, OPTS)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/feed"
    sock.close()


def test_server_that_never_answers_fails_within_the_timeout(silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"no answer within 0\.5 s"):
        fetch_feed(silent_server, FetchOptions(timeout_seconds=0.5, deadline_seconds=3.0))
    assert time.monotonic() - started < 2


Drip = Callable[[bytes, bytes], str]
DRIP_OPTS = FetchOptions(timeout_seconds=1.0, deadline_seconds=0.5)


@pytest.fixture
def drip() -> Iterator[Drip]:
    """A server that answers with `head` at once, then one byte of `slowly` every 0.2 s: well
    within a read timeout of 1 s, which starts again with every byte. The tests' deadlines
    are shorter (0.5 s): the deadline must cut what the read timeout never would.

    It gives up after 40 bytes, 8 s (so that a fetch with no working deadline ends in a
    failure, not a hang), or at the end of the test.
    """
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def start(head: bytes, slowly: bytes) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sockets.append(sock)

        def serve() -> None:
            conn, _ = sock.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(head)
                for byte in slowly[:40]:
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{sock.getsockname()[1]}/feed"

    yield start
    stop.set()
    for sock in sockets:
        sock.close()


def test_slow_drip_is_cut_by_the_overall_deadline(drip: Drip) -> None:
    url = drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/atom+xml\r\n\r\n", b" " * 40)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"not fetched within 0\.5 s \(\[feed\] deadline_seconds\)"):
        fetch_feed(url, DRIP_OPTS)
    assert time.monotonic() - started < 2


def test_headers_dripped_a_byte_at_a_time_are_cut_by_the_overall_deadline(drip: Drip) -> None:
    # Each byte comes well within the 1 s read timeout, which starts again with every byte.
    url = drip(b"", b"HTTP/1.1 200 OK\r\nContent-Type: application/atom+xml\r\nX-Slow: " + b"a" * 40)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"not fetched within 0\.5 s \(\[feed\] deadline_seconds\)"):
        fetch_feed(url, DRIP_OPTS)
    assert time.monotonic() - started < 2


def test_a_body_that_ends_with_the_connection_is_not_taken_whole_when_the_deadline_cuts_it(drip: Drip) -> None:
    # No Content-Length: the body ends when the connection does, as cutting it makes it do.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/atom+xml\r\nConnection: close\r\n\r\n"
    url = drip(head + FEED.split(b"<entry>")[0], b"<!-- slow -->" * 4)
    with pytest.raises(FetchError, match=r"not fetched within 0\.5 s"):
        fetch_feed(url, DRIP_OPTS)


def test_the_deadline_cuts_a_tls_connection_too() -> None:
    # Blogger is https: TLS takes the connection's socket over, the deadline must still reach it.
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/feed"

    def serve() -> None:
        raw, _ = listener.accept()
        with server_tls.wrap_socket(raw, server_side=True) as conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 30:
                time.sleep(0.2)
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    with listener, Deadline(0.5) as deadline, httpx.Client(verify=client_tls, timeout=1.0) as client:
        with pytest.raises(httpx.HTTPError), client.stream("GET", url, extensions={"trace": deadline.trace}):
            pass
        with pytest.raises(FetchError, match=r"not fetched within 0\.5 s"):
            deadline.check(url)
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_one_clear_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(FetchError, match=f"127.0.0.1:{port}/feed: cannot fetch"):
        fetch_feed(f"http://127.0.0.1:{port}/feed", OPTS)


def paged(feed_server: FeedServer, pages: int, per_page: int = 3) -> str:
    """A Blogger-style feed of `pages` pages, newest first, one post a day from 2026-11-30."""
    for i in range(pages):
        entries = [Entry(n, published=f"2026-11-{30 - n:02d}T08:00:00Z") for n in range(i * per_page, (i + 1) * per_page)]
        if i:  # the first post of each later page repeats the last of the one before
            entries.insert(0, Entry(i * per_page - 1, published=f"2026-11-{30 - (i * per_page - 1):02d}T08:00:00Z"))
        nxt = f"{feed_server.url}/feed?start-index={(i + 1) * per_page + 1}" if i + 1 < pages else None
        path = "/feed" if i == 0 else f"/feed?start-index={i * per_page + 1}"
        feed_server.routes[path] = Reply(body=atom(entries, next_url=nxt))
    return feed_server.url + "/feed"


def test_paging_stops_once_posts_are_older_than_the_cut_off(feed_server: FeedServer) -> None:
    url = paged(feed_server, 4)
    result = fetch_feed(url, OPTS, since=datetime(2026, 11, 26, tzinfo=timezone.utc))
    assert result.pages == 2
    ids = [p.id for p in result.posts]
    assert len(ids) == len(set(ids)) == 6  # the repeated post collapsed


def test_paging_without_a_cut_off_reads_every_page(feed_server: FeedServer) -> None:
    result = fetch_feed(paged(feed_server, 3), OPTS)
    assert result.pages == 3 and len(result.posts) == 9


def test_page_cap_stops_an_endless_feed(feed_server: FeedServer) -> None:
    url = paged(feed_server, 5)
    opts = FetchOptions(timeout_seconds=1, deadline_seconds=3, max_pages=2)
    result = fetch_feed(url, opts)
    assert result.pages == 2
    assert any("stopped after 2 pages" in w for w in result.warnings)


def test_blogger_page_size_is_asked_for() -> None:
    assert blogger_page_url("https://b.blogspot.com/feeds/posts/default", 25) == \
        "https://b.blogspot.com/feeds/posts/default?max-results=25"
    assert blogger_page_url("https://b.blogspot.com/feeds/posts/default?max-results=5", 25).endswith("max-results=5")
    assert blogger_page_url("https://other.example/rss.xml", 25) == "https://other.example/rss.xml"


def test_html_page_instead_of_a_feed(feed_server: FeedServer) -> None:
    url = feed_server.serve("/", Reply(body=b"<!doctype html><html><body>Blog</body></html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(FeedParseError, match="an HTML page"):
        fetch_feed(url, OPTS)


def test_files(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    assert len(fetch_feed(str(path), OPTS).posts) == 2
    with pytest.raises(FetchError, match=r"missing\.xml: no such file"):
        fetch_feed(str(tmp_path / "missing.xml"), OPTS)
    with pytest.raises(FetchError, match="is a folder"):
        fetch_feed(str(tmp_path), OPTS)


def test_a_malformed_feed_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "bozo.xml"
    path.write_bytes(b"\n\n" + FEED)  # a blank line before <?xml, as some WordPress feeds have
    result = fetch_feed(str(path), OPTS)
    assert len(result.posts) == 2
    assert len(result.warnings) == 1 and "not well-formed" in result.warnings[0] and "2 posts read anyway" in result.warnings[0]
    clean = tmp_path / "clean.xml"
    clean.write_bytes(FEED)
    assert fetch_feed(str(clean), OPTS).warnings == ()


# ---- local paths that are not feed files ----

LIMITED_CLI = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # a regression fails here, not on the machine
from digest.cli import main
main(sys.argv[1:])
"""


def preview_in_a_child(feed: Path, config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`digest preview --feed FEED` in a child with a memory cap and a time limit."""
    try:
        return subprocess.run([sys.executable, "-c", LIMITED_CLI, "preview", "--config", str(config), "--feed", str(feed),
                               "--all", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"digest preview --feed {feed} still ran after 30 s")


def make_fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)  # nobody ever writes: opening it to read blocks for ever
    return fifo


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("make", [lambda tmp: Path("/dev/zero"), make_fifo], ids=["dev-zero", "fifo"])
def test_a_path_that_is_not_a_regular_file_is_refused_at_once(
        make: Callable[[Path], Path], tmp_path: Path, write_config: Callable[..., Path]) -> None:
    feed = make(tmp_path)
    started = time.monotonic()
    proc = preview_in_a_child(feed, write_config(), tmp_path)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [(f"Error: {feed}: is not a regular file (a device, a FIFO or a socket): refused "
                                         "(check [feed] url in config.toml or --feed)")]
    assert time.monotonic() - started < 15  # the interpreter's start-up; the refusal is immediate


def test_a_file_is_read_no_further_than_the_cap(tmp_path: Path) -> None:
    opts = FetchOptions(timeout_seconds=1, deadline_seconds=3, max_bytes=len(FEED) - 1)
    big = tmp_path / "big.xml"
    big.write_bytes(FEED)
    with pytest.raises(FetchError, match=rf"big.xml: the file is {len(FEED):,} bytes, over the {len(FEED) - 1:,} byte cap"):
        fetch_feed(str(big), opts)
    # A file that claims to be empty and is not: the read itself stops at the cap.
    status = Path("/proc/self/status")
    if not status.is_file() or status.stat().st_size != 0:
        pytest.skip("needs Linux /proc, whose files report a size of 0")
    with pytest.raises(FetchError, match=r"/proc/self/status: the file is over the 100 byte cap \(\[feed\] max_bytes\)"):
        fetch_feed(str(status), FetchOptions(max_bytes=100))
