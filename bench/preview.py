"""Benchmark: `digest preview` on the shipped sample feed, end to end and by stage.

Prints figures, asserts nothing. Run: .venv/bin/python bench/preview.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from machine import describe  # noqa: E402

from digest.adapters.fetch import fetch_feed  # noqa: E402
from digest.core.config import read_config  # noqa: E402
from digest.core.group import group_posts  # noqa: E402
from digest.core.inline import inline_css_checked  # noqa: E402
from digest.core.render import make_environment, render_issue  # noqa: E402
from digest.core.templating import MEMORY_BYTECODE  # noqa: E402
from digest.jobs import build, preview  # noqa: E402


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms (min {min(samples) * 1000:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {describe()}")
    config = read_config(ROOT / "config.toml", os.environ)
    now = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)

    # A cache folder of its own: the first run compiles the templates (a first preview, or the
    # first after a template changed), the others load them compiled (adapters/template_cache.py).
    walls = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        for _ in range(1 + max(3, args.repeat // 4)):
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                subprocess.run([str(ROOT / ".venv" / "bin" / "digest"), "preview", "--all", "--out", out,
                                "--config", str(ROOT / "config.toml")], check=True, capture_output=True, env=env)
                walls.append(time.perf_counter() - started)
    print(f"digest preview --all (new process, sample feed): {ms(walls[1:])}")
    print(f"  the first run, templates not yet compiled: {walls[0] * 1000:.1f} ms")

    fetch, group, render, inline = [], [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fetched = fetch_feed(config.feed.url, build.fetch_options(config.feed, config.newsletter))
        t1 = time.perf_counter()
        content = group_posts(fetched.posts, config.topics, fallback_topic="More", question_labels=config.question.labels)
        MEMORY_BYTECODE.clear()  # as in a new process: the templates are compiled
        t2 = time.perf_counter()
        rendered = render_issue(content, config.publication, date=now, env=make_environment())
        t3 = time.perf_counter()
        inline_css_checked.__wrapped__(rendered.html)  # not the process's cache of the last few
        t4 = time.perf_counter()
        fetch.append(t1 - t0), group.append(t2 - t1), render.append(t3 - t2), inline.append(t4 - t3)
    print(f"  read + parse + sanitise {len(fetched.posts)} posts: {ms(fetch)}")
    print(f"  group: {ms(group)}")
    print(f"  render (Jinja2, HTML + text): {ms(render)}")
    print(f"  inline CSS (premailer, once per issue): {ms(inline)}")
    issue = preview.build_preview(config.publication, fetch_feed, now=now, every_post=True)
    assert issue is not None
    with tempfile.TemporaryDirectory() as out:
        result = preview.write_preview(config.publication, issue, Path(out), now=now)
        print(f"HTML size: {result.html_bytes:,} bytes ({result.html_bytes / 1000:.1f} KB; Gmail clips above ~102 KB)")
        print(f"text size: {result.text_path.stat().st_size:,} bytes; .eml size: {result.eml_path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
