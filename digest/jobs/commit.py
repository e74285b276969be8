"""Group commit of a send's settles. A job's helper (layer 3), over the DeliveryLedger port.

Every connection of a send hands the outcome of each message to one Committer, which
writes whatever has come in since its last write in one transaction: one fsync records
the last message of every connection. A connection must not send its next message until
its previous one is recorded (wait), so a kill leaves at most one message per connection
sent and not recorded, as it did when each connection committed its own; but while one
transaction commits, the connections build and address their next messages, and the
next transaction takes all their outcomes at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from ..core.errors import StoreError
from ..core.models import Settlement
from .ports import DeliveryLedger

log = logging.getLogger("digest.send")


class Committer:
    """Writes handed-in settlements in batches, on a thread of its own; see the module."""

    def __init__(self, ledger: DeliveryLedger) -> None:
        self.ledger = ledger
        lock = threading.Lock()
        self._work = threading.Condition(lock)      # the committer waits here for outcomes to write
        self._written = threading.Condition(lock)  # connections wait here for theirs to be written
        self._queue: list[Settlement] = []
        self._handed = 0    # settlements handed in so far; the n-th has ticket n
        self._recorded = 0  # settlements committed so far (in ticket order)
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ledger-commit", daemon=True)
        self._thread.start()

    def hand(self, settlement: Settlement) -> int:
        """Queue one settlement; its ticket, for wait()."""
        with self._work:
            self._check()
            if self._closing:
                raise RuntimeError("the committer is closed")
            self._queue.append(settlement)
            self._handed += 1
            self._work.notify()
            return self._handed

    def wait(self, ticket: int) -> None:
        """Return once the settlement of `ticket` (and every one before it) is committed;
        StoreError when the ledger failed meanwhile."""
        with self._written:
            while self._recorded < ticket and self._error is None:
                self._written.wait()
            if self._recorded < ticket:
                self._check()

    def close(self) -> None:
        """Commit what is queued, then stop the thread; StoreError if that failed."""
        with self._work:
            self._closing = True
            self._work.notify()
        self._thread.join()
        with self._work:
            self._check()

    def _check(self) -> None:
        """Raise, in the calling connection's thread, what stopped the committer."""
        error = self._error
        if isinstance(error, StoreError):
            raise StoreError(error.message, hint=error.hint) from error
        if error is not None:
            raise StoreError(f"the ledger could not record what was sent: {type(error).__name__}: {error}") from error

    def _run(self) -> None:
        try:
            with self.ledger.settling() as settle:
                self._loop(settle)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, every waiting connection must hear of it
            log.error("the ledger cannot record what is sent: %s", exc)
            with self._work:
                self._error = exc
                self._written.notify_all()

    def _loop(self, settle: Callable[[Sequence[Settlement]], None]) -> None:
        while True:
            with self._work:
                while not self._queue and not self._closing:
                    self._work.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                last = self._handed
            settle(batch)
            with self._work:
                self._recorded = last
                self._written.notify_all()


class Lane:
    """One connection's part in a send: its claimer name ("<sender id>/<n>") and the ticket
    of the last outcome it handed to the committer."""

    def __init__(self, claimer: str, committer: Committer) -> None:
        self.claimer, self.committer, self.ticket = claimer, committer, 0

    def record(self, settlement: Settlement) -> None:
        self.ticket = self.committer.hand(settlement)

    def ready(self) -> None:
        """Wait until everything this connection handed in is recorded."""
        self.committer.wait(self.ticket)
