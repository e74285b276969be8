"""The inbox's bookkeeping in the store's database: which IMAP messages were handled, what
they did to subscribers, when each folder was read. Adapter (SQL), over the Store's engine.

Each message is claimed (a row committed as "claimed", keyed by folder, UIDVALIDITY and
UID) before it is read, and marked "handled" in the same transaction as the changes it
makes to subscribers; only then is it moved out of the folder. So a reader killed at any
point repeats nothing (a handled row is only moved on the next run) and loses nothing (a
claimed row whose reader died is taken over: same host and PID namespace and its pid gone, or the claim
older than CLAIM_TIMEOUT). Two readers at once split the work: a row claimed by a live
reader is skipped by the other, and so is a row it handled and has yet to move.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..core.message import unguessable
from ..core.models import DeliveryStatus, InboxStats
from ..core.policy import Evidence, move, sources
from ..core.returns import Claimed, Delivery, Effect
from .ledger import machine, pid_alive
from .schema import MAX_ID, deliveries, dialect_insert, inbox_messages, inbox_reads, inbox_returns, subscribers
from .store import Store

CLAIM_TIMEOUT = timedelta(minutes=15)


def reader_id() -> str:
    """"<machine>:<pid>:<random>": tells a dead reader of this machine (ledger.py's machine(),
    the host and its PID namespace) from a live one."""
    return f"{machine()}:{os.getpid()}:{os.urandom(4).hex()}"


def _over(claimed_by: str, since: datetime, now: datetime) -> bool:
    """True when the reader `claimed_by` is done: in this place, its process is gone or is
    this one (reads in one process follow each other); elsewhere, after CLAIM_TIMEOUT."""
    where, _, rest = claimed_by.partition(":")
    pid = rest.partition(":")[0]
    if where == machine() and pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
        return True
    return now - since > CLAIM_TIMEOUT


class InboxLedger:
    """The inbox tables, in the store's database."""

    def __init__(self, store: Store, *, bounce_after: int = 3) -> None:
        self.store = store
        self.bounce_after = bounce_after

    # ---- claims ----

    def claim(self, folder: str, uidvalidity: int, uids: Sequence[int], reader: str,
              now: datetime) -> dict[int, tuple[Claimed, int]]:
        """Claim each UID not claimed yet, take over those of dead readers: uid -> (what
        this reader may do with it, its row id). One transaction for the batch."""
        out: dict[int, tuple[Claimed, int]] = {}
        mine = inbox_messages.c.folder == folder, inbox_messages.c.uidvalidity == uidvalidity
        with self.store.tx() as conn:
            # Write first: on SQLite the transaction then holds the write lock from its first statement.
            conn.execute(_insert_new(conn), [{"folder": folder, "uidvalidity": uidvalidity, "uid": u, "state": "claimed",
                                              "claimed_by": reader, "claimed_at": now} for u in uids])
            rows = {r.uid: r for r in conn.execute(sa.select(inbox_messages).where(
                *mine, inbox_messages.c.uid.in_(list(uids))))}
            for uid in uids:
                row = rows[uid]
                if row.state == "handled" and row.keep:
                    out[uid] = (Claimed.KEPT, row.id)
                elif row.state == "handled":  # its reader moves it, unless that reader is over
                    over = row.claimed_by != reader and _over(row.claimed_by, row.handled_at or row.claimed_at, now)
                    out[uid] = (Claimed.HANDLED if over else Claimed.BUSY, row.id)
                elif row.claimed_by == reader or (_over(row.claimed_by, row.claimed_at, now) and conn.execute(
                        inbox_messages.update().where(inbox_messages.c.id == row.id, inbox_messages.c.state == "claimed",
                                                      inbox_messages.c.claimed_by == row.claimed_by)
                        .values(claimed_by=reader, claimed_at=now)).rowcount == 1):
                    out[uid] = (Claimed.MINE, row.id)
                else:
                    out[uid] = (Claimed.BUSY, row.id)
        return out

    def release(self, reader: str) -> None:
        """Give back the rows this reader claimed and did not handle (it stops early)."""
        with self.store.tx() as conn:
            conn.execute(inbox_messages.delete().where(inbox_messages.c.claimed_by == reader,
                                                       inbox_messages.c.state == "claimed"))

    def seen_message_id(self, message_id: str, row_id: int) -> bool:
        """True when another row with this Message-ID was handled (the folder's UIDVALIDITY
        changed, or the message was put back): it is not handled twice."""
        if not message_id:
            return False
        with self.store.tx() as conn:
            return conn.execute(_SEEN, {"mid": message_id[:500], "row": row_id}).first() is not None

    # ---- finding whom a message is about ----

    def delivery(self, issue_id: int, subscriber_id: int) -> Delivery | None:
        with self.store.tx() as conn:
            found = conn.execute(_DELIVERY, {"issue": issue_id, "subscriber": subscriber_id}).first()
        return Delivery(issue_id, subscriber_id) if found else None

    def delivery_by_message_id(self, message_ids: Sequence[str]) -> Delivery | None:
        """The delivery whose Message-ID is one of these (ours name their issue and
        subscriber: <digest.{issue}.{subscriber}.{random}@domain>, looked up by both, then
        compared whole). Only an unguessable one counts (core/policy.py)."""
        for message_id in message_ids:
            if not unguessable(message_id):
                continue
            parts = message_id.strip("<>").lower().split(".")
            if len(parts) < 4 or parts[0] != "digest" or not (parts[1].isdigit() and parts[2].isdigit()):
                continue
            issue_id, subscriber_id = int(parts[1]), int(parts[2])
            if not (0 < issue_id <= MAX_ID and 0 < subscriber_id <= MAX_ID):
                continue
            with self.store.tx() as conn:
                stored = conn.execute(_DELIVERY, {"issue": issue_id, "subscriber": subscriber_id}).scalar()
            if stored is not None and stored.lower() == message_id.lower():
                return Delivery(issue_id, subscriber_id)
        return None

    def last_delivery_to(self, email_key: str) -> Delivery | None:
        """The newest message we actually sent to this address, if any."""
        with self.store.tx() as conn:
            row = conn.execute(_LAST_TO, {"key": email_key}).first()
        return Delivery(row.issue_id, row.subscriber_id) if row else None

    def find_subscriber(self, email_key: str) -> tuple[int, str] | None:
        """(id, status) of the subscriber with this address key."""
        with self.store.tx() as conn:
            row = conn.execute(_FIND, {"key": email_key}).first()
        return (row.id, row.status) if row else None

    # ---- handling ----

    def settle(self, row_id: int, *, kind: str, outcome: str, message_id: str, now: datetime,
               effects: Sequence[Effect] = (), keep: bool = False, reader: str | None = None) -> list[str] | None:
        """Apply the effects and mark the row handled, in one transaction; what each did.
        With `reader`, only while that reader still holds the claim: None when another took
        it over meanwhile (this read outlasted CLAIM_TIMEOUT), which handles it instead."""
        done: list[str] = []
        with self.store.tx() as conn:
            marked = conn.execute(_MARK if reader is None else _MARK_MINE, {
                "row": row_id, "k": kind, "said": outcome[:500], "mid": message_id[:500], "left": keep, "now": now,
                **({} if reader is None else {"reader": reader})})
            if marked.rowcount != 1 and reader is not None:
                return None
            for effect in effects:
                done.append(self._apply(conn, row_id, effect, now))
            if done:
                conn.execute(inbox_messages.update().where(inbox_messages.c.id == row_id)
                             .values(outcome="; ".join([outcome, *done])[:500]))
        return done

    def _apply(self, conn: sa.Connection, row_id: int, effect: Effect, now: datetime) -> str:
        sub = effect.subscriber_id
        changed = False
        if effect.kind in ("complaint", "unsubscribe"):
            rule = move(Evidence.COMPLAINT if effect.kind == "complaint" else Evidence.UNSUBSCRIBE_MAIL)
            changed = conn.execute(_UNSUBSCRIBE[rule.evidence], {"sub": sub, "now": now, "how": rule.how}).rowcount == 1
            said = f"subscriber {sub} unsubscribed ({rule.how})" if changed else f"subscriber {sub} was not subscribed"
        elif effect.kind == "weak":  # core/policy.py: tied by an address only, with VERP on
            said = f"subscriber {sub}: recorded, not counted"
        elif effect.kind == "hard":
            changed = self._bounce(conn, sub, now, Evidence.HARD_BOUNCE)
            said = f"subscriber {sub} bounced" if changed else f"subscriber {sub} was not subscribed"
        else:
            if conn.dialect.name == "postgresql":  # (SQLite: settle's first write holds the lock already)
                # Two readers settling this reader's soft bounces at once each counted the
                # streak without the other's, not committed yet (READ COMMITTED): the lock
                # on the subscriber's row makes the second wait, and then count both.
                conn.execute(_LOCK_SUBSCRIBER, {"sub": sub})
            streak = self._soft_streak(conn, sub, effect.issue_id) + 1
            changed = streak >= self.bounce_after and self._bounce(conn, sub, now, Evidence.SOFT_BOUNCES)
            said = (f"subscriber {sub} bounced: {streak} issues in a row came back" if changed
                    else f"subscriber {sub}: {min(streak, self.bounce_after)} of {self.bounce_after} issues in a row "
                         "came back")
        present: int | None = sub
        if not changed and conn.execute(_FIND_ID, {"sub": sub}).first() is None:
            present, said = None, f"subscriber {sub} was removed meanwhile"  # `digest subscribers remove` ran
        conn.execute(inbox_returns.insert(), {"message_row": row_id, "subscriber_id": present, "issue_id": effect.issue_id,
                                              "kind": effect.kind, "status": effect.status[:20], "changed": changed, "at": now})
        return said

    @staticmethod
    def _bounce(conn: sa.Connection, subscriber_id: int, now: datetime, evidence: Evidence) -> bool:
        return conn.execute(_BOUNCE[evidence], {"sub": subscriber_id, "now": now}).rowcount == 1

    def _soft_streak(self, conn: sa.Connection, subscriber_id: int, issue_id: int | None) -> int:
        """How many of the subscriber's issues next to `issue_id` (other than it), before and
        after it, drew a delay or soft failure, in a row: an issue that came back with
        nothing breaks it. After it too: reports come back out of issue order (a server
        retries issue 2 for days while issue 3's delay notice comes at once; two readers
        settle in any order), and the run is the same whichever came last."""
        n = self.bounce_after
        before = conn.execute(_RECENT, {"sub": subscriber_id, "issue": issue_id if issue_id is not None else MAX_ID + 1,
                                        "n": n}).scalars().all()
        after = conn.execute(_NEXT, {"sub": subscriber_id, "issue": issue_id, "n": n}).scalars().all() \
            if issue_id is not None else []
        near = [*before, *after]
        soft = set(conn.execute(_SOFT, {"sub": subscriber_id, "issues": near}).scalars()) if near else set()
        return _run(before, soft) + _run(after, soft)

    # ---- reads and status ----

    def record_read(self, folder: str, now: datetime, outcome: str) -> None:
        values = {"read_at": now, "outcome": outcome[:500]}
        with self.store.tx() as conn:  # one upsert: two readers' first reads at once both found no row to update
            conn.execute(dialect_insert(conn, inbox_reads).values(folder=folder, **values)
                         .on_conflict_do_update(index_elements=[inbox_reads.c.folder], set_=values))

    def stats(self, folder: str, now: datetime, window: timedelta = timedelta(days=7)) -> InboxStats:
        with self.store.tx() as conn:
            read = conn.execute(sa.select(inbox_reads).where(inbox_reads.c.folder == folder)).first()
            kinds = {k: int(n) for k, n in conn.execute(
                sa.select(inbox_messages.c.kind, sa.func.count()).where(inbox_messages.c.state == "handled")
                .group_by(inbox_messages.c.kind)).all()}

            def changed(kinds: tuple[str, ...]) -> int:
                return int(conn.execute(sa.select(sa.func.count(sa.distinct(inbox_returns.c.subscriber_id))).where(
                    inbox_returns.c.changed.is_(True), inbox_returns.c.kind.in_(kinds),
                    inbox_returns.c.at > now - window)).scalar_one())

            return InboxStats(read.read_at if read else None, read.outcome if read else "", kinds,
                              changed(("hard", "soft")), changed(("complaint", "unsubscribe")))


# Built once: building SQLAlchemy expressions cost more than running them (as in ledger.py).
_SEEN = sa.select(inbox_messages.c.id).where(
    inbox_messages.c.message_id == sa.bindparam("mid"), inbox_messages.c.state == "handled",
    inbox_messages.c.id != sa.bindparam("row")).limit(1)
_DELIVERY = sa.select(deliveries.c.message_id).where(deliveries.c.issue_id == sa.bindparam("issue"),
                                                     deliveries.c.subscriber_id == sa.bindparam("subscriber"))
_LAST_TO = (sa.select(deliveries.c.issue_id, deliveries.c.subscriber_id)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(subscribers.c.email_key == sa.bindparam("key"),
                   deliveries.c.status.in_([DeliveryStatus.SENT.value, DeliveryStatus.IN_DOUBT.value]))
            .order_by(deliveries.c.issue_id.desc()).limit(1))
_FIND = sa.select(subscribers.c.id, subscribers.c.status).where(subscribers.c.email_key == sa.bindparam("key"))
_FIND_ID = sa.select(subscribers.c.id).where(subscribers.c.id == sa.bindparam("sub"))
_LOCK_SUBSCRIBER = _FIND_ID.with_for_update()
# The moves of core/policy.py, one statement each: the SQL records, the table decides.
_UNSUBSCRIBE = {e: subscribers.update().where(subscribers.c.id == sa.bindparam("sub"), subscribers.c.status.in_(sources(e)))
                .values(status=move(e).target.value, unsubscribed_at=sa.bindparam("now", type_=subscribers.c.updated_at.type),
                        unsubscribed_how=sa.bindparam("how"), confirm_nonce="",
                        updated_at=sa.bindparam("now", type_=subscribers.c.updated_at.type))
                for e in (Evidence.COMPLAINT, Evidence.UNSUBSCRIBE_MAIL)}
_BOUNCE = {e: subscribers.update().where(subscribers.c.id == sa.bindparam("sub"), subscribers.c.status.in_(sources(e)))
           .values(status=move(e).target.value, updated_at=sa.bindparam("now", type_=subscribers.c.updated_at.type))
           for e in (Evidence.HARD_BOUNCE, Evidence.SOFT_BOUNCES)}
_RECENT = (sa.select(deliveries.c.issue_id)
           .where(deliveries.c.subscriber_id == sa.bindparam("sub"), deliveries.c.issue_id < sa.bindparam("issue"),
                  deliveries.c.status.in_([DeliveryStatus.SENT.value, DeliveryStatus.IN_DOUBT.value]))
           .order_by(deliveries.c.issue_id.desc()).limit(sa.bindparam("n")))
_NEXT = (sa.select(deliveries.c.issue_id)
         .where(deliveries.c.subscriber_id == sa.bindparam("sub"), deliveries.c.issue_id > sa.bindparam("issue"),
                deliveries.c.status.in_([DeliveryStatus.SENT.value, DeliveryStatus.IN_DOUBT.value]))
         .order_by(deliveries.c.issue_id).limit(sa.bindparam("n")))
_SOFT = sa.select(inbox_returns.c.issue_id).where(
    inbox_returns.c.subscriber_id == sa.bindparam("sub"), inbox_returns.c.kind == "soft",
    inbox_returns.c.issue_id.in_(sa.bindparam("issues", expanding=True)))
_MARK = inbox_messages.update().where(inbox_messages.c.id == sa.bindparam("row")).values(
    state="handled", kind=sa.bindparam("k"), outcome=sa.bindparam("said"), message_id=sa.bindparam("mid"),
    keep=sa.bindparam("left"), handled_at=sa.bindparam("now", type_=inbox_messages.c.handled_at.type))
_MARK_MINE = _MARK.where(inbox_messages.c.state == "claimed", inbox_messages.c.claimed_by == sa.bindparam("reader"))


def _run(issues: Sequence[int], soft: set[int]) -> int:
    """How many of `issues` (nearest first) came back, before the first that did not."""
    streak = 0
    for issue in issues:
        if issue not in soft:
            break
        streak += 1
    return streak


def _insert_new(conn: sa.Connection) -> sa.Insert:
    """INSERT that skips rows another reader inserted meanwhile (both databases know ON CONFLICT)."""
    insert: sa.Insert = dialect_insert(conn, inbox_messages).on_conflict_do_nothing()
    return insert
