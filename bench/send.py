"""Benchmark: `digest send` into postfix's smtp-sink on loopback, against smtp-source and a
naive pipeline. Prints figures and the machine; asserts nothing.

    .venv/bin/python bench/send.py [--n 10000] [--memory-n 100000] [--naive-n 300]

Needs Debian's postfix package for /usr/sbin/smtp-sink and smtp-source (only those two
programs are used, on a high port; the mail daemon is never started).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from machine import describe  # noqa: E402

SINK, SOURCE = "/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"
SECRET = "bench-secret-0123456789abcdef"

# Run inside a child process so that its peak RSS is its own.
CHILD = r"""
import resource, sys, time
from datetime import datetime, timezone
from digest.jobs import send_issue
from digest.core.config import read_config
from digest.adapters.store import Store
from pathlib import Path
config = read_config(Path(sys.argv[1]), {"DIGEST_SECRET": sys.argv[2]})
store = Store.open(config.store.url)
started = time.perf_counter()
outcome = send_issue.send_next(config, store, clock=lambda: datetime.now(timezone.utc))
elapsed = time.perf_counter() - started
print("RESULT", outcome.report.counts.get("sent", 0), elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink(port: int) -> subprocess.Popen[bytes]:
    args = [SINK, "-c"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen([*args, f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("smtp-sink did not start")


def make_config(folder: Path, port: int, connections: int) -> Path:
    text = (ROOT / "config.toml").read_text()
    text = text.replace('url = "examples/sample-feed.xml"', f'url = "{ROOT / "examples" / "sample-feed.xml"}"')
    text = text.replace("sqlite:///subscribers/subscribers.db", f"sqlite:///{folder / 'bench.db'}")
    text = text.replace("first_issue_days = 7", "first_issue_days = 36500")
    text = re.sub(r"(?m)^port = 1025$", f"port = {port}", text)
    text = re.sub(r"(?m)^max_per_second = 20$", "max_per_second = 0", text)
    text = re.sub(r"(?m)^connections = 1$", f"connections = {connections}", text)
    path = folder / "config.toml"
    path.write_text(text)
    return path


def add_subscribers(config: Path, n: int) -> None:
    from digest.adapters.store import Store
    from digest.core.config import read_config
    from digest.core.models import Consent
    from digest.core.subscriptions import CSVRow

    store = Store.open(read_config(config, {}).store.url)
    now = datetime.now(timezone.utc)
    store.import_rows((CSVRow(i, f"reader{i}@example.com", f"reader{i}@example.com", f"Reader {i}", ()) for i in range(n)),
                      confirmed=True, now=now, consent=Consent(at=now, method="import"))
    store.close()


def digest_send(n: int, connections: int) -> tuple[float, float, int]:
    """(messages/s of the send, peak RSS MB, average message bytes) for n subscribers."""
    port = free_port()
    sink = start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = make_config(Path(tmp), port, connections)
            add_subscribers(config, n)
            out = subprocess.run([sys.executable, "-c", CHILD, str(config), SECRET], capture_output=True, text=True,
                                 cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
            if not line:
                raise SystemExit(out.stderr[-3000:])
            _, sent, elapsed, peak_kb = line[0].split()
            assert int(sent) == n, f"sent {sent} of {n}"
            size = message_size(config)
            return n / float(elapsed), int(peak_kb) / 1024, size
    finally:
        sink.terminate()
        sink.wait()


def message_size(config: Path) -> int:
    """The size of one built message of the issue just sent."""
    from digest.adapters.ledger import Ledger
    from digest.adapters.store import Store
    from digest.core.compose import Composer
    from digest.core.config import read_config
    from digest.core.message import Recipient, build_message

    cfg = read_config(config, {"DIGEST_SECRET": SECRET})
    store = Store.open(cfg.store.url)
    issue = Ledger(store).last_issue()
    store.close()
    assert issue is not None
    template = Composer(cfg, issue.posts, created_at=issue.created_at).template()
    assert template is not None
    return len(build_message(template, Recipient("reader1@example.com", "Reader 1", "https://x/u/" + "t" * 60,
                                                 "https://x/p/" + "t" * 60, "https://x/archive/1"),
                             message_id="<x@example.com>", date=datetime.now(timezone.utc)))


def smtp_source(n: int, size: int) -> float:
    port = free_port()
    sink = start_sink(port)
    try:
        started = time.perf_counter()
        subprocess.run([SOURCE, "-d", "-s", "1", "-m", str(n), "-l", str(size), "-f", "newsletter@example.com",
                        "-t", "reader@example.com", f"127.0.0.1:{port}"], check=True)
        return n / (time.perf_counter() - started)
    finally:
        sink.terminate()
        sink.wait()


def naive(n: int) -> float:
    """EmailMessage and premailer per subscriber, one connection: what a first version would do."""
    import smtplib
    from email.message import EmailMessage

    from digest.core.compose import preview_recipient
    from digest.core.config import read_config
    from digest.core.inline import inline_css
    from digest.core.message import personalise
    from digest.core.render import make_environment, render_issue
    from digest.jobs import preview

    port = free_port()
    sink = start_sink(port)
    try:
        config = read_config(ROOT / "config.toml", {})
        now = datetime.now(timezone.utc)
        built = preview.build_preview(config, now=now, every_post=True)
        assert built is not None
        env = make_environment()
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as client:
            for i in range(n):
                rendered = render_issue(built.composer.content, config, date=now, env=env)
                recipient = preview_recipient(config, f"reader{i}@example.com")
                html = inline_css(personalise(rendered.html, recipient, as_html=True))
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = config.newsletter.from_, recipient.email, rendered.subject
                msg.set_content(personalise(rendered.text, recipient, as_html=False))
                msg.add_alternative(html, subtype="html")
                client.send_message(msg)
        return n / (time.perf_counter() - started)
    finally:
        sink.terminate()
        sink.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--memory-n", type=int, default=100_000)
    parser.add_argument("--naive-n", type=int, default=300)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    if not (shutil.which(SINK) and shutil.which(SOURCE)):
        raise SystemExit("needs postfix's smtp-sink and smtp-source (apt-get install postfix)")
    print(f"machine: {describe()}")
    rate, peak, size = digest_send(args.n, args.connections)
    print(f"digest send, {args.n:,} subscribers, {args.connections} connections: {rate:,.0f} messages/s end to end "
          f"(store -> build -> SMTP -> ledger), message {size:,} bytes, peak RSS {peak:.0f} MB")
    source = smtp_source(args.n, size)
    print(f"smtp-source into the same sink, one reused session, {size:,}-byte messages: {source:,.0f} messages/s")
    print(f"  ratio digest/smtp-source: {rate / source:.2f} (target >= 0.8)")
    slow = naive(args.naive_n)
    print(f"naive pipeline (EmailMessage + premailer per subscriber, one connection), {args.naive_n} messages: {slow:,.1f} messages/s")
    print(f"  ratio digest/naive: {rate / slow:.1f} (target >= 20)")
    if args.memory_n:
        _, big_peak, _ = digest_send(args.memory_n, args.connections)
        print(f"peak RSS: {peak:.0f} MB at {args.n:,} subscribers, {big_peak:.0f} MB at {args.memory_n:,} (target: flat, <= 150 MB)")


if __name__ == "__main__":
    main()
