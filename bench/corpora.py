"""Benchmark of judgement, not speed: every file of the shared corpora of real mail
(../shared/corpora beside the clone) through the entry points `digest inbox` uses,
and the figures issue 20 sets goals for. Prints them, the files behind each shortfall
with --misses, and the machine; asserts nothing (tests/test_corpora.py does).

    .venv/bin/python bench/corpora.py [--corpora PATH] [--misses] [--huge N]

--huge N also times one Exim-style text bounce naming N addresses (issue 20: 25,000 took
42 s when the text was lower-cased once per address); the work per message is bounded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]
from corpora import CORPORA, corpora_root, inbox_judge, inbox_trim, measure  # noqa: E402
from machine import describe  # noqa: E402

from digest.core.returns import Ours, sort_message  # noqa: E402


def huge_bounce(n: int) -> bytes:
    """An Exim-style text bounce naming n addresses, each with its SMTP error."""
    head = ("Return-Path: <>\nFrom: Mail Delivery System <Mailer-Daemon@mx.example.net>\nTo: newsletter@example.com\n"
            "Subject: Mail delivery failed: returning message to sender\n\n"
            "This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent "
            "error. The following address(es) failed:\n\n")
    body = "".join(f"  reader{i}@example.org\n    SMTP error from remote mail server after RCPT TO:<reader{i}@example.org>:\n"
                   "    550 5.1.1 User unknown\n" for i in range(n))
    return (head + body).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=CORPORA, help="the shared corpora folder")
    parser.add_argument("--misses", action="store_true", help="list the files behind each shortfall")
    parser.add_argument("--huge", type=int, default=0, metavar="N", help="also time a text bounce naming N addresses")
    args = parser.parse_args()
    root = corpora_root(args.corpora)
    if root is None:
        print(f"no corpora at {args.corpora} (its README.md is missing)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    figures = measure(root, inbox_judge, inbox_trim)
    took = time.perf_counter() - started
    print(f"corpora: {root}")
    for line in figures.lines():
        print("  " + line)
    if args.misses:
        for what, files in sorted(figures.misses.items()):
            print(f"{what} ({len(files)}):")
            for f in files:
                print(f"    {f}")
    if args.huge:
        raw = huge_bounce(args.huge)
        started = time.perf_counter()
        found = sort_message(raw, Ours("newsletter.example"))
        print(f"a text bounce of {len(raw):,} bytes naming {args.huge:,} addresses: {time.perf_counter() - started:.2f} s, "
              f"{len(found.failures)} failures read")
    print(f"{took:.2f} s for every file; {describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
