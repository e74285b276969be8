"""Benchmark: sanitising post HTML nested on purpose, with core/depth.py's flattening before
nh3 and without it. Prints the seconds of each and the machine; asserts nothing.

    .venv/bin/python bench/depth.py [--n 20000] [--raw-up-to 20000]

Each case repeats a unit n times (see tests/test_depth.py for why each is a trap). The
unflattened nh3 run is quadratic in the depth: it is skipped above --raw-up-to.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from machine import describe  # noqa: E402

from digest.core.depth import flatten_deep  # noqa: E402
from digest.core.sanitize import sanitize_html  # noqa: E402

UNITS = {
    "div": "<div>",
    "div+object": "<div><object></div></object>",
    "div/": "<div/>",
    "dd+li": "<dd><li>",
    "no-break space": "<div\u00a0x></div\u00a0y>",
}


def seconds(work: object, *args: str) -> float:
    start = time.perf_counter()
    work(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--raw-up-to", type=int, default=20000)
    args = parser.parse_args()
    import nh3

    print(describe())
    for name, unit in UNITS.items():
        html = unit * args.n
        flat = seconds(sanitize_html, html)
        raw = f"{seconds(nh3.clean, html):.2f} s" if args.n <= args.raw_up_to else "skipped"
        print(f"{name:16} n={args.n:<8} {len(html):>10,} bytes  flattened + sanitised {flat:.2f} s  "
              f"(flatten alone {seconds(flatten_deep, html):.3f} s)  nh3 unflattened {raw}")


if __name__ == "__main__":
    main()
