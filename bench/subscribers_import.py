"""Benchmark: `digest subscribers import` of large CSV files into a fresh SQLite store.

Prints wall time and the child process's peak RSS for each size, to show that import
streams (memory flat as the file grows). Run: .venv/bin/python bench/subscribers_import.py
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402


def run(size: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "config.toml"
        text = (ROOT / "config.toml").read_text()
        text = text.replace('url = "examples/sample-feed.xml"', f'url = "{ROOT / "examples" / "sample-feed.xml"}"')
        text = text.replace("sqlite:///subscribers/subscribers.db", f"sqlite:///{folder / 'bench.db'}")
        config.write_text(text)
        data = folder / "list.csv"
        with data.open("w", newline="") as out:
            writer = csv.writer(out)
            for i in range(size):
                writer.writerow([f"reader.{i}@example.com", f"Reader {i}", "Interviews" if i % 3 else ""])
        script = ("import resource, sys; from digest.cli import main\n"
                  "try:\n    main(sys.argv[1:])\nfinally:\n"
                  "    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", script, "subscribers", "import", str(data), "--confirmed",
                               "--config", str(config)], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(proc.stderr)
        peak_kb = int(proc.stderr.split("PEAK")[-1].split()[0])
        return wall, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,50000,200000")
    args = parser.parse_args()
    print(f"machine: {describe()}")

    for size in (int(s) for s in args.sizes.split(",")):
        wall, peak = run(size)
        print(f"import {size:>7,} rows: {wall:6.2f} s wall ({size / wall:,.0f} rows/s), peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
