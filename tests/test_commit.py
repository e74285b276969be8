"""The committer: outcomes handed in while one batch is written go into the next, one
transaction, written by a connection that waits for it; wait() returns only once an
outcome is written; a failure reaches everyone.
The ledger is the real one on SQLite, its batches observed on the way through."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.adapters.ledger import Ledger
from digest.adapters.store import Store
from digest.core.errors import StoreError
from digest.core.models import Consent, Settlement
from digest.core.subscriptions import CSVRow
from digest.jobs.commit import Committer, Lane

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Watched(Ledger):
    """The real ledger; each batch written is noted, and the first waits for `go`."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.batches: list[list[int]] = []
        self.go = threading.Event()
        self.writing = threading.Event()
        self.fail = False

    @contextmanager
    def settling(self) -> Iterator[Callable[[Sequence[Settlement]], None]]:
        with super().settling() as settle:
            def watched(batch: Sequence[Settlement]) -> None:
                self.writing.set()
                self.go.wait(10)
                if self.fail:
                    raise StoreError("the database failed: disk I/O error")
                settle(batch)
                self.batches.append([s.delivery_id for s in batch])
            yield watched


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Watched]:
    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}")
    store.import_rows((CSVRow(i, f"r{i}@example.com", f"r{i}@example.com", "", ()) for i in range(6)),
                      confirmed=True, now=NOW, consent=Consent(at=NOW, method="import"))
    watched = Watched(store)
    issue, _ = watched.create_issue(key="k", now=NOW, cutoff=NOW, subject="S", posts=[], html="", text="",
                                    domain="example.com", state=None)
    watched.claim(issue.id, "s/0", NOW, 6)
    yield watched
    store.close()


def sent(delivery_id: int) -> Settlement:
    return Settlement(delivery_id, "sent", NOW, 250, "DATA: 250 ok")


def test_outcomes_handed_in_during_a_write_go_into_the_next_one(ledger: Watched) -> None:
    """The first connection to wait writes what is queued; outcomes handed in meanwhile
    wait for that write, then go together in the next one, written by one of them."""
    committer = Committer(ledger)
    first = Lane("s/0", committer)
    first.record(sent(1))
    assert not ledger.writing.wait(0.2)  # handing in writes nothing: the one who waits writes
    waiter = threading.Thread(target=first.ready)
    waiter.start()
    assert ledger.writing.wait(5)  # first writes its batch, held until `go`
    lanes = [Lane(f"s/{i}", committer) for i in range(1, 4)]
    for i, lane in enumerate(lanes, start=2):
        lane.record(sent(i))
    followers = [threading.Thread(target=lane.ready) for lane in lanes]
    for follower in followers:
        follower.start()
    assert waiter.is_alive() and ledger.counts(1) == {"sending": 6}  # nothing is written yet: ready() waits
    ledger.go.set()
    for thread in [waiter, *followers]:
        thread.join(5)
        assert not thread.is_alive()
    assert ledger.batches == [[1], [2, 3, 4]]
    assert ledger.counts(1) == {"sent": 4, "sending": 2}
    committer.close()


def test_close_writes_what_was_handed_in(ledger: Watched) -> None:
    ledger.go.set()
    committer = Committer(ledger)
    lane = Lane("s/0", committer)
    for i in range(1, 7):
        lane.record(sent(i))
    committer.close()
    assert ledger.counts(1) == {"sent": 6}
    with pytest.raises(RuntimeError):
        lane.record(sent(1))


def test_a_failed_write_reaches_every_connection(ledger: Watched) -> None:
    ledger.fail = True
    committer = Committer(ledger)
    lanes = [Lane(f"s/{i}", committer) for i in range(2)]
    lanes[0].record(sent(1))
    ledger.go.set()
    with pytest.raises(StoreError, match="disk I/O error"):
        lanes[0].ready()
    with pytest.raises(StoreError, match="disk I/O error"):
        lanes[1].record(sent(2))
    lanes[1].ready()  # nothing of its own handed in: nothing to wait for
    with pytest.raises(StoreError):
        committer.close()
    assert ledger.counts(1) == {"sending": 6}
