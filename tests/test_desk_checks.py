"""What the checks a send runs first (jobs/preflight.py) tell the author, who never uses a
shell: the proof lists their problems and warnings, a scheduled send they stop mails the
author one "not sent" mail, and a warning an issue went out with is recorded and shown in
the report and `digest status`. A real SQLite store, feed files, a real SMTP server
(aiosmtpd), clocks the tests choose; a problem is a plain-http [web] base_url that is not
loopback, a warning one on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sending import SECRET, Bed
from test_desk import AUTHOR, SLOT, desk_bed, readers, text_of, to

from digest.cli.serve import weekly_send
from digest.core.config import read_config
from digest.jobs import desk

PROBLEM = ("Problem (the issue does not go out until it is fixed): List-Unsubscribe: "
           "http://news.example.com/unsubscribe/... is plain http: Gmail and Yahoo want an https one-click link. "
           "To fix it: set [web] base_url to an https address: put digest serve behind a proxy with TLS.")
WARNED = "List-Unsubscribe: http://127.0.0.1:8000/unsubscribe/... is plain http on this machine"


def with_base_url(bed: Bed, url: str) -> None:
    path = bed.config.path
    path.write_text(path.read_text().replace('base_url = "https://news.example.com"', f'base_url = "{url}"'))
    bed.config = read_config(path, {"DIGEST_SECRET": SECRET})


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> Iterator[Bed]:
    yield from desk_bed(write_config, mail_server, tmp_path, readers=2)


def plain(received: Any) -> str:
    return text_of(received).replace("\r\n", "\n")


def not_sent(bed: Bed) -> list[Any]:
    return [m for m in to(bed, AUTHOR) if m.message["Subject"] == "Not sent: this week's issue"]


# ---- the proof ----

def test_the_proof_lists_a_problem_with_its_fix_before_the_send_day(bed: Bed) -> None:
    with_base_url(bed, "http://news.example.com")
    assert desk.proof(bed.config.publication, bed.config.author, bed.wiring(), force=True).startswith("proof of")
    [proof] = to(bed, AUTHOR)
    body = plain(proof)
    assert "\nBefore this goes out:\n- " + PROBLEM + "\n" in body
    assert 'Status: it will not go until the problem under "Before this goes out" is fixed' in body
    assert "`digest doctor` lists every check" in body
    html = str(proof.message.get_body(("html",)).get_content())
    assert "<strong>Before this goes out</strong>" in html and "Problem (the issue does not go out" in html
    assert readers(bed) == []


def test_the_proof_lists_a_warning_and_nothing_when_all_is_ok(bed: Bed) -> None:
    assert desk.proof(bed.config.publication, bed.config.author, bed.wiring(), force=True).startswith("proof of")
    body = plain(to(bed, AUTHOR)[-1])
    assert "Before this goes out" not in body and "Problem" not in body and "Warning" not in body
    assert "Status: it goes at its time unless you hold it" in body
    with_base_url(bed, "http://127.0.0.1:8000")
    desk.proof(bed.config.publication, bed.config.author, bed.wiring(), force=True)
    body = plain(to(bed, AUTHOR)[-1])
    assert f"Before this goes out:\n- Warning (the issue still goes out): {WARNED}" in body
    assert "Problem" not in body


def test_the_desk_preview_shows_the_same_section(bed: Bed) -> None:
    hooks = desk.desk_hooks(bed.config.publication, bed.config.author, bed.wiring())
    assert "Before this goes out" not in (hooks.next_issue_html() or "")
    with_base_url(bed, "http://news.example.com")
    html = desk.desk_hooks(bed.config.publication, bed.config.author, bed.wiring()).next_issue_html() or ""
    assert "<strong>Before this goes out</strong>" in html and "Juggling two offers" in html
    assert html.index("Before this goes out") < html.index("Juggling two offers")


# ---- a send the checks stop ----

def test_a_scheduled_send_stopped_by_a_problem_tells_the_author_once_and_mails_no_reader(
        bed: Bed, run_cli: Callable[..., Any]) -> None:
    with_base_url(bed, "http://news.example.com")
    bed.clock[0] = SLOT + timedelta(seconds=30)
    line = weekly_send(bed.config, bed.wiring())()  # the scheduler's job: a line, never an exception
    assert line.startswith("send failed: not sent, nobody was mailed: List-Unsubscribe:"), line
    assert readers(bed) == [] and bed.ledger.last_issue() is None
    [told] = not_sent(bed)
    body = plain(told)
    assert "This week's issue was not sent (2026-11-30 12:00 UTC): a check before the send found a problem, " \
           "and nobody was mailed." in body
    assert PROBLEM in body
    assert bed.wiring().author.decision(SLOT).outcome == "stopped"
    # A restart runs the missed send again, and so does `digest send` by hand: the author is not told twice.
    bed.advance(hours=1)
    assert weekly_send(bed.config, bed.wiring())().startswith("send failed: not sent")
    run = run_cli("--config", bed.config.path, "send", "--yes", clock=bed.now)
    assert run.code == 10 and "nobody was mailed" in run.err
    assert len(not_sent(bed)) == 1 and readers(bed) == []
    assert len(bed.mail.received) == 1


def test_digest_send_by_hand_stopped_by_a_problem_tells_the_author_and_a_dry_run_does_not(
        bed: Bed, run_cli: Callable[..., Any], tmp_path: Path) -> None:
    with_base_url(bed, "http://news.example.com")
    when = SLOT + timedelta(days=2)
    dry = run_cli("--config", bed.config.path, "send", "--dry-run", "--out", tmp_path / "dry", clock=lambda: when)
    assert dry.code == 10 and bed.mail.received == []  # a dry run tells no one
    run = run_cli("--config", bed.config.path, "send", "--yes", clock=lambda: when)
    assert run.code == 10 and run.err.startswith("Error: not sent, nobody was mailed: List-Unsubscribe:")
    assert len(run.err.splitlines()) == 1, run.err
    [told] = not_sent(bed)
    assert PROBLEM in plain(told) and readers(bed) == []


# ---- a warning is recorded ----

def test_a_warning_is_recorded_with_the_issue_and_the_report_and_status_show_it(
        bed: Bed, run_cli: Callable[..., Any]) -> None:
    with_base_url(bed, "http://127.0.0.1:8000")
    bed.clock[0] = SLOT + timedelta(seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    assert len(readers(bed)) == 2
    issue = bed.ledger.get_issue(1)
    assert issue is not None and len(issue.warnings) == 1 and issue.warnings[0].startswith(WARNED)
    [report] = [m for m in to(bed, AUTHOR) if m.message["Subject"] == "Report: issue 1 sent"]
    assert f"Warning before it went out (it went anyway): {WARNED}" in plain(report)
    status = run_cli("--config", bed.config.path, "status", clock=bed.now)
    assert status.code == 0 and f"  Warned before it went out: {WARNED}" in status.out
    history = run_cli("--config", bed.config.path, "history", clock=bed.now).out.splitlines()
    assert history[0].startswith("#1 ") and history[1].startswith(f"  Warned before it went out: {WARNED}"), history


def test_an_issue_with_no_warning_records_none_and_its_report_says_none(bed: Bed) -> None:
    bed.clock[0] = SLOT + timedelta(seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    issue = bed.ledger.get_issue(1)
    assert issue is not None and issue.warnings == ()
    [report] = [m for m in to(bed, AUTHOR) if m.message["Subject"] == "Report: issue 1 sent"]
    assert "Warning" not in plain(report)


# ---- the author's mail failing must not hide why the send stopped ----

def break_author_mail_claims(bed: Bed) -> None:
    """The database fails each write of an author's mail claim, as a full disk or a lock
    held too long would: a trigger on the real SQLite file names a table that is not there."""
    with bed.store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER no_claims BEFORE INSERT ON author_mails "
                             "BEGIN INSERT INTO no_such_table VALUES (1); END")


def test_a_failure_telling_the_author_does_not_hide_why_digest_send_stopped(
        bed: Bed, run_cli: Callable[..., Any]) -> None:
    with_base_url(bed, "http://news.example.com")
    break_author_mail_claims(bed)
    run = run_cli("--config", bed.config.path, "send", "--yes", clock=lambda: SLOT + timedelta(days=2))
    assert run.code == 10, run.err
    assert run.err.splitlines()[-1].startswith("Error: not sent, nobody was mailed: List-Unsubscribe:"), run.err
    assert "the author was not told" in run.err and "Traceback" not in run.err
    assert readers(bed) == [] and not_sent(bed) == []


def test_a_failure_telling_the_author_does_not_hide_why_the_scheduled_send_stopped(bed: Bed) -> None:
    with_base_url(bed, "http://news.example.com")
    break_author_mail_claims(bed)
    bed.clock[0] = SLOT + timedelta(seconds=30)
    line = weekly_send(bed.config, bed.wiring())()
    assert line.startswith("send failed: not sent, nobody was mailed: List-Unsubscribe:"), line
    assert readers(bed) == [] and not_sent(bed) == []


def test_an_unfinished_issue_the_checks_stop_is_not_said_to_have_mailed_nobody(
        bed: Bed, run_cli: Callable[..., Any]) -> None:
    """An issue recorded and left unfinished (a kill, or here a reader's server saying "try
    later") is checked again before it goes on; stopped there, some readers have it already.
    The error said "not sent, nobody was mailed", and the author's mail that too, and that
    its posts roll into the next issue (they do not: it is recorded, and goes on once fixed)."""
    when = SLOT + timedelta(days=2)
    bed.mail.handler.inject("RCPT", "451 4.3.0 Try later")
    first = run_cli("--config", bed.config.path, "send", "--yes", clock=lambda: when)
    assert first.code == 75 and len(readers(bed)) == 1, first.err
    with_base_url(bed, "http://news.example.com")
    again = run_cli("--config", bed.config.path, "send", "--yes", clock=lambda: when + timedelta(hours=1))
    assert again.code == 10, again.err
    assert again.err.splitlines()[-1].startswith(
        "Error: issue 1 did not go on, none of its readers still waiting for it was mailed: List-Unsubscribe:"), again.err
    [told] = not_sent(bed)
    body = plain(told)
    assert "nobody was mailed" not in body and "roll into the next issue" not in body
    assert "Issue 1, recorded but not finished, did not go on" in body and PROBLEM in body
    assert "It goes on to the readers still waiting for it, and this week's issue after it, once this is fixed." in body
    assert len(readers(bed)) == 1
