"""The overall deadline of one feed fetch, enforced on its connections. Adapter: it
watches sockets and shuts them down.

httpx's read timeout starts again with every byte, so a server that drips its status
line, headers or body one byte at a time stays under it for ever. A timer cuts the
connections instead, which wakes the read blocked on them.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from ..core.errors import FetchError


class Deadline:
    """The deadline of one fetch, every page and redirect included; a context manager.

    Pass `trace` as the "trace" extension of each request: it keeps a duplicate of every
    new connection's socket (still valid after TLS takes the original over; closed when
    the fetch ends). At the deadline the timer shuts them all down, and check() names the
    deadline as the reason for whatever error the cut read raised.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cut = False
        self._timer = threading.Timer(seconds, self._cut_connections)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def check(self, url: str) -> None:
        """Raise FetchError once the deadline has passed."""
        if self._cut or time.monotonic() >= self._at:
            raise FetchError(url, f"not fetched within {self.seconds:g} s ([feed] deadline_seconds)")

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's "trace" request extension: hears of each new connection."""
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        if sock is None:  # a transport without a socket of its own: nothing to cut
            return
        copy = sock.dup()
        with self._lock:
            self._sockets.append(copy)
            if self._cut:
                _shut(copy)

    def _cut_connections(self) -> None:
        with self._lock:
            self._cut = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the server or by httpx
