"""`digest mailbox`: a real SMTP server in a subprocess that keeps every message as .eml."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

from browser import digest_process
from mailserver import free_port


def test_mailbox_stores_each_message_and_prints_a_line(tmp_path: Path) -> None:
    port = free_port()
    outbox = tmp_path / "outbox"
    with digest_process("mailbox", "--port", str(port), "--dir", str(outbox)) as proc:
        deadline = time.monotonic() + 20
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "mailbox did not start"
                time.sleep(0.1)
        with client:
            for i in range(2):
                client.sendmail("from@example.com", ["to@example.org"],
                                f"Subject: Hello {i}\r\nFrom: from@example.com\r\n\r\nBody {i}\r\n".encode())
        files = sorted(outbox.glob("*.eml"))
        assert len(files) == 2 and b"Body 1" in files[1].read_bytes()
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert f"Listening on 127.0.0.1:{port}" in out
    assert "from from@example.com  to to@example.org  Hello 0" in out and "Hello 1" in out
