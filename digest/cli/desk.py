"""`digest proof|hold|approve`: the author's decisions from a shell (the desk and the
proof's links do the same from a browser). Layer 4 (prints and exits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..core.config import Config
from . import pass_wiring

if TYPE_CHECKING:
    from .wiring import Wiring


@click.command()
@pass_wiring
def proof(config: Config, wiring: Wiring) -> None:
    """Mail the author ([author] email) the proof of the next issue now."""
    from ..jobs.desk import proof as mail_proof

    click.echo(mail_proof(config.publication, config.author, wiring, force=True))


@click.command()
@pass_wiring
@click.option("--reason", default="", help="Why (shown in the next proof).")
def hold(config: Config, wiring: Wiring, reason: str) -> None:
    """Hold the next issue: it is not sent, its posts roll into the one after."""
    from ..jobs.desk import hold as hold_issue

    click.echo(hold_issue(config.publication, config.author, wiring, reason))


@click.command()
@pass_wiring
def approve(config: Config, wiring: Wiring) -> None:
    """Approve the next issue (with [author] approval = "required" it goes only once approved)."""
    from ..jobs.desk import approve as approve_issue

    click.echo(approve_issue(config.publication, config.author, wiring))
