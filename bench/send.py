"""Benchmark: `digest send` into postfix's smtp-sink on loopback, against smtp-source pushing
messages of the same size into the same sink over one session. Prints the figures of the
target (digest's messages/s and its ratio to smtp-source's, with 4 connections and with 1,
no rate ceiling, each trial and the median; peak RSS at 100,000 subscribers), a naive
pipeline for scale, and the machine with its load; asserts nothing.

    .venv/bin/python bench/send.py [--n 10000] [--trials 3] [--max-posts 20] [--connections 4 1] [--memory-n 100000]
                                   [--naive-n 300]

Needs Debian's postfix package for /usr/sbin/smtp-sink and smtp-source (only those two
programs are used, on a high port; the mail daemon is never started).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from machine import describe, load  # noqa: E402

SINK, SOURCE = "/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"
SECRET = "bench-secret-0123456789abcdef"
TARGETS = {4: 0.8, 1: 0.5}  # connections: the least ratio to smtp-source the issue asks for

# Run inside a child process so that its peak RSS is its own. The clock runs from the call
# of send_next (store -> build -> SMTP -> ledger) to its return: the interpreter's start
# and imports are not counted.
CHILD = r"""
import resource, sys, time
from datetime import datetime, timezone
from digest.jobs import send_issue
from digest.core.config import read_config
from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from pathlib import Path
config = read_config(Path(sys.argv[1]), {"DIGEST_SECRET": sys.argv[2]})
store = Store.open(config.store.url)
started = time.perf_counter()
outcome = send_issue.send_next(config.publication, Wiring(config, store=store, clock=lambda: datetime.now(timezone.utc)))
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


def make_config(folder: Path, port: int, connections: int, max_posts: int = 20) -> Path:
    text = (ROOT / "config.toml").read_text()
    text = text.replace('url = "examples/sample-feed.xml"', f'url = "{ROOT / "examples" / "sample-feed.xml"}"')
    text = text.replace("sqlite:///subscribers/subscribers.db", f"sqlite:///{folder / 'bench.db'}")
    text = text.replace("first_issue_days = 7", "first_issue_days = 36500")
    text = re.sub(r"(?m)^port = 1025$", f"port = {port}", text)
    text = re.sub(r"(?m)^max_per_second = 20$", "max_per_second = 0", text)
    text = re.sub(r"(?m)^connections = 1$", f"connections = {connections}", text)
    text = re.sub(r"(?m)^max_posts = 20$", f"max_posts = {max_posts}", text)
    path = folder / "config.toml"
    path.write_text(text)
    return path


def add_subscribers(config: Path, n: int) -> None:
    from digest.adapters.store import Store
    from digest.core.config import read_config
    from digest.core.models import Consent
    from digest.core.subscriptions import CSVRow

    store = Store.open(read_config(config, {}).store.url)
    now = datetime.now(UTC)
    store.import_rows((CSVRow(i, f"reader{i}@example.com", f"reader{i}@example.com", f"Reader {i}", ()) for i in range(n)),
                      confirmed=True, now=now, consent=Consent(at=now, method="import"))
    store.close()


def digest_send(n: int, connections: int, max_posts: int = 20) -> tuple[float, float, int]:
    """(messages/s of the send, peak RSS MB, bytes of one message as sent) for n subscribers."""
    port = free_port()
    sink = start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = make_config(Path(tmp), port, connections, max_posts)
            add_subscribers(config, n)
            out = subprocess.run([sys.executable, "-c", CHILD, str(config), SECRET], capture_output=True, text=True,
                                 cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
            if not line:
                raise SystemExit(out.stderr[-3000:])
            _, sent, elapsed, peak_kb = line[0].split()
            assert int(sent) == n, f"sent {sent} of {n}"
            return n / float(elapsed), int(peak_kb) / 1024, message_size(config)
    finally:
        sink.terminate()
        sink.wait()


def message_size(config: Path) -> int:
    """The size of subscriber 1's message of the issue just sent, as the send builds it."""
    from digest.adapters.ledger import Ledger
    from digest.adapters.store import Store
    from digest.core.compose import Composer, subscriber_recipient
    from digest.core.config import read_config
    from digest.core.message import build_message
    from digest.core.tokens import Links

    cfg = read_config(config, {"DIGEST_SECRET": SECRET})
    store = Store.open(cfg.store.url)
    issue = Ledger(store).last_issue()
    sub = store.get(1)
    store.close()
    assert issue is not None and sub is not None
    template = Composer(cfg.publication, issue.posts, created_at=issue.created_at).template()
    assert template is not None
    now = datetime.now(UTC)
    recipient = subscriber_recipient(cfg.publication, sub, Links(cfg.web.base_url, SECRET), now=now, issue_id=issue.id)
    return len(build_message(template, recipient, message_id=f"<digest.{issue.id}.1.0123456789@example.com>", date=now))


def smtp_source(n: int, length: int) -> float:
    """smtp-source's messages/s into a fresh sink: n messages of `length` (its -l), one session."""
    port = free_port()
    sink = start_sink(port)
    try:
        started = time.perf_counter()
        subprocess.run([SOURCE, "-d", "-s", "1", "-m", str(n), "-l", str(length), "-f", "newsletter@example.com",
                        "-t", "reader@example.com", f"127.0.0.1:{port}"], check=True)
        return n / (time.perf_counter() - started)
    finally:
        sink.terminate()
        sink.wait()


def source_length(size: int) -> tuple[int, int]:
    """The -l that makes smtp-source send `size` bytes of message (it adds headers of its own
    to -l bytes of body), and what it then sends: one message, received and counted."""
    from aiosmtpd.controller import Controller

    class Count:
        size = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
            Count.size = len(envelope.original_content or envelope.content)  # type: ignore[attr-defined]
            return "250 OK"

    port = free_port()
    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        def sent(length: int) -> int:
            subprocess.run([SOURCE, "-m", "1", "-l", str(length), "-f", "newsletter@example.com",
                            "-t", "reader@example.com", f"127.0.0.1:{port}"], check=True)
            return Count.size
        length = size - (sent(size) - size)
        return length, sent(length)
    finally:
        controller.stop()


def naive(n: int) -> float:
    """EmailMessage and premailer per subscriber, one connection: what a first version would do."""
    import smtplib
    from email.message import EmailMessage

    from digest.adapters.fetch import fetch_feed
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
        now = datetime.now(UTC)
        built = preview.build_preview(config.publication, fetch_feed, now=now, every_post=True)
        assert built is not None
        env = make_environment()
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as client:
            for i in range(n):
                rendered = render_issue(built.composer.content, config.publication, date=now, env=env)
                recipient = preview_recipient(config.publication, f"reader{i}@example.com")
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
    parser.add_argument("--n", type=int, default=10_000, help="subscribers of the timed sends")
    parser.add_argument("--memory-n", type=int, default=100_000, help="subscribers of the peak-RSS send (0: skip)")
    parser.add_argument("--trials", type=int, default=3, help="digest and smtp-source runs, in turn, per setting")
    parser.add_argument("--max-posts", type=int, default=20,
                        help="[newsletter] max_posts of the issue sent: 20 sends the sample feed whole (about 40 KB "
                             "a message), 1 makes about 12 KB messages")
    parser.add_argument("--connections", type=int, nargs="+", choices=sorted(TARGETS), default=list(TARGETS),
                        help="the settings of [smtp] connections to time (each has its target)")
    parser.add_argument("--naive-n", type=int, default=300, help="messages of the naive pipeline (0: skip)")
    args = parser.parse_args()
    if not (shutil.which(SINK) and shutil.which(SOURCE)):
        raise SystemExit("needs postfix's smtp-sink and smtp-source (apt-get install postfix)")
    print(f"machine: {describe()}")
    print(f"load before: {load()}")
    rates: dict[int, float] = {}
    peaks: dict[int, float] = {}
    for connections in args.connections:
        target = TARGETS[connections]
        # digest and smtp-source take turns, `trials` times: on a shared machine the speed of
        # both drifts by a quarter from one minute to the next, so each ratio compares two
        # neighbouring runs, and the median of the ratios is the figure.
        ratios, sizes = [], []
        for trial in range(args.trials):
            rate, peak, size = digest_send(args.n, connections, args.max_posts)
            length, fed = source_length(size)
            source = smtp_source(args.n, length)
            ratios.append(rate / source)
            sizes.append(size)
            rates[connections] = max(rates.get(connections, 0.0), rate)
            peaks[connections] = max(peaks.get(connections, 0.0), peak)
            if trial == 0:
                print(f"[smtp] connections = {connections}, no rate ceiling, {args.n:,} subscribers, {size:,}-byte "
                      f"messages (smtp-source: -l {length:,}, {fed:,}-byte messages, one session, the same sink):")
            print(f"  trial {trial + 1}: digest send end to end (store -> build -> SMTP -> ledger) {rate:,.0f} "
                  f"messages/s; smtp-source {source:,.0f} messages/s; ratio {rate / source:.2f}")
        print(f"  ratio, median of {args.trials}: {statistics.median(ratios):.2f} (target >= {target})")
    if args.memory_n:
        _, big, _ = digest_send(args.memory_n, 4)
        print(f"peak RSS with 4 connections: {peaks.get(4, 0):.0f} MB at {args.n:,} subscribers, {big:.0f} MB at "
              f"{args.memory_n:,} (target: flat, under 150 MB)")
    if args.naive_n and 1 in rates:
        slow = naive(args.naive_n)
        print(f"naive pipeline (EmailMessage + premailer per subscriber, one connection), {args.naive_n} messages: "
              f"{slow:,.1f} messages/s; digest send with 1 connection (its best trial): {rates[1] / slow:,.0f} times that")
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
