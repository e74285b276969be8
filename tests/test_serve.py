"""`digest serve` as a real subprocess on a real port: a port already taken, and the body
cap on the wire (uvicorn hands the app a chunked body piece by piece)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from browser import ROOT, digest_process
from mailserver import free_port

from digest.adapters.listen import bind_sockets
from digest.core.errors import ListenError

SECRET = "serve-secret-0123456789abcdef"


def run_serve(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "digest", "serve", "--no-scheduler", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET": SECRET})


def test_a_port_in_use_is_one_error_line_and_its_own_exit_code(write_config: Callable[..., Path]) -> None:
    config = write_config()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve(config, "--port", str(port))
    assert result.returncode == ListenError.exit_code == 8, result.stdout + result.stderr
    assert result.stdout == ""  # nothing started, nothing announced
    assert result.stderr.splitlines() == [(
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another program listens there: stop it, or choose another port with --port)")]


def test_bind_errors_become_listen_errors() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            bind_sockets("127.0.0.1", port)
        exc = caught.value
        assert exc.host == "127.0.0.1" and exc.port == port and "address already in use" in str(exc)
    sockets = bind_sockets("127.0.0.1", port)  # free again
    assert [s.getsockname() for s in sockets] == [("127.0.0.1", port)]
    for s in sockets:
        s.close()


def read_status(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def test_a_chunked_body_is_refused_once_past_the_cap_without_reading_the_rest(write_config: Callable[..., Path]) -> None:
    config = write_config()
    port = free_port()
    with digest_process("serve", "--no-scheduler", "--port", str(port), "--config", str(config),
                        env={"DIGEST_SECRET": SECRET}, health=f"http://127.0.0.1:{port}/healthz"), \
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        sent = 0
        chunk = b"a" * 16384
        deadline = time.monotonic() + 20
        sock.settimeout(0.2)
        status = b""
        # Keep sending 16 KB chunks (up to 64 MB) until the server answers.
        while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except OSError:  # the server closed the connection after answering
                break
            try:
                status = read_status(sock)
                break
            except TimeoutError:
                continue
        if not status:
            sock.settimeout(10)
            status = read_status(sock)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert sent < 1024 * 1024  # answered after about the cap, not after the whole body
