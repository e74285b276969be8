"""The progress bar of `digest send`: rich on a terminal, silent otherwise. Layer 4.

One bar per issue (or per round of retries), and a countdown while the send waits for
deferred messages (the jobs' Progress, jobs/ports.py).
"""

from __future__ import annotations

import sys
import threading
from typing import Any


class SendProgress:
    """A rich progress bar on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()  # the connections' threads report here

    def __enter__(self) -> SendProgress:
        return self

    def begin(self, label: str, total: int) -> None:
        """A new bar for `total` messages of `label` ("issue 3", "issue 2, deferred")."""
        if not sys.stderr.isatty():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with self.lock:
            self.counts = {}
        if self.bar is None:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), transient=True)
            self.bar.start()
        elif self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(label, total=total, detail="")

    def advance(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            counts = dict(self.counts)
        if self.bar is not None and self.task is not None:
            elapsed = self.bar.tasks[-1].elapsed or 1e-9
            done = sum(counts.values())
            detail = " ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"  {done / elapsed:.0f}/s"
            self.bar.update(self.task, advance=1, detail=detail)

    def waiting(self, seconds: float, deferred: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, detail=f"waiting {seconds:.0f} s to retry {deferred} deferred messages")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
