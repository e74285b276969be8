"""Migration 0010: email keys stored by older versions (str.casefold() of the address) are
recomputed, so that "straße@" and "strasse@", "ﬁ@" and "fi@" are different readers from
now on; nothing else about the rows changes. Real SQLite, and PostgreSQL where it runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from digest.adapters.migrate import migrate
from digest.adapters.questions import QuestionStore
from digest.adapters.store import Store, make_engine
from digest.core.models import Consent
from digest.core.questions import new_question

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
ROWS = [("Straße@example.org", "Rae"), ("ANA@example.org", "Ana"), ("ﬁ@bücher.example", "Fi")]


def test_old_keys_are_recomputed_and_the_rows_kept(store_url: str) -> None:
    engine = make_engine(store_url)
    migrate(engine, "0009")
    with engine.begin() as conn:
        for email, name in ROWS:
            conn.execute(sa.text(
                "INSERT INTO subscribers (email, email_key, name, status, topics, created_at, updated_at) "
                "VALUES (:email, :key, :name, 'confirmed', '', :at, :at)"),
                {"email": email, "key": email.casefold(), "name": name, "at": NOW})
        conn.execute(sa.text(
            "INSERT INTO questions (email, email_key, name, text, source, status, created_at, updated_at, dup_key, "
            "acknowledged_at) VALUES (:email, :key, 'Fi', 'How?', 'web', 'new', :at, :at, 'd1', :at)"),
            {"email": "ﬁ@bücher.example", "key": "ﬁ@bücher.example".casefold(), "at": NOW})
        conn.execute(sa.text("INSERT INTO askers (email_key, acknowledged_at) VALUES (:key, :at)"),
                     {"key": "ﬁ@bücher.example".casefold(), "at": NOW})
    engine.dispose()

    store = Store.open(store_url)  # upgrades
    try:
        rae = store.find("Straße@example.org".replace("S", "s"))
        assert rae is not None and rae.name == "Rae" and rae.email == "Straße@example.org"
        assert store.find("strasse@example.org") is None, "the old key still merges straße@ with strasse@"
        ana = store.find("ana@example.org")
        assert ana is not None and ana.name == "Ana"  # ASCII keys are as they were
        fi = store.find("ﬁ@xn--bcher-kva.example")
        assert fi is not None and fi.name == "Fi"
        # The real strasse@ can now subscribe: a row of its own.
        consent = Consent(at=NOW, method="web")
        other, _ = store.add("strasse@example.org", "strasse@example.org", "", (), confirmed=False, now=NOW,
                             consent=consent)
        assert other.id not in (rae.id, ana.id, fi.id) and store.count() == 4
        asked = QuestionStore(store).of_address("ﬁ@xn--bcher-kva.example")
        assert [q.text for q in asked] == ["How?"]
        # The asker's acknowledgement moved with the key: the window still holds for that address.
        again = new_question(email="ﬁ@bücher.example", name="", text="And then?", source="web")
        assert again.email_key == "ﬁ@xn--bcher-kva.example"
        question, _ = QuestionStore(store).record(again, NOW)
        assert not QuestionStore(store).claim_acknowledgement(question, NOW, timedelta(hours=24))
    finally:
        store.close()
