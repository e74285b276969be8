"""The inbox's bookkeeping (adapters/inbox_ledger.py, migration 0005) on a real SQLite file
and a real PostgreSQL: claims that split work and survive a dead reader, effects applied
with the handled mark, the soft-bounce streak, what `digest status` reads."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from digest.adapters.inbox_ledger import CLAIM_TIMEOUT, InboxLedger, reader_id
from digest.adapters.ledger import Ledger, machine
from digest.adapters.migrate import alembic_config, migrate, newest_revision
from digest.adapters.schema import inbox_returns, metadata
from digest.adapters.store import Store, make_engine
from digest.core.models import Consent
from digest.core.returns import Claimed, Delivery, Effect
from digest.core.subscriptions import normalise_email

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = "0123456789" + "a" * 54


@pytest.fixture
def store(store_url: str) -> Store:
    opened = Store.open(store_url)
    yield opened
    opened.close()


def add(store: Store, *emails: str) -> list[int]:
    ids = []
    for email in emails:
        address, key = normalise_email(email)
        sub, _ = store.add(address, key, "", (), confirmed=True, now=NOW, consent=Consent(at=NOW, method="cli"))
        ids.append(sub.id)
    return ids


def issue(store: Store, n: int, *, sent: bool = True) -> int:
    """Issue number n, delivered ("sent") to every confirmed subscriber."""
    record, _ = Ledger(store).create_issue(key=f"{n:010d}" + "b" * 54, now=NOW + timedelta(days=7 * n),
                                           cutoff=NOW, subject=f"Week {n}", posts=[], html="", text="",
                                           domain="example.com", state=None)
    if sent:
        with store.tx() as conn:
            conn.execute(sa.text("UPDATE deliveries SET status = 'sent' WHERE issue_id = :i"), {"i": record.id})
    return record.id


def status_of(store: Store, subscriber_id: int) -> str:
    sub = store.get(subscriber_id)
    assert sub is not None
    return sub.status


def dead_reader() -> str:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return f"{machine()}:{proc.stdout.strip()}:dead"


def test_the_migrated_database_matches_schema_py(store_url: str) -> None:
    engine = make_engine(store_url)
    migrate(engine, newest_revision())  # every step, as an old database takes them
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diffs == []


def test_a_database_from_before_the_inbox_upgrades_keeping_its_rows_and_downgrades(store_url: str) -> None:
    before = "0006"  # the revision before 0007_inbox
    engine = make_engine(store_url)
    migrate(engine, before)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO subscribers (email, email_key, status, created_at, updated_at) "
                             "VALUES ('a@example.org', 'a@example.org', 'confirmed', :t, :t)"), {"t": NOW.replace(tzinfo=None)})
    engine.dispose()
    store = Store.open(store_url)  # upgrades to the newest
    try:
        (sub,) = [s.id for s in store.iter_subscribers()]
        issue(store, 1)
        ledger = InboxLedger(store)
        claims = ledger.claim("INBOX", 7, [1], "me:1:x", NOW)
        ledger.settle(claims[1][1], kind="bounce", outcome="x", message_id="<m@x>", now=NOW,
                      effects=[Effect("hard", sub, 1, "5.1.1")])
        cfg = alembic_config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, before)
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("deliveries")}
        assert not {"inbox_messages", "inbox_returns", "inbox_reads"} & tables and "ix_deliveries_subscriber" not in indexes
        # Read at revision 0006 in its own columns: the store's queries name the newest schema's.
        with store.engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM subscribers WHERE id = :id"), {"id": sub}).scalar_one()
            issues = conn.execute(sa.text("SELECT count(*) FROM issues")).scalar_one()
        assert status == "bounced" and issues == 1
        migrate(store.engine)
        assert status_of(store, sub) == "bounced" and len(Ledger(store).history()) == 1
        assert InboxLedger(store).claim("INBOX", 7, [1], "me:1:x", NOW)[1][0] is Claimed.MINE
    finally:
        store.close()


def test_two_readers_split_the_work_and_each_message_is_claimed_once(store: Store) -> None:
    ledger = InboxLedger(store)
    first = ledger.claim("INBOX", 7, [1, 2, 3], f"{machine()}:1:a", NOW)
    second = ledger.claim("INBOX", 7, [2, 3, 4], "otherhost:1:b", NOW)
    assert {u for u, (c, _) in first.items() if c is Claimed.MINE} == {1, 2, 3}
    assert {u for u, (c, _) in second.items() if c is Claimed.MINE} == {4}
    assert second[2][0] is Claimed.BUSY and second[3][0] is Claimed.BUSY


def test_a_dead_readers_claims_are_taken_over_at_once_a_remote_ones_after_the_timeout(store: Store) -> None:
    ledger = InboxLedger(store)
    ledger.claim("INBOX", 7, [1], dead_reader(), NOW)
    ledger.claim("INBOX", 7, [2], "otherhost:1:b", NOW)
    later = ledger.claim("INBOX", 7, [1, 2], "me:2:c", NOW + timedelta(seconds=1))
    assert later[1][0] is Claimed.MINE and later[2][0] is Claimed.BUSY
    much_later = ledger.claim("INBOX", 7, [2], "me:2:c", NOW + CLAIM_TIMEOUT + timedelta(seconds=1))
    assert much_later[2][0] is Claimed.MINE


def test_handled_rows_are_moved_again_never_handled_again_and_kept_ones_stay(store: Store) -> None:
    ledger = InboxLedger(store)
    gone = dead_reader()
    claims = ledger.claim("INBOX", 7, [1, 2, 3], gone, NOW)
    ledger.settle(claims[1][1], kind="auto-reply", outcome="ignored", message_id="<1@x>", now=NOW)
    ledger.settle(claims[2][1], kind="too-large", outcome="left", message_id="<2@x>", now=NOW, keep=True)
    ledger.release(gone)  # 3 was never handled: given back
    again = ledger.claim("INBOX", 7, [1, 2, 3], "me:2:b", NOW)
    assert [again[u][0] for u in (1, 2, 3)] == [Claimed.HANDLED, Claimed.KEPT, Claimed.MINE]
    # a new UIDVALIDITY makes every UID new; the Message-ID tells what was handled
    fresh = ledger.claim("INBOX", 8, [1], "me:2:b", NOW)
    assert fresh[1][0] is Claimed.MINE
    assert ledger.seen_message_id("<1@x>", fresh[1][1]) and not ledger.seen_message_id("<3@x>", fresh[1][1])


def test_a_live_reader_moves_what_it_handled_itself(store: Store) -> None:
    ledger = InboxLedger(store)
    claims = ledger.claim("INBOX", 7, [1], "otherhost:1:a", NOW)
    ledger.settle(claims[1][1], kind="auto-reply", outcome="ignored", message_id="<1@x>", now=NOW)
    assert ledger.claim("INBOX", 7, [1], "me:2:b", NOW)[1][0] is Claimed.BUSY  # it is about to move it
    assert ledger.claim("INBOX", 7, [1], "me:2:b", NOW + CLAIM_TIMEOUT * 2)[1][0] is Claimed.HANDLED
    # an earlier read of this very process (serve) is over: the next one moves its leftovers
    here = reader_id()
    claims = ledger.claim("INBOX", 7, [2], here, NOW)
    ledger.settle(claims[2][1], kind="auto-reply", outcome="ignored", message_id="<2@x>", now=NOW)
    assert ledger.claim("INBOX", 7, [2], reader_id(), NOW)[2][0] is Claimed.HANDLED


def test_deliveries_are_found_by_token_ids_message_id_or_address_we_mailed(store: Store) -> None:
    ana, ben, late = add(store, "ana@example.org", "Ben@Example.org", "late@example.org")
    ledger = InboxLedger(store)
    with store.tx() as conn:  # late subscribed after the issue: never mailed
        conn.execute(sa.text("UPDATE subscribers SET status = 'pending' WHERE id = :s"), {"s": late})
    issue(store, 1)
    with store.tx() as conn:
        conn.execute(sa.text("UPDATE subscribers SET status = 'confirmed' WHERE id = :s"), {"s": late})
    assert ledger.delivery(1, ana) == Delivery(1, ana) and ledger.delivery(1, late) is None
    mid = f"<digest.1.{ben}.0123456789@example.com>"
    with store.tx() as conn:
        stored = conn.execute(sa.text("SELECT message_id FROM deliveries WHERE subscriber_id = :s"), {"s": ben}).scalar()
    assert ledger.delivery_by_message_id([mid]) is None  # the key part differs: not ours
    assert ledger.delivery_by_message_id(["<x@y>", stored.upper()]) == Delivery(1, ben)
    assert ledger.last_delivery_to("ben@example.org") == Delivery(1, ben)
    assert ledger.last_delivery_to("late@example.org") is None
    assert ledger.last_delivery_to("stranger@example.org") is None


def test_effects_and_the_handled_mark_commit_together(store: Store) -> None:
    ana, ben, cid = add(store, "ana@example.org", "ben@example.org", "cid@example.org")
    ledger = InboxLedger(store)
    claims = ledger.claim("INBOX", 7, [1, 2, 3], "me:1:a", NOW)
    assert ledger.settle(claims[1][1], kind="bounce", outcome="5.1.1", message_id="<1@x>", now=NOW,
                         effects=[Effect("hard", ana, None, "5.1.1")]) == [f"subscriber {ana} bounced"]
    assert ledger.settle(claims[2][1], kind="complaint", outcome="ARF", message_id="<2@x>", now=NOW,
                         effects=[Effect("complaint", ben)]) == [f"subscriber {ben} unsubscribed (complaint)"]
    assert ledger.settle(claims[3][1], kind="unsubscribe", outcome="mail", message_id="<3@x>", now=NOW,
                         effects=[Effect("unsubscribe", cid)]) == [f"subscriber {cid} unsubscribed (mail)"]
    assert status_of(store, ana) == "bounced"
    ben_now, cid_now = store.get(ben), store.get(cid)
    assert ben_now is not None and ben_now.status == "unsubscribed" and ben_now.unsubscribed_how == "complaint"
    assert cid_now is not None and cid_now.unsubscribed_how == "mail"
    stats = ledger.stats("INBOX", NOW + timedelta(days=1))
    assert stats.kinds == {"bounce": 1, "complaint": 1, "unsubscribe": 1}
    assert (stats.bounced, stats.unsubscribed) == (1, 2)
    assert ledger.stats("INBOX", NOW + timedelta(days=8)).bounced == 0  # the window is a week


def test_a_failure_while_handling_leaves_the_message_unhandled_and_the_subscriber_as_they_were(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        (ana,) = add(store, "ana@example.org")
        ledger = InboxLedger(store)
        claims = ledger.claim("INBOX", 7, [1], "me:1:a", NOW)
        with store.engine.begin() as conn:  # the last write of the transaction fails
            conn.exec_driver_sql("CREATE TRIGGER no_returns BEFORE INSERT ON inbox_returns "
                                 "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        with pytest.raises(sa.exc.IntegrityError, match="disk on fire"):
            ledger.settle(claims[1][1], kind="bounce", outcome="x", message_id="<1@x>", now=NOW,
                          effects=[Effect("hard", ana, None, "5.1.1")])
        assert status_of(store, ana) == "confirmed"
        assert ledger.claim("INBOX", 7, [1], "me:1:a", NOW)[1][0] is Claimed.MINE  # not handled: it will be again
    finally:
        store.close()


def test_an_effect_on_a_subscriber_removed_meanwhile_is_recorded_without_them(store: Store) -> None:
    ledger = InboxLedger(store)
    claims = ledger.claim("INBOX", 7, [1], "me:1:a", NOW)
    assert ledger.settle(claims[1][1], kind="bounce", outcome="x", message_id="<1@x>", now=NOW,
                         effects=[Effect("hard", 999_999, None, "5.1.1")]) == ["subscriber 999999 was removed meanwhile"]
    assert ledger.claim("INBOX", 7, [1], "me:2:b", NOW + CLAIM_TIMEOUT * 2)[1][0] is Claimed.HANDLED


def test_transient_bounces_for_bounce_after_issues_in_a_row_bounce_and_a_quiet_issue_breaks_the_streak(store: Store) -> None:
    ana, ben = add(store, "ana@example.org", "ben@example.org")
    ledger = InboxLedger(store, bounce_after=3)
    for n in range(1, 6):
        issue(store, n)
    claims = ledger.claim("INBOX", 7, list(range(1, 10)), "me:1:a", NOW)

    def soft(uid: int, sub: int, issue_id: int) -> str:
        return ledger.settle(claims[uid][1], kind="bounce", outcome="4.4.1", message_id=f"<{uid}@x>", now=NOW,
                             effects=[Effect("soft", sub, issue_id, "4.4.1")])[0]

    # ben: issues 1, 3, 4 came back, 2 did not: the streak restarts at 3
    assert soft(1, ben, 1) == f"subscriber {ben}: 1 of 3 issues in a row came back"
    assert soft(2, ben, 3) == f"subscriber {ben}: 1 of 3 issues in a row came back"
    assert soft(3, ben, 4) == f"subscriber {ben}: 2 of 3 issues in a row came back"
    assert status_of(store, ben) == "confirmed"
    # ana: two delay notices for issue 1 count once; then 2 and 3 make three in a row
    assert soft(4, ana, 1).endswith("1 of 3 issues in a row came back")
    assert soft(5, ana, 1).endswith("1 of 3 issues in a row came back")
    assert soft(6, ana, 2).endswith("2 of 3 issues in a row came back")
    assert soft(7, ana, 3) == f"subscriber {ana} bounced: 3 issues in a row came back"
    assert status_of(store, ana) == "bounced"
    assert soft(8, ben, 5) == f"subscriber {ben} bounced: 3 issues in a row came back"


def test_reads_are_recorded_per_folder(store: Store) -> None:
    ledger = InboxLedger(store)
    assert ledger.stats("INBOX", NOW).read_at is None
    ledger.record_read("INBOX", NOW, "3 handled")
    ledger.record_read("INBOX", NOW + timedelta(minutes=10), "failed: IMAP host: login refused")
    stats = ledger.stats("INBOX", NOW + timedelta(minutes=11))
    assert stats.read_at == NOW + timedelta(minutes=10) and stats.read_outcome.startswith("failed")


def test_two_readers_settling_a_reader_s_soft_bounces_at_once_count_both(store: Store, store_url: str) -> None:
    """Two readers (two `digest serve`, or one and `digest inbox`) split the mailbox, and
    each settles one of a reader's soft bounces: issue 2's and issue 3's, issue 1's counted
    before. On PostgreSQL (READ COMMITTED) each counted the streak without the other's row,
    not yet committed: 2 of 3, then 1 of 3, and three issues in a row that came back
    bounced nobody. The second reader runs here, as another process, after the first one
    counted and before it recorded its bounce."""
    from interleave import meanwhile

    (ana,) = add(store, "ana@example.org")
    for n in (1, 2, 3):
        issue(store, n)
    ledger = InboxLedger(store, bounce_after=3)
    claims = ledger.claim("INBOX", 7, [1, 2, 3], "me:1:a", NOW)

    def soft(book: InboxLedger, uid: int, issue_id: int) -> str:
        return book.settle(claims[uid][1], kind="bounce", outcome="4.4.1", message_id=f"<{uid}@x>", now=NOW,
                           effects=[Effect("soft", ana, issue_id, "4.4.1")])[0]

    assert soft(ledger, 1, 1).endswith("1 of 3 issues in a row came back")
    other = Store.open(store_url)  # the second reader
    try:
        said: list[str] = []
        with meanwhile(store.engine, "INSERT INTO inbox_returns",
                       lambda: said.append(soft(InboxLedger(other, bounce_after=3), 3, 3))):
            said.append(soft(ledger, 2, 2))
    finally:
        other.close()
    assert status_of(store, ana) == "bounced", said
    assert f"subscriber {ana} bounced: 3 issues in a row came back" in said


def test_soft_bounces_that_come_back_out_of_issue_order_still_add_up(store: Store) -> None:
    """A server retries a deferred message for days: issue 2's final failure comes back
    after issue 3's delay notice (and two readers splitting the mailbox settle in any
    order). The streak counted only the issues before the one settled, so issues 1, 3, then
    2 made "1, 1, 2 of 3": three issues in a row that came back bounced nobody."""
    (ana,) = add(store, "ana@example.org")
    for n in (1, 2, 3, 4):
        issue(store, n)
    ledger = InboxLedger(store, bounce_after=3)
    claims = ledger.claim("INBOX", 7, [1, 2, 3], "me:1:a", NOW)

    def soft(uid: int, issue_id: int) -> str:
        return ledger.settle(claims[uid][1], kind="bounce", outcome="4.4.1", message_id=f"<{uid}@x>", now=NOW,
                             effects=[Effect("soft", ana, issue_id, "4.4.1")])[0]

    assert soft(1, 1).endswith("1 of 3 issues in a row came back")
    assert soft(3, 3).endswith("1 of 3 issues in a row came back")  # issue 2 has not come back (yet)
    assert status_of(store, ana) == "confirmed"
    assert soft(2, 2) == f"subscriber {ana} bounced: 3 issues in a row came back"
    assert status_of(store, ana) == "bounced"


def test_two_readers_recording_a_folder_s_first_read_at_once_both_record_it(store: Store, store_url: str) -> None:
    """The first read of a folder by two readers at once (two `digest serve` started
    together): each found no row to update and inserted one, and on PostgreSQL the second
    stopped on the primary key with an IntegrityError, which the read's own handler (for
    StoreError) let through: a traceback at the end of a read that went well. The second
    reader records here, as another process, between the first one's UPDATE and INSERT."""
    from interleave import meanwhile

    other = Store.open(store_url)
    try:
        with meanwhile(store.engine, "INSERT INTO inbox_reads",
                       lambda: InboxLedger(other).record_read("INBOX", NOW, "3 handled")):
            InboxLedger(store).record_read("INBOX", NOW + timedelta(seconds=1), "2 handled")
    finally:
        other.close()
    stats = InboxLedger(store).stats("INBOX", NOW)
    assert (stats.read_at, stats.read_outcome) in ((NOW + timedelta(seconds=1), "2 handled"), (NOW, "3 handled"))


_OTHER_NAMESPACE = """
import os, sys
from datetime import datetime
from digest.adapters.inbox_ledger import InboxLedger, reader_id
from digest.adapters.store import Store
url, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
claims = InboxLedger(Store.open(url)).claim("INBOX", 7, [1, 2], reader_id(), now)
print(sum(1 for c, _ in claims.values() if c.name == "MINE"), os.getpid(), flush=True)
sys.stdin.read()  # alive, its claims held, until the test lets go
"""


def test_a_reader_in_another_pid_namespace_of_this_host_keeps_its_claims(store: Store, store_url: str,
                                                                          python: str) -> None:
    """Two containers of one host name (host networking), each with a `digest serve` reading
    the inbox: they share the name, not the pids. A reader's claims were taken over at once
    when its pid named no process here (or this very process, as PID 1 of two containers
    would), so both read and handled the same messages, where the README promises each is
    handled once and two readers split the work. Now a pid is weighed only in the PID
    namespace the claim was made from; elsewhere the claim lasts CLAIM_TIMEOUT. The other
    reader runs in a PID namespace of its own, its pid chosen to name no process here."""
    import os
    import subprocess

    from conftest import ROOT

    from digest.adapters.ledger import pid_alive

    tried = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, text=True, check=False)
    if tried.returncode != 0:
        pytest.skip(f"this machine lets no test make a PID namespace: {tried.stderr.strip()}")
    free = next(p for p in range(3, 4000) if not pid_alive(p))  # the other's pid: no process of this namespace
    forks = f"i=2; while [ $i -lt {free} ]; do /bin/true; i=$((i+1)); done; "  # its pids 2 .. free-1 come and go
    other = subprocess.Popen(["unshare", "--pid", "--fork", "sh", "-c", forks + '"$0" "$@"', python, "-c",
                              _OTHER_NAMESPACE, store_url, NOW.isoformat()],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert other.stdout is not None
        mine, pid = other.stdout.readline().split()
        assert mine == "2" and int(pid) == free and not pid_alive(free)
        claims = InboxLedger(store).claim("INBOX", 7, [1, 2], reader_id(), NOW + timedelta(seconds=1))
        assert [claims[u][0] for u in (1, 2)] == [Claimed.BUSY, Claimed.BUSY]  # held by a live reader
        later = InboxLedger(store).claim("INBOX", 7, [1, 2], reader_id(), NOW + CLAIM_TIMEOUT + timedelta(seconds=1))
        assert [later[u][0] for u in (1, 2)] == [Claimed.MINE, Claimed.MINE]  # elsewhere: after the timeout
    finally:
        other.communicate(timeout=30)


def test_a_reader_whose_claim_was_taken_over_settles_nothing(store: Store) -> None:
    """A read that outlasts CLAIM_TIMEOUT (a slow relay for the acknowledgements: RFC 5321
    lets a server take 10 minutes after each message) has its claims taken over by a reader
    of another host, which handles those messages. The slow reader then settled them too,
    whatever it no longer held: each message handled twice (its effects, its line, its move),
    where the README promises once. A settle names its reader now, and holds only while
    that reader still holds the claim."""
    (ana,) = add(store, "ana@example.org")
    first = issue(store, 1)
    ledger = InboxLedger(store)
    slow, fast = "hostA/1:7:a", "hostB/1:7:b"
    row = ledger.claim("INBOX", 7, [1], slow, NOW)[1][1]
    taken = ledger.claim("INBOX", 7, [1], fast, NOW + CLAIM_TIMEOUT + timedelta(seconds=1))
    assert taken[1] == (Claimed.MINE, row)
    effect = [Effect("soft", ana, first, "4.2.2")]
    assert ledger.settle(row, kind="bounce", outcome="4.2.2", message_id="<1@x>", now=NOW, effects=effect,
                         reader=fast) == [f"subscriber {ana}: 1 of 3 issues in a row came back"]
    assert ledger.settle(row, kind="bounce", outcome="4.2.2", message_id="<1@x>", now=NOW, effects=effect,
                         reader=slow) is None  # no longer its own: nothing recorded
    with store.tx() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(inbox_returns)).scalar_one() == 1
