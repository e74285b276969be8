"""Forcing two processes' interleaving on one database, for the tests of check-then-act races.

`meanwhile(store.engine, "UPDATE questions", act)` runs `act` (the other process's work, on
a Store of its own: its own engine and connections) in a thread just before `store` next
sends a statement that starts with that text, and lets the statement go once `act` is done.
A transaction that reads and then writes in two statements thus sees the other process
write in between, as two real processes can.

When the code under test locks what it read (SQLite's write lock, a PostgreSQL row or
advisory lock), `act` waits for that lock and cannot finish before the transaction ends:
the statement then goes on after `patience` seconds, and `act` finishes after the
transaction, as it would in production. The block's end waits for `act` and raises its
failure, if any. The interleaving is forced, not hoped for: no sleep decides it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


@contextmanager
def meanwhile(engine: sa.Engine, prefix: str, act: Callable[[], object], *, patience: float = 1.0) -> Iterator[None]:
    """Run `act` once, in another thread, right before `engine` next runs a statement
    starting with `prefix` (case and leading space ignored)."""
    started: list[threading.Thread] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            act()
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            failure.append(exc)

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if started or not statement.lstrip().upper().startswith(prefix.upper()):
            return
        thread = threading.Thread(target=run, daemon=True)
        started.append(thread)
        thread.start()
        thread.join(patience)  # done, or waiting for a lock this transaction holds

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        for thread in started:
            thread.join(60)
    if failure:
        raise failure[0]
    assert started, f"no statement starting with {prefix!r} ran: the interleaving was not forced"
