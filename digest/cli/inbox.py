"""`digest inbox`: read the mail that comes back, once. Layer 4 (prints and exits).

Prints one line per message as it is handled (what it was, what was done), then a
summary; an error is one `Error: ...` line (exit code 9 for the mailbox, InboxError).
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
def inbox(config: Config, wiring: Wiring) -> None:
    """Read the [inbox] mailbox once: bounces, complaints, unsubscribe mails, questions."""
    from ..jobs.inbox import check_inbox_config, read_inbox

    check_inbox_config(config.inbox, str(config.path))
    report = read_inbox(config.publication, config.inbox, wiring, on_line=click.echo)
    c = config.inbox
    click.echo(f"Read {c.folder} on {c.host}: {report.summary(c.done_folder)}.")
