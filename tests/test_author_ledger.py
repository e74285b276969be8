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
