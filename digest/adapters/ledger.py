"""Issues and the delivery ledger: what was sent to whom. Adapter over the store's engine;
claiming and settling rows is in deliveries.py.

An issue is recorded, with its audience frozen (one ledger row per confirmed subscriber),
in one transaction before anything is sent; its unique key (a hash of its posts) stops
two runs or two schedulers from making two issues of the same posts. Rows are claimed
(committed as "sending") before MAIL FROM and settled after the reply. A sender that
dies leaves its claimed rows "sending"; they go back to "pending" once the sender is
known dead (same host and PID namespace: its pid is gone; elsewhere: its heartbeat is stale).

An issue stays "sending" while any row is open. It is interrupted when rows are still
pending or sending (a crash, a stop); one whose only open rows are deferred is waiting
for retries, which never hold back the next issue. Each row keeps the time of its first
attempt, from which [smtp] give_up_hours counts.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..core.audience import MonthlyReader
from ..core.errors import StoreError
from ..core.models import OPEN_STATUSES, DeliveryStatus, FeedState, IssueRecord, Post, post_from_dict, post_to_dict
from ..core.policy import Evidence, move, sources
from .audience import first_issue_since, freeze_audience, monthly_readers
from .deliveries import Deliveries
from .schema import MAX_ID, deliveries, feed_state, issues, senders, subscribers

STALE_HEARTBEAT = timedelta(seconds=60)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger(Deliveries):
    """Issues, deliveries, senders and feed state, in the store's database."""

    # ---- issues ----

    def last_issue(self) -> IssueRecord | None:
        """The newest weekly issue (its cut-off starts the next; monthly ones gather, core/audience.py)."""
        with self.store.tx() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.kind == "weekly")
                               .order_by(issues.c.id.desc()).limit(1)).first()
        return _issue(row) if row else None

    def get_issue(self, issue_id: int) -> IssueRecord | None:
        if not 0 < issue_id <= MAX_ID:  # /archive/<30 digits>: no such row, and the driver would overflow
            return None
        with self.store.tx() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.id == issue_id)).first()
        return _issue(row) if row else None

    def unfinished_issue(self) -> IssueRecord | None:
        with self.store.tx() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.status == "sending").order_by(issues.c.id).limit(1)).first()
        return _issue(row) if row else None

    def unfinished_issues(self) -> list[IssueRecord]:
        """Every issue with open rows, oldest first."""
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(issues).where(issues.c.status == "sending").order_by(issues.c.id)).all()
        return [_issue(row) for row in rows]

    def interrupted_issue(self) -> IssueRecord | None:
        """The oldest issue with rows still pending or sending: a send a crash or a stop cut short."""
        started = sa.exists().where(deliveries.c.issue_id == issues.c.id,
                                    deliveries.c.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)))
        with self.store.tx() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.status == "sending", started)
                               .order_by(issues.c.id).limit(1)).first()
        return _issue(row) if row else None

    def due_issues(self, now: datetime) -> list[IssueRecord]:
        """The unfinished issues with deferred rows whose time has come, oldest first."""
        due = sa.exists().where(deliveries.c.issue_id == issues.c.id, deliveries.c.status == DeliveryStatus.DEFERRED,
                                deliveries.c.next_attempt_at <= now)
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(issues).where(issues.c.status == "sending", due).order_by(issues.c.id)).all()
        return [_issue(row) for row in rows]

    def sent_post_ids(self, last: int = 60) -> frozenset[str]:
        """The ids of the posts of the last `last` issues."""
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(issues.c.posts).order_by(issues.c.id.desc()).limit(last)).scalars().all()
        return frozenset(p["id"] for row in rows for p in json.loads(row))

    def weekly_issues_after(self, since: int | None) -> list[IssueRecord]:
        """The weekly issues recorded after issue `since` (None: all), oldest first: what a
        monthly issue gathers."""
        query = sa.select(issues).where(issues.c.kind == "weekly").order_by(issues.c.id)
        if since is not None:
            query = query.where(issues.c.id > since)
        with self.store.tx() as conn:
            return [_issue(row) for row in conn.execute(query)]

    def monthly_readers(self, month_key_prefix: str) -> list[MonthlyReader]:
        """The confirmed monthly readers, as core/audience.py monthly_groups reads them."""
        with self.store.tx() as conn:
            return monthly_readers(conn, month_key_prefix)

    def first_issue_since(self, start: datetime) -> datetime | None:
        """When the first issue recorded at or after `start` was recorded (None: none yet)."""
        with self.store.tx() as conn:
            return first_issue_since(conn, start)

    def next_issue_id(self) -> int:
        """The id the next recorded issue gets (the masthead shows it as the issue's number)."""
        with self.store.tx() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(issues.c.id), 0) + 1)).scalar_one())

    def create_issue(self, *, key: str, now: datetime, cutoff: datetime, subject: str, posts: Sequence[Post],
                     html: str, text: str, domain: str, state: FeedState | None, note: str = "",
                     issue_id: int | None = None, kind: str = "weekly",
                     members: Sequence[int] | None = None, warnings: Sequence[str] = (),
                     after: int | None = None) -> tuple[IssueRecord, bool]:
        """Record the issue and freeze its audience; (the existing issue, False) if its key exists.
        A weekly issue's audience is every confirmed weekly reader; a monthly one's, the
        `members` (adapters/audience.py, by core/audience.py's rules).

        `warnings` are the deliverability checks' warnings it went out with (jobs/preflight.py).
        `issue_id` is the number the issue was composed with (next_issue_id() when it was
        built). Ids are always given, never drawn from a sequence, so they have no gaps on
        PostgreSQL either. StoreError when another issue took that id meanwhile.

        `after`: the weekly issue the new one's posts start after (0: none), as the build read
        it; StoreError when another weekly issue was recorded since, under another key. Two
        sends at once, with a post published between their fetches, otherwise both recorded
        an issue (the second numbered after the first, so no id collided), and readers got
        the first one's posts twice.
        """
        try:
            with self.store.tx() as conn:
                if after is not None:
                    same = conn.execute(sa.select(issues).where(issues.c.key == key)).first()
                    if same is not None:  # the same posts: that issue goes out, as recorded
                        return _issue(same), False
                    newest = conn.execute(sa.select(sa.func.max(issues.c.id)).where(issues.c.kind == "weekly")).scalar()
                    if (newest or 0) != after:
                        raise StoreError(f"another send recorded issue {newest} meanwhile, with some of these posts: "
                                         "run digest send again (the posts after it go then)")
                if issue_id is None:
                    issue_id = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(issues.c.id), 0) + 1)).scalar_one())
                conn.execute(issues.insert().values(
                    id=issue_id, key=key, status="sending", created_at=now, cutoff=cutoff, subject=subject,
                    posts=json.dumps([post_to_dict(p) for p in posts], ensure_ascii=False), html=html, text=text,
                    note=note, kind=kind, warnings=json.dumps(list(warnings), ensure_ascii=False),
                ))
                freeze_audience(conn, issue_id=issue_id, kind=kind, members=members, domain=domain, now=now)
                if state is not None:
                    _save_state(conn, state, now)
        except sa.exc.IntegrityError:
            with self.store.tx() as conn:
                row = conn.execute(sa.select(issues).where(issues.c.key == key)).first()
            if row is None:
                raise StoreError(f"another send recorded issue {issue_id} meanwhile, with other posts: "
                                 "run digest send again") from None
            return _issue(row), False
        issue = self.get_issue(issue_id)
        assert issue is not None
        return issue, True

    def finish_if_done(self, issue_id: int, now: datetime) -> bool:
        with self.store.tx() as conn:
            open_rows = conn.execute(sa.select(sa.func.count()).select_from(deliveries).where(
                deliveries.c.issue_id == issue_id, deliveries.c.status.in_(sorted(OPEN_STATUSES)))).scalar_one()
            if open_rows:
                return False
            conn.execute(issues.update().where(issues.c.id == issue_id, issues.c.status == "sending")
                         .values(status="done", finished_at=now))
            return True

    def counts(self, issue_id: int) -> dict[str, int]:
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(deliveries.c.status, sa.func.count()).where(
                deliveries.c.issue_id == issue_id).group_by(deliveries.c.status)).all()
        return {status: int(n) for status, n in rows}

    def done_issues(self, limit: int = 50) -> list[IssueRecord]:
        """The last `limit` issues that went out to everyone, newest first (the archive's feed,
        the welcome mail's answered questions)."""
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(issues).where(issues.c.status == "done")
                                .order_by(issues.c.id.desc()).limit(limit)).all()
        return [_issue(row) for row in rows]

    def history(self) -> list[tuple[IssueRecord, dict[str, int]]]:
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(issues).order_by(issues.c.id.desc())).all()
        return [(_issue(row), self.counts(row.id)) for row in rows]

    # ---- senders ----

    def register_sender(self, sender_id: str, now: datetime) -> None:
        with self.store.tx() as conn:
            conn.execute(senders.insert().values(id=sender_id, host=machine(), pid=os.getpid(), heartbeat_at=now))

    def heartbeat(self, sender_id: str, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(senders.update().where(senders.c.id == sender_id).values(heartbeat_at=now))

    def unregister_sender(self, sender_id: str) -> None:
        with self.store.tx() as conn:
            conn.execute(senders.delete().where(senders.c.id == sender_id))

    def recover_stale(self, issue_id: int, now: datetime, alive: Callable[[int], bool] = pid_alive) -> int:
        """Give the rows claimed by dead senders back; their one in-flight message may be sent twice."""
        with self.store.tx() as conn:
            dead = dead_senders(conn, now, alive)
            result = conn.execute(deliveries.update().where(deliveries.c.issue_id == issue_id,
                                                            deliveries.c.status == DeliveryStatus.SENDING,
                                                            orphaned(deliveries.c.claimed_by, dead))
                                  .values(status=DeliveryStatus.PENDING, claimed_by="", updated_at=now))
            if dead:
                conn.execute(senders.delete().where(senders.c.id.in_(dead)))
            return int(result.rowcount or 0)

    # ---- deliveries ----

    def mark_bounced(self, subscriber_id: int, now: datetime) -> None:
        """A single mail's hard refusal, recorded as a settle's: the move core/policy.py's
        table gives an SMTP refusal."""
        refusal = move(Evidence.SMTP_REFUSAL)
        with self._write() as conn:
            conn.execute(subscribers.update().where(subscribers.c.id == subscriber_id,
                                                    subscribers.c.status.in_(sources(Evidence.SMTP_REFUSAL)))
                         .values(status=refusal.target.value, updated_at=now))

    def retry_now(self, issue_id: int, now: datetime) -> int:
        """Make every deferred row of the issue due now (a run by hand retries them all)."""
        with self.store.tx() as conn:
            return int(conn.execute(deliveries.update().where(
                deliveries.c.issue_id == issue_id, deliveries.c.status == DeliveryStatus.DEFERRED,
                deliveries.c.next_attempt_at > now).values(next_attempt_at=now)).rowcount or 0)

    def next_deferred(self, issue_ids: Sequence[int]) -> tuple[datetime | None, int]:
        """When the first deferred row of these issues is due, and how many are deferred."""
        with self.store.tx() as conn:
            first, count = conn.execute(sa.select(sa.func.min(deliveries.c.next_attempt_at), sa.func.count()).where(
                deliveries.c.issue_id.in_(list(issue_ids)), deliveries.c.status == DeliveryStatus.DEFERRED)).one()
        return first, int(count)

    def give_up(self, before: datetime, reply_prefix: str, now: datetime) -> dict[int, int]:
        """Fail the deferred rows of unfinished issues first tried at or before `before`,
        their last reply kept after `reply_prefix`; {issue id: rows failed}. The rows the
        UPDATE itself failed: a count read before it would count them again for a second
        run at once, and count a row a retry claimed in between."""
        old = (deliveries.c.status == DeliveryStatus.DEFERRED, deliveries.c.first_attempt_at <= before,
               deliveries.c.issue_id.in_(sa.select(issues.c.id).where(issues.c.status == "sending")))
        found: dict[int, int] = {}
        with self.store.tx() as conn:
            for issue_id in conn.execute(deliveries.update().where(*old).values(
                    status=DeliveryStatus.FAILED, updated_at=now, claimed_by="",
                    last_reply=sa.func.substr(sa.literal(reply_prefix, sa.String) + deliveries.c.last_reply, 1, 500))
                    .returning(deliveries.c.issue_id)).scalars():
                found[int(issue_id)] = found.get(int(issue_id), 0) + 1
        return found

    # ---- feed state ----

    def feed_state(self) -> FeedState | None:
        with self.store.tx() as conn:
            row = conn.execute(sa.select(feed_state).where(feed_state.c.id == 1)).first()
        return FeedState(row.url, row.etag, row.last_modified, row.moved_to) if row else None


def machine() -> str:
    """Where a process's pid means something: the host's name and, where /proc tells, its PID
    namespace ("host/4026531836"; no colon, at most 80 characters: the inbox's reader ids
    carry it too). Two containers of one host name (host networking) share the name, not the
    pids: the other's pid names no process here, or another one (two PID 1s)."""
    host = socket.gethostname()[:60]
    try:
        return f"{host}/{os.readlink('/proc/self/ns/pid').strip('pid:[]')}"[:80]
    except OSError:  # no /proc (not Linux)
        return host


def dead_senders(conn: sa.Connection, now: datetime, alive: Callable[[int], bool]) -> list[str]:
    """The senders known dead: on this machine (machine()), its pid is gone; elsewhere, its
    heartbeat is stale."""
    host = machine()
    return sorted(s.id for s in conn.execute(sa.select(senders)).all()
                  if (s.host == host and not alive(s.pid)) or now - s.heartbeat_at > STALE_HEARTBEAT)


def orphaned(claimed_by: sa.ColumnElement[str], dead: Sequence[str]) -> sa.ColumnElement[bool]:
    """A row no live sender holds: no sender but the `dead` is named by its claimed_by
    ("<sender id>/<connection>"), as the statement that gives it back reads the senders
    table. Not from a list of the live read before: a sender that registered after that
    read and then claimed rows would not be on it, and its fresh claims, given back, went
    out twice (two `digest serve` starting their weekly send at the same moment). A
    sender registers before it claims, so a claim this statement sees has its sender seen."""
    holder = sa.select(senders.c.id).where(
        sa.func.substr(claimed_by, 1, sa.func.length(senders.c.id) + 1) == senders.c.id + "/")
    if dead:
        holder = holder.where(senders.c.id.not_in(dead))
    return ~sa.exists(holder.correlate_except(senders))


def _save_state(conn: sa.Connection, state: FeedState, now: datetime) -> None:
    values = {"url": state.url, "etag": state.etag, "last_modified": state.last_modified, "moved_to": state.moved_to,
              "checked_at": now}
    if conn.execute(feed_state.update().where(feed_state.c.id == 1).values(**values)).rowcount == 0:
        conn.execute(feed_state.insert().values(id=1, **values))


def _issue(row: Any) -> IssueRecord:
    return IssueRecord(
        id=row.id, key=row.key, status=row.status, created_at=row.created_at, cutoff=row.cutoff,
        finished_at=row.finished_at, subject=row.subject,
        posts=tuple(post_from_dict(p) for p in json.loads(row.posts)), html=row.html, text=row.text, note=row.note,
        kind=row.kind, warnings=tuple(json.loads(row.warnings)),
    )
