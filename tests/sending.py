"""A sending test bed: config, a real SQLite store with subscribers, a real SMTP server."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from digest.adapters.ledger import Ledger
from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from digest.core.config import Config, read_config
from digest.core.models import Consent
from digest.core.subscriptions import CSVRow
from digest.jobs import send_issue

SECRET = "send-secret-0123456789abcdef"
START = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@dataclass
class Bed:
    config: Config
    store: Store
    mail: Any
    clock: list[datetime]

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.store)

    def now(self) -> datetime:
        return self.clock[0]

    def advance(self, **delta: float) -> None:
        self.clock[0] += timedelta(**delta)

    def add(self, count: int, *, topics: tuple[str, ...] = (), prefix: str = "reader") -> list[int]:
        """`count` confirmed readers, in one import (a transaction per reader made a 600-reader
        test spend half its time adding them); their ids in order."""
        emails = [f"{prefix}{i}@example.com" for i in range(count)]
        rows = [CSVRow(i + 1, email, email, f"Reader {i}", topics) for i, email in enumerate(emails)]
        added = self.store.import_rows(rows, confirmed=True, now=START, consent=Consent(at=START, method="cli"))
        assert added.added == count, added
        ids = {sub.email: sub.id for sub in self.store.iter_subscribers()}  # one read, not one per reader
        return [ids[email] for email in emails]

    def wiring(self, **parts: Any) -> Wiring:
        """The parts a job gets, as `digest` wires them, over this bed's store and clock."""
        return Wiring(self.config, store=self.store, **{"clock": self.now, **parts})

    def send(self, *, fresh_for: float | None = None, **kw: Any) -> send_issue.SendOutcome:
        """`digest send`, in this process; `fresh_for` shortens the window after which a
        batch's recipients are read again (Outbox.fresh_for), for a test that waits it out."""
        parts = {k: kw.pop(k) for k in ("mailer", "backoff", "cancel", "clock") if k in kw}
        wiring = self.wiring(**parts)
        if fresh_for is not None:
            wiring.outbox.fresh_for = fresh_for
        return send_issue.send_next(self.config.publication, wiring, **kw)

    def statuses(self, issue_id: int = 1) -> dict[str, str]:
        """recipient email -> ledger status"""
        import sqlalchemy as sa

        from digest.adapters.schema import deliveries, subscribers

        with self.store.tx() as conn:
            rows = conn.execute(sa.select(subscribers.c.email, deliveries.c.status).join(
                subscribers, subscribers.c.id == deliveries.c.subscriber_id).where(deliveries.c.issue_id == issue_id)).all()
        return {email: status for email, status in rows}

    def received_by(self) -> Counter[str]:
        return Counter(r for m in self.mail.received for r in m.recipients)


def make_bed(write_config: Any, mail_server: Any, extra_smtp: str = "", extra_question: str = "", **kw: Any) -> Bed:
    path: Path = write_config(smtp_port=mail_server.port, **kw)
    if extra_smtp:
        path.write_text(path.read_text().replace("timeout_seconds = 5\n", "timeout_seconds = 5\n" + extra_smtp))
    if extra_question:
        path.write_text(path.read_text().replace("[question]\n", "[question]\n" + extra_question, 1))
    config = read_config(path, {"DIGEST_SECRET": SECRET})
    return Bed(config, Store.open(config.store.url), mail_server, [START])
