"""The SQL behind core/audience.py's rules: who is in a new issue's audience (read and
written in the transaction that records the issue), and what the monthly rule needs to
know of each monthly reader. Adapter: the rules themselves are in the core.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..core.audience import PAUSED, MonthlyReader, away_after, in_weekly_audience, seat
from ..core.message import MESSAGE_ID_RANDOM, issue_message_id
from ..core.models import DeliveryStatus
from .rows import subscriber as _subscriber
from .schema import deliveries, issues, reader_choices, subscribers

GOT = (DeliveryStatus.SENT.value, DeliveryStatus.IN_DOUBT.value)  # an issue that reached the reader (or may have)


def freeze_audience(conn: Connection, *, issue_id: int, kind: str, members: Sequence[int] | None,
                    domain: str, now: datetime) -> int:
    """Write the issue's ledger rows: a weekly issue's for every confirmed weekly reader, a
    monthly one's for `members` still confirmed; paused readers' rows skipped "paused".
    Also counts what paused readers miss (core/audience.py away_after). The rows written."""
    confirmed = subscribers.c.status == "confirmed"
    within = (subscribers.c.id.in_(list(members or ())) if kind == "monthly"
              else subscribers.c.frequency != "monthly")  # core/audience.py in_weekly_audience, in SQL
    # Most readers never paused: their row is pending and nothing of theirs changes (core's
    # seat and away_after say so for an empty pause_reason and no issues missed), so only
    # their ids are read; the others go through the core's rules one by one.
    plain = (subscribers.c.pause_reason == "") & (subscribers.c.away_issues == 0) & subscribers.c.away_issue.is_(None)

    def row(subscriber_id: int, paused: bool) -> dict[str, Any]:
        return {"issue_id": issue_id, "subscriber_id": subscriber_id, "attempts": 0, "next_attempt_at": now,
                "updated_at": now, "status": DeliveryStatus.SKIPPED.value if paused else DeliveryStatus.PENDING.value,
                "last_reply": "paused" if paused else "",
                "message_id": issue_message_id(domain, issue_id, subscriber_id)}  # random, kept (core/message.py)

    rows: list[dict[str, Any]] = []
    written = 0
    random = _random_hex(conn)
    if random is None:
        rows = [row(i, False) for i in conn.execute(sa.select(subscribers.c.id).where(confirmed, within, plain)).scalars()]
    else:  # one INSERT ... SELECT of every reader's row, pending, in subscriber order (as claims
        # take them); the database draws each Message-ID's random part; paused ones change below
        message_id = (sa.literal(f"<digest.{issue_id}.") + sa.cast(subscribers.c.id, sa.String) + "." + random
                      + sa.literal(f"@{domain}>"))
        written = conn.execute(deliveries.insert().from_select(
            ["issue_id", "subscriber_id", "attempts", "next_attempt_at", "updated_at", "status", "last_reply", "message_id"],
            sa.select(sa.literal(issue_id), subscribers.c.id, sa.literal(0),
                      sa.literal(now, type_=deliveries.c.next_attempt_at.type),
                      sa.literal(now, type_=deliveries.c.updated_at.type),
                      sa.literal(DeliveryStatus.PENDING.value), sa.literal(""), message_id)
            .where(confirmed, within).order_by(subscribers.c.id))).rowcount
    for sub in map(_subscriber, conn.execute(sa.select(subscribers).where(confirmed, within, ~plain))):
        written_row = (deliveries.c.issue_id == issue_id) & (deliveries.c.subscriber_id == sub.id)
        if kind != "monthly" and not in_weekly_audience(sub):
            if random is not None:
                written -= conn.execute(deliveries.delete().where(written_row)).rowcount
            continue
        status = seat(sub, now)
        if random is None:
            rows.append(row(sub.id, status == PAUSED))
        elif status == PAUSED:
            conn.execute(deliveries.update().where(written_row).values(
                status=DeliveryStatus.SKIPPED.value, last_reply="paused"))
        changes = away_after(sub, status, issue_id, now)
        if changes:
            conn.execute(subscribers.update().where(subscribers.c.id == sub.id).values(**changes))
    if rows:
        rows.sort(key=lambda r: int(r["subscriber_id"]))  # in subscriber order, as claims take them
        conn.execute(deliveries.insert(), rows)
    return written + len(rows)


def _random_hex(conn: Connection) -> ColumnElement[str] | None:
    """MESSAGE_ID_RANDOM random lowercase hex characters, drawn per row by the database from
    a strong source (SQLite's randomblob: ChaCha20 seeded from the system since 3.40;
    PostgreSQL's gen_random_uuid since 13, its 6 fixed bits left out), or None: Python draws
    them (core/message.py make_message_id), a row at a time."""
    half = MESSAGE_ID_RANDOM // 2
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 40):
        return sa.func.lower(sa.func.hex(sa.func.randomblob(half)), type_=sa.String)
    version = conn.dialect.server_version_info or ()
    if conn.dialect.name == "postgresql" and version >= (13,):
        uuid = sa.func.replace(sa.cast(sa.func.gen_random_uuid(), sa.String), "-", "")
        # skips the version digit (13th) and the variant one (17th: 2 random bits of 4)
        return sa.func.substr(uuid, 1, half, type_=sa.String) + sa.func.substr(uuid, 18, half, type_=sa.String)
    return None


def monthly_readers(conn: Connection, month_issue_prefix: str) -> list[MonthlyReader]:
    """Every confirmed monthly reader, with what core/audience.py monthly_groups needs."""
    got = (sa.select(sa.func.max(deliveries.c.issue_id))
           .where(deliveries.c.subscriber_id == subscribers.c.id, deliveries.c.status.in_(GOT))
           .scalar_subquery())
    before = (sa.select(sa.func.max(issues.c.id))
              .where(issues.c.created_at < sa.func.coalesce(subscribers.c.confirmed_at, subscribers.c.created_at))
              .scalar_subquery())
    this_month = sa.exists().where(deliveries.c.subscriber_id == subscribers.c.id,
                                   deliveries.c.issue_id == issues.c.id,
                                   issues.c.key.startswith(month_issue_prefix, autoescape=True))
    chose = (sa.select(sa.func.max(reader_choices.c.at))
             .where(reader_choices.c.subscriber_id == subscribers.c.id, reader_choices.c.kind == "frequency")
             .scalar_subquery())
    query = (sa.select(subscribers.c.id, got.label("got"), before.label("before"), this_month.label("this_month"),
                       chose.label("chose"), subscribers.c.pause_reason, subscribers.c.paused_until)
             .where(subscribers.c.status == "confirmed", subscribers.c.frequency == "monthly")
             .order_by(subscribers.c.id))
    return [MonthlyReader(row.id, row.got, row.before, bool(row.this_month), _utc(row.chose), row.pause_reason,
                          row.paused_until) for row in conn.execute(query)]


def first_issue_since(conn: Connection, start: datetime) -> datetime | None:
    """When the first issue recorded at or after `start` was recorded."""
    return _utc(conn.execute(sa.select(sa.func.min(issues.c.created_at)).where(issues.c.created_at >= start)).scalar())


def _utc(value: Any) -> datetime | None:
    """An aggregate's datetime: the column type is not applied to it on SQLite (naive UTC)."""
    if value is None:
        return None
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value  # SQLite: max() is text
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
