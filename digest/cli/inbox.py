"""`digest inbox`: read the mail that comes back, once. Layer 4 (prints and exits).

Prints one line per message as it is handled (what it was, what was done), then a
summary; an error is one `Error: ...` line (exit code 9 for the mailbox, InboxError).
"""

from __future__ import annotations

import click

from ..core.config import Config
from . import current_clock, pass_config


@click.command()
@pass_config
def inbox(config: Config) -> None:
    """Read the [inbox] mailbox once: bounces, complaints, unsubscribe mails, questions."""
    from ..adapters.store import open_store
    from ..jobs.inbox import check_inbox_config, read_inbox

    check_inbox_config(config)
    with open_store(config) as store:
        report = read_inbox(config, store, clock=current_clock(), on_line=click.echo)
    c = config.inbox
    click.echo(f"Read {c.folder} on {c.host}: {report.summary(c.done_folder)}.")
