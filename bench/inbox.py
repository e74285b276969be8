"""Benchmark: `digest inbox` reading 10,000 messages at once from a throwaway Dovecot.
Prints the time, the rate, the peak memory and the machine; asserts nothing.

    .venv/bin/python bench/inbox.py [--n 10000] [--subscribers 10000]

The messages are a mix of what comes back after a send to --subscribers readers: Postfix
bounces (5.1.1), delay notices, ARF complaints, auto-replies, unsubscribe mails and
questions, 1 to 3 KB each. They are written straight into the Maildir (as a local
delivery agent would) rather than appended over IMAP, which would take longer than the
read itself. Needs Debian's dovecot-imapd (/usr/sbin/dovecot) and the test extras.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]
from machine import describe  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
KEY = "0123456789" + "d" * 54
RANDOM = "5f0e2a9c41d7b3e86a1c0f94"  # the random part of each reader's Message-ID, written into the ledger
FIXTURES = ROOT / "tests" / "fixtures" / "inbox"


def message(i: int, subscribers: int) -> bytes:
    """Message i of the mix, about subscriber (i % subscribers) + 1."""
    sub = i % subscribers + 1
    ours = f"<digest.1.{sub}.{RANDOM}@example.com>".encode()
    kind = i % 10
    if kind < 4:
        raw = (FIXTURES / "postfix_bounce.eml").read_bytes().replace(b"<digest.1.4.0123456789@example.com>", ours)
        raw = raw.replace(b"user.unknown@example.net", f"reader{sub - 1}@example.com".encode())
    elif kind < 6:
        raw = (FIXTURES / "postfix_delayed.eml").read_bytes().replace(b"<digest.1.7.0123456789@example.com>", ours)
    elif kind == 6:
        raw = (FIXTURES / "arf_complaint.eml").read_bytes().replace(b"<digest.1.8.0123456789@example.com>", ours)
    elif kind == 7:
        raw = (FIXTURES / "auto_submitted.eml").read_bytes().replace(b"<digest.1.10.0123456789@example.com>", ours)
    elif kind == 8:
        raw = (FIXTURES / "unsubscribe.eml").read_bytes().replace(b"Ben@Example.net", f"reader{sub - 1}@example.com".encode())
    else:
        raw = (FIXTURES / "question.eml").read_bytes()
    # every message a Message-ID of its own, as real mail has (the quoted original's stays)
    head, _, body = raw.partition(b"\n\n")
    head = b"\n".join(line for line in head.split(b"\n") if not line.lower().startswith(b"message-id:"))
    raw = b"Message-ID: <bench." + str(i).encode() + b"@example.net>\n" + head + b"\n\n" + body
    return raw.replace(b"\n", b"\r\n")


def deliver(maildir: Path, n: int, subscribers: int) -> None:
    """Write the messages into the user's Maildir INBOX, as a local delivery agent does."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for i in range(n):
        (maildir / "new" / f"{stamp}.M{i}P{os.getpid()}.bench").write_bytes(message(i, subscribers))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in [maildir, *maildir.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)


def prepare_store(url: str, subscribers: int) -> None:
    import sqlalchemy as sa

    from digest.adapters.ledger import Ledger
    from digest.adapters.store import Store
    from digest.core.models import Consent
    from digest.core.subscriptions import CSVRow

    store = Store.open(url)
    now = datetime.now(UTC)
    store.import_rows((CSVRow(i, f"reader{i}@example.com", f"reader{i}@example.com", "", ()) for i in range(subscribers)),
                      confirmed=True, now=now, consent=Consent(at=now, method="import"))
    Ledger(store).create_issue(key=KEY, now=now, cutoff=now - timedelta(days=7), subject="Week 1", posts=[], html="",
                               text="", domain="example.com", state=None)
    with store.tx() as conn:
        # the ledger makes each Message-ID random; the mix quotes one known one per reader
        conn.execute(sa.text("UPDATE deliveries SET status = 'sent', message_id = '<digest.1.' || subscriber_id || "
                             f"'.{RANDOM}@example.com>'"))
    store.close()


def run(config: Path, env: dict[str, str]) -> tuple[float, str, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "digest", "inbox", "--config", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"digest inbox failed ({proc.returncode}): {proc.stderr}")
    return elapsed, proc.stdout.strip().splitlines()[-1], proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="messages in the mailbox")
    parser.add_argument("--subscribers", type=int, default=10_000, help="readers the issue went to")
    args = parser.parse_args()

    from imap_tools import MailBox
    from imapserver import PASSWORD, USER, dovecot_available, imap_server

    if not dovecot_available():
        raise SystemExit("needs /usr/sbin/dovecot (apt-get install dovecot-imapd)")
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp, imap_server() as server:
        folder = Path(tmp)
        with MailBox("127.0.0.1", server.imaps_port, ssl_context=server.context()).login(USER, PASSWORD):
            pass  # the first login makes the Maildir
        started = time.perf_counter()
        deliver(server.maildir(USER), args.n, args.subscribers)
        print(f"delivered {args.n:,} messages into the Maildir in {time.perf_counter() - started:.1f} s")
        text = (ROOT / "config.toml").read_text()
        text = text.replace('url = "examples/sample-feed.xml"', f'url = "{ROOT / "examples" / "sample-feed.xml"}"')
        text = text.replace("sqlite:///subscribers/subscribers.db", f"sqlite:///{folder / 'bench.db'}")
        text = text.replace('unsubscribe_mailto = ""', 'unsubscribe_mailto = "unsubscribe@example.com"')
        before, inbox, after = re.split(r"(?m)^(\[inbox\]\n(?:.*\n)*?)(?=\[)", text, maxsplit=1)
        inbox = (inbox.replace('host = ""', 'host = "127.0.0.1"').replace("port = 993", f"port = {server.imaps_port}")
                 .replace('username = ""', f'username = "{USER}"').replace('ca_file = ""', f'ca_file = "{server.ca_file}"'))
        text = before + inbox + after
        config = folder / "config.toml"
        config.write_text(text)
        prepare_store(f"sqlite:///{folder / 'bench.db'}", args.subscribers)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET": SECRET, "DIGEST_IMAP_PASSWORD": PASSWORD}
        elapsed, summary, _ = run(config, env)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"digest inbox, {args.n:,} messages, SQLite: {elapsed:.1f} s ({args.n / elapsed:,.0f} messages/s), "
              f"peak memory {peak:.0f} MB")
        print(f"  {summary}")
        again, summary, _ = run(config, env)
        print(f"second read: {again:.1f} s; {summary}")


if __name__ == "__main__":
    main()
