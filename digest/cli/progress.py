"""The progress bar of `digest send`: rich on a terminal, silent otherwise. Layer 4."""

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

    def start(self, total: int) -> None:
        if not sys.stderr.isatty():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                            TimeElapsedColumn(), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("send", total=total, detail="")

    def advance(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.bar is not None:
            elapsed = self.bar.tasks[0].elapsed or 1e-9
            done = sum(self.counts.values())
            detail = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) + f"  {done / elapsed:.0f}/s"
            self.bar.update(self.task, advance=1, detail=detail)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
