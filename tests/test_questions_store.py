"""Questions, askers and answer notices in the store, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from digest.adapters import schema
from digest.adapters.notices import NoticeLedger
from digest.adapters.questions import QuestionStore
from digest.adapters.store import Store
from digest.core.answers import AnswerLink
from digest.core.errors import InputError
from digest.core.models import Consent, DeliveryStatus, Post, Settlement
from digest.core.questions import ACCEPTED, ANSWERED, DECLINED, NEW, new_question

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def ask(qs: QuestionStore, email: str = "asker@example.com", text: str = "How do I negotiate?", *,
        message_id: str | None = None, at: datetime = NOW, **kw: object) -> tuple[int, bool]:
    q, created = qs.record(new_question(email=email, name="Secret Name", text=text, source="web",
                                        message_id=message_id, **kw), at)  # type: ignore[arg-type]
    return q.id, created


def answer(qs: QuestionStore, qid: int, n: int = 1, at: datetime = NOW) -> list[int]:
    post = Post(id=f"p{n}", title=f"Answer {n}", link=f"https://blog.example.com/{n}.html", published=at, updated=None)
    return [q.id for q in qs.mark_answered([AnswerLink(qid, post, "label")], at, lambda i: f"<answer.{i}@example.com>")]


def test_the_migrated_tables_are_the_schema(store_url: str) -> None:
    from digest.adapters.migrate import migrate, newest_revision
    from digest.adapters.store import make_engine

    engine = make_engine(store_url)
    migrate(engine, newest_revision())  # every step, as an old database takes them
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    engine.dispose()
    ours = [d for d in diff if any(name in repr(d) for name in ("questions", "askers", "notices"))]
    assert ours == []


def test_the_same_question_twice_is_one_and_ids_are_never_reused(store: Store) -> None:
    qs = QuestionStore(store)
    first, created = ask(qs)
    assert created
    assert ask(qs, text="how do I   NEGOTIATE?") == (first, False)
    assert ask(qs, email="other@example.com") != (first, False)
    mail, _ = ask(qs, text="A mailed question", message_id="<m1@example.com>")
    assert ask(qs, text="The same mail, read again after UIDVALIDITY changed", message_id="<m1@example.com>") == (mail, False)
    qs.forget("asker@example.com")
    again, created = ask(qs)
    assert created and again > mail


def test_moves_and_their_refusals(store: Store) -> None:
    qs = QuestionStore(store)
    qid, _ = ask(qs)
    with pytest.raises(InputError, match=f"question {qid} cannot be linked to an answer: it is new"):
        qs.move(qid, "answer", NOW, answer_url="https://blog.example.com/1.html")
    accepted = qs.move(qid, "accept", NOW, paraphrase="Negotiating two offers")
    assert accepted.status == ACCEPTED and accepted.accepted_at == NOW and accepted.paraphrase == "Negotiating two offers"
    assert qs.move(qid, "decline", NOW + HOUR).status == DECLINED
    again = qs.move(qid, "accept", NOW + 2 * HOUR)
    assert again.status == ACCEPTED and again.accepted_at == NOW and again.declined_at is None
    assert again.paraphrase == "Negotiating two offers"
    with pytest.raises(InputError, match="there is no question 999"):
        qs.move(999, "accept", NOW)


def test_an_answer_queues_exactly_one_notice(store: Store) -> None:
    qs, notices = QuestionStore(store), NoticeLedger(store)
    qid, _ = ask(qs)
    assert answer(qs, qid) == []  # new, not accepted: not answered
    qs.move(qid, "accept", NOW)
    assert answer(qs, qid) == [qid]
    assert answer(qs, qid, n=2) == []  # answered is final: no second notice
    q = qs.require(qid)
    assert (q.status, q.answer_url, q.answer_title) == (ANSWERED, "https://blog.example.com/1.html", "Answer 1")
    assert notices.counts() == {DeliveryStatus.PENDING: 1}
    with store.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(schema.notices.insert().values(question_id=qid, status="pending", next_attempt_at=NOW,
                                                    message_id="<x@example.com>", created_at=NOW, updated_at=NOW))


def test_an_issue_claims_its_answered_questions_once(store: Store) -> None:
    qs = QuestionStore(store)
    ids = []
    for n in range(3):
        qid, _ = ask(qs, text=f"Question {n}")
        qs.move(qid, "accept", NOW)
        ids.append(qid)
    answer(qs, ids[0])
    answer(qs, ids[1], n=2)
    assert [q.id for q in qs.claim_features("k1", NOW)] == ids[:2]
    assert [q.id for q in qs.claim_features("k1", NOW)] == ids[:2]  # built again: the same ones
    # k1 was never recorded as an issue (the author said no at the prompt): the next one takes them
    answer(qs, ids[2], n=3)
    assert [q.id for q in qs.claim_features("k2", NOW)] == ids
    with store.engine.begin() as conn:
        conn.execute(schema.issues.insert().values(key="k2", status="done", created_at=NOW, cutoff=NOW, subject="s",
                                                   posts="[]", html="", text=""))
    assert qs.claim_features("k3", NOW) == [] and qs.unfeatured() == []
    assert qs.issue_exists("k2") and not qs.issue_exists("k3")


def test_one_acknowledgement_per_address_per_window_even_at_once(store: Store) -> None:
    qs = QuestionStore(store)
    questions = [qs.require(ask(qs, text=f"Question {n}")[0]) for n in range(6)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda q=q: results.append(qs.claim_acknowledgement(q, NOW, 24 * HOUR)))
               for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    later = qs.require(ask(qs, text="A day later")[0])
    assert not qs.claim_acknowledgement(later, NOW + 23 * HOUR, 24 * HOUR)
    assert qs.claim_acknowledgement(later, NOW + 25 * HOUR, 24 * HOUR)


def test_bounced_and_complaining_addresses_are_blocked(store: Store) -> None:
    qs = QuestionStore(store)
    consent = Consent(at=NOW, method="cli")
    for email in ("bounced@example.com", "complained@example.com", "left@example.com"):
        store.add(email, email, "", (), confirmed=True, now=NOW, consent=consent)
    store.unsubscribe(store.find("complained@example.com").id, how="complaint", now=NOW)  # type: ignore[union-attr]
    store.unsubscribe(store.find("left@example.com").id, how="web", now=NOW)  # type: ignore[union-attr]
    qs.mark_bounced("bounced@example.com", NOW)
    assert store.find("bounced@example.com").status == "bounced"  # type: ignore[union-attr]
    assert qs.blocked("bounced@example.com") == "the address bounced"
    assert qs.blocked("complained@example.com") == "the address complained (marked our mail as spam)"
    assert qs.blocked("left@example.com") is None and qs.blocked("stranger@example.com") is None
    qs.mark_bounced("stranger@example.com", NOW)
    assert qs.blocked("stranger@example.com") == "the address bounced"


def test_forget_and_subscribers_remove_delete_every_question(store: Store) -> None:
    qs = QuestionStore(store)
    sub, _ = store.add("reader@example.com", "reader@example.com", "R", (), confirmed=True, now=NOW,
                       consent=Consent(at=NOW, method="cli"))
    mine, _ = ask(qs, email="reader@example.com")
    linked, _ = ask(qs, email="reader.alias@example.com", subscriber_id=sub.id)  # a reply linked by In-Reply-To
    other, _ = ask(qs, email="other@example.com")
    qs.move(mine, "accept", NOW)
    answer(qs, mine)
    assert [q.id for q in qs.of_address("reader@example.com")] == [mine, linked]
    assert store.remove("reader@example.com") == "reader@example.com"
    assert qs.get(mine) is None and qs.get(linked) is None and qs.get(other) is not None
    assert NoticeLedger(store).counts() == {}
    assert qs.forget("other@example.com") == 1 and qs.listed() == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.askers)).scalar() == 0


def test_text_and_name_expire_after_the_end(store: Store) -> None:
    qs = QuestionStore(store)
    done, _ = ask(qs, text="Answered one")
    waiting, _ = ask(qs, text="Still waiting")
    dropped, _ = ask(qs, text="Declined one")
    qs.move(done, "accept", NOW, paraphrase="Kept paraphrase")
    answer(qs, done)
    qs.move(waiting, "accept", NOW)
    qs.move(dropped, "decline", NOW)
    assert qs.expire(NOW - HOUR, NOW) == 0
    assert qs.expire(NOW, NOW + HOUR) == 2
    assert (qs.require(done).text, qs.require(done).name, qs.require(done).paraphrase) == ("", "", "Kept paraphrase")
    assert qs.require(dropped).text == "" and qs.require(waiting).text == "Still waiting"


def test_stats_count_and_take_the_median(store: Store) -> None:
    qs = QuestionStore(store)
    for n, days in enumerate((2, 4, 9)):
        qid, _ = ask(qs, text=f"Q{n}", at=NOW)
        qs.move(qid, "accept", NOW)
        answer(qs, qid, n=n, at=NOW + timedelta(days=days))
    ask(qs, text="open one")
    stats = qs.stats()
    assert (stats.received, stats.answered, stats.median_days) == (4, 3, 4.0)


def test_notice_claims_settle_recover_and_give_up(store: Store) -> None:
    qs, ledger = QuestionStore(store), NoticeLedger(store)
    ids = []
    for n in range(3):
        qid, _ = ask(qs, text=f"Q{n}")
        qs.move(qid, "accept", NOW)
        answer(qs, qid, n=n)
        ids.append(qid)
    claims = ledger.claim("dead-sender/0", NOW, 2)
    assert [c.subscriber_id for c in claims] == ids[:2] and ledger.claim("other/0", NOW, 5)[0].subscriber_id == ids[2]
    settle(ledger, Settlement(claims[0].delivery_id, DeliveryStatus.SENT, NOW, 250, "ok"))
    assert qs.require(ids[0]).noticed_at == NOW
    settle(ledger, Settlement(claims[1].delivery_id, DeliveryStatus.DEFERRED, NOW, 451, "later", NOW + HOUR))
    assert ledger.claim("x/0", NOW, 5) == []  # deferred, not due; the third is held by "other"
    assert ledger.recover_stale(NOW) == 1  # no sender named "other" is alive
    again = ledger.claim("x/0", NOW + 2 * HOUR, 5)
    assert [c.subscriber_id for c in again] == [ids[1], ids[2]]
    settle(ledger, Settlement(again[0].delivery_id, DeliveryStatus.DEFERRED, NOW + 2 * HOUR, 451, "still later",
                              NOW + 3 * HOUR))
    assert ledger.give_up(NOW, "gave up: ", NOW + 4 * HOUR) == {0: 1}
    assert ledger.counts() == {DeliveryStatus.SENT: 1, DeliveryStatus.FAILED: 1, DeliveryStatus.SENDING: 1}
    assert qs.notice_status(ids[1]) == (DeliveryStatus.FAILED, "gave up: still later")


def test_notices_claimed_by_a_sender_that_starts_meanwhile_are_not_given_back(store: Store, store_url: str) -> None:
    """The notices' recover_stale, as the deliveries': a sender that registers and claims
    while another weighs who is alive (between its read of the senders and its giving
    back) keeps its claims (test_store.py says what it once cost)."""
    from digest.adapters.ledger import Ledger

    qs = QuestionStore(store)
    for n in range(2):
        qid, _ = ask(qs, text=f"Q{n}")
        qs.move(qid, "accept", NOW)
        answer(qs, qid, n=n)
    Ledger(store).register_sender("b", NOW)
    other = Store.open(store_url)  # the other process
    try:
        taken: list[int] = []

        def alive(pid: int) -> bool:
            if not taken:
                Ledger(other).register_sender("a", NOW)
                taken.extend(c.delivery_id for c in NoticeLedger(other).claim("a/0", NOW, 1))
            return True

        assert NoticeLedger(store).recover_stale(NOW, alive=alive) == 0 and len(taken) == 1
        mine = [c.delivery_id for c in NoticeLedger(store).claim("b/0", NOW, 5)]
        assert len(mine) == 1 and not set(mine) & set(taken)  # nobody's notice is claimed twice
        assert NoticeLedger(store).counts() == {DeliveryStatus.SENDING: 2}
    finally:
        other.close()


def settle(ledger: NoticeLedger, settlement: Settlement) -> None:
    with ledger.settling() as record:
        record([settlement])


def test_a_new_question_starts_new_and_keeps_its_asker(store: Store) -> None:
    qs = QuestionStore(store)
    qid, _ = ask(qs, consent_to_quote=True, display_name="J.")
    q = qs.require(qid)
    assert (q.status, q.email, q.name, q.consent_to_quote, q.display_name, q.source) == (
        NEW, "asker@example.com", "Secret Name", True, "J.", "web")
    assert q.created_at == NOW and q.created_at.tzinfo is not None


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_a_moderation_that_meets_the_send_answering_the_question_never_undoes_the_answer(
        store: Store, store_url: str, action: str) -> None:
    """`digest questions decline 17` (or accept) read the question, checked the move, then
    wrote its status unconditionally. A send that marked 17 answered in between (the post
    labelled Q-17 came out) queued its notice and was then overwritten: on SQLite an answered
    question became declined with its notice still going (an answered question is final),
    or accepted again, so that every later send found Q-17 once more, answered it again and
    stopped on the notice's unique key. The send runs here, as another process, between the
    moderation's read and its write. Whichever comes first, the question ends answered with
    its one notice, or moved by the author with none."""
    from interleave import meanwhile

    qs, notices = QuestionStore(store), NoticeLedger(store)
    qid, _ = ask(qs)
    qs.move(qid, "accept", NOW)
    other = Store.open(store_url)  # the send, in another process
    try:
        answered: list[int] = []
        refused: list[InputError] = []
        with meanwhile(store.engine, "UPDATE questions", lambda: answered.extend(answer(QuestionStore(other), qid))):
            try:
                qs.move(qid, action, NOW + HOUR)
            except InputError as exc:
                refused.append(exc)
        status = qs.require(qid).status
        # As if one came after the other: answered with its one notice (the send last, or
        # first with the author refused), or as the author left it, with none.
        assert (status == ANSWERED) == (notices.counts() == {DeliveryStatus.PENDING: 1}) == bool(answered)
        assert status in (ANSWERED, ACCEPTED if action == "accept" else DECLINED)
        assert not refused or (status == ANSWERED and "an answered question is final" in str(refused[0]))
        assert answer(QuestionStore(other), qid, n=2) == []  # the next send answers nothing, and does not fail
    finally:
        other.close()


def test_two_acknowledgements_at_once_keep_to_the_hour_s_budget(store: Store, store_url: str) -> None:
    """[question] acknowledge_per_hour caps the acknowledgements of a budget, all addresses
    together. Two questions from two addresses (a flood through /ask threads, or two inbox
    readers) each counted the hour's acknowledgements, found room, and each took one: the
    cap of 1 let 2 go. The second runs here, as another process, between the first one's
    count and its claim."""
    from interleave import meanwhile

    qs = QuestionStore(store)
    first = qs.require(ask(qs, email="one@example.com", text="Q one")[0])
    second = qs.require(ask(qs, email="two@example.com", text="Q two")[0])
    other = Store.open(store_url)  # the other thread or process
    try:
        took: list[bool] = []
        with meanwhile(store.engine, "UPDATE askers",
                       lambda: took.append(QuestionStore(other).claim_acknowledgement(second, NOW, 24 * HOUR, per_hour=1))):
            took.append(qs.claim_acknowledgement(first, NOW, 24 * HOUR, per_hour=1))
    finally:
        other.close()
    assert sorted(took) == [False, True]
    assert qs.acknowledged_since(NOW - HOUR, "known") == 1
