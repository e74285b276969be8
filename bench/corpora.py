"""Benchmark of judgement, not speed: every file of the shared corpora of real mail
(../shared/corpora beside the clone) through the entry points `digest inbox` uses,
and the figures issue 20 sets goals for. Prints them, the files behind each shortfall
with --misses, and the machine; asserts nothing (tests/test_corpora.py does).

    .venv/bin/python bench/corpora.py [--corpora PATH] [--misses]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=CORPORA, help="the shared corpora folder")
    parser.add_argument("--misses", action="store_true", help="list the files behind each shortfall")
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
    print(f"{took:.2f} s for every file; {describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
