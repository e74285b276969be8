"""The delivery rows of an issue as a work queue: claim, settle, give back. Adapter (SQL),
the part of the ledger (ledger.py) that a send drives for every message.

A claim marks a batch of rows "sending" for one connection and reads, in the same
transaction, the subscriber of each (address, name, status, topics): the send reads
nothing more per message. Settles come in batches too (settling: one transaction, one
fsync, for the last message of every connection of a send: jobs/commit.py). Within one
process, SQLite's writers take turns on a lock here rather than in SQLite's busy handler,
whose first wait is a whole millisecond; PostgreSQL needs no such lock.

Claims and settles are the hot path of a send, so they go to the database driver
directly: the SQLAlchemy statements compiled once for the engine's dialect, or plain SQL
twinned with them; times go in and out through the columns' own types, so that the rows
read back exactly as SQLAlchemy writes them.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..core.errors import StoreError
from ..core.models import Claim, DeliveryStatus, Settlement, Subscriber
from ..core.policy import Evidence, move, sources
from .schema import deliveries

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from .store import Store


class Deliveries:
    """Claiming and settling ledger rows; Ledger is one."""

    store: Store

    def __init__(self, store: Store) -> None:
        self.store = store
        dialect = store.engine.dialect
        self._turn: AbstractContextManager[Any] = threading.Lock() if dialect.name == "sqlite" else nullcontext()
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._time_in: Callable[[datetime | None], Any] = _TIME.dialect_impl(dialect).bind_processor(dialect) or _same
        self._time_out: Callable[[Any], Any] = (
            _TIME.dialect_impl(dialect).result_processor(dialect, None) or _same)

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One writing transaction, after this process's other writers (SQLite)."""
        with self._turn, self.store.tx() as conn:
            yield conn

    @contextmanager
    def _driver(self, raw: Any) -> Iterator[Any]:
        """A cursor of `raw` (a driver connection) for one transaction, committed at the end
        of the block, after this process's other writers; StoreError if the database fails."""
        failure = self.store.engine.dialect.loaded_dbapi.Error
        with self._turn:
            try:
                cursor = raw.cursor()
                yield cursor
                cursor.close()
                raw.commit()
            except failure as exc:
                try:
                    raw.rollback()
                except failure:
                    pass
                raise StoreError(f"the database failed: {' '.join(str(exc).split())[:200]}") from exc

    def claim(self, issue_id: int, claimer: str, now: datetime, limit: int, *, pending: bool = True) -> list[Claim]:
        """Claim up to `limit` due rows for one connection of a sender, "<sender id>/<n>":
        pending rows in id order (unless not `pending`), then deferred rows whose time has
        come, each with its subscriber as they are now. One UPDATE ... RETURNING each; on
        PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so several senders split
        the work."""
        rows: list[Any] = []
        raw = self.store.engine.raw_connection()
        try:
            with self._driver(raw) as cursor:
                claim_pending, claim_due = _claims(self.store.engine.dialect)
                for statement in (claim_pending, claim_due) if pending else (claim_due,):
                    if len(rows) >= limit:
                        break
                    cursor.execute(statement.sql, statement.params(
                        issue=issue_id, claimer=claimer, now=self._time_in(now), n=limit - len(rows)))
                    rows += cursor.fetchall()
                ids = [r[1] for r in rows if r[1] is not None]
                if ids:
                    cursor.execute(*self._readers(ids))
                readers = {r[0]: r for r in cursor.fetchall()} if ids else {}
        finally:
            raw.close()
        claims = [Claim(r[0], r[1], r[2], r[3], self._time_out(r[4]), self._reader(readers.get(r[1]))) for r in rows]
        return sorted(claims, key=lambda c: c.delivery_id)

    def _readers(self, ids: list[int]) -> tuple[str, Sequence[Any]]:
        """The SELECT of the subscribers a claim needs, and its parameters."""
        if self._mark == "?":
            return f"{_READERS} WHERE id IN ({', '.join('?' * len(ids))})", ids
        return f"{_READERS} WHERE id = ANY(%s)", (ids,)

    def _reader(self, row: Any) -> Subscriber | None:
        """The subscriber a message needs: no consent record, no confirmation state."""
        if row is None:
            return None
        return Subscriber(id=row[0], email=row[1], name=row[2], status=row[3],
                          topics=tuple(json.loads(row[4])) if row[4] else (), consent=None,
                          created_at=self._time_out(row[5]), pause_reason=row[6], paused_until=self._when(row[7]),
                          away_issues=row[8], away_since=self._when(row[9]), away_issue=row[10])

    def _when(self, value: Any) -> datetime | None:
        return None if value is None else self._time_out(value)

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
        connection held for the block (a send's Committer holds it, and whichever of the
        send's threads writes a batch uses it, one at a time).

        The hot path of a send, so it goes to the driver directly, with no SQL expression
        or pool checkout per batch: on SQLite one UPDATE ... FROM (VALUES ...) for a batch of
        up to 200 rows, fewer if the connection allows fewer variables
        (_settle_in_one_statement); elsewhere, for a larger batch, or with a bounce to mark,
        one prepared UPDATE run for every row (executemany), which needs 8 variables a
        statement (SQLite has allowed 999 at the least); the statements are the SQLAlchemy one's
        twins, the times bound through the column's own type, so that the rows read back
        the same."""
        raw = self.store.engine.raw_connection()
        settle_sql, bounce_sql = _RAW_SETTLE.replace("?", self._mark), _RAW_BOUNCE.replace("?", self._mark)
        when = self._time_in
        one_statement = 0  # rows one statement may carry: its variables stay within the connection's limit
        if self.store.engine.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 33):
            driver: Any = raw.driver_connection
            limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            one_statement = min(_ONE_STATEMENT_ROWS, limit // _SETTLE_VALUES)

        def row(s: Settlement) -> tuple[Any, ...]:
            at = when(s.now)  # each time once: the column type's conversion is most of a row's cost
            return (s.status, at, s.code, s.reply[:500], 1 if s.attempted else 0, at if s.attempted else None,
                    None if s.next_attempt_at is None else when(s.next_attempt_at), s.delivery_id)

        def settle(settlements: Sequence[Settlement]) -> None:
            rows = [row(s) for s in settlements]
            bounces = [(when(s.now), s.bounce) for s in settlements if s.bounce is not None]
            if not rows:
                return
            if not bounces and len(rows) <= one_statement:
                self._settle_in_one_statement(raw, rows)
                return
            with self._driver(raw) as cursor:
                cursor.executemany(settle_sql, rows)
                if bounces:
                    cursor.executemany(bounce_sql, bounces)

        try:
            yield settle
        finally:
            raw.close()

    def _settle_in_one_statement(self, raw: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """SQLite: the batch as one UPDATE ... FROM (VALUES ...), run as its own transaction.
        The driver lets go of the GIL once for the whole write, where BEGIN, an UPDATE per
        row and COMMIT let go of it once each, and each time the committer waited for the
        connections' threads to hand it back: a settle took 800 us with 4 connections,
        400 us with one."""
        failure = self.store.engine.dialect.loaded_dbapi.Error
        driver = raw.driver_connection
        with self._turn:
            before = driver.isolation_level  # no transaction is open here: _driver commits its own
            try:
                driver.isolation_level = None  # autocommit: the one statement is the transaction
                cursor = driver.cursor()
                cursor.execute(_settle_all(len(rows)), [value for row in rows for value in row])
                cursor.close()
            except failure as exc:
                raise StoreError(f"the database failed: {' '.join(str(exc).split())[:200]}") from exc
            finally:
                driver.isolation_level = before

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


def _same(value: Any) -> Any:
    return value


@functools.cache
def _claims(dialect: sa.Dialect) -> tuple[_Prepared, _Prepared]:
    """The claim statements compiled for `dialect`: once per database, not per Ledger."""
    locked = dialect.name == "postgresql"
    return _Prepared(_CLAIM_PENDING[locked], dialect), _Prepared(_CLAIM_DUE[locked], dialect)


class _Prepared:
    """A SQLAlchemy statement compiled once for a dialect, to run on its driver."""

    def __init__(self, statement: sa.Update, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.order = compiled.positiontup  # the parameters' order; None when the driver takes names
        self.defaults = {k: v.value if isinstance(v, Enum) else v for k, v in compiled.params.items()}

    def params(self, **values: Any) -> Any:
        given = {**self.defaults, **values}
        return tuple(given[k] for k in self.order) if self.order is not None else given


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
# What settling and claims run through the driver: the columns of schema.deliveries and subscribers.
_TIME = deliveries.c.updated_at.type
_RAW_SETTLE = ("UPDATE deliveries SET status = ?, updated_at = ?, last_code = ?, last_reply = ?, claimed_by = '', "
               "attempts = attempts + ?, first_attempt_at = coalesce(first_attempt_at, ?), "
               "next_attempt_at = coalesce(?, next_attempt_at) WHERE id = ?")


# Rows settled in one statement at most, of _SETTLE_VALUES variables each (and fewer when
# the connection allows fewer variables: SQLite's default limit is 32,766); a larger batch,
# rare (a run of skipped readers), goes as one transaction of an UPDATE per row.
_ONE_STATEMENT_ROWS = 200
_SETTLE_VALUES = 8


@functools.lru_cache(maxsize=64)
def _settle_all(n: int) -> str:
    """_RAW_SETTLE for n rows in one statement (SQLite 3.33+: UPDATE ... FROM); each row's
    values in _RAW_SETTLE's order."""
    values = ", ".join(["(" + ", ".join("?" * _SETTLE_VALUES) + ")"] * n)
    return ("WITH v(status, at, code, reply, attempted, first_at, next_at, id) AS (VALUES " + values + ") "
            "UPDATE deliveries SET status = v.status, updated_at = v.at, last_code = v.code, last_reply = v.reply, "
            "claimed_by = '', attempts = attempts + v.attempted, first_attempt_at = coalesce(first_attempt_at, "
            "v.first_at), next_attempt_at = coalesce(v.next_at, next_attempt_at) FROM v WHERE deliveries.id = v.id")


_READERS = ("SELECT id, email, name, status, topics, created_at, pause_reason, paused_until, away_issues, away_since, "
            "away_issue FROM subscribers")  # the pause and what it missed: core/audience.py
# The send path's bounce, as core/policy.py's table says (its states are constants, never input)
_RAW_BOUNCE = (f"UPDATE subscribers SET status = '{move(Evidence.SMTP_REFUSAL).target.value}', updated_at = ? WHERE id = ? "
               f"AND status IN ({', '.join(repr(s) for s in sources(Evidence.SMTP_REFUSAL))})")
