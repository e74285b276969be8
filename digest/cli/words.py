"""Counts and times as a reader writes them. Layer 4 helpers for the CLI's messages.

"1 post", "2 posts"; every time in the blog's own zone ([schedule] timezone), with its
abbreviation, so that status, history, preview and serve's log agree.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ..core.config import Config

_IRREGULAR = {"entry": "entries", "reply": "replies"}


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 post", "0 posts", "2 answered questions": the noun's last word agrees with n."""
    if n == 1:
        return f"{n} {noun}"
    if plural is None:
        head, _, last = noun.rpartition(" ")
        last = _IRREGULAR.get(last, last + "s")
        plural = f"{head} {last}" if head else last
    return f"{n:,} {plural}"


def local_time(config: Config, when: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`when` in [schedule] timezone, with the zone's abbreviation: "2026-11-23 07:00 EST"."""
    here = when.astimezone(ZoneInfo(config.schedule.timezone))
    return f"{here:{fmt}} {here.tzname()}"
