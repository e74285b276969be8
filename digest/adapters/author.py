"""The author's book: decisions per weekly slot (proof sent, held, approved, the note) and
the author's single mails (the report of each issue, the questions mail), in the store's
database. Adapter over the store's engine; the policy is core/desk.py.

A mail to the author is claimed (a row "sending", committed) before it goes and marked
"sent" after: a kill between the two leaves the claim, and a claimed mail is never sent
again, so a report goes at most once per issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..core.desk import Decision
from .schema import author_mails, author_slots, dialect_insert, questions, reader_choices, subscribers
from .store import Store


class AuthorLedger:
    """The author_slots and author_mails tables (jobs/books.py: AuthorBook)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def decision(self, slot: datetime) -> Decision:
        with self.store.tx() as conn:
            row = conn.execute(sa.select(author_slots).where(author_slots.c.slot == slot)).first()
        return Decision(slot) if row is None else _decision(row)

    def decide(self, slot: datetime, now: datetime, *, changes: bool = True, **values: Any) -> Decision:
        """Record `values` for `slot` (a change bumps its version: a new proof follows).

        The slot's first record is an INSERT that yields to one made meanwhile (then this
        one is a change of it): `digest hold` and the proof timer opening one slot at once
        both found no row, and the second stopped on the primary key with a traceback."""
        with self.store.tx() as conn:
            first = (dialect_insert(conn, author_slots).on_conflict_do_nothing(index_elements=[author_slots.c.slot])
                     .values(slot=slot, version=1, updated_at=now, **values).returning(author_slots.c.slot))
            if conn.execute(first).first() is None:
                bump = {"version": author_slots.c.version + 1} if changes else {}
                conn.execute(sa.update(author_slots).where(author_slots.c.slot == slot)
                             .values(updated_at=now, **bump, **values))
            return _decision(conn.execute(sa.select(author_slots).where(author_slots.c.slot == slot)).one())

    def claim_proof(self, slot: datetime, version: int, now: datetime) -> bool:
        """Claim the proof of `version`: True for the first attempt (claimed, not yet sent);
        a second attempt (the first was killed mid-send) marks it sent before it goes, so a
        proof goes at most twice; False when it was sent."""
        self.decide(slot, now, changes=False)
        with self.store.tx() as conn:
            first = conn.execute(sa.update(author_slots).where(
                author_slots.c.slot == slot, author_slots.c.proof_claimed < version
            ).values(proof_claimed=version)).rowcount
            if first:
                return True
            return bool(conn.execute(sa.update(author_slots).where(
                author_slots.c.slot == slot, author_slots.c.proof_sent < version
            ).values(proof_sent=version, proof_sent_at=now)).rowcount)

    def proof_sent(self, slot: datetime, version: int, now: datetime) -> None:
        with self.store.tx() as conn:
            conn.execute(sa.update(author_slots).where(author_slots.c.slot == slot, author_slots.c.proof_sent < version)
                         .values(proof_sent=version, proof_sent_at=now))

    def claim_mail(self, kind: str, ref: str, now: datetime) -> bool:
        """Claim the author's mail `kind` of `ref`; False when it was claimed before (sent or in
        doubt), or by another run between this one's read and its write (the primary key)."""
        try:
            with self.store.tx() as conn:
                if conn.execute(sa.select(author_mails.c.status).where(
                        author_mails.c.kind == kind, author_mails.c.ref == ref)).first() is not None:
                    return False
                conn.execute(sa.insert(author_mails).values(kind=kind, ref=ref, status="sending", created_at=now))
                return True
        except sa.exc.IntegrityError:
            return False

    def settle_mail(self, kind: str, ref: str, status: str, now: datetime) -> None:
        with self.store.tx() as conn:
            conn.execute(sa.update(author_mails).where(author_mails.c.kind == kind, author_mails.c.ref == ref)
                         .values(status=status, sent_at=now))

    def last_mail(self, kind: str) -> datetime | None:
        """When the author's last mail of `kind` was claimed (None: never)."""
        with self.store.tx() as conn:
            return conn.execute(sa.select(sa.func.max(author_mails.c.created_at))
                                .where(author_mails.c.kind == kind)).scalar()

    def period(self, since: datetime | None, until: datetime) -> Mapping[str, Any]:
        """Counts between `since` (None: the beginning) and `until`: new subscribers,
        unsubscribed by how, bounced, questions received and answered, readers who got the job."""
        def between(col: Any) -> Any:
            return col <= until if since is None else sa.and_(col > since, col <= until)

        with self.store.tx() as conn:
            new = conn.execute(sa.select(sa.func.count()).where(between(subscribers.c.confirmed_at))).scalar_one()
            gone: dict[str, int] = {str(how): int(n) for how, n in conn.execute(
                sa.select(subscribers.c.unsubscribed_how, sa.func.count())
                .where(subscribers.c.status == "unsubscribed", between(subscribers.c.unsubscribed_at))
                .group_by(subscribers.c.unsubscribed_how))}
            bounced = conn.execute(sa.select(sa.func.count()).where(
                subscribers.c.status == "bounced", between(subscribers.c.updated_at))).scalar_one()
            asked = conn.execute(sa.select(sa.func.count()).where(between(questions.c.created_at))).scalar_one()
            answered = conn.execute(sa.select(sa.func.count()).where(between(questions.c.answered_at))).scalar_one()
            hired = conn.execute(sa.select(sa.func.count(sa.distinct(reader_choices.c.subscriber_id))).where(  # "I got the job!"
                reader_choices.c.kind == "job", between(reader_choices.c.at))).scalar_one()
        unsubscribed = {"link": 0, "mail": 0, "complaint": 0, "other": 0}
        for how, n in gone.items():
            unsubscribed[how if how in unsubscribed else "other"] += n
        return {"new": new, "unsubscribed": unsubscribed, "bounced": bounced, "asked": asked, "answered": answered,
                "hired": hired}


def _decision(row: Any) -> Decision:
    return Decision(slot=row.slot, version=row.version, proof_claimed=row.proof_claimed, proof_sent=row.proof_sent,
                    proof_sent_at=row.proof_sent_at, held_at=row.held_at, hold_reason=row.hold_reason,
                    approved_at=row.approved_at, note=row.note, outcome=row.outcome)
