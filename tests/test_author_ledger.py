"""The author's book (adapters/author.py) on SQLite and PostgreSQL: decisions per slot with
their versions, proofs claimed at most twice, author mails claimed once, the period's counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from digest.adapters.author import AuthorLedger
from digest.adapters.store import Store
from digest.core.models import Consent

SLOT = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
NOW = SLOT - timedelta(hours=5)


def test_the_author_s_book(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        book = AuthorLedger(store)
        assert book.decision(SLOT).version == 0
        first = book.decide(SLOT, NOW)
        assert first.version == 1 and first.held_at is None
        held = book.decide(SLOT, NOW, held_at=NOW, hold_reason="typo")
        assert (held.version, held.hold_reason, held.held_at) == (2, "typo", NOW)
        assert book.decide(SLOT, NOW, changes=False, outcome="held").version == 2
        # a proof: claimed, then (killed) claimed again and marked sent first; no third
        assert book.claim_proof(SLOT, 2, NOW) is True
        assert book.claim_proof(SLOT, 2, NOW) is True
        assert book.decision(SLOT).proof_sent == 2
        assert book.claim_proof(SLOT, 2, NOW) is False
        # author mails: once per kind and ref
        assert book.claim_mail("report", "1", NOW) and not book.claim_mail("report", "1", NOW)
        book.settle_mail("report", "1", "sent", NOW)
        assert book.claim_mail("report", "2", NOW + timedelta(hours=1))
        assert book.last_mail("report") == NOW + timedelta(hours=1) and book.last_mail("questions") is None
        # the period's counts
        store.add("a@example.com", "a@example.com", "", (), confirmed=True, now=NOW, consent=Consent(NOW, "web"))
        gone, _ = store.add("b@example.com", "b@example.com", "", (), confirmed=True, now=NOW - timedelta(days=30),
                            consent=Consent(NOW, "web"))
        store.unsubscribe(gone.id, how="complaint", now=NOW)
        counts = book.period(NOW - timedelta(days=1), NOW + timedelta(minutes=1))
        assert counts["new"] == 1 and counts["unsubscribed"]["complaint"] == 1 and counts["bounced"] == 0
        assert book.period(NOW, NOW + timedelta(minutes=1))["new"] == 0  # after `since`, not at it
    finally:
        store.close()


def test_two_runs_claiming_one_author_mail_at_once_claim_it_once(fresh_postgres: str) -> None:
    """claim_mail reads, then inserts: two runs at once (the scheduler's send and a hand
    `digest send`, both stopped by the checks, each telling the author) both read nothing,
    and on PostgreSQL the second INSERT waits for the first, then fails on the primary key:
    an IntegrityError (a traceback) where "claimed before" (False) is meant. The other run
    is a second connection holding its claim uncommitted until this one waits on it."""
    import threading
    import time

    import sqlalchemy as sa

    from digest.adapters.schema import author_mails

    store = Store.open(fresh_postgres)
    other = sa.create_engine(fresh_postgres)
    try:
        outcome: list[object] = []
        with other.connect() as conn:
            conn.execute(sa.insert(author_mails).values(kind="not-sent-check", ref="2026-11-30", status="sending",
                                                        created_at=NOW))

            def claim() -> None:
                try:
                    outcome.append(AuthorLedger(store).claim_mail("not-sent-check", "2026-11-30", NOW))
                except Exception as exc:  # noqa: BLE001 - what the test looks at
                    outcome.append(exc)

            runner = threading.Thread(target=claim)
            runner.start()
            with other.connect() as watch:  # until this run's INSERT waits for the other's row lock
                for _ in range(500):
                    if watch.exec_driver_sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                             "AND query LIKE 'INSERT INTO author_mails%%'").scalar():
                        break
                    time.sleep(0.01)
                else:
                    raise AssertionError("the claim never waited for the other run's row")
            conn.commit()
        runner.join(timeout=30)
        assert outcome == [False]
    finally:
        other.dispose()
        store.close()


def test_a_hold_that_meets_the_proof_timer_on_a_new_slot_is_kept(store_url: str) -> None:
    """`digest hold` while `digest serve`'s proof timer opened the same slot's record (its
    first decision): both read "no row", both inserted one, and the second stopped with an
    IntegrityError traceback: the hold was lost (or the timer's run, or a weekly send's
    "not sent" outcome, with the author's mail about it). The timer runs here, as another
    process, between the hold's read and its write."""
    from interleave import meanwhile

    store, other = Store.open(store_url), Store.open(store_url)
    try:
        with meanwhile(store.engine, "INSERT INTO author_slots",
                       lambda: AuthorLedger(other).decide(SLOT, NOW, changes=False)):
            held = AuthorLedger(store).decide(SLOT, NOW, held_at=NOW, hold_reason="typo")
        assert (held.held_at, held.hold_reason, held.version) == (NOW, "typo", 2)  # the timer's 1, the hold's bump
        assert AuthorLedger(other).decision(SLOT) == held
    finally:
        store.close()
        other.close()
