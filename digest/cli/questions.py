"""`digest questions ...`: the author's desk of readers' questions. Layer 4 (prints and exits).

The states: new -> accepted -> answered (by a post labelled [question]
answer_label_prefix + ID, or at the URL given to `answer`, when `digest send` finds it in
the feed), or declined. The author sees askers' addresses here; no newsletter, archive or
page ever does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import click

from ..core.config import Config
from ..core.questions import QUESTION_STATUSES
from . import current_clock, pass_config
from . import now as _now
from .words import count, local_time

if TYPE_CHECKING:
    from ..adapters.questions import QuestionStore

ID = click.IntRange(1, 2**31 - 1)


@contextmanager
def _questions(config: Config) -> Iterator[QuestionStore]:
    """The questions, through the process's wiring (SQLAlchemy loads only for the commands that use them)."""
    from .wiring import Wiring

    with Wiring(config, clock=current_clock()) as wiring:
        yield wiring.questions




@click.group()
def questions() -> None:
    """Readers' questions: list, show, accept, decline, link an answer, forget an asker."""


@questions.command(name="list")
@pass_config
@click.option("--status", type=click.Choice(QUESTION_STATUSES), help="Only questions in this state.")
def list_(config: Config, status: str | None) -> None:
    """List questions: id, state, date, source, asker, whether it may be quoted, its first words."""
    with _questions(config) as book:
        found = book.listed(status)
    for q in found:
        words = (q.paraphrase or q.text or "(text deleted after [question] keep_days)").replace("\n", " ")
        click.echo(f"#{q.id}\t{q.status}\t{local_time(config, q.created_at, '%Y-%m-%d')}\t{q.source}\t{q.email}\t"
                   f"{'may quote' if q.consent_to_quote else 'no quoting'}\t{words[:70]}{'…' if len(words) > 70 else ''}")
    click.echo(count(len(found), "question") + (f" {status}" if status else ""), err=True)


@questions.command()
@pass_config
@click.argument("question_id", metavar="ID", type=ID)
def show(config: Config, question_id: int) -> None:
    """Show one question whole: the asker, the text, its state and dates, its answer and notice."""
    with _questions(config) as qs:
        q = qs.require(question_id)
        notice = qs.notice_status(q.id)

    def when(at: datetime | None) -> str:
        return local_time(config, at) if at else "-"

    lines = [
        f"Question {q.id} ({q.status}), from {q.source}, {when(q.created_at)}",
        f"Asker: {q.email}" + (f" ({q.name})" if q.name else "") + (f", subscriber {q.subscriber_id}" if q.subscriber_id else ""),
        "Quoting: " + (f"allowed, signed {q.display_name!r}" if q.consent_to_quote and q.display_name else
                       "allowed, unsigned" if q.consent_to_quote else "not allowed"),
        f"Acknowledged: {when(q.acknowledged_at)}",
        f"Paraphrase: {q.paraphrase or '(none: digest questions accept ' + str(q.id) + ' --as TEXT)'}",
    ]
    if q.accepted_at:
        lines.append(f"Accepted: {when(q.accepted_at)}")
    if q.declined_at:
        lines.append(f"Declined: {when(q.declined_at)}")
    if q.answer_url:
        lines.append(f"Answer: {q.answer_url}" + (f" ({q.answer_title}), {when(q.answered_at)}" if q.answered_at else
                                                  " (marked answered when the post appears in the feed)"))
    elif q.status == "accepted":
        lines.append(f"Answer: label a post {config.question.answer_label_prefix}{q.id}, or digest questions answer {q.id} URL")
    if notice:
        lines.append(f"Notice: {notice[0]}" + (f" ({notice[1]})" if notice[1] and notice[0] != "sent" else "")
                     + (f", {when(q.noticed_at)}" if q.noticed_at else ""))
    click.echo("\n".join(lines))
    click.echo("")
    click.echo(q.text or "(the text was deleted [question] keep_days after the question was closed)")


@questions.command()
@pass_config
@click.argument("question_id", metavar="ID", type=ID)
@click.option("--as", "paraphrase", metavar="TEXT", help="The publishable paraphrase the newsletter may show.")
def accept(config: Config, question_id: int, paraphrase: str | None) -> None:
    """Accept question ID for an answer, with the paraphrase the newsletter may show."""
    from ..jobs.questions import accept as accept_question

    with _questions(config) as book:
        q = accept_question(book, question_id, paraphrase, _now())
    click.echo(f"Accepted question {q.id}" + (f" as {q.paraphrase!r}" if q.paraphrase else " (no paraphrase)")
               + f". Label its answer post {config.question.answer_label_prefix}{q.id}.")


@questions.command()
@pass_config
@click.argument("question_id", metavar="ID", type=ID)
def decline(config: Config, question_id: int) -> None:
    """Decline question ID: it will not be answered (its asker is not told)."""
    from ..jobs.questions import decline as decline_question

    with _questions(config) as book:
        q = decline_question(book, question_id, _now())
    click.echo(f"Declined question {q.id}.")


@questions.command()
@pass_config
@click.argument("question_id", metavar="ID", type=ID)
@click.argument("url")
def answer(config: Config, question_id: int, url: str) -> None:
    """Link question ID to the post at URL; `digest send` marks it answered when the post is in the feed."""
    from ..jobs.questions import link_answer

    with _questions(config) as book:
        q = link_answer(book, question_id, url, _now())
    click.echo(f"Question {q.id} will be marked answered by {q.answer_url} when `digest send` finds that post in the feed.")


@questions.command()
@pass_config
@click.argument("email")
def forget(config: Config, email: str) -> None:
    """Delete every question of EMAIL, with their notices and the address's records."""
    from ..jobs.questions import forget as forget_asker

    with _questions(config) as book:
        address, deleted = forget_asker(book, email)
    click.echo(f"Deleted {count(deleted, 'question')} of {address}." if deleted else f"No question of {address} is kept.")

