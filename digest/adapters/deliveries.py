"""The delivery rows of an issue as a work queue: claim, settle, give back. Adapter (SQL),
the part of the ledger (ledger.py) that a send drives for every message.

A claim marks a batch of rows "sending" for one connection and reads, in the same
transaction, the subscriber of each (address, name, status, topics): the send reads
nothing more per message. Settles come in batches too (settling: one transaction, one
fsync, for the last message of every connection of a send: jobs/commit.py). Within one
process, SQLite's writers take turns on a lock here rather than in SQLite's busy handler,
whose first wait is a whole millisecond; PostgreSQL needs no such lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..core.errors import StoreError
from ..core.models import Claim, DeliveryStatus, Settlement, Subscriber
from .schema import deliveries, subscribers

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from .store import Store


class Deliveries:
    """Claiming and settling ledger rows; Ledger is one."""

    store: Store

    def __init__(self, store: Store) -> None:
        self.store = store
        sqlite = store.engine.dialect.name == "sqlite"
        self._turn: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One writing transaction, after this process's other writers (SQLite)."""
        with self._turn, self.store.tx() as conn:
            yield conn

    def claim(self, issue_id: int, claimer: str, now: datetime, limit: int, *, pending: bool = True) -> list[Claim]:
        """Claim up to `limit` due rows for one connection of a sender, "<sender id>/<n>":
        pending rows in id order (unless not `pending`), then deferred rows whose time has
        come, each with its subscriber as they are now. One UPDATE ... RETURNING each; on
        PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so several senders split
        the work."""
        rows: list[Any] = []
        with self._write() as conn:
            for statement in (_CLAIM_PENDING, _CLAIM_DUE) if pending else (_CLAIM_DUE,):
                if len(rows) >= limit:
                    break
                rows += conn.execute(statement[conn.dialect.name == "postgresql"], {
                    "issue": issue_id, "claimer": claimer, "now": now, "n": limit - len(rows)}).all()
            ids = [r.subscriber_id for r in rows if r.subscriber_id is not None]
            readers = {r.id: r for r in conn.execute(_READERS, {"ids": ids})} if ids else {}
        claims = [Claim(r.id, r.subscriber_id, r.message_id, r.attempts, r.first_attempt_at,
                        _reader(readers.get(r.subscriber_id))) for r in rows]
        return sorted(claims, key=lambda c: c.delivery_id)

    def settle(self, delivery_id: int, status: str, *, now: datetime, code: int | None = None, reply: str = "",
               next_attempt_at: datetime | None = None, attempted: bool = True, bounce: int | None = None) -> None:
        """Record the outcome of one message; with `bounce`, mark that subscriber bounced."""
        self.settle_many([Settlement(delivery_id, status, now, code, reply, next_attempt_at, attempted, bounce)])

    def settle_many(self, settlements: Sequence[Settlement]) -> None:
        """Record the outcomes of several messages in one transaction."""
        with self.settling() as settle:
            settle(settlements)

    @contextmanager
    def settling(self) -> Iterator[Callable[[Sequence[Settlement]], None]]:
        """A function that records a batch of outcomes in one transaction, on a database
        connection held for the block (the committer's thread holds it for a send).

        The hot path of a send, so it goes to the driver directly: one prepared UPDATE run
        for every row (executemany), no SQL expression or pool checkout per batch; the
        statement is the SQLAlchemy one's twin, the times bound through the column's own
        type, so that the rows read back the same."""
        engine = self.store.engine
        raw = engine.raw_connection()
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        settle_sql, bounce_sql = _RAW_SETTLE.replace("?", mark), _RAW_BOUNCE.replace("?", mark)
        when: Callable[[datetime | None], Any] = _TIME.bind_processor(engine.dialect) or (lambda value: value)
        failure = engine.dialect.loaded_dbapi.Error

        def settle(settlements: Sequence[Settlement]) -> None:
            rows = [(s.status, when(s.now), s.code, s.reply[:500], 1 if s.attempted else 0,
                     when(s.now) if s.attempted else None, when(s.next_attempt_at), s.delivery_id) for s in settlements]
            bounces = [(when(s.now), s.bounce) for s in settlements if s.bounce is not None]
            with self._turn:
                try:
                    cursor = raw.cursor()
                    cursor.executemany(settle_sql, rows)
                    if bounces:
                        cursor.executemany(bounce_sql, bounces)
                    cursor.close()
                    raw.commit()
                except failure as exc:
                    try:
                        raw.rollback()
                    except failure:
                        pass
                    raise StoreError(f"the database failed: {' '.join(str(exc).split())[:200]}") from exc

        try:
            yield settle
        finally:
            raw.close()

    def release(self, delivery_ids: Sequence[int], now: datetime) -> None:
        """Give back claimed rows that were never attempted."""
        if not delivery_ids:
            return
        with self._write() as conn:
            conn.execute(deliveries.update().where(deliveries.c.id.in_(list(delivery_ids)), deliveries.c.status == DeliveryStatus.SENDING)
                         .values(status=DeliveryStatus.PENDING, claimed_by="", updated_at=now))

    def release_claimer(self, issue_id: int, claimer: str, now: datetime) -> None:
        """Give back every row one connection still holds."""
        with self._write() as conn:
            conn.execute(deliveries.update().where(deliveries.c.issue_id == issue_id, deliveries.c.status == DeliveryStatus.SENDING,
                                                   deliveries.c.claimed_by == claimer)
                         .values(status=DeliveryStatus.PENDING, claimed_by="", updated_at=now))

    def held_by_others(self, issue_id: int, sender_id: str) -> int:
        """How many rows of the issue other senders hold as "sending"."""
        with self.store.tx() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(deliveries).where(
                deliveries.c.issue_id == issue_id, deliveries.c.status == DeliveryStatus.SENDING,
                deliveries.c.claimed_by.notlike(f"{sender_id}/%"))).scalar_one())


def _reader(row: Any) -> Subscriber | None:
    """The subscriber a message needs: no consent record, no confirmation state."""
    if row is None:
        return None
    return Subscriber(id=row.id, email=row.email, name=row.name, status=row.status,
                      topics=tuple(json.loads(row.topics)) if row.topics else (), consent=None,
                      created_at=row.created_at)


def _claim_statement(status: str, *, due: bool, locked: bool) -> sa.Update:
    pick = (sa.select(deliveries.c.id)
            .where(deliveries.c.issue_id == sa.bindparam("issue"), deliveries.c.status == status)
            .order_by(deliveries.c.id).limit(sa.bindparam("n")))
    if due:
        pick = pick.where(deliveries.c.next_attempt_at <= sa.bindparam("now", type_=deliveries.c.next_attempt_at.type))
    if locked:
        # A CTE, not a plain IN (subquery): PostgreSQL may run a LIMIT ... FOR UPDATE SKIP
        # LOCKED subquery again for each row the UPDATE scans, and each run skips the rows
        # this statement already changed, so one claim of 20 took 560 of 600 rows and left
        # the other connections idle. A CTE is evaluated once.
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
        pick = sa.select(picked.c.id)
    return (deliveries.update().where(deliveries.c.id.in_(pick.scalar_subquery()), deliveries.c.status == status)
            .values(status=DeliveryStatus.SENDING, claimed_by=sa.bindparam("claimer"),
                    updated_at=sa.bindparam("now", type_=deliveries.c.updated_at.type))
            .returning(deliveries.c.id, deliveries.c.subscriber_id, deliveries.c.message_id, deliveries.c.attempts,
                       deliveries.c.first_attempt_at))


# Built once: building SQLAlchemy expressions per message cost more than running them.
# Index [True] is the PostgreSQL form (FOR UPDATE SKIP LOCKED).
_CLAIM_PENDING = tuple(_claim_statement(DeliveryStatus.PENDING, due=False, locked=lock) for lock in (False, True))
_CLAIM_DUE = tuple(_claim_statement(DeliveryStatus.DEFERRED, due=True, locked=lock) for lock in (False, True))
_READERS = sa.select(subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.status,
                     subscribers.c.topics, subscribers.c.created_at).where(
    subscribers.c.id.in_(sa.bindparam("ids", expanding=True)))
# What settle() runs through the driver: the columns of schema.deliveries and subscribers.
_TIME = deliveries.c.updated_at.type
_RAW_SETTLE = ("UPDATE deliveries SET status = ?, updated_at = ?, last_code = ?, last_reply = ?, claimed_by = '', "
               "attempts = attempts + ?, first_attempt_at = coalesce(first_attempt_at, ?), "
               "next_attempt_at = coalesce(?, next_attempt_at) WHERE id = ?")
_RAW_BOUNCE = "UPDATE subscribers SET status = 'bounced', updated_at = ? WHERE id = ? AND status = 'confirmed'"
