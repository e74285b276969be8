"""The link checker (adapters/links.py) against a real HTTP server: a bounded number of
requests at once, HEAD before GET, each within its timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from digest.adapters.links import fetch_all


class Counting:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.methods: list[str] = []


@pytest.fixture
def slow_server() -> Iterator[tuple[str, Counting]]:
    seen = Counting()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            with seen.lock:
                seen.now += 1
                seen.most = max(seen.most, seen.now)
                seen.methods.append(self.command)
            time.sleep(0.1)
            with seen.lock:
                seen.now -= 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = _answer  # noqa: N815
        do_GET = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_a_bounded_number_at_once(slow_server: tuple[str, Counting]) -> None:
    base, seen = slow_server
    results = fetch_all([f"{base}/p{i}" for i in range(12)], timeout=5, user_agent="t", concurrency=3)
    assert [r.status for r in results] == [200] * 12
    assert [r.url for r in results] == [f"{base}/p{i}" for i in range(12)]  # in the order given
    assert 1 < seen.most <= 3
    assert seen.methods == ["HEAD"] * 12  # HEAD was enough: no GET


def test_a_refused_connection_is_said_in_words() -> None:
    from mailserver import free_port

    (result,) = fetch_all([f"http://127.0.0.1:{free_port()}/"], timeout=2, user_agent="t")
    assert result.status is None and not result.timed_out and result.error
