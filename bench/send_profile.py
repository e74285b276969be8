"""Profile of `digest send` (bench/send.py's send, into smtp-sink): py-spy samples the
thread that holds the GIL, 250 times a second, and this prints where the interpreter's
time goes, by stage. Asserts nothing.

    .venv/bin/pip install py-spy   # a profiler, not a dependency of the project
    .venv/bin/python bench/send_profile.py [--n 10000] [--connections 4] [--max-posts 1] [--raw FILE]

Each sample is put in the stage of the innermost frame that belongs to one (the stages'
files are listed in STAGES); the interpreter's start and imports come before the send and
are left out. --raw keeps py-spy's collapsed stacks for a closer look.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from machine import describe, load  # noqa: E402
from send import CHILD, SECRET, add_subscribers, free_port, make_config, start_sink  # noqa: E402

# (stage, pattern of the frame's file): the first stage whose pattern matches the innermost
# frame it can match wins, so the more particular patterns come first.
STAGES = [
    ("start-up (imports)", r"<frozen importlib|<module>"),
    ("issue set-up (feed, render, premailer)",
     r"premailer|cssutils|jinja2|pygments|feedparser|xml/|digest/core/(render|inline|templating|parse)|digest/adapters/fetch"),
    ("commit queue and locks", r"threading\.py|digest/jobs/commit\.py"),
    ("ledger (claims, settles, SQLite)", r"digest/adapters/(deliveries|ledger|store)\.py|sqlalchemy|sqlite3"),
    ("SMTP (smtplib, sockets)", r"smtplib\.py|socket\.py|ssl\.py|digest/adapters/smtp\.py"),
    ("tokens (signed links)", r"digest/core/tokens\.py|itsdangerous|hmac\.py|base64\.py|json/"),
    ("message (headers, bodies)", r"digest/core/(message|compose|address|sanitize)\.py|email/|html/|binascii"),
    ("send loop (outbox, drain, deliver, retry, classify)",
     r"digest/jobs/(outbox|drain|deliver|retry|send_issue)\.py|digest/core/(retry|classify)\.py"),
]


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, pattern in STAGES:
            if re.search(pattern, frame):
                return stage
    return "no Python frame (the interpreter between frames, the collector)" if not "".join(frames) else "other"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--max-posts", type=int, default=1, help="1: about 12 KB messages; 20: the whole sample feed")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("needs py-spy: .venv/bin/pip install py-spy")
    print(f"machine: {describe()}")
    print(f"load before: {load()}")
    port = free_port()
    sink = start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw = args.raw or Path(tmp) / "stacks.txt"
            config = make_config(Path(tmp), port, args.connections, args.max_posts)
            add_subscribers(config, args.n)
            out = subprocess.run([spy, "record", "--gil", "-r", "250", "-f", "raw", "-o", str(raw), "--",
                                  sys.executable, "-c", CHILD, str(config), SECRET],
                                 capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            result = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
            if not result:
                raise SystemExit(out.stderr[-3000:])
            stages: Counter[str] = Counter()
            for line in raw.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                stages[stage_of(stack.split(";"))] += int(count)
    finally:
        sink.terminate()
        sink.wait()
    _, sent, elapsed, _ = result[0].split()
    sending = sum(n for stage, n in stages.items() if stage != "start-up (imports)")
    print(f"{sent} messages, {args.connections} connection(s), in {float(elapsed):.2f} s under the profiler "
          f"({int(sent) / float(elapsed):,.0f} messages/s); the GIL was held for {sending / 250:.2f} s of it")
    for stage, n in stages.most_common():
        if stage != "start-up (imports)":
            print(f"  {100 * n / sending:5.1f}%  {stage}  ({n / 250 / int(sent) * 1e6:.0f} us a message)")
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
