"""The answer notices' ledger: one row per answered question, sent exactly once. Adapter
over the store's engine, beside ledger.py and kept to its rules.

A notice goes to one asker, who may not subscribe, so it has no place in `deliveries`
(keyed by issue and subscriber); it has the same life instead: rows are claimed
(committed "sending") before MAIL FROM and settled after the reply with the deliveries'
statuses (DeliveryStatus), deferred rows wait for next_attempt_at, and rows still
deferred [smtp] give_up_hours after their first attempt are failed. A sender that dies
leaves its rows "sending"; they go back to "pending" once it is known dead, through the
same `senders` table of heartbeats the issue senders use (ledger.py), so at most the one
message in flight can go twice, and one in doubt is never sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from ..core.models import Claim, DeliveryStatus, Settlement, open_count
from .ledger import dead_senders, orphaned, pid_alive
from .schema import notices, questions
from .store import Store


class NoticeLedger:
    """The notices table, in the store's database: the answer notices' Queue (jobs/ports.py),
    drained by the outbox. A claim's `subscriber_id` is the notice's question (its
    recipient), so a settled bounce marks that question's address."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, claimer: str, now: datetime, limit: int, *, pending: bool = True) -> list[Claim]:
        """Claim up to `limit` pending notices (unless not `pending`), then deferred ones whose time has come."""
        claims: list[Claim] = []
        with self.store.tx() as conn:
            for status, due in ((DeliveryStatus.PENDING, False), (DeliveryStatus.DEFERRED, True)):
                if len(claims) >= limit or (not due and not pending):
                    continue
                pick = (sa.select(notices.c.id).where(notices.c.status == status)
                        .order_by(notices.c.id).limit(limit - len(claims)))
                if due:
                    pick = pick.where(notices.c.next_attempt_at <= now)
                if conn.dialect.name == "postgresql":
                    pick = pick.with_for_update(skip_locked=True)
                # Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED):
                # PostgreSQL 15 updated more than n rows with that form. The status test makes
                # the UPDATE take only rows no one else claimed in between (SQLite has no row locks).
                ids = list(conn.execute(pick).scalars())
                if not ids:
                    continue
                rows = conn.execute(notices.update().where(notices.c.id.in_(ids), notices.c.status == status)
                                    .values(status=DeliveryStatus.SENDING, claimed_by=claimer, updated_at=now)
                                    .returning(notices.c.id, notices.c.question_id, notices.c.message_id,
                                               notices.c.attempts, notices.c.first_attempt_at)).all()
                claims += [Claim(r.id, r.question_id, r.message_id, r.attempts, r.first_attempt_at) for r in rows]
        return sorted(claims, key=lambda c: c.delivery_id)

    @contextmanager
    def settling(self) -> Iterator[Callable[[Sequence[Settlement]], None]]:
        """A function recording a batch of outcomes in one transaction: a sent notice is noted
        on its question; a bounce marks the asker's address (QuestionStore.mark_bounced)."""
        from .questions import QuestionStore

        def settle(batch: Sequence[Settlement]) -> None:
            bounced: list[tuple[int, datetime]] = []
            with self.store.tx() as conn:
                for s in batch:
                    values: dict[str, object] = {
                        "status": s.status, "updated_at": s.now, "last_code": s.code, "last_reply": s.reply[:500],
                        "claimed_by": "", "attempts": notices.c.attempts + (1 if s.attempted else 0)}
                    if s.attempted:
                        values["first_attempt_at"] = sa.func.coalesce(notices.c.first_attempt_at, s.now)
                    if s.next_attempt_at is not None:
                        values["next_attempt_at"] = s.next_attempt_at
                    question_id = conn.execute(notices.update().where(notices.c.id == s.delivery_id).values(**values)
                                               .returning(notices.c.question_id)).scalar()
                    if question_id is None:
                        continue
                    if s.status == DeliveryStatus.SENT:
                        conn.execute(questions.update().where(questions.c.id == question_id).values(noticed_at=s.now))
                    if s.bounce is not None:
                        bounced.append((question_id, s.now))
            for question_id, at in bounced:
                asker = QuestionStore(self.store).get(question_id)
                if asker is not None:
                    QuestionStore(self.store).mark_bounced(asker.email_key, at)

        yield settle

    def release(self, notice_ids: Sequence[int], now: datetime) -> None:
        """Give back claimed notices that were never attempted."""
        if not notice_ids:
            return
        with self.store.tx() as conn:
            conn.execute(notices.update().where(notices.c.id.in_(list(notice_ids)), notices.c.status == DeliveryStatus.SENDING)
                         .values(status=DeliveryStatus.PENDING, claimed_by="", updated_at=now))

    def release_claimer(self, claimer: str, now: datetime) -> None:
        """Give back every notice one connection still holds."""
        with self.store.tx() as conn:
            conn.execute(notices.update().where(notices.c.status == DeliveryStatus.SENDING, notices.c.claimed_by == claimer)
                         .values(status=DeliveryStatus.PENDING, claimed_by="", updated_at=now))

    def held_by_others(self, sender_id: str) -> int:
        """How many notices other senders hold as "sending"."""
        with self.store.tx() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(notices).where(
                notices.c.status == DeliveryStatus.SENDING, notices.c.claimed_by.notlike(f"{sender_id}/%"))).scalar_one())

    def finish_if_done(self, now: datetime) -> bool:
        """Notices are no issue to close: whether none is open."""
        return not open_count(self.counts())

    def recover_stale(self, now: datetime, alive: Callable[[int], bool] = pid_alive) -> int:
        """Give back the notices claimed by senders that died (ledger.py's rule: same host
        and PID namespace, its pid is gone; elsewhere, its heartbeat is stale)."""
        with self.store.tx() as conn:
            dead = dead_senders(conn, now, alive)
            return int(conn.execute(notices.update().where(notices.c.status == DeliveryStatus.SENDING,
                                                           orphaned(notices.c.claimed_by, dead))
                                    .values(status=DeliveryStatus.PENDING, claimed_by="", updated_at=now)).rowcount or 0)

    def give_up(self, before: datetime, reply_prefix: str, now: datetime) -> dict[int, int]:
        """Fail the deferred notices first tried at or before `before`, keeping their last
        reply; {0: how many} (notices belong to no issue)."""
        with self.store.tx() as conn:
            failed = int(conn.execute(notices.update().where(
                notices.c.status == DeliveryStatus.DEFERRED, notices.c.first_attempt_at <= before).values(
                status=DeliveryStatus.FAILED, updated_at=now, claimed_by="",
                last_reply=sa.func.substr(sa.literal(reply_prefix, sa.String) + notices.c.last_reply, 1, 500))).rowcount or 0)
        return {0: failed} if failed else {}

    def counts(self) -> dict[str, int]:
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(notices.c.status, sa.func.count()).group_by(notices.c.status)).all()
        return {str(status): int(n) for status, n in rows}
