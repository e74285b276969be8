"""`digest subscribers ...`: manage the list from the command line. Layer 4 (prints and exits)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

import click

from ..core.config import Config
from ..core.errors import InputError, SendError
from ..core.models import STATUSES, Consent
from ..core.subscriptions import (
    CSVRow,
    clean_name,
    decode_lines,
    neutralise_cell,
    normalise_email,
    parse_csv_row,
    parse_topics,
)
from . import current_clock, pass_config
from . import now as _now
from .words import count as count_of

if TYPE_CHECKING:
    from ..adapters.store import Store
    from .wiring import Wiring


def _open(config: Config) -> AbstractContextManager[Wiring]:
    """The process's wiring (SQLAlchemy loads only for the commands that use the store)."""
    from .wiring import Wiring

    return Wiring(config, clock=current_clock())




@click.group()
def subscribers() -> None:
    """Add, remove, list, import and export subscribers."""


@subscribers.command()
@pass_config
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.option("--topics", default="", help="Comma-separated topics (default: all).")
@click.option("--confirmed", is_flag=True,
              help="They already agreed: skip the confirmation step (on a pending address: confirm it).")
def add(config: Config, email: str, name: str, topics: str, confirmed: bool) -> None:
    """Add EMAIL to the list. Unless --confirmed, it gets the confirmation link by mail now."""
    from ..jobs.subscribers import add_subscriber

    address, key = normalise_email(email)
    chosen = parse_topics(topics, config.topics)
    with _open(config) as wiring:
        change = add_subscriber(config.publication, wiring, address, key, clean_name(name), chosen, confirmed=confirmed,
                                now=_now())
    sub = change.subscriber
    if change.done == "confirmed":
        click.echo(f"Confirmed {sub.email}: it was pending; recorded as confirmed by you.")
    elif change.done == "unchanged":
        click.echo(f"{sub.email} is already on the list ({sub.status}): nothing changed.")
    elif sub.status == "confirmed":
        click.echo(f"Added {sub.email} (confirmed).")
    else:
        _report_mail(sub.email, change.mail_problem, f"Added {sub.email} (pending)")


@subscribers.command()
@pass_config
@click.argument("email")
@click.option("--resend", is_flag=True, help="Mail them the confirmation link again instead.")
def confirm(config: Config, email: str, resend: bool) -> None:
    """Confirm a pending EMAIL yourself (recorded as confirmed by the author), or --resend its link."""
    from ..jobs.subscribers import confirm_subscriber, resend_confirmation

    address, key = normalise_email(email)
    now = _now()
    with _open(config) as wiring:
        change = (resend_confirmation(config.publication, wiring, key, now=now) if resend
                  else confirm_subscriber(wiring.store, key, now=now))
    sub = change.subscriber
    if change.done == "unchanged":
        raise InputError(f"{address} is {sub.status}, not pending: nothing to confirm"
                         + (" (they must subscribe again themselves)" if sub.status in ("unsubscribed", "bounced") else ""))
    if change.done == "confirmed":
        click.echo(f"Confirmed {sub.email}: recorded as confirmed by you.")
    else:
        _report_mail(sub.email, change.mail_problem, f"{sub.email} is pending")


def _report_mail(email: str, problem: str, what: str) -> None:
    if problem:
        click.echo(f"{what}, but the confirmation link was not mailed: {problem}. "
                   f"Try again with: digest subscribers confirm --resend {email}", err=True)
        sys.exit(SendError.exit_code)
    click.echo(f"{what}; mailed the confirmation link to {email}.")


@subscribers.command()
@pass_config
@click.argument("email")
def remove(config: Config, email: str) -> None:
    """Delete EMAIL and everything kept about it, their questions included."""
    address, key = normalise_email(email)
    with _open(config) as wiring:
        store = wiring.store
        removed = store.remove(key)
    if removed is None:
        raise InputError(f"{address} is not on the list")
    click.echo(f"Removed {removed}.")


@subscribers.command(name="list")
@pass_config
@click.option("--status", type=click.Choice(STATUSES), help="Only subscribers of this status.")
def list_(config: Config, status: str | None) -> None:
    """List subscribers: address, status, name, topics, frequency, pause."""
    from ..core.audience import pause_label

    now = _now()
    with _open(config) as wiring:
        store = wiring.store
        listed = 0
        for sub in store.iter_subscribers(status):
            pause = pause_label(sub, now, config.schedule.timezone)
            click.echo(f"{sub.email}\t{sub.status}\t{sub.name}\t{', '.join(sub.topics) or 'all topics'}\t"
                       f"{sub.frequency}" + (f"\t{pause}" if pause else ""))
            listed += 1
    click.echo(count_of(listed, "subscriber"), err=True)


@subscribers.command(name="set")
@pass_config
@click.argument("email")
@click.option("--frequency", type=click.Choice(("weekly", "monthly")), help="How often they get the newsletter.")
@click.option("--pause-weeks", type=click.IntRange(1, 52), metavar="N", help="Pause their issues for N weeks from now.")
@click.option("--pause", "pause_open", is_flag=True, help="Pause their issues until --resume.")
@click.option("--resume", is_flag=True, help="End their pause now (\"I got the job!\" included).")
def set_(config: Config, email: str, frequency: str | None, pause_weeks: int | None, pause_open: bool,
         resume: bool) -> None:
    """Set a reader's choices as the preferences page does: frequency, a pause, or its end."""
    from ..adapters.choices import Choices
    from ..core.audience import pause_label

    if sum((pause_weeks is not None, pause_open, resume)) > 1:
        raise InputError("--pause-weeks, --pause and --resume: give one of them")
    if frequency is None and pause_weeks is None and not pause_open and not resume:
        raise InputError("nothing to set: give --frequency, --pause-weeks N, --pause or --resume")
    if frequency is not None and frequency not in config.newsletter.frequencies:
        raise InputError(f"--frequency {frequency}: [newsletter] frequencies in {config.path} does not offer it")
    address, key = normalise_email(email)
    now = _now()
    with _open(config) as wiring:
        store = wiring.store
        found = store.find(key)
        if found is None or found.status not in ("pending", "confirmed"):
            raise InputError(f"{address} is " + ("not on the list" if found is None else
                                                 f"{found.status}: only a subscriber's choices can be set"))
        choices = Choices(store)
        sub = found
        if frequency is not None:
            sub = choices.set_frequency(sub.id, frequency, how="cli", now=now) or sub
        if pause_weeks is not None or pause_open:
            sub = choices.pause(sub.id, weeks=pause_weeks, how="cli", now=now, job=False) or sub
        if resume:
            if found.status != "confirmed":
                raise InputError(f"{address} is pending: there is no pause to end")
            sub = choices.resume(sub.id, how="cli", now=now) or sub
    click.echo(f"{sub.email}: {sub.frequency}, " + (pause_label(sub, now, config.schedule.timezone) or "not paused") + ".")


@subscribers.command(name="import")
@pass_config
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--confirmed", is_flag=True, help="Everyone in FILE already agreed to receive the newsletter.")
def import_(config: Config, file: Path, confirmed: bool) -> None:
    """Import FILE.csv (columns: email[,name[,topics]]); existing addresses are left as they are."""
    problems: list[str] = []
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror}") from exc
    with handle:
        # The whole file must decode and parse before the first row is written: a bad byte
        # on line 40,000 must not leave the list half imported.
        for _ in _csv_lines(handle, file):
            pass
        try:
            handle.seek(0)
        except OSError as exc:
            raise InputError(f"{file}: cannot read it twice (a regular file is needed): {exc}") from exc
        now = _now()
        with _open(config) as wiring:
            store = wiring.store
            rows = _rows(_csv_lines(handle, file), config, problems)
            counts = store.import_rows(rows, confirmed=confirmed, now=now, consent=Consent(at=now, method="import"))
    for problem in problems:
        click.echo(f"{file}: {problem}", err=True)
    status = "confirmed" if confirmed else "pending"
    click.echo(f"Imported {counts.added} new as {status}; {counts.existing} already on the list; "
               f"{counts.duplicates} repeated in the file; {count_of(len(problems), 'bad row')}.")
    if counts.added and not confirmed:
        click.echo("Pending addresses get nothing until they confirm: mail each its link with "
                   "`digest subscribers confirm --resend EMAIL`, or confirm it yourself with "
                   "`digest subscribers confirm EMAIL` if they agreed elsewhere.")
    if problems:
        sys.exit(InputError.exit_code)


@subscribers.command()
@pass_config
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--person", metavar="EMAIL",
              help="Instead: everything kept about EMAIL (subscription, consent, choices, questions, deliveries, "
                   "returns) as JSON.")
@click.option("--status", "statuses", metavar="STATUS,...",
              help="Instead: the suppression list, addresses of these statuses (e.g. unsubscribed,bounced) "
                   "with the date, as CSV (email,status,since).")
def export(config: Config, file: Path | None, person: str | None, statuses: str | None) -> None:
    """Write the confirmed subscribers as CSV (email,name,topics) to FILE or standard output."""
    if person is not None and statuses is not None:
        raise InputError("--person and --status: give one of them")
    if person is not None:
        _export_person(config, person, file)
        return
    if statuses is not None:
        _export_suppressed(config, statuses, file)
        return
    with _open(config) as wiring:
        store = wiring.store
        if file is None:
            _write_csv(store, sys.stdout)
            return
        tmp = file.with_name(file.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8", newline="") as out:
                written = _write_csv(store, out)
            tmp.replace(file)
        except OSError as exc:
            raise InputError(f"{file}: cannot write: {exc.strerror}") from exc
    click.echo(f"Wrote {count_of(written, 'subscriber')} to {file}.")


def _export_person(config: Config, email: str, file: Path | None) -> None:
    import json

    from ..jobs.subscribers import person_export

    with _open(config) as wiring:
        data = person_export(wiring.store, wiring.questions, email, now=_now())
        if data.get("subscription") is not None:
            _add_choices_and_deliveries(wiring.store, email, data)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if file is None:
        click.echo(text, nl=False)
        return
    tmp = file.with_name(file.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)  # one person's data: not for the other users of this machine
        tmp.replace(file)
    except OSError as exc:
        raise InputError(f"{file}: cannot write: {exc.strerror}") from exc
    click.echo(f"Wrote the data kept about {data['address']} ({count_of(len(data['questions']), 'question')}) to {file}.")


def _add_choices_and_deliveries(store: Store, email: str, data: dict[str, Any]) -> None:
    """What a person's export adds of the readers' choices: the trail of choices, every
    issue's message to them (issue, date, status) and the returns read about them."""
    from ..adapters.choices import Choices

    _, key = normalise_email(email)
    sub = store.find(key)
    if sub is None:
        return
    choices = Choices(store)
    data["choices"] = [{"at": c.at.isoformat(), "kind": c.kind, "value": c.value, "how": c.how}
                       for c in choices.trail(sub.id)]
    data["deliveries"] = choices.deliveries_of(sub.id)
    data["returns"] = choices.returns_of(sub.id)


def _export_suppressed(config: Config, statuses: str, file: Path | None) -> None:
    """The suppression list: every address of `statuses`, with its status and since when."""
    from ..adapters.choices import Choices

    wanted = tuple(dict.fromkeys(s.strip() for s in statuses.split(",") if s.strip()))
    wrong = [s for s in wanted if s not in STATUSES]
    if not wanted or wrong:
        raise InputError(f"--status {statuses!r}: not a list of {', '.join(STATUSES)}")
    with _open(config) as wiring:
        rows = Choices(wiring.store).suppressed(wanted)

    def write(out: TextIO) -> None:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "status", "since"])
        for address, status, since in rows:
            writer.writerow([neutralise_cell(address), status, since.isoformat() if since else ""])

    if file is None:
        write(sys.stdout)
        return
    tmp = file.with_name(file.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            write(out)
        tmp.replace(file)
    except OSError as exc:
        raise InputError(f"{file}: cannot write: {exc.strerror}") from exc
    click.echo(f"Wrote {count_of(len(rows), 'address', 'addresses')} ({', '.join(wanted)}) to {file}.")


def _csv_lines(handle: BinaryIO, file: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each CSV record of a UTF-8 file; InputError naming the line of the
    first byte that is not UTF-8 or the first record that is not CSV."""
    reader = csv.reader(decode_lines(handle))
    try:
        for row in reader:
            yield reader.line_num, row
    except InputError as exc:
        raise InputError(f"{file}: {exc.message}; no rows were imported") from None
    except csv.Error as exc:
        raise InputError(f"{file}: line {reader.line_num}: not readable as CSV ({exc}); no rows were imported") from exc
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from exc


def _rows(records: Iterator[tuple[int, list[str]]], config: Config, problems: list[str]) -> Iterator[CSVRow]:
    for line, row in records:
        if line == 1 and row and row[0].strip().lower() == "email":
            continue  # a header row
        if not any(cell.strip() for cell in row):
            continue
        try:
            yield parse_csv_row(line, row, config.topics)
        except InputError as exc:
            problems.append(exc.message)


def _write_csv(store: Store, out: TextIO | io.StringIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    # csv quotes a cell holding a line end's characters only, so with "\n" line ends a CR
    # would go out bare and split the row when read back: such rows are quoted whole.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["email", "name", "topics"])
    count = 0
    for sub in store.iter_subscribers():
        if sub.status == "confirmed":  # never re-import the unsubscribed or the unconfirmed
            row = [neutralise_cell(cell) for cell in (sub.email, sub.name, ";".join(sub.topics))]
            (quoted if any("\r" in cell for cell in row) else writer).writerow(row)
            count += 1
    return count
