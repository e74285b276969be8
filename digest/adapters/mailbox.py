"""`digest mailbox`: a local SMTP server for trying the pipeline out. Adapter.

Every message it receives is written whole (to a temporary name, then renamed) as a
.eml file, and reported through a callback; nothing is relayed anywhere.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MailboxHandler:
    def __init__(self, folder: Path, report: Callable[[str], None]) -> None:
        self.folder = folder
        self.report = report
        self.lock = threading.Lock()
        self.counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        data: bytes = envelope.original_content or envelope.content
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        with self.lock:
            n = next(self.counter)
        path = self.folder / f"{stamp}-{n:05d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        subject = email.message_from_bytes(data, policy=email.policy.default).get("Subject", "")
        self.report(f"{path.name}  from {envelope.mail_from}  to {', '.join(envelope.rcpt_tos)}  {subject}")
        return "250 Message stored"


def start_mailbox(folder: Path, port: int, report: Callable[[str], None], host: str = "127.0.0.1") -> Controller:
    """Start the server in a thread; the caller stops it with .stop()."""
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(MailboxHandler(folder, report), hostname=host, port=port)
    controller.start()
    return controller
