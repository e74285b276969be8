"""A real HTTPS server on loopback for the doctor's link checks: pages that answer 200, a
301 to one, a 404, one that never answers, a page that refuses HEAD, images small and
huge, and the web app's answer to a made-up reader's link (400). Its certificate comes
from a trustme CA that the test makes the system's (SSL_CERT_FILE)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")  # enough to look like one


@contextmanager
def link_site(ca: trustme.CA) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(base URL, the requests it received as (method, path))."""
    seen: list[tuple[str, str]] = []
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, head: bool) -> None:
            seen.append((self.command, self.path))
            path = self.path.split("?")[0]
            status, body, kind, extra = 200, b"<p>a page</p>", "text/html", {}
            if path == "/never":
                stop.wait(30)
                return
            if path == "/moved":
                status, extra = 301, {"Location": "/ok"}
            elif path == "/dead":
                status, body = 404, b"not found"
            elif path == "/no-head" and head:
                status, body = 405, b""
            elif path.startswith(("/unsubscribe/", "/preferences/")):
                status, body = 400, b"This link does not work"
            elif path.endswith(".png"):
                kind = "image/png"
                body = PNG + (b"\0" * 1_200_000 if "huge" in path else b"")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", seen
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
