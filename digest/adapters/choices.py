"""Readers' choices in the database: frequency, pause and resume, a new address waiting for
its confirmation, and the trail of every choice (reader_choices; the author's report counts
its "job" rows). Adapter over the store's engine; the rules are core/audience.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..core.audience import JOB, UNTIL_RESUMED, WEEKS, pause_end
from ..core.models import Subscriber
from ..core.subscriptions import new_nonce
from .rows import subscriber as _subscriber
from .schema import deliveries, inbox_returns, issues, questions, reader_choices, subscribers
from .store import Store


@dataclass(frozen=True)
class Choice:
    """One choice of the trail: when, what, the value and the way it was made."""

    at: datetime
    kind: str   # frequency, pause, job, resume, address
    value: str
    how: str


@dataclass(frozen=True)
class AddressChange:
    """What confirming a new address did: moved (with the old address, to notify), or why not."""

    moved: bool
    old_email: str = ""
    sub: Subscriber | None = None
    taken: bool = False  # the new address is on the list now


class Choices:
    """Readers' choices, in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _change(self, subscriber_id: int, values: dict[str, Any], kind: str, value: str, how: str,
                now: datetime, *, unless: sa.ColumnElement[bool] | None = None) -> Subscriber | None:
        """Apply the choice; None when the subscriber is not on the list (or `unless` holds)."""
        condition = [] if unless is None else [~unless]
        with self.store.tx() as conn:
            done = conn.execute(subscribers.update().where(
                subscribers.c.id == subscriber_id, subscribers.c.status.in_(("pending", "confirmed")), *condition,
            ).values(updated_at=now, **values))
            if done.rowcount != 1:
                return None
            conn.execute(reader_choices.insert().values(subscriber_id=subscriber_id, at=now, kind=kind,
                                                        value=value[:700], how=how))
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        return _subscriber(row)

    def set_frequency(self, subscriber_id: int, frequency: str, *, how: str, now: datetime) -> Subscriber | None:
        """Weekly or monthly (the caller checks it is offered); None: not on the list."""
        return self._change(subscriber_id, {"frequency": frequency}, "frequency", frequency, how, now)

    def pause(self, subscriber_id: int, *, weeks: int | None, how: str, now: datetime,
              job: bool = True) -> Subscriber | None:
        """Pause for `weeks` weeks, or (None) until they come back: "I got the job!" (`job`),
        or the author's open-ended pause (digest subscribers set --pause). "I got the job!"
        gives None when they were away for the job already: the caller mails the
        congratulation on a Subscriber, and two presses at once (two pages, a double click)
        both read a reader not yet away, so only the write itself can tell the first."""
        if weeks is None:
            reason = JOB if job else UNTIL_RESUMED
            values: dict[str, Any] = {"pause_reason": reason, "paused_at": now, "paused_until": None}
            return self._change(subscriber_id, values, JOB if job else "pause", "" if job else "until resumed", how, now,
                                unless=subscribers.c.pause_reason == JOB if job else None)
        values = {"pause_reason": WEEKS, "paused_at": now, "paused_until": pause_end(now, weeks)}
        return self._change(subscriber_id, values, "pause", f"{weeks} weeks", how, now)

    def resume(self, subscriber_id: int, *, how: str, now: datetime) -> Subscriber | None:
        """End a pause now (a confirmed reader only: "come back" is no way to re-subscribe;
        checked by the UPDATE itself, not by a read before it)."""
        values = {"pause_reason": "", "paused_at": None, "paused_until": None}
        return self._change(subscriber_id, values, "resume", "", how, now, unless=subscribers.c.status != "confirmed")

    def got_the_job(self, *, since: datetime | None = None) -> int:
        """How many readers said "I got the job!" (since `since`): a number, for the author's report."""
        query = sa.select(sa.func.count(sa.distinct(reader_choices.c.subscriber_id))).where(reader_choices.c.kind == JOB)
        if since is not None:
            query = query.where(reader_choices.c.at >= since)
        with self.store.tx() as conn:
            return int(conn.execute(query).scalar_one())

    def trail(self, subscriber_id: int) -> list[Choice]:
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(reader_choices).where(reader_choices.c.subscriber_id == subscriber_id)
                                .order_by(reader_choices.c.id)).all()
        return [Choice(r.at, r.kind, r.value, r.how) for r in rows]

    # ---- a new address ----

    def request_address(self, subscriber_id: int, email: str, *, now: datetime) -> tuple[Subscriber, str] | None:
        """Note a new address waiting for its confirmation; (subscriber, nonce), None: not confirmed."""
        nonce = new_nonce()
        with self.store.tx() as conn:
            done = conn.execute(subscribers.update().where(
                subscribers.c.id == subscriber_id, subscribers.c.status == "confirmed",
            ).values(new_email=email, new_email_nonce=nonce, new_email_at=now, updated_at=now))
            if done.rowcount != 1:
                return None
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        return _subscriber(row), nonce

    def address_nonce(self, subscriber_id: int) -> str:
        with self.store.tx() as conn:
            return str(conn.execute(sa.select(subscribers.c.new_email_nonce)
                                    .where(subscribers.c.id == subscriber_id)).scalar() or "")

    def confirm_address(self, subscriber_id: int, nonce: str, key: str, *, now: datetime) -> AddressChange:
        """Move the subscription (topics, frequency, consent, questions: all keyed by its id)
        to the new address its link was made for; single use.

        Single use is the UPDATE's own condition (the nonce still current), not the read's:
        two POSTs of one link at once both read it current, and both moved the subscription
        and had the old address told twice."""
        current = (subscribers.c.id == subscriber_id, subscribers.c.new_email_nonce == nonce,
                   subscribers.c.status == "confirmed")
        try:
            with self.store.tx() as conn:
                row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).first()
                if row is None or not nonce or row.new_email_nonce != nonce or row.status != "confirmed":
                    return AddressChange(False)
                if conn.execute(sa.select(subscribers.c.id).where(subscribers.c.email_key == key)).first():
                    conn.execute(subscribers.update().where(*current)
                                 .values(new_email="", new_email_nonce="", new_email_at=None))
                    return AddressChange(False, taken=True)
                if conn.execute(subscribers.update().where(*current).values(
                        email=row.new_email, email_key=key, new_email="", new_email_nonce="", new_email_at=None,
                        updated_at=now)).rowcount != 1:
                    return AddressChange(False)  # the same link's other use moved it (or a newer link replaced it)
                # Their questions move too: notices go to the address that asked (adapters/questions.py).
                conn.execute(questions.update().where(sa.or_(questions.c.subscriber_id == subscriber_id,
                                                             questions.c.email_key == row.email_key))
                             .values(email=row.new_email, email_key=key, subscriber_id=subscriber_id, updated_at=now))
                conn.execute(reader_choices.insert().values(subscriber_id=subscriber_id, at=now, kind="address",
                                                            value=f"{row.email} -> {row.new_email}"[:700], how="link"))
                saved = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        except sa.exc.IntegrityError:  # the address joined the list in between
            return AddressChange(False, taken=True)
        return AddressChange(True, old_email=row.email, sub=_subscriber(saved))

    # ---- what is kept about one address, and the suppression list ----

    def deliveries_of(self, subscriber_id: int) -> list[dict[str, Any]]:
        """Every issue's message to this reader: issue, subject, date, status, the server's reply."""
        query = (sa.select(deliveries.c.issue_id, issues.c.subject, issues.c.kind, issues.c.created_at,
                           deliveries.c.status, deliveries.c.updated_at, deliveries.c.last_reply)
                 .join(issues, issues.c.id == deliveries.c.issue_id)
                 .where(deliveries.c.subscriber_id == subscriber_id).order_by(deliveries.c.issue_id))
        with self.store.tx() as conn:
            return [{"issue": r.issue_id, "subject": r.subject, "kind": r.kind, "issue_date": r.created_at.isoformat(),
                     "status": r.status, "updated": r.updated_at.isoformat(), "reply": r.last_reply}
                    for r in conn.execute(query)]

    def returns_of(self, subscriber_id: int) -> list[dict[str, Any]]:
        """The bounces, complaints and unsubscribe mails read about this reader."""
        query = (sa.select(inbox_returns).where(inbox_returns.c.subscriber_id == subscriber_id)
                 .order_by(inbox_returns.c.id))
        with self.store.tx() as conn:
            return [{"kind": r.kind, "at": r.at.isoformat(), "issue": r.issue_id, "status": r.status,
                     "changed_status": bool(r.changed)} for r in conn.execute(query)]

    def suppressed(self, statuses: tuple[str, ...]) -> list[tuple[str, str, datetime | None]]:
        """(address, status, since when) of every address in `statuses`, by address."""
        query = sa.select(subscribers.c.email, subscribers.c.status, subscribers.c.unsubscribed_at,
                          subscribers.c.updated_at).where(subscribers.c.status.in_(statuses)).order_by(subscribers.c.email)
        with self.store.tx() as conn:
            return [(r.email, r.status, (r.unsubscribed_at if r.status == "unsubscribed" else None) or r.updated_at)
                    for r in conn.execute(query)]
