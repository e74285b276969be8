"""What a deliverability check concludes: ok, warning or problem, and the fix. Pure core:
no network, no database, no clock, no file writes.

`digest doctor` prints one Check a line; `digest send` stops on a problem among the
offline ones (core/deliverability.py). A check's `fix` is written for the blog's author,
who knows their domain's DNS page and config.toml, not RFC numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Check:
    """One line of `digest doctor`: what was checked, what was found, and how to fix it."""

    name: str       # short and stable: "SPF", "DKIM", "relay TLS", "link"...
    level: Level
    finding: str
    fix: str = ""

    @property
    def line(self) -> str:
        """`ok       SPF: ...` or `problem  DMARC: .... Fix: ...`."""
        fix = f". Fix: {self.fix}" if self.fix and self.level is not Level.OK else ""
        return f"{self.level.value:<8} {self.name}: {self.finding}{fix}"


def ok(name: str, finding: str) -> Check:
    return Check(name, Level.OK, finding)


def warning(name: str, finding: str, fix: str) -> Check:
    return Check(name, Level.WARNING, finding, fix)


def problem(name: str, finding: str, fix: str) -> Check:
    return Check(name, Level.PROBLEM, finding, fix)


def problems(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.level is Level.PROBLEM]


def warnings(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.level is Level.WARNING]
