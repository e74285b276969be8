"""The store on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from digest.adapters.migrate import alembic_config, migrate
from digest.adapters.store import Store, make_engine
from digest.core.errors import StoreError
from digest.core.models import Consent, Subscriber
from digest.core.subscriptions import CSVRow

if TYPE_CHECKING:
    from digest.adapters.ledger import Ledger
    from digest.core.models import IssueRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def consent(at: datetime = NOW) -> Consent:
    return Consent(at=at, method="web", ip="203.0.113.9", user_agent="Firefox", version="1")


@pytest.fixture
def store(store_url: str) -> Store:
    s = Store.open(store_url)
    yield s  # type: ignore[misc]
    s.close()


def test_subscribe_records_consent_and_asks_to_confirm(store: Store) -> None:
    sub, decision = store.subscribe("Ana@example.com", "ana@example.com", "Ana", ("Interviews",), consent(), now=NOW, resend_after=HOUR)
    assert decision.send_confirmation and sub.status == "pending" and sub.confirm_nonce
    again = store.find("ana@example.com")
    assert again is not None and again.email == "Ana@example.com" and again.topics == ("Interviews",)
    assert again.consent == consent() and again.consent.at.tzinfo is not None
    assert again.created_at == NOW and again.confirm_sent_at == NOW


def test_one_confirmation_mail_per_window(store: Store) -> None:
    store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW, resend_after=HOUR)
    _, soon = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW + timedelta(minutes=5), resend_after=HOUR)
    _, later = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW + 2 * HOUR, resend_after=HOUR)
    assert not soon.send_confirmation and later.send_confirmation


def test_confirm_is_single_use_and_needs_the_current_nonce(store: Store) -> None:
    sub, _ = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW, resend_after=HOUR)
    assert store.confirm(sub.id, "wrong", now=NOW) is None
    confirmed = store.confirm(sub.id, sub.confirm_nonce, now=NOW + HOUR)
    assert confirmed is not None and confirmed.status == "confirmed" and confirmed.confirmed_at == NOW + HOUR
    assert store.confirm(sub.id, sub.confirm_nonce, now=NOW) is None


def test_confirmed_address_is_left_alone_by_a_new_request(store: Store) -> None:
    sub, _ = store.subscribe("a@example.com", "a@example.com", "Ana", (), consent(), now=NOW, resend_after=HOUR)
    store.confirm(sub.id, sub.confirm_nonce, now=NOW)
    again, decision = store.subscribe("a@example.com", "a@example.com", "Mallory", (), consent(), now=NOW + 3 * HOUR, resend_after=HOUR)
    assert not decision.send_confirmation and again.status == "confirmed" and again.name == "Ana"


def test_resubscribing_after_unsubscribe_needs_confirming_again(store: Store) -> None:
    sub, _ = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW, resend_after=HOUR)
    store.confirm(sub.id, sub.confirm_nonce, now=NOW)
    assert store.unsubscribe(sub.id, how="one-click", now=NOW + HOUR)
    gone = store.get(sub.id)
    assert gone is not None and gone.status == "unsubscribed" and gone.unsubscribed_how == "one-click"
    back, decision = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW + 2 * HOUR, resend_after=HOUR)
    assert decision.send_confirmation and back.status == "pending" and back.confirm_nonce != sub.confirm_nonce
    assert store.confirm(back.id, sub.confirm_nonce, now=NOW) is None  # the old link died


def test_preferences_and_remove(store: Store) -> None:
    sub, _ = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW, resend_after=HOUR)
    assert store.set_preferences(sub.id, name="Ana", topics=("Networking", "Offers"), now=NOW)
    updated = store.get(sub.id)
    assert updated is not None and updated.name == "Ana" and updated.topics == ("Networking", "Offers")
    assert store.remove("a@example.com") == "a@example.com" and store.get(sub.id) is None
    assert store.remove("a@example.com") is None


def test_rate_limit_window(store: Store) -> None:
    hits = [store.hit_rate("ip", "1.2.3.4", now=NOW + timedelta(seconds=i), window=HOUR, limit=3) for i in range(5)]
    assert hits == [True, True, True, False, False]
    assert store.hit_rate("ip", "5.6.7.8", now=NOW, window=HOUR, limit=3)
    assert store.hit_rate("ip", "1.2.3.4", now=NOW + 2 * HOUR, window=HOUR, limit=3)


def test_rate_limit_holds_against_requests_at_the_same_moment(store: Store) -> None:
    """The web app counts in threads (run_in_threadpool): several posts for plus variants
    of one mailbox, arriving together, must still get one confirmation mail between them.
    Count-then-insert in READ COMMITTED let each see no event and insert its own."""
    import threading

    rounds, threads = 10, 8
    granted = []
    for n in range(rounds):
        gate = threading.Barrier(threads)
        results: list[bool] = []

        def hit(key: str = f"victim{n}@example.com", gate: threading.Barrier = gate,
                results: list[bool] = results) -> None:
            gate.wait()
            results.append(store.hit_rate("mailbox", key, now=NOW, window=HOUR, limit=1))

        workers = [threading.Thread(target=hit) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        granted.append(results.count(True))
    assert granted == [1] * rounds, f"events let through per round, with a limit of 1: {granted}"


def test_import_is_idempotent_and_never_touches_existing_rows(store: Store) -> None:
    sub, _ = store.subscribe("old@example.com", "old@example.com", "", (), consent(), now=NOW, resend_after=HOUR)
    store.unsubscribe(sub.id, how="web", now=NOW)
    rows = [CSVRow(i + 1, f"u{i}@example.com", f"u{i}@example.com", f"U{i}", ()) for i in range(2500)]
    rows.append(CSVRow(9999, "OLD@example.com", "old@example.com", "", ()))
    rows.append(CSVRow(10000, "u1@example.com", "u1@example.com", "", ()))
    imported = Consent(at=NOW, method="import")
    first = store.import_rows(rows, confirmed=True, now=NOW, consent=imported)
    # old@ is on the list; the repeated u1@ lands in a later batch, and still counts as a repeat
    assert (first.added, first.existing, first.duplicates) == (2500, 1, 1)
    second = store.import_rows(rows, confirmed=True, now=NOW, consent=imported)
    assert (second.added, second.existing, second.duplicates) == (0, 2501, 1)
    assert store.count("confirmed") == 2500
    old = store.get(sub.id)
    assert old is not None and old.status == "unsubscribed"  # an import never re-subscribes anyone
    assert [s.email for s in store.iter_subscribers("confirmed")][:2] == ["u0@example.com", "u1@example.com"]


def test_concurrent_subscribes_of_one_address_make_one_row(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.subscribe("race@example.com", "race@example.com", str(i), (), consent(),
                                                now=NOW, resend_after=HOUR), range(16)))
    assert store.count() == 1


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_database_from_an_older_version_upgrades_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO subscribers (email, email_key, name, status, topics, created_at, updated_at) "
            "VALUES ('kept@example.com', 'kept@example.com', 'Kept', 'confirmed', '', '2025-01-01 00:00:00', '2025-01-01 00:00:00')")
    engine.dispose()
    store = Store.open(url)
    kept = store.find("kept@example.com")
    assert kept is not None and kept.status == "confirmed" and kept.created_at.year == 2025
    with store.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    from alembic.script import ScriptDirectory

    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    store.close()


def test_unusable_database_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store.open(f"sqlite:///{bad}")
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("not a url")


def test_a_removed_subscribers_id_is_never_given_to_the_next(store: Store) -> None:
    imported = Consent(at=NOW, method="import")
    first, _ = store.add("a@example.com", "a@example.com", "A", (), confirmed=True, now=NOW, consent=imported)
    assert store.remove("a@example.com") == "a@example.com"
    second, _ = store.add("b@example.com", "b@example.com", "B", (), confirmed=True, now=NOW, consent=imported)
    assert second.id != first.id and second.id > first.id
    store.remove("b@example.com")  # the newest row gone too: its id is not handed out again either
    third, _ = store.subscribe("c@example.com", "c@example.com", "", (), consent(), now=NOW, resend_after=HOUR)
    assert third.id > second.id


def _old_database(url: str) -> None:
    """A database as version 0002 left it: subscribers, an issue and its deliveries."""
    engine = make_engine(url)  # the store's own engine: foreign keys on, as every run has them
    migrate(engine, "0002")
    stamp = "'2025-01-01 00:00:00'"
    with engine.begin() as conn:
        for i, status in enumerate(("confirmed", "confirmed", "unsubscribed"), start=1):
            conn.exec_driver_sql(
                "INSERT INTO subscribers (email, email_key, name, status, topics, created_at, updated_at) "
                f"VALUES ('s{i}@example.com', 's{i}@example.com', 'S{i}', '{status}', '', {stamp}, {stamp})")
        conn.exec_driver_sql(
            "INSERT INTO issues (key, status, created_at, cutoff, subject, posts, html, text) "
            f"VALUES ('k1', 'done', {stamp}, {stamp}, 'Week 1', '[]', '<p>1</p>', '1')")
        for sub in (1, 2, 3):
            conn.exec_driver_sql(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, message_id, updated_at) "
                f"VALUES (1, {sub}, 'sent', 1, {stamp}, '<digest.1.{sub}@example.com>', {stamp})")
        # the newest subscriber leaves before the upgrade
        conn.exec_driver_sql("DELETE FROM subscribers WHERE id = 3")
    engine.dispose()


def test_database_of_version_0002_upgrades_and_keeps_subscribers_issues_and_deliveries(store_url: str) -> None:
    _old_database(store_url)
    store = Store.open(store_url)
    try:
        assert [(s.id, s.email, s.name) for s in store.iter_subscribers()] == [
            (1, "s1@example.com", "S1"), (2, "s2@example.com", "S2")]
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT id, key, subject, html FROM issues").all() == [(1, "k1", "Week 1", "<p>1</p>")]
            rows = conn.exec_driver_sql("SELECT subscriber_id, status, message_id FROM deliveries ORDER BY id").all()
        # the rebuild of the subscribers table did not null the ledger's references
        assert rows == [(1, "sent", "<digest.1.1@example.com>"), (2, "sent", "<digest.1.2@example.com>"),
                        (None, "sent", "<digest.1.3@example.com>")]
        # the foreign key still works both ways: no delivery for a subscriber who never was ...
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, message_id, updated_at) "
                "VALUES (1, 999, 'sent', 1, '2025-01-01 00:00:00', '<x@example.com>', '2025-01-01 00:00:00')")
        # ... and removing a subscriber keeps the ledger row, without the person
        store.remove("s2@example.com")
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT subscriber_id FROM deliveries ORDER BY id").scalars().all() == [1, None, None]
        # removed after the upgrade: never reused
        new, _ = store.add("n@example.com", "n@example.com", "", (), confirmed=True, now=NOW,
                           consent=Consent(at=NOW, method="import"))
        assert new.id > 2
        from alembic.script import ScriptDirectory

        with store.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    finally:
        store.close()


def test_sqlite_subscribers_table_uses_autoincrement(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with store.engine.connect() as conn:
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'subscribers'").scalar()
        assert "AUTOINCREMENT" in sql
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # the migration turned them back on
    store.close()


def test_a_failed_sqlite_upgrade_changes_nothing_and_the_next_open_finishes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _old_database(url)
    engine = make_engine(url)
    with engine.begin() as conn:  # the last step of the upgrade, stamping the version, fails
        conn.exec_driver_sql("CREATE TRIGGER no_stamp BEFORE UPDATE ON alembic_version "
                             "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    engine.dispose()
    with pytest.raises(StoreError, match="disk on fire"):
        Store.open(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars())
        assert "_alembic_tmp_subscribers" not in tables
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0002"
        assert conn.exec_driver_sql("SELECT count(*) FROM subscribers").scalar() == 2
        assert conn.exec_driver_sql("SELECT subscriber_id FROM deliveries ORDER BY id").scalars().all() == [1, 2, None]
        conn.exec_driver_sql("DROP TRIGGER no_stamp")
    engine.dispose()
    store = Store.open(url)
    assert store.count() == 2
    store.close()


def test_the_ledger_learns_each_delivery_s_first_attempt(store_url: str) -> None:
    """Migration 0005: rows already tried take their last attempt as their first (which
    can only make a give-up come later), rows never tried have none."""
    engine = sa.create_engine(store_url)
    migrate(engine, "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO subscribers (id, email, email_key, name, status, topics, created_at, updated_at) VALUES "
            "(1, 'a@example.com', 'a@example.com', '', 'confirmed', '', '2026-11-01 00:00:00', '2026-11-01 00:00:00'), "
            "(2, 'b@example.com', 'b@example.com', '', 'confirmed', '', '2026-11-01 00:00:00', '2026-11-01 00:00:00')")
        conn.exec_driver_sql(
            "INSERT INTO issues (id, key, status, created_at, cutoff, subject, posts, html, text) VALUES "
            "(1, 'k', 'sending', '2026-11-23 12:00:00', '2026-11-23 12:00:00', 'S', '[]', '', '')")
        conn.exec_driver_sql(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, message_id, updated_at) VALUES "
            "(1, 1, 'deferred', 2, '2026-11-23 13:00:00', '<m1@example.com>', '2026-11-23 12:05:00'), "
            "(1, 2, 'pending', 0, '2026-11-23 12:00:00', '<m2@example.com>', '2026-11-23 12:00:00')")
    engine.dispose()
    store = Store.open(store_url)
    try:
        from digest.adapters.schema import deliveries

        with store.tx() as conn:
            rows = conn.execute(sa.select(deliveries.c.subscriber_id, deliveries.c.first_attempt_at)
                                .order_by(deliveries.c.subscriber_id)).all()
        assert [tuple(r) for r in rows] == [(1, datetime(2026, 11, 23, 12, 5, tzinfo=timezone.utc)), (2, None)]
    finally:
        store.close()


def _record(ledger: object, key: str, issue_id: int | None = None, note: str = "") -> object:
    from digest.core.models import Post

    post = Post(key, f"Post {key}", f"https://b.example/{key}", NOW, NOW, labels=("Reader Questions",))
    return ledger.create_issue(key=key, now=NOW, cutoff=NOW, subject=f"Issue {key}", posts=[post],  # type: ignore[attr-defined]
                               html="<p>x</p>", text="x", domain="example.com", state=None, note=note, issue_id=issue_id)


def test_issue_ids_are_the_numbers_the_issues_were_composed_with(store: Store) -> None:
    from digest.adapters.ledger import Ledger

    ledger = Ledger(store)
    assert ledger.next_issue_id() == 1
    first, created = _record(ledger, "a", ledger.next_issue_id(), note="A *note*.")  # type: ignore[misc]
    assert created and first.id == 1 and first.note == "A *note*."
    assert _record(ledger, "a", 2) == (first, False)  # the same posts again: the recorded issue, not a new one
    with pytest.raises(StoreError, match="another send recorded issue 1 meanwhile"):
        _record(ledger, "b", 1)  # built while another run recorded other posts as issue 1
    second, _ = _record(ledger, "b")  # type: ignore[misc]
    assert second.id == ledger.next_issue_id() - 1 == 2  # no gap, on PostgreSQL too
    assert ledger.get_issue(1).note == "A *note*." and ledger.get_issue(2).note == ""  # type: ignore[union-attr]
    assert ledger.done_issues() == []
    ledger.finish_if_done(2, NOW)
    assert [i.id for i in ledger.done_issues()] == [2]


def test_issues_recorded_before_notes_and_warnings_existed_read_with_none(store_url: str) -> None:
    from digest.adapters.ledger import Ledger

    url = store_url
    engine = sa.create_engine(url)
    migrate(engine, "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO issues (id, key, status, created_at, cutoff, subject, posts, html, text) "
            "VALUES (1, 'k', 'done', '2025-01-01 00:00:00', '2025-01-01 00:00:00', 'Old', '[]', '<p>old</p>', 'old')")
    engine.dispose()
    store = Store.open(url)
    issue = Ledger(store).get_issue(1)
    assert issue is not None and issue.note == "" and issue.html == "<p>old</p>"
    assert issue.warnings == ()  # migration 0013: an issue sent before warnings were recorded had none recorded
    store.close()


def test_every_migration_goes_down_and_up_again(store_url: str) -> None:
    """Each revision can be undone: the whole chain down to 0001 and back up to the newest."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from digest.adapters.store import alembic_config

    store = Store.open(store_url)
    try:
        cfg = alembic_config()
        for target in ("0001", "head"):
            with store.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                (command.downgrade if target == "0001" else command.upgrade)(cfg, target)
        with store.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert version == ScriptDirectory.from_config(cfg).get_current_head()
        added, _ = store.add("after@example.com", "after@example.com", "", (), confirmed=True, now=NOW,
                             consent=Consent(at=NOW, method="cli"))
        assert store.get(added.id) is not None
    finally:
        store.close()


def plain_readers(n: int) -> Iterator[CSVRow]:
    """n readers r0@example.com ... with no name and every topic."""
    return (CSVRow(i, f"r{i}@example.com", f"r{i}@example.com", "", ()) for i in range(n))


def readers_and_an_issue(store: Store, readers: Iterable[CSVRow]) -> tuple[Ledger, IssueRecord]:
    """The readers, confirmed, and a ledger with an empty issue recorded for them all."""
    from digest.adapters.ledger import Ledger

    store.import_rows(readers, confirmed=True, now=NOW, consent=consent())
    ledger = Ledger(store)
    issue, _ = ledger.create_issue(key="k", now=NOW, cutoff=NOW, subject="S", posts=[], html="", text="",
                                   domain="example.com", state=None)
    return ledger, issue


def test_a_claim_takes_at_most_its_limit(store: Store) -> None:
    """On PostgreSQL a claim of 20 once took 560 of 600 rows (its LIMIT ... SKIP LOCKED
    subquery ran again for every row it updated), leaving the other connections idle."""

    ledger, issue = readers_and_an_issue(store, plain_readers(60))
    first = ledger.claim(issue.id, "a/0", NOW, 20)
    second = ledger.claim(issue.id, "b/0", NOW, 20)
    assert len(first) == len(second) == 20
    assert not {c.delivery_id for c in first} & {c.delivery_id for c in second}
    assert ledger.counts(issue.id) == {"sending": 40, "pending": 20}


def test_settling_records_outcomes_as_the_ledger_reads_them(store: Store) -> None:
    """settle_many writes through the driver, not SQLAlchemy: the rows must read back the
    same on both databases (times, counts, the bounced subscriber), whether a batch goes as
    one UPDATE ... FROM (SQLite, no bounce in it) or as a transaction of one per row."""
    from digest.adapters.schema import deliveries
    from digest.core.models import Settlement

    ledger, issue = readers_and_an_issue(store, plain_readers(4))
    claims = ledger.claim(issue.id, "a/0", NOW, 10)
    assert [c.subscriber.email for c in claims if c.subscriber] == [f"r{i}@example.com" for i in range(4)]
    later = NOW + HOUR
    sent, deferred, bounced, skipped = claims
    ledger.settle_many([
        Settlement(sent.delivery_id, "sent", NOW, 250, "DATA: 250 ok"),
        Settlement(deferred.delivery_id, "deferred", NOW, 451, "RCPT: 451 later", next_attempt_at=later),
        Settlement(skipped.delivery_id, "skipped", NOW, reply="unsubscribed before sending", attempted=False),
    ])
    ledger.settle_many([
        Settlement(bounced.delivery_id, "failed", NOW, 550, "RCPT: 550 5.1.1 no", bounce=bounced.subscriber_id),
    ])
    with store.tx() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(deliveries))}
    assert [(rows[c.delivery_id].status, rows[c.delivery_id].attempts, rows[c.delivery_id].last_code,
             rows[c.delivery_id].first_attempt_at, rows[c.delivery_id].claimed_by) for c in claims] == [
        ("sent", 1, 250, NOW, ""), ("deferred", 1, 451, NOW, ""), ("failed", 1, 550, NOW, ""),
        ("skipped", 0, None, None, "")]
    assert rows[deferred.delivery_id].next_attempt_at == later and rows[sent.delivery_id].next_attempt_at == NOW
    assert rows[skipped.delivery_id].last_reply == "unsubscribed before sending"
    with store.tx() as conn:  # stored as SQLAlchemy stores times: SQLite compares them as text
        written = conn.execute(sa.text("SELECT updated_at FROM deliveries WHERE id = :id"), {"id": sent.delivery_id}).scalar()
        created = conn.execute(sa.text("SELECT created_at FROM issues WHERE id = :id"), {"id": issue.id}).scalar()
    assert written == created
    assert [store.get(c.subscriber_id).status for c in claims if c.subscriber_id] == [  # type: ignore[union-attr]
        "confirmed", "confirmed", "bounced", "confirmed"]


@pytest.fixture(scope="module")
def five_thousand_claimed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, list[int]]:
    """A database file of 5000 readers whose issue's rows are all claimed by "a/0": its
    path, the issue's id and the claimed rows' ids. Made once; each test settles a copy."""
    path = tmp_path_factory.mktemp("claimed") / "big.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        ledger, issue = readers_and_an_issue(store, plain_readers(5000))
        claims = ledger.claim(issue.id, "a/0", NOW, 5000)
    finally:
        store.close()  # the last connection checkpoints the WAL: the file alone holds it all
    return path, issue.id, [c.delivery_id for c in claims]


@pytest.mark.parametrize("variables", [32_766, 999, 100])
def test_a_batch_of_any_size_settles_within_the_connection_s_limits(
        tmp_path: Path, variables: int, five_thousand_claimed: tuple[Path, int, list[int]]) -> None:
    """SQLite settles a small batch in one statement of 8 variables a row; a batch larger
    than that statement may be on this connection (a run of skipped readers) goes row by
    row in one transaction; an empty batch is nothing to do."""
    import shutil
    import sqlite3

    from digest.adapters.ledger import Ledger
    from digest.core.models import Settlement

    template, issue_id, claimed = five_thousand_claimed
    shutil.copyfile(template, tmp_path / "big.db")
    store = Store.open(f"sqlite:///{tmp_path / 'big.db'}")
    try:
        ledger = Ledger(store)
        assert ledger.counts(issue_id) == {"sending": 5000}
        store.engine.dispose()  # the settles' connections allow `variables`
        sa.event.listen(store.engine, "connect",
                        lambda conn, _: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables))
        ledger.settle_many([])
        ledger.settle_many([Settlement(d, "skipped", NOW, reply="unsubscribed before sending", attempted=False)
                            for d in claimed[:4500]])
        ledger.settle_many([Settlement(d, "sent", NOW, 250, "DATA: 250 ok") for d in claimed[4500:4600]])
        assert ledger.counts(issue_id) == {"skipped": 4500, "sent": 100, "sending": 400}
    finally:
        store.close()


def test_claims_take_pending_rows_then_deferred_ones_that_are_due(store: Store) -> None:
    from digest.core.models import Settlement

    ledger, issue = readers_and_an_issue(store, (CSVRow(i, f"r{i}@example.com", f"r{i}@example.com", f"R {i}",
                                                        ("Interviews",) if i else ()) for i in range(4)))
    first = ledger.claim(issue.id, "a/0", NOW, 2)
    ledger.settle_many([Settlement(first[0].delivery_id, "deferred", NOW, 451, "later", next_attempt_at=NOW + HOUR),
                        Settlement(first[1].delivery_id, "deferred", NOW, 451, "later", next_attempt_at=NOW + 2 * HOUR)])
    assert [c.subscriber_id for c in ledger.claim(issue.id, "a/0", NOW + HOUR, 10, pending=False)] == [1]
    rest = ledger.claim(issue.id, "a/0", NOW + 2 * HOUR, 10)
    assert [c.subscriber_id for c in rest] == [2, 3, 4]  # pending first, then the one now due
    assert [(c.attempts, c.first_attempt_at) for c in rest] == [(1, NOW), (0, None), (0, None)]
    reader = rest[1].subscriber
    assert reader is not None and (reader.email, reader.name, reader.topics, reader.created_at) == (
        "r2@example.com", "R 2", ("Interviews",), NOW)


# ---- a command loads alembic only when the schema must change ----

def test_the_newest_revision_read_from_the_files_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from digest.adapters.migrate import newest_revision

    assert newest_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.slow  # starts processes
def test_opening_an_up_to_date_database_does_not_load_alembic(tmp_path: Path, python: str) -> None:
    import subprocess

    url, old = f"sqlite:///{tmp_path / 'up-to-date.db'}", f"sqlite:///{tmp_path / 'old.db'}"
    Store.open(url).close()  # created here
    engine = make_engine(old)
    migrate(engine, "0008")
    engine.dispose()
    probe = ("import sys; from digest.adapters.store import Store; Store.open(sys.argv[1]).close(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    upgraded = subprocess.run([python, "-c", probe, old], capture_output=True, text=True, check=True)
    again = subprocess.run([python, "-c", probe, url], capture_output=True, text=True, check=True)
    assert "alembic" in upgraded.stdout  # an old database is migrated: the probe can tell
    assert again.stdout.strip() == "[]", again.stdout


def _shape(engine: sa.Engine) -> dict[str, object]:
    """Everything a table is, as the database itself describes it."""
    shape: dict[str, object] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in sorted(inspector.get_table_names()):
            shape[table] = {
                # in any order: a column a migration added stands last there (queries name columns)
                "columns": sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                                  for c in inspector.get_columns(table)),
                "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign keys": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                                        str(sorted((f.get("options") or {}).items()))) for f in inspector.get_foreign_keys(table)),
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)),
                "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            }
        if conn.dialect.name == "sqlite":  # ids never reused: AUTOINCREMENT where the migrations put it
            shape["autoincrement"] = sorted(conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'").scalars())
    return shape


def test_a_new_database_has_the_schema_the_migrations_build(store_url: str, tmp_path: Path) -> None:
    """A new database is made from schema.py in one step; an old one takes every migration.
    Both must end the same, table by table, on SQLite and PostgreSQL."""
    from digest.adapters.migrate import current_revision, newest_revision

    fresh = Store.open(store_url)  # empty: made from schema.py and stamped
    with fresh.engine.connect() as conn:
        assert current_revision(conn) == newest_revision()
    made = _shape(fresh.engine)
    fresh.close()
    if store_url.startswith("sqlite"):
        stepped_url = f"sqlite:///{tmp_path / 'stepped.db'}"
    else:  # a second database on the same server
        admin = sa.create_engine(store_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE stepped")
        admin.dispose()
        stepped_url = store_url.rsplit("/", 1)[0] + "/stepped"
    engine = make_engine(stepped_url)
    migrate(engine, newest_revision())
    stepped = _shape(engine)
    engine.dispose()
    assert "subscribers" in made and made == stepped


@pytest.mark.slow  # starts processes
def test_processes_opening_one_new_database_at_once_make_it_once(store_url: str, python: str) -> None:
    import subprocess

    from digest.adapters.migrate import current_revision, newest_revision

    probe = "import sys; from digest.adapters.store import Store; Store.open(sys.argv[1]).close(); print('ok')"
    procs = [subprocess.Popen([python, "-c", probe, store_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outcomes = [p.communicate(timeout=60) for p in procs]
    assert [out for out, _ in outcomes] == ["ok\n"] * 4, [err for _, err in outcomes]
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert current_revision(conn) == newest_revision()
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("drawn_by", ["database", "python"])
def test_an_issue_s_ledger_rows_carry_one_random_message_id_each(store: Store, store_url: str, drawn_by: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows of a new issue are written with one INSERT ... SELECT whose random part
    the database draws (adapters/audience.py), or by Python a row at a time on a SQLite
    older than 3.40: either way each reader's Message-ID names the issue and the reader,
    ends in 24 random hex characters, and is no one else's; a paused reader's row is skipped."""
    import re
    import sqlite3

    from digest.adapters.choices import Choices
    from digest.adapters.schema import deliveries

    if drawn_by == "python":
        if not store_url.startswith("sqlite"):
            pytest.skip("Python draws the ids only on a SQLite older than 3.40")
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 39, 4))
    store.import_rows(plain_readers(6), confirmed=True, now=NOW - HOUR, consent=consent())
    Choices(store).pause(3, weeks=2, how="web", now=NOW - HOUR)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    _, issue = readers_and_an_issue(store, ())
    # Which path wrote them (else the "database" case passed on the Python path too).
    drawn = [s for s in statements if "INSERT INTO deliveries" in s and ("randomblob" in s or "gen_random_uuid" in s)]
    assert len(drawn) == (1 if drawn_by == "database" else 0), statements
    with store.tx() as conn:
        rows = conn.execute(sa.select(deliveries.c.subscriber_id, deliveries.c.status, deliveries.c.message_id)
                            .where(deliveries.c.issue_id == issue.id)).all()
    assert sorted((r.subscriber_id, r.status) for r in rows) == [
        (1, "pending"), (2, "pending"), (3, "skipped"), (4, "pending"), (5, "pending"), (6, "pending")]
    for row in rows:
        assert re.fullmatch(rf"<digest\.{issue.id}\.{row.subscriber_id}\.[0-9a-f]{{24}}@example\.com>", row.message_id), row
    randoms = {r.message_id.split(".")[3][:24] for r in rows}
    assert len(randoms) == len(rows)


def test_every_character_of_a_message_id_s_random_part_is_drawn(store: Store) -> None:
    """A UUID's version digit never changes and its variant digit takes 4 values of 16: on
    PostgreSQL the random part kept the variant digit (its 16th character), 94 random bits
    where 96 are claimed. Over 64 readers each of the 24 characters takes more than 4 values
    (a uniform one fails that with a chance under 1e-30)."""
    from digest.adapters.schema import deliveries

    _, issue = readers_and_an_issue(store, plain_readers(64))
    with store.tx() as conn:
        ids = conn.execute(sa.select(deliveries.c.message_id).where(deliveries.c.issue_id == issue.id)).scalars().all()
    randoms = [i.split(".")[3].split("@")[0] for i in ids]
    assert len(randoms) == 64 and all(len(r) == 24 for r in randoms)
    narrow = [at for at in range(24) if len({r[at] for r in randoms}) <= 4]
    assert narrow == [], narrow


def test_claims_take_an_issue_s_readers_in_subscriber_order_returning_readers_too(store: Store) -> None:
    """Claims take pending rows in id order, and a new issue's rows were written in subscriber
    order for it (adapters/audience.py): a reader back from a pause (their row pending, but
    written after everyone else's by the INSERT ... SELECT) went last in every send, behind
    a rate limit or a stopped send. A reader still paused has a skipped row, in its place."""
    from digest.adapters.choices import Choices

    store.import_rows(plain_readers(6), confirmed=True, now=NOW - 40 * 24 * HOUR, consent=consent())
    choices = Choices(store)
    choices.pause(2, weeks=1, how="web", now=NOW - 30 * 24 * HOUR)  # back for a long time now
    choices.pause(4, weeks=2, how="web", now=NOW - HOUR)  # away
    ledger, issue = readers_and_an_issue(store, ())
    claims = ledger.claim(issue.id, "a/0", NOW, 10)
    assert [c.subscriber.email for c in claims if c.subscriber] == [
        "r0@example.com", "r1@example.com", "r2@example.com", "r4@example.com", "r5@example.com"]
    assert ledger.counts(issue.id) == {"sending": 5, "skipped": 1}


def test_a_sender_that_starts_while_another_looks_for_dead_ones_keeps_its_claims(store: Store, store_url: str) -> None:
    """Two `digest serve` at the same moment once sent some readers two copies. B read the
    senders table before A had registered; A then registered and claimed the first rows; B,
    giving back the rows of every sender it had not seen alive, gave back A's fresh claims,
    claimed them itself, and both sent them. The pid check runs between B's reading of the
    senders and its giving back: A starts there, as another process (its own engine)."""
    from digest.adapters.ledger import Ledger

    b, issue = readers_and_an_issue(store, plain_readers(10))
    other = Store.open(store_url)
    try:
        a = Ledger(other)
        b.register_sender("b", NOW)
        a_took: list[int] = []

        def alive(pid: int) -> bool:
            if not a_took:  # A registers and claims, committed, while B weighs who is alive
                a.register_sender("a", NOW)
                a_took.extend(c.delivery_id for c in a.claim(issue.id, "a/0", NOW, 5))
            return True

        assert b.recover_stale(issue.id, NOW, alive=alive) == 0
        assert len(a_took) == 5
        b_took = [c.delivery_id for c in b.claim(issue.id, "b/0", NOW, 10)]
        assert len(b_took) == 5 and not set(a_took) & set(b_took)  # nobody's row is claimed twice
        a.unregister_sender("a")  # A gone (its pid is not this test's business): its rows are orphans now
        assert b.recover_stale(issue.id, NOW, alive=lambda pid: True) == 5
    finally:
        other.close()


_OTHER_NAMESPACE = """
import os, sys
from datetime import datetime
from digest.adapters.ledger import Ledger
from digest.adapters.store import Store
url, now, issue = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
ledger = Ledger(Store.open(url))
ledger.register_sender("a", now)
print(len(ledger.claim(issue, "a/0", now, 3)), os.getpid(), flush=True)
sys.stdin.read()  # alive until the test lets go
"""


def test_a_sender_in_another_pid_namespace_of_this_host_is_judged_by_its_heartbeat(
        store: Store, store_url: str, python: str) -> None:
    """Two containers of one host name (host networking) share the name, not the pids: a
    pid of the other's namespace says nothing here (it is no process, or another one). Its
    live sender was taken for dead and its claims went out twice; now a sender is judged by
    its pid only in the PID namespace it registered from, elsewhere by its heartbeat."""
    import os
    import subprocess

    from conftest import ROOT

    tried = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, text=True, check=False)
    if tried.returncode != 0:
        pytest.skip(f"this machine lets no test make a PID namespace: {tried.stderr.strip()}")
    b, issue = readers_and_an_issue(store, plain_readers(5))
    b.register_sender("b", NOW)
    other = subprocess.Popen(["unshare", "--pid", "--fork", python, "-c", _OTHER_NAMESPACE, store_url, NOW.isoformat(),
                              str(issue.id)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert other.stdout is not None
        claimed, pid = other.stdout.readline().split()
        assert claimed == "3"

        def here(p: int) -> bool:  # the other's pid names no process of this namespace
            return p == os.getpid()

        assert int(pid) != os.getpid()
        assert b.recover_stale(issue.id, NOW, alive=here) == 0  # alive: its heartbeat is fresh
        assert b.recover_stale(issue.id, NOW + timedelta(minutes=2), alive=here) == 3  # stale: dead
    finally:
        other.communicate(timeout=30)


def test_a_new_address_confirmed_twice_at_once_moves_once_and_tells_the_old_address_once(
        store: Store, store_url: str) -> None:
    """The new address's page confirmed by two POSTs at once (a double click, a retrying
    proxy): each read the row, found the link's nonce current, and moved the subscription,
    so the old address got two "your subscription moved" notices (the README promises one)
    and the trail two moves. The second POST runs here, as another process, between the
    first one's read and its write."""
    from interleave import meanwhile

    from digest.adapters.choices import AddressChange, Choices

    sub, _ = store.add("old@example.com", "old@example.com", "", (), confirmed=True, now=NOW, consent=consent())
    requested = Choices(store).request_address(sub.id, "new@example.com", now=NOW)
    assert requested is not None
    nonce = requested[1]
    other = Store.open(store_url)  # the second POST, in another process
    try:
        done: list[AddressChange] = []
        with meanwhile(store.engine, "UPDATE subscribers", lambda: done.append(
                Choices(other).confirm_address(sub.id, nonce, "new@example.com", now=NOW + HOUR))):
            done.append(Choices(store).confirm_address(sub.id, nonce, "new@example.com", now=NOW + HOUR))
    finally:
        other.close()
    assert sorted(d.moved for d in done) == [False, True]  # one move: one notice to the old address
    assert [d.old_email for d in done if d.moved] == ["old@example.com"]
    assert [c.kind for c in Choices(store).trail(sub.id)] == ["address"]
    moved = store.get(sub.id)
    assert moved is not None and (moved.email, moved.new_email) == ("new@example.com", "")


def test_two_requests_to_subscribe_again_at_once_mail_one_link_and_it_works(store: Store, store_url: str) -> None:
    """Someone who left submits the subscribe form twice at once (a double click). On SQLite
    each request read the row before its transaction held any lock (pysqlite begins at the
    first write; the FOR UPDATE that serialises them is PostgreSQL's only), so both found
    "unsubscribed", both drew a nonce, both were told to mail a confirmation link, and the
    second write replaced the first one's nonce: the link that went (the mailbox limit lets
    one through) could be the dead one, with no other for [web] confirm_resend_minutes. The
    second request runs here, as another process, between the first one's read and write."""
    from interleave import meanwhile

    from digest.core.subscriptions import SubscribeDecision

    sub, _ = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW - 3 * HOUR, resend_after=HOUR)
    store.confirm(sub.id, sub.confirm_nonce, now=NOW - 3 * HOUR)
    store.unsubscribe(sub.id, how="link", now=NOW - 2 * HOUR)
    other = Store.open(store_url)  # the second request
    try:
        asked: list[tuple[Subscriber, SubscribeDecision]] = []
        with meanwhile(store.engine, "UPDATE subscribers", lambda: asked.append(other.subscribe(
                "a@example.com", "a@example.com", "", (), consent(NOW), now=NOW, resend_after=HOUR))):
            asked.append(store.subscribe("a@example.com", "a@example.com", "", (), consent(NOW), now=NOW,
                                         resend_after=HOUR))
    finally:
        other.close()
    mailed = [s for s, decision in asked if decision.send_confirmation]
    now = store.get(sub.id)
    assert now is not None and now.status == "pending"
    assert [s.confirm_nonce for s in mailed] == [now.confirm_nonce]  # one link, and the one that confirms


def test_a_confirmation_sent_again_never_goes_to_a_reader_who_confirmed_meanwhile(store: Store, store_url: str) -> None:
    """`digest subscribers confirm EMAIL --resend` read the subscriber as pending, and then
    wrote the mail's time (and their old nonce back) whatever they had become: a reader who
    clicked their link in between was handed back as ready for a confirmation mail, and got
    one. The click runs here, as another process, between the read and the write."""
    from interleave import meanwhile

    sub, _ = store.subscribe("a@example.com", "a@example.com", "", (), consent(), now=NOW - 2 * HOUR, resend_after=HOUR)
    other = Store.open(store_url)  # the reader's click, on the web
    try:
        with meanwhile(store.engine, "UPDATE subscribers", lambda: other.confirm(sub.id, sub.confirm_nonce, now=NOW)):
            ready = store.mark_confirmation_sent(sub.id, now=NOW)
    finally:
        other.close()
    assert ready is None or ready.status == "pending"  # the mail goes only to whom it was read as pending
    now = store.get(sub.id)
    assert now is not None and now.status == "confirmed" and now.confirm_nonce == ""


def test_i_got_the_job_pressed_twice_at_once_is_one_congratulation(store: Store, store_url: str) -> None:
    """The settings page checks the reader it loaded ("pressed twice: one congratulation is
    enough") and then pauses them; two presses at once (the settings page and the
    unsubscribe page, a double click) both loaded a reader not yet away for the job, and
    both got a Subscriber back from the pause, each the signal to mail the congratulation:
    two mails. The pause itself now says whether it was this call that made them away for
    the job; the second press, in another process here, gets None and mails nothing."""
    from digest.adapters.choices import Choices

    sub, _ = store.add("ana@example.com", "ana@example.com", "", (), confirmed=True, now=NOW, consent=consent())
    Choices(store).pause(sub.id, weeks=4, how="web", now=NOW)  # a pause of weeks first: the job still counts
    other = Store.open(store_url)
    try:
        pressed = [Choices(store).pause(sub.id, weeks=None, how="web", now=NOW + HOUR),
                   Choices(other).pause(sub.id, weeks=None, how="unsubscribe", now=NOW + HOUR)]
    finally:
        other.close()
    assert [p is not None for p in pressed] == [True, False]
    assert [c.kind for c in Choices(store).trail(sub.id)] == ["pause", "job"]
    assert Choices(store).pause(sub.id, weeks=None, how="cli", now=NOW + HOUR, job=False) is not None  # the author's own


def test_two_runs_giving_up_at_once_count_each_message_once(store: Store, store_url: str) -> None:
    """give_up counted the rows to fail in one statement and failed them in another: two
    runs at once (the retry timer of `digest serve` and a `digest send` by hand) each
    reported the same 4 messages as given up, and a row a retry claimed in between was
    reported failed while it went out. The count is now what the UPDATE itself changed.
    The second run runs here, as another process, between the first one's count and write."""
    from interleave import meanwhile

    from digest.adapters.ledger import Ledger
    from digest.core.models import Settlement

    ledger, issue = readers_and_an_issue(store, plain_readers(4))
    old = NOW - 100 * HOUR
    ledger.settle_many([Settlement(c.delivery_id, "deferred", old, 451, "451 later", next_attempt_at=old + HOUR)
                        for c in ledger.claim(issue.id, "a/0", old, 10)])
    other = Store.open(store_url)
    try:
        failed: list[dict[int, int]] = []
        with meanwhile(store.engine, "UPDATE deliveries",
                       lambda: failed.append(Ledger(other).give_up(NOW - 72 * HOUR, "gave up: ", NOW))):
            failed.append(ledger.give_up(NOW - 72 * HOUR, "gave up: ", NOW))
    finally:
        other.close()
    assert sum(n for f in failed for n in f.values()) == 4 and all(set(f) <= {issue.id} for f in failed)
    assert ledger.counts(issue.id) == {"failed": 4}


def test_an_address_removed_twice_at_once_is_removed_once_without_an_error(store: Store, store_url: str) -> None:
    """`digest subscribers remove` and the desk's remove button at once: each read the
    address, then its id in a second statement; the other's delete in between made that
    second read find nothing, and the command failed with "the database failed: No row was
    found when one was required". The other removal runs here, as another process, before
    the read of the id."""
    from interleave import meanwhile

    store.add("a@example.com", "a@example.com", "", (), confirmed=True, now=NOW, consent=consent())
    other = Store.open(store_url)
    try:
        removed: list[str | None] = []
        with meanwhile(store.engine, "SELECT subscribers.id", lambda: removed.append(other.remove("a@example.com"))):
            removed.append(store.remove("a@example.com"))
    finally:
        other.close()
    assert sorted(removed, key=str) == [None, "a@example.com"]  # one removed it, the other found it gone
    assert store.find("a@example.com") is None


def test_coming_back_meets_leaving_and_signing_up_again_and_changes_nothing(store: Store, store_url: str) -> None:
    """The "come back" link of "I got the job!" resumes a confirmed reader only ("coming
    back is no way to re-subscribe"). It read the status in one transaction and resumed in
    another, whose condition let a pending subscriber through: a reader who left and asked
    to subscribe again in between (pending, not confirmed) was resumed, and the trail said
    so. The leaving and the new request run here, as another process, between the two."""
    from interleave import meanwhile

    from digest.adapters.choices import Choices

    sub, _ = store.add("ana@example.com", "ana@example.com", "", (), confirmed=True, now=NOW, consent=consent())
    Choices(store).pause(sub.id, weeks=None, how="web", now=NOW)

    def leave_and_ask_again() -> None:
        other.unsubscribe(sub.id, how="link", now=NOW + HOUR)
        other.subscribe("ana@example.com", "ana@example.com", "", (), consent(NOW + HOUR), now=NOW + HOUR,
                        resend_after=HOUR)

    other = Store.open(store_url)
    try:
        with meanwhile(store.engine, "UPDATE subscribers", leave_and_ask_again):
            back = Choices(store).resume(sub.id, how="web", now=NOW + 2 * HOUR)
    finally:
        other.close()
    assert back is None and [c.kind for c in Choices(store).trail(sub.id)] == ["job"]
    now = store.get(sub.id)
    assert now is not None and now.status == "pending"
