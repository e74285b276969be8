"""The subscriber store on SQLAlchemy Core: SQLite by default, PostgreSQL by URL. Adapter:
with ledger.py (issues and deliveries, on the same engine) and schema.py (the tables), the
only code that talks to the database.

Opening a store applies the alembic migrations (migrate.py), so a database made by an
older version upgrades itself. SQLite runs in WAL mode with synchronous=FULL (a lost
commit would be a lost unsubscribe or a duplicate send) and foreign keys on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..core.address import mailbox_key
from ..core.config import Config
from ..core.errors import StoreError
from ..core.models import Consent, Subscriber
from ..core.policy import Evidence, move, sources
from ..core.subscriptions import CSVRow, SubscribeDecision, decide_subscribe, new_nonce, topics_on_return
from .migrate import alembic_config, migrate  # noqa: F401  (alembic_config: its old home was here)
from .rows import subscriber as _subscriber
from .schema import askers, notices, questions, rate_events, subscribers

_IMPORT_BATCH = 1000


def make_engine(url: str) -> Engine:
    """An engine for [store] url; StoreError (one line) for a URL no driver takes or a
    SQLite file whose folder cannot be made."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"[store] url {url!r} is not a database URL") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"[store] url {_safe(url)!r}: cannot make the folder {folder}: "
                                 f"{exc.strerror or exc}", hint="check [store] url") from exc
        try:
            engine = sa.create_engine(url, connect_args={"timeout": 30})
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"[store] url {_safe(url)!r} is not usable: {_reason(exc)}") from exc

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        hint = "pip install '.[postgres]'" if parsed.get_backend_name() == "postgresql" else "use SQLite or PostgreSQL"
        raise StoreError(f"[store] url needs a driver that is not installed: {exc.name}", hint=hint) from exc
    except sa.exc.NoSuchModuleError as exc:  # an unknown scheme: "foo://", "postgresql+nodriver://"
        raise StoreError(f"[store] url {_safe(url)!r}: no database of that kind "
                         "(use sqlite:///PATH or postgresql+psycopg://...)") from exc
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"[store] url {_safe(url)!r} is not usable: {_reason(exc)}") from exc


@dataclass(frozen=True)
class ImportCounts:
    added: int = 0
    existing: int = 0
    duplicates: int = 0


class Store:
    """Subscribers, their consent and the web's rate-limit events (issues and deliveries: ledger.py)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        engine = make_engine(url)
        try:
            migrate(engine)
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the database {_safe(url)}: {_reason(exc)}", hint="check [store] url") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def tx(self, *, locking: bool = False) -> Iterator[Connection]:
        """One transaction; database failures become StoreError, except IntegrityError,
        which the methods that can race (subscribe, add, import, create_issue) handle.

        `locking`: its reads decide its writes. SQLite then takes the write lock first
        (BEGIN IMMEDIATE): pysqlite begins only at the first write, so a read before it
        locks nothing. On PostgreSQL the reads lock their rows (_locked: FOR UPDATE)."""
        try:
            with self.engine.begin() as conn:
                if locking and conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        except sa.exc.IntegrityError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"the database failed: {_reason(exc)}") from exc

    # ---- reading ----

    def get(self, subscriber_id: int) -> Subscriber | None:
        with self.tx() as conn:
            row = conn.execute(_BY_ID, {"subscriber": subscriber_id}).first()
        return _subscriber(row) if row else None

    def get_many(self, subscriber_ids: Iterable[int]) -> dict[int, Subscriber]:
        """The subscribers of these ids as they are now, by id (the removed ones missing)."""
        with self.tx() as conn:
            rows = conn.execute(_BY_IDS, {"ids": list(subscriber_ids)}).all()
        return {row.id: _subscriber(row) for row in rows}

    def find(self, email_key: str) -> Subscriber | None:
        with self.tx() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.email_key == email_key)).first()
        return _subscriber(row) if row else None

    def iter_subscribers(self, status: str | None = None) -> Iterator[Subscriber]:
        """Every subscriber (of one status), by id, streamed in batches."""
        last = 0
        while True:
            query = sa.select(subscribers).where(subscribers.c.id > last).order_by(subscribers.c.id).limit(_IMPORT_BATCH)
            if status:
                query = query.where(subscribers.c.status == status)
            with self.tx() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield _subscriber(row)
            last = rows[-1].id

    def count(self, status: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(subscribers)
        if status:
            query = query.where(subscribers.c.status == status)
        with self.tx() as conn:
            return int(conn.execute(query).scalar_one())

    # ---- the web flow ----

    def subscribe(self, email: str, key: str, name: str, topics: tuple[str, ...], consent: Consent, *,
                  now: datetime, resend_after: timedelta) -> tuple[Subscriber, SubscribeDecision]:
        """Record a subscribe request; the decision says whether to mail a confirmation link."""
        for attempt in (1, 2):
            try:
                with self.tx(locking=True) as conn:
                    row = conn.execute(_locked(sa.select(subscribers).where(subscribers.c.email_key == key), conn)).first()
                    existing = _subscriber(row) if row else None
                    decision = decide_subscribe(existing, now=now, resend_after=resend_after)
                    values: dict[str, Any] = {}
                    if decision.changed:
                        values = {"status": decision.status, "confirm_nonce": decision.nonce, "name": name,
                                  "topics": _topics_out(topics_on_return(existing, topics)), "updated_at": now,
                                  "pause_reason": "", "paused_at": None, "paused_until": None,  # frequency stays
                                  **_consent_out(consent)}
                        if decision.send_confirmation:
                            values["confirm_sent_at"] = now
                    if existing is None:
                        new_id = conn.execute(subscribers.insert().values(
                            email=email, email_key=key, created_at=now, **values)).inserted_primary_key[0]  # type: ignore[index]
                    else:
                        new_id = existing.id
                        if values:
                            conn.execute(subscribers.update().where(subscribers.c.id == new_id).values(**values))
                    saved = conn.execute(sa.select(subscribers).where(subscribers.c.id == new_id)).one()
                return _subscriber(saved), decision
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise StoreError(f"could not record the subscription of {email}") from None
        raise AssertionError("unreachable")

    def confirm(self, subscriber_id: int, nonce: str, *, now: datetime, name: str | None = None) -> Subscriber | None:
        """Confirm a pending subscriber whose link carries the current nonce; single use.
        `name`: the name as the confirmation page sent it (None: the one kept)."""
        named = {} if name is None else {"name": name}
        with self.tx() as conn:
            done = conn.execute(subscribers.update().where(
                subscribers.c.id == subscriber_id, subscribers.c.status.in_(sources(Evidence.LINK_CONFIRM)),
                subscribers.c.confirm_nonce == nonce, subscribers.c.confirm_nonce != "",
            ).values(status=move(Evidence.LINK_CONFIRM).target.value, confirmed_at=now, confirmed_how="link", confirm_nonce="",
                     updated_at=now, unsubscribed_at=None, unsubscribed_how="", **named))
            if done.rowcount != 1:
                return None
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        return _subscriber(row)

    def unsubscribe(self, subscriber_id: int, *, how: str, now: datetime) -> bool:
        """Unsubscribe (idempotent); True when the subscriber exists."""
        with self.tx() as conn:
            conn.execute(subscribers.update().where(
                subscribers.c.id == subscriber_id, subscribers.c.status.in_(sources(Evidence.LINK_UNSUBSCRIBE)),
            ).values(status=move(Evidence.LINK_UNSUBSCRIBE).target.value, unsubscribed_at=now, unsubscribed_how=how, confirm_nonce="", updated_at=now))
            return conn.execute(sa.select(subscribers.c.id).where(subscribers.c.id == subscriber_id)).first() is not None

    def release_confirmation(self, subscriber_id: int, *, now: datetime) -> None:
        """The confirmation mail noted at `now` did not go (a limit held it back): clear the
        note, so that the next request may send one."""
        with self.tx() as conn:
            conn.execute(subscribers.update().where(subscribers.c.id == subscriber_id,
                                                    subscribers.c.confirm_sent_at == now).values(confirm_sent_at=None))

    def set_preferences(self, subscriber_id: int, *, name: str, topics: tuple[str, ...], now: datetime) -> bool:
        with self.tx() as conn:
            done = conn.execute(subscribers.update().where(subscribers.c.id == subscriber_id).values(
                name=name, topics=_topics_out(topics), updated_at=now))
            return done.rowcount == 1

    def hit_rate(self, bucket: str, key: str, *, now: datetime, window: timedelta, limit: int) -> bool:
        """Count one event; False when `key` had `limit` within `window`. Old events go per bucket (windows differ)."""
        with self.tx() as conn:
            if conn.dialect.name == "postgresql":  # requests at once each counted 0 (on SQLite, the DELETE locks)
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{bucket}\n{key}"))))
            conn.execute(rate_events.delete().where(rate_events.c.bucket == bucket, rate_events.c.at < now - window * 2))
            recent = conn.execute(sa.select(sa.func.count()).select_from(rate_events).where(
                rate_events.c.bucket == bucket, rate_events.c.key == key, rate_events.c.at > now - window)).scalar_one()
            if recent >= limit:
                return False
            conn.execute(rate_events.insert().values(bucket=bucket, key=key, at=now))
            return True

    # ---- the command line ----

    def add(self, email: str, key: str, name: str, topics: tuple[str, ...], *, confirmed: bool, now: datetime,
            consent: Consent) -> tuple[Subscriber, bool]:
        """Add an address by hand; (subscriber, False) when it was already on the list."""
        existing = self.find(key)
        if existing:
            return existing, False
        try:
            with self.tx() as conn:
                new_id = conn.execute(subscribers.insert().values(
                    email=email, email_key=key, name=name, topics=_topics_out(topics), created_at=now, updated_at=now,
                    status="confirmed" if confirmed else "pending", confirmed_at=now if confirmed else None,
                    confirmed_how="author" if confirmed else "", **_consent_out(consent))).inserted_primary_key[0]  # type: ignore[index]
        except sa.exc.IntegrityError:  # the web form added it in between
            raced = self.find(key)
            if raced is None:
                raise StoreError(f"could not add {email}") from None
            return raced, False
        saved = self.get(int(new_id))
        assert saved is not None
        return saved, True

    def confirm_by_author(self, subscriber_id: int, *, now: datetime) -> Subscriber | None:
        """The author confirms a pending subscriber by hand (recorded as "author"); None
        when they are not pending (confirmed already, unsubscribed, bounced or gone)."""
        with self.tx() as conn:
            done = conn.execute(subscribers.update().where(
                subscribers.c.id == subscriber_id, subscribers.c.status.in_(sources(Evidence.AUTHOR_CONFIRM)),
            ).values(status=move(Evidence.AUTHOR_CONFIRM).target.value, confirmed_at=now, confirmed_how="author", confirm_nonce="", updated_at=now))
            if done.rowcount != 1:
                return None
        return self.get(subscriber_id)

    def mark_confirmation_sent(self, subscriber_id: int, *, now: datetime) -> Subscriber | None:
        """Give a pending subscriber a confirmation nonce (kept if one exists) and note the
        mail's time; None when they are not pending. The subscriber as this transaction
        left them: read after it, they may have confirmed meanwhile."""
        with self.tx(locking=True) as conn:
            row = conn.execute(_locked(sa.select(subscribers).where(subscribers.c.id == subscriber_id), conn)).first()
            if row is None or row.status != "pending":
                return None
            nonce = row.confirm_nonce or new_nonce()
            conn.execute(subscribers.update().where(subscribers.c.id == subscriber_id)
                         .values(confirm_nonce=nonce, confirm_sent_at=now, updated_at=now))
            saved = conn.execute(_BY_ID, {"subscriber": subscriber_id}).one()
        return _subscriber(saved)

    def remove(self, key: str) -> str | None:
        """Delete an address and everything personal kept with it (their questions too, and
        those a reply of theirs linked to them); the address as it was stored."""
        with self.tx(locking=True) as conn:  # one read, locked: a removal at once found the id gone
            found = conn.execute(_locked(sa.select(subscribers.c.id, subscribers.c.email)
                                         .where(subscribers.c.email_key == key), conn)).first()
            if found is None:
                return None
            sub, email = found
            asked = sa.or_(questions.c.email_key == key, questions.c.subscriber_id == sub)
            keys = {key, *conn.execute(sa.select(questions.c.email_key).where(asked)).scalars()}
            conn.execute(notices.delete().where(notices.c.question_id.in_(sa.select(questions.c.id).where(asked))))
            conn.execute(questions.delete().where(asked))
            conn.execute(askers.delete().where(askers.c.email_key.in_(keys), ~sa.exists().where(
                questions.c.email_key == askers.c.email_key)))
            conn.execute(subscribers.delete().where(subscribers.c.email_key == key))
            # The limits' memory of the mailbox (web.app, jobs/questions.py) holds the address too.
            conn.execute(rate_events.delete().where(rate_events.c.key == mailbox_key(key)))
        return str(email)

    def import_rows(self, rows: Iterable[CSVRow], *, confirmed: bool, now: datetime, consent: Consent) -> ImportCounts:
        """Insert the rows whose addresses are new, in batches; never touch existing ones.

        A row whose address came earlier in `rows` counts as a duplicate, however far back:
        `seen` keeps every key (about 100 bytes each: 100 MB for a million rows)."""
        counts = ImportCounts()
        batch: dict[str, CSVRow] = {}
        seen: set[str] = set()
        duplicates = 0

        def flush() -> None:
            try:
                insert_batch()
            except sa.exc.IntegrityError:  # an address arrived from the web meanwhile: look again, once
                try:
                    insert_batch()
                except sa.exc.IntegrityError as exc:
                    raise StoreError(f"the import collided with other writes twice: {_reason(exc)}") from exc
            batch.clear()

        def insert_batch() -> None:
            nonlocal counts
            with self.tx() as conn:
                known = set(conn.execute(sa.select(subscribers.c.email_key).where(
                    subscribers.c.email_key.in_(list(batch)))).scalars())
                new = [r for k, r in batch.items() if k not in known]
                if new:
                    conn.execute(subscribers.insert(), [{
                        "email": r.email, "email_key": r.key, "name": r.name, "topics": _topics_out(r.topics),
                        "status": "confirmed" if confirmed else "pending", "created_at": now, "updated_at": now,
                        "confirmed_at": now if confirmed else None, "confirmed_how": "import" if confirmed else "",
                        **_consent_out(consent)} for r in new])
            counts = ImportCounts(counts.added + len(new), counts.existing + len(known), counts.duplicates)

        for row in rows:
            if row.key in seen:
                duplicates += 1
                continue
            seen.add(row.key)
            batch[row.key] = row
            if len(batch) >= _IMPORT_BATCH:
                flush()
        if batch:
            flush()
        return ImportCounts(counts.added, counts.existing, duplicates)


@contextmanager
def open_store(config: Config) -> Iterator[Store]:
    """The store of [store] url, open for the block and closed after it, whatever happens."""
    store = Store.open(config.store.url)
    try:
        yield store
    finally:
        store.close()


def store_exists(config: Config) -> bool:
    """False for a SQLite file not made yet (a preview never creates one); True otherwise."""
    url = config.store.url
    return not url.startswith("sqlite:///") or Path(url[len("sqlite:///"):]).exists()


_BY_ID = sa.select(subscribers).where(subscribers.c.id == sa.bindparam("subscriber"))
_BY_IDS = sa.select(subscribers).where(subscribers.c.id.in_(sa.bindparam("ids", expanding=True)))  # built once: the send re-reads with it


def _locked(query: sa.Select[Any], conn: Connection) -> sa.Select[Any]:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def _topics_out(topics: tuple[str, ...]) -> str:
    return json.dumps(list(topics), ensure_ascii=False) if topics else ""


def _consent_out(consent: Consent) -> dict[str, Any]:
    return {"consent_at": consent.at, "consent_method": consent.method, "consent_ip": consent.ip[:64],
            "consent_user_agent": consent.user_agent[:300], "consent_version": consent.version[:40]}


def _safe(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unreadable URL)"


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return " ".join(str(orig or exc).split())[:200]
