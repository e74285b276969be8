"""`digest send` as real processes: kill -9 at random moments, and two senders on one PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ANY_DAY, ROOT
from mailserver import MailServer

from digest.adapters.store import Store
from digest.core.models import Consent
from digest.core.subscriptions import CSVRow

SECRET = "proc-secret-0123456789abcdef"
RECIPIENTS = 1000


def prepare(write_config: Callable[..., Path], server: MailServer, store_url: str, name: str, connections: int,
            recipients: int = RECIPIENTS, timeout: int = 5) -> Path:
    path = write_config(smtp_port=server.port, name=name, first_issue_days=ANY_DAY)  # a process on the wall clock
    text = path.read_text()
    text = text.replace("timeout_seconds = 5\n",
                        f"timeout_seconds = {timeout}\nconnections = {connections}\nmax_per_second = 0\n")
    text = text.replace(text[text.index("[store]"):text.index("[web]")], f'[store]\nurl = "{store_url}"\n\n')
    path.write_text(text)
    store = Store.open(store_url)
    now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
    rows = (CSVRow(i, f"r{i}@example.com", f"r{i}@example.com", "", ()) for i in range(recipients))
    store.import_rows(rows, confirmed=True, now=now, consent=Consent(at=now, method="import"))
    store.close()
    return path


def send_process(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "digest", "send", "--yes", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET": SECRET})


def ledger_counts(store_url: str) -> Counter[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM deliveries GROUP BY status")).all()
        issues = conn.execute(sa.text("SELECT count(*) FROM issues")).scalar()
    engine.dispose()
    counts = Counter({status: int(n) for status, n in rows})
    counts["issues"] = int(issues or 0)
    return counts


def test_kill_9_at_random_moments_loses_no_one(write_config: Callable[..., Path], tmp_path: Path) -> None:
    rng = random.Random(20261125)
    connections = 2
    for trial in range(10):
        server = MailServer().start()
        server.handler.data_delay = 0.002
        try:
            url = f"sqlite:///{tmp_path / f'trial{trial}.db'}"
            config = prepare(write_config, server, url, f"trial{trial}.toml", connections)
            kill_after = rng.choice([0, rng.randint(1, RECIPIENTS - 50)])
            proc = send_process(config)
            deadline = time.monotonic() + 60
            if kill_after == 0:
                time.sleep(rng.uniform(0.2, 1.5))
            while len(server.received) < kill_after and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
            before = len(server.received)
            rerun = send_process(config)
            out = rerun.communicate(timeout=120)[0].decode()
            assert rerun.returncode == 0, out
            copies = Counter(r for m in server.received for r in m.recipients)
            assert set(copies) == {f"r{i}@example.com" for i in range(RECIPIENTS)}, f"trial {trial}: someone got nothing"
            duplicates = sum(n - 1 for n in copies.values())
            counts = ledger_counts(url)
            assert counts["issues"] == 1 and counts["sent"] + counts["in_doubt"] == RECIPIENTS, counts
            assert duplicates + counts["in_doubt"] <= connections, f"trial {trial}: {duplicates} duplicates after a kill at {before}"
        finally:
            server.stop()


def test_two_senders_share_one_postgresql_database(write_config: Callable[..., Path], fresh_postgres: str) -> None:
    server = MailServer().start()
    server.handler.data_delay = 0.003
    try:
        config = prepare(write_config, server, fresh_postgres, "pg.toml", 1)
        first, second = send_process(config), send_process(config)
        outs = [p.communicate(timeout=180)[0].decode() for p in (first, second)]
        assert first.returncode == 0 and second.returncode == 0, outs
        copies = Counter(r for m in server.received for r in m.recipients)
        assert len(copies) == RECIPIENTS and set(copies.values()) == {1}
        counts = ledger_counts(fresh_postgres)
        assert counts["issues"] == 1 and counts["sent"] == RECIPIENTS
    finally:
        server.stop()


def test_three_senders_of_two_connections_split_the_work(write_config: Callable[..., Path], fresh_postgres: str) -> None:
    """Every connection of every sender gets a fair part of the issue. The server holds
    each EHLO until all six connections are in, so that a sender that started first
    cannot take the work for lack of rivals; a connection's first claim is made by then.
    (A claim of 20 once took 560 rows: PostgreSQL re-ran its LIMIT ... SKIP LOCKED
    subquery for each row it updated.)"""
    recipients, senders, connections = 600, 3, 2
    server = MailServer().start()
    server.handler.data_delay = 0.005
    server.handler.gather = senders * connections
    try:
        config = prepare(write_config, server, fresh_postgres, "split.toml", connections, recipients, timeout=60)
        procs = [send_process(config) for _ in range(senders)]
        outs = [p.communicate(timeout=180)[0].decode() for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        copies = Counter(r for m in server.received for r in m.recipients)
        assert len(copies) == recipients and set(copies.values()) == {1}
        by_connection = Counter(m.peer for m in server.received)
        shares = sorted(by_connection.values(), reverse=True)
        # A fair share is 100 each; the claims come 20 at a time, and three processes on a
        # loaded machine are not equally quick, so allow a wide margin, never a monopoly.
        assert len(shares) == senders * connections and shares[0] <= 200 and shares[-1] >= 30, (shares, outs)
    finally:
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_send_then_a_rerun_finishes_the_issue(write_config: Callable[..., Path], tmp_path: Path, signum: int) -> None:
    server = MailServer().start()
    server.handler.data_delay = 0.002
    try:
        url = f"sqlite:///{tmp_path / 'sig.db'}"
        config = prepare(write_config, server, url, "sig.toml", 1)
        proc = send_process(config)
        while len(server.received) < 100 and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signum)
        proc.communicate(timeout=60)
        rerun = send_process(config)
        assert rerun.wait(120) == 0
        rerun.stdout.close()  # type: ignore[union-attr]
        copies = Counter(r for m in server.received for r in m.recipients)
        assert len(copies) == RECIPIENTS and sum(copies.values()) - RECIPIENTS <= 1
    finally:
        server.stop()
