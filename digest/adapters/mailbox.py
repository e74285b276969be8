"""`digest mailbox`: a local SMTP server for trying the pipeline out. Adapter.

Every message it receives is written whole (to a temporary name, then renamed) as a
.eml file, and reported through a callback with its first link decoded; nothing is
relayed anywhere. list_messages and read_message give the caught mail back to the
mailbox's web page (web/mailbox.py).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from ..core.mailview import MailView, view_message

_NAME = re.compile(r"^\d{8}T\d{6}-\d{5}\.eml$")


@dataclass(frozen=True)
class Caught:
    """One message in the mailbox folder."""

    name: str
    view: MailView


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
            while path.exists():  # a restarted mailbox counts from 1 again
                n = next(self.counter)
                path = self.folder / f"{stamp}-{n:05d}.eml"
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        view = view_message(data)
        link = f"  {view.first_link}" if view.first_link else ""
        self.report(f"{path.name}  from {envelope.mail_from}  to {', '.join(envelope.rcpt_tos)}  {view.subject}{link}")
        return "250 Message stored"


def start_mailbox(folder: Path, port: int, report: Callable[[str], None], host: str = "127.0.0.1") -> Controller:
    """Start the server in a thread; the caller stops it with .stop()."""
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(MailboxHandler(folder, report), hostname=host, port=port)
    controller.start()
    return controller


def list_messages(folder: Path) -> list[Caught]:
    """The caught messages, newest first."""
    if not folder.is_dir():
        return []
    return [Caught(p.name, view_message(p.read_bytes()))
            for p in sorted(folder.glob("*.eml"), reverse=True) if _NAME.match(p.name)]


def read_message(folder: Path, name: str) -> Caught | None:
    """One caught message by its file name; None for a name that is not one of ours."""
    if not _NAME.match(name):
        return None
    path = folder / name
    try:
        return Caught(name, view_message(path.read_bytes()))
    except OSError:
        return None
