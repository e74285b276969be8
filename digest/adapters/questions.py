"""Readers' questions in the store: intake, moderation, answers, privacy. Adapter over the
store's engine (schema.py: questions, askers, notices).

Intake merges duplicates (the same words from the same address, or the same intake mail
read twice) through unique keys, so two readers of one mailbox or two clicks of one form
keep one question. Marking a question answered and queueing its one notice are one
transaction; the notice's unique question_id makes "exactly once" the database's job.
An acknowledgement is claimed on the asker's row (askers), which both databases lock, so
that two questions arriving at once from one address get one acknowledgement between them.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..core.address import mailbox_key
from ..core.answers import AnswerLink
from ..core.errors import InputError, StoreError
from ..core.message import acknowledgement_message_id, unguessable
from ..core.models import DeliveryStatus
from ..core.policy import Evidence, move, sources
from ..core.questions import (
    ACCEPTED,
    ANSWERED,
    DECLINED,
    KNOWN_SOURCES,
    NewQuestion,
    Question,
    QuestionStats,
    acknowledgement_budget,
    check_move,
)
from .schema import MAX_ID, askers, deliveries, issues, notices, questions, rate_events, subscribers
from .store import Store

_FIELDS = tuple(f.name for f in fields(Question))
_ISSUE_MESSAGE_ID = re.compile(r"^<digest\.(\d{1,10})\.(\d{1,10})\.")
_QUESTION_MAIL_ID = re.compile(r"^<(ack|answer)\.(\d{1,10})\.")


class QuestionStore:
    """The questions table and its neighbours (askers, notices), in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- intake ----

    def record(self, new: NewQuestion, now: datetime) -> tuple[Question, bool]:
        """Keep a new question; (the question kept before, False) when it is a duplicate."""
        for _ in range(2):
            existing = self._duplicate_of(new)
            if existing is not None:
                return existing, False
            try:
                with self.store.tx() as conn:
                    values = {k: getattr(new, k) for k in ("email", "email_key", "name", "text", "source",
                                                            "consent_to_quote", "display_name", "dup_key",
                                                            "message_id", "subscriber_id")}
                    if new.subscriber_id is not None and not conn.execute(
                            sa.select(subscribers.c.id).where(subscribers.c.id == new.subscriber_id)).first():
                        values["subscriber_id"] = None  # removed meanwhile
                    new_id = conn.execute(questions.insert().values(
                        status="new", created_at=now, updated_at=now, **values)).inserted_primary_key[0]  # type: ignore[index]
                    if not conn.execute(sa.select(askers.c.email_key).where(askers.c.email_key == new.email_key)).first():
                        conn.execute(askers.insert().values(email_key=new.email_key))
            except sa.exc.IntegrityError:
                continue  # the same question (or asker) arrived at the same moment: look again
            saved = self.get(int(new_id))
            assert saved is not None
            return saved, True
        raise StoreError(f"could not record the question from {new.email}")

    def _duplicate_of(self, new: NewQuestion) -> Question | None:
        match = questions.c.dup_key == new.dup_key
        if new.message_id:
            match = sa.or_(match, questions.c.message_id == new.message_id)
        return self._one(sa.select(questions).where(match).order_by(questions.c.id).limit(1))

    def subscriber_for_message_id(self, message_ids: Iterable[str]) -> int | None:
        """The subscriber an issue with one of these Message-IDs went to (a reply's In-Reply-To).
        An issue's Message-ID names its issue and subscriber (ledger.py: <digest.ISSUE.SUB.KEY@...>),
        so the lookup goes by the ledger's (issue, subscriber) index and then checks the whole id."""
        for mid in [m.strip() for m in message_ids if m.strip()][:20]:
            m = _ISSUE_MESSAGE_ID.match(mid)
            if not m or not all(0 < int(g) <= MAX_ID for g in m.groups()) or not unguessable(mid):  # core/policy.py
                continue
            with self.store.tx() as conn:
                found = conn.execute(sa.select(deliveries.c.subscriber_id).where(
                    deliveries.c.issue_id == int(m.group(1)), deliveries.c.subscriber_id == int(m.group(2)),
                    deliveries.c.message_id == mid)).scalar()
            if found is not None:
                return int(found)
        return None

    # ---- reading ----

    def get(self, question_id: int) -> Question | None:
        if not 0 < question_id <= MAX_ID:
            return None
        return self._one(sa.select(questions).where(questions.c.id == question_id))

    def require(self, question_id: int) -> Question:
        found = self.get(question_id)
        if found is None:
            raise InputError(f"there is no question {question_id} (digest questions list shows them)")
        return found

    def listed(self, status: str | None = None) -> list[Question]:
        query = sa.select(questions).order_by(questions.c.id)
        if status:
            query = query.where(questions.c.status == status)
        return self._many(query)

    def of_address(self, email_key: str) -> list[Question]:
        """Every question of an address, or linked to the subscriber of that address."""
        with self.store.tx() as conn:
            sub = conn.execute(sa.select(subscribers.c.id).where(subscribers.c.email_key == email_key)).scalar()
        match = questions.c.email_key == email_key
        if sub is not None:
            match = sa.or_(match, questions.c.subscriber_id == sub)
        return self._many(sa.select(questions).where(match).order_by(questions.c.id))

    def statuses(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = [i for i in ids if 0 < i <= MAX_ID]
        if not wanted:
            return {}
        with self.store.tx() as conn:
            rows = conn.execute(sa.select(questions.c.id, questions.c.status).where(questions.c.id.in_(wanted))).all()
        return {int(r.id): str(r.status) for r in rows}

    def notice_status(self, question_id: int) -> tuple[str, str] | None:
        """(status, last reply) of a question's answer notice, if one was queued."""
        with self.store.tx() as conn:
            row = conn.execute(sa.select(notices.c.status, notices.c.last_reply)
                               .where(notices.c.question_id == question_id)).first()
        return (str(row.status), str(row.last_reply)) if row else None

    def stats(self) -> QuestionStats:
        with self.store.tx() as conn:
            received = int(conn.execute(sa.select(sa.func.count()).select_from(questions)).scalar_one())
            rows = conn.execute(sa.select(questions.c.created_at, questions.c.answered_at)
                                .where(questions.c.status == ANSWERED)).all()
        days = [(r.answered_at - r.created_at).total_seconds() / 86400 for r in rows if r.answered_at]
        return QuestionStats(received, len(rows), statistics.median(days) if days else None)

    # ---- moderation ----

    def move(self, question_id: int, action: str, now: datetime, **values: Any) -> Question:
        """Apply `digest questions accept|decline|answer` (check_move says whether it may).

        The write holds only while the question is in the state the move was checked
        against: on SQLite the read is no lock (nothing is until the first write), and a
        send that marked it answered in between (its notice queued) would be undone.
        Then the move is checked again on what it is now (an answered question is final)."""
        while True:
            with self.store.tx() as conn:
                row = conn.execute(_locked(sa.select(questions).where(questions.c.id == question_id), conn)).first()
                if row is None:
                    raise InputError(f"there is no question {question_id} (digest questions list shows them)")
                current = _question(row)
                status = check_move(current, action)
                moved = {**values, "status": status, "updated_at": now}
                if action == "accept":
                    moved["accepted_at"] = current.accepted_at or now
                    moved["declined_at"] = None
                elif action == "decline":
                    moved["declined_at"] = now
                if conn.execute(questions.update().where(questions.c.id == question_id,
                                                         questions.c.status == current.status)
                                .values(**moved)).rowcount == 1:
                    break
        return self.require(question_id)

    def forget(self, email_key: str) -> int:
        """Delete every question of an address (their notices with them) and its asker row."""
        with self.store.tx() as conn:
            ids = [int(i) for i in conn.execute(sa.select(questions.c.id).where(questions.c.email_key == email_key)).scalars()]
            conn.execute(notices.delete().where(notices.c.question_id.in_(ids)))
            conn.execute(questions.delete().where(questions.c.email_key == email_key))
            conn.execute(askers.delete().where(askers.c.email_key == email_key))
            conn.execute(rate_events.delete().where(rate_events.c.key == mailbox_key(email_key)))
        return len(ids)

    def expire(self, before: datetime, now: datetime) -> int:
        """Empty the text and name of questions answered or declined at or before `before`."""
        ended = sa.or_(sa.and_(questions.c.status == ANSWERED, questions.c.answered_at <= before),
                       sa.and_(questions.c.status == DECLINED, questions.c.declined_at <= before))
        with self.store.tx() as conn:
            return int(conn.execute(questions.update().where(ended, sa.or_(questions.c.text != "", questions.c.name != ""))
                                    .values(text="", name="", updated_at=now)).rowcount or 0)

    # ---- answers ----

    def awaiting_answers(self) -> bool:
        """Whether any accepted question waits for its answer."""
        with self.store.tx() as conn:
            return conn.execute(sa.select(questions.c.id).where(questions.c.status == ACCEPTED).limit(1)).first() is not None

    def accepted(self) -> list[Question]:
        return self._many(sa.select(questions).where(questions.c.status == ACCEPTED).order_by(questions.c.id))

    def mark_answered(self, links: Sequence[AnswerLink], now: datetime, message_id: Any) -> list[Question]:
        """Mark each linked question answered and queue its one notice, in one transaction each;
        the questions this call answered (one answered already is left as it is).
        `message_id(question_id)` makes the notice's Message-ID."""
        done: list[Question] = []
        for link in links:
            with self.store.tx() as conn:
                changed = conn.execute(questions.update().where(
                    questions.c.id == link.question_id, questions.c.status == ACCEPTED).values(
                    status=ANSWERED, answered_at=now, updated_at=now, answer_url=link.post.link,
                    answer_post_id=link.post.id, answer_title=link.post.title)).rowcount
                if changed != 1:
                    continue
                conn.execute(notices.insert().values(
                    question_id=link.question_id, status=DeliveryStatus.PENDING, next_attempt_at=now,
                    message_id=message_id(link.question_id), created_at=now, updated_at=now))
            answered = self.get(link.question_id)
            if answered is not None:
                done.append(answered)
        return done

    def claim_features(self, key: str, now: datetime) -> list[Question]:
        """Give the issue of `key` the answered questions no recorded issue features yet; the
        questions that issue features (the same, read again, when it is built twice)."""
        recorded = sa.select(issues.c.key)
        with self.store.tx() as conn:
            conn.execute(questions.update().where(
                questions.c.status == ANSWERED,
                sa.or_(questions.c.featured_key.is_(None), questions.c.featured_key.not_in(recorded)),
            ).values(featured_key=key, updated_at=now))
        return self.featured(key)

    def featured(self, key: str) -> list[Question]:
        return self._many(sa.select(questions).where(questions.c.featured_key == key, questions.c.status == ANSWERED)
                          .order_by(questions.c.answered_at, questions.c.id))

    def unfeatured(self) -> list[Question]:
        """Answered questions no recorded issue features yet (what the next issue would claim)."""
        return self._many(sa.select(questions).where(
            questions.c.status == ANSWERED,
            sa.or_(questions.c.featured_key.is_(None), questions.c.featured_key.not_in(sa.select(issues.c.key))),
        ).order_by(questions.c.answered_at, questions.c.id))

    def desk(self, limit: int) -> list[Question]:
        """Accepted questions whose askers agreed to be quoted, oldest accepted first."""
        return self._many(sa.select(questions).where(questions.c.status == ACCEPTED, questions.c.consent_to_quote.is_(True))
                          .order_by(questions.c.accepted_at, questions.c.id).limit(limit * 4))

    def issue_exists(self, key: str) -> bool:
        with self.store.tx() as conn:
            return conn.execute(sa.select(issues.c.id).where(issues.c.key == key)).first() is not None

    # ---- who may be mailed ----

    def blocked(self, email_key: str) -> str | None:
        """Why nothing may be mailed to an address (it bounced, or its owner complained), or None."""
        with self.store.tx() as conn:
            sub = conn.execute(sa.select(subscribers.c.status, subscribers.c.unsubscribed_how)
                               .where(subscribers.c.email_key == email_key)).first()
            asker = conn.execute(sa.select(askers.c.bounced_at, askers.c.complained_at)
                                 .where(askers.c.email_key == email_key)).first()
        if sub is not None and sub.status == "bounced":
            return "the address bounced"
        if sub is not None and sub.status == "unsubscribed" and sub.unsubscribed_how == "complaint":
            return "the address complained (marked our mail as spam)"
        if asker is not None and asker.complained_at is not None:
            return "the address complained (marked our mail as spam)"
        if asker is not None and asker.bounced_at is not None:
            return "the address bounced"
        return None

    def claim_acknowledgement(self, question: Question, now: datetime, window: timedelta, per_hour: int = 0) -> bool:
        """Note that `question` is acknowledged now, unless its address had one within `window`
        or `per_hour` acknowledgements of its budget (core/questions.py acknowledgement_budget)
        went in the last hour."""
        budget = acknowledgement_budget(question.source, question.subscriber_id)
        room: list[sa.ColumnElement[bool]] = []
        if per_hour:  # counted by the claim itself: two claims at once each counted room for one more
            room.append(_acknowledged(now - timedelta(hours=1), budget).scalar_subquery() < per_hour)
        with self.store.tx() as conn:
            if per_hour and conn.dialect.name == "postgresql":  # READ COMMITTED: claims of two askers would not
                # see each other's count; the lock holds the next one until this one commits (SQLite: the
                # UPDATE takes the write lock, and its count is part of it)
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"acknowledgements\n{budget}"))))
            took = conn.execute(askers.update().where(
                askers.c.email_key == question.email_key,
                sa.or_(askers.c.acknowledged_at.is_(None), askers.c.acknowledged_at <= now - window), *room,
            ).values(acknowledged_at=now)).rowcount == 1
            if took:
                conn.execute(questions.update().where(questions.c.id == question.id, questions.c.acknowledged_at.is_(None))
                             .values(acknowledged_at=now, updated_at=now))
        return took

    def acknowledged_since(self, since: datetime, budget: str) -> int:
        """How many acknowledgements of `budget` went since `since`."""
        with self.store.tx() as conn:
            return self._acknowledged_since(conn, since, budget)

    @staticmethod
    def _acknowledged_since(conn: sa.Connection, since: datetime, budget: str) -> int:
        return int(conn.execute(_acknowledged(since, budget)).scalar_one())

    def mark_asker_bounced(self, email_key: str, now: datetime) -> bool:
        """A bounce by mail names an address we acknowledged a question to: nothing more goes
        there. Only for addresses we mailed (so a forged report about anyone else does
        nothing), and never touching subscribers (the inbox's own rules attribute those)."""
        with self.store.tx() as conn:
            done = conn.execute(askers.update().where(askers.c.email_key == email_key,
                                                      askers.c.acknowledged_at.is_not(None), askers.c.bounced_at.is_(None))
                                .values(bounced_at=now))
            return bool(done.rowcount)

    def mark_askers_complained(self, message_ids: Iterable[str], now: datetime) -> int:
        """A complaint quotes the Message-ID of an acknowledgement or answer notice of ours
        (core/returns.py question_mail_ids): nothing more goes to its asker. A forged report
        can only stop mail to someone, never start it. How many askers it marked."""
        with self.store.tx() as conn:
            keys = _askers_of(conn, message_ids)
            for key in keys:
                if conn.execute(askers.update().where(askers.c.email_key == key, askers.c.complained_at.is_(None))
                                .values(complained_at=now)).rowcount == 0 and not conn.execute(
                        sa.select(askers.c.email_key).where(askers.c.email_key == key)).first():
                    conn.execute(askers.insert().values(email_key=key, complained_at=now))
        return len(keys)

    def askers_of(self, message_ids: Iterable[str]) -> set[str]:
        """The address keys of the askers our acknowledgements and notices with these
        Message-IDs went to (an answer notice's is compared whole with the one kept; an
        acknowledgement's, not kept, by its question number)."""
        with self.store.tx() as conn:
            return _askers_of(conn, message_ids)

    def mark_bounced(self, email_key: str, now: datetime) -> None:
        """Nothing more goes to this address; a confirmed subscriber of it is bounced too."""
        with self.store.tx() as conn:
            if conn.execute(askers.update().where(askers.c.email_key == email_key).values(bounced_at=now)).rowcount == 0:
                conn.execute(askers.insert().values(email_key=email_key, bounced_at=now))
            conn.execute(subscribers.update().where(subscribers.c.email_key == email_key,
                                                    subscribers.c.status.in_(sources(Evidence.ASKER_BOUNCE)))
                         .values(status=move(Evidence.ASKER_BOUNCE).target.value, updated_at=now))

    # ---- rows ----

    def _one(self, query: sa.Select[Any]) -> Question | None:
        with self.store.tx() as conn:
            row = conn.execute(query).first()
        return _question(row) if row else None

    def _many(self, query: sa.Select[Any]) -> list[Question]:
        with self.store.tx() as conn:
            return [_question(row) for row in conn.execute(query).all()]


def _acknowledged(since: datetime, budget: str) -> sa.Select[Any]:
    """How many acknowledgements of `budget` went since `since`."""
    known = sa.or_(questions.c.subscriber_id.is_not(None), questions.c.source.in_(KNOWN_SOURCES))
    return sa.select(sa.func.count()).select_from(questions).where(
        questions.c.acknowledged_at > since, known if budget == "known" else sa.not_(known))


def _locked(query: sa.Select[Any], conn: sa.Connection) -> sa.Select[Any]:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def _question(row: Any) -> Question:
    data = row._mapping
    return Question(**{name: data[name] for name in _FIELDS})


def _askers_of(conn: sa.Connection, message_ids: Iterable[str]) -> set[str]:
    keys: set[str] = set()
    for mid in [m.lower() for m in message_ids][:20]:
        m = _QUESTION_MAIL_ID.match(mid)
        if not m or not 0 < int(m.group(2)) <= MAX_ID:
            continue
        query = sa.select(questions.c.email_key).where(questions.c.id == int(m.group(2)))
        if m.group(1) == "ack":  # checked against what core/message.py derives from the question's dup_key
            row = conn.execute(sa.select(questions.c.dup_key).where(questions.c.id == int(m.group(2)),
                                                                   questions.c.acknowledged_at.is_not(None))).first()
            if row is None or acknowledgement_message_id(mid.rpartition("@")[2].rstrip(">"), int(m.group(2)),
                                                         row.dup_key).lower() != mid:
                continue
            query = query.where(questions.c.acknowledged_at.is_not(None))
        else:
            query = query.join(notices, notices.c.question_id == questions.c.id).where(
                sa.func.lower(notices.c.message_id) == mid)
        keys.update(conn.execute(query).scalars())
    return keys
