"""`digest doctor`: will the newsletter land in the inbox? Layer 4 (prints and exits).

One line per check, "ok", "warning" or "problem" with the fix; exit 0 with no problem,
1 otherwise.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..core.config import Config
from . import pass_wiring

if TYPE_CHECKING:
    from .wiring import Wiring


@click.command()
@pass_wiring
@click.option("--nameserver", metavar="HOST[:PORT]", help="Ask this DNS server (default: the system's).")
@click.option("--offline", is_flag=True, help="Only the checks that need no network (headers, size, SpamAssassin).")
@click.option("--feed", help="A feed URL or file to use instead of [feed] url.")
def doctor(config: Config, wiring: Wiring, nameserver: str | None, offline: bool, feed: str | None) -> None:
    """Check SPF, DKIM, DMARC, the relay and the next issue: will it land in the inbox?"""
    from ..jobs.doctor import run_doctor

    report = run_doctor(config.publication, wiring, now=wiring.clock(), nameserver=nameserver,
                        dns_timeout=min(config.smtp.timeout_seconds, 10.0), offline=offline, feed=feed)
    for check in report.checks:
        click.echo(check.line)
    for note in report.notes:
        click.echo(f"Note: {note}.")
    found = report.problems
    warned = sum(1 for c in report.checks if c.level.value == "warning")
    click.echo(f"{len(report.checks)} checks: {len(found)} problem{'s' if len(found) != 1 else ''}, "
               f"{warned} warning{'s' if warned != 1 else ''}.")
    if found:
        sys.exit(1)
