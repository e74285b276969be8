"""The author's desk as policy: which weekly slot a decision is for, whether an issue may
go, when a proof is due, and what the author's mails say. Pure core: no network, no
database, no file writes, no clock (the time comes in as an argument).

The author decides about the issue of one weekly slot (its send instant, UTC): hold it,
approve it, give it a note. Nothing is recorded of an issue that does not go, so its posts
are still newer than the last issue sent and roll into the next one by themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from markupsafe import escape

from .calendar import last_run, next_run
from .config import AuthorConfig, ScheduleConfig
from .models import RenderedIssue
from .verdict import Check, Level

APPROVE, HOLD, NOTE = "desk-approve", "desk-hold", "desk-note"
ACTIONS = (APPROVE, HOLD, NOTE)
BEFORE_IT_GOES = "Before this goes out"  # the proof's section on what the checks before the send found
WHO_FIXES = ("Whoever set up your newsletter makes these fixes in its config.toml; "
             "`digest doctor` lists every check.")


@dataclass(frozen=True)
class Decision:
    """What the author decided about the issue of `slot` (nothing yet: version 0)."""

    slot: datetime
    version: int = 0
    proof_claimed: int = 0
    proof_sent: int = 0
    proof_sent_at: datetime | None = None
    held_at: datetime | None = None
    hold_reason: str = ""
    approved_at: datetime | None = None
    note: str = ""
    outcome: str = ""  # "held", "unapproved" (not sent for want of approval), "stopped" (by a check), "sent"


@dataclass(frozen=True)
class Report:
    """The counts the report after a send gives: no per-reader data."""

    issue_id: int
    subject: str
    deliveries: Mapping[str, int]
    new_subscribers: int
    unsubscribed: Mapping[str, int]  # by how: link, mail, complaint, other
    bounced: int
    questions_received: int
    questions_answered: int
    archive_url: str
    got_the_job: int = 0  # readers who paused with "I got the job!": a number, no one named
    warnings: tuple[str, ...] = ()  # what the checks before the send warned of (recorded with the issue)


def desk_on(author: AuthorConfig) -> bool:
    """Whether there is an author to mail (an empty [author] email: no desk, no author mail)."""
    return bool(author.email)


def upcoming_slot(schedule: ScheduleConfig, now: datetime) -> datetime:
    """The slot whose issue the author decides about now: the next weekly send instant."""
    return next_run(schedule, now)


def late_slot(schedule: ScheduleConfig, now: datetime) -> datetime | None:
    """The slot that just passed, while a late approval may still send it ([schedule]
    max_late_hours), else None."""
    slot = last_run(schedule, now)
    return slot if now - slot <= timedelta(hours=schedule.max_late_hours) else None


def blocked(author: AuthorConfig, decision: Decision) -> str | None:
    """Why the issue of `decision`'s slot must not go ("held" or "unapproved"), or None."""
    if not desk_on(author):
        return None
    if decision.held_at is not None:
        return "held"
    if author.approval == "required" and decision.approved_at is None:
        return "unapproved"
    return None


def proof_due(author: AuthorConfig, decision: Decision, now: datetime) -> bool:
    """Whether a proof should go now: within [author] proof_hours of the slot, before it,
    and none yet for the decisions as they stand (each change makes a new version)."""
    if not desk_on(author) or now >= decision.slot:
        return False
    if now < decision.slot - timedelta(hours=author.proof_hours):
        return False
    return decision.proof_sent < max(decision.version, 1)


def expires(schedule: ScheduleConfig, slot: datetime) -> datetime:
    """When the proof's links of `slot` stop working: once a late send is no longer possible."""
    return slot + timedelta(hours=schedule.max_late_hours)


def proof_summary(*, posts: int, answered: int, note: str, readers: int, decision: Decision,
                  approval: str, stopped: bool = False) -> list[str]:
    """The lines at the top of a proof: what is in it and whom it will reach (`stopped`: the
    checks before the send found a problem in it)."""
    state = ("held: it will not go" if decision.held_at is not None else
             f"it will not go until the problem under \"{BEFORE_IT_GOES}\" is fixed" if stopped else
             "approved" if decision.approved_at is not None else
             "waiting for your approval: it goes only once approved" if approval == "required" else
             "it goes at its time unless you hold it")
    lines = [f"Posts: {posts}", f"Questions answered: {answered}",
             f"Your note: {note.strip() if note.strip() else '(none)'}",
             f"Readers it will reach: {readers}", f"Status: {state}"]
    if decision.hold_reason and decision.held_at is not None:
        lines.append(f"Held because: {decision.hold_reason}")
    return lines


def report_lines(report: Report) -> list[str]:
    """The report's body, one count a line."""
    d, u = report.deliveries, report.unsubscribed
    return [
        f"Issue {report.issue_id}: {report.subject}",
        f"Delivered: {d.get('sent', 0)}",
        f"Deferred: {d.get('deferred', 0)}",
        f"Failed: {d.get('failed', 0)}",
        f"New subscribers: {report.new_subscribers}",
        f"Unsubscribed by link: {u.get('link', 0)}",
        f"Unsubscribed by mail: {u.get('mail', 0)}",
        f"Unsubscribed by complaint: {u.get('complaint', 0)}",
        f"Bounced: {report.bounced}",
        f"Questions received: {report.questions_received}",
        f"Questions answered: {report.questions_answered}",
        f"Readers who got the job: {report.got_the_job}",
        f"In the archive: {report.archive_url}",
        *(f"Warning before it went out (it went anyway): {line}" for line in report.warnings),
    ]


def check_lines(checks: Iterable[Check]) -> list[str]:
    """Each problem and warning of the checks a send runs first (jobs/preflight.py), in
    words, with its fix; [] when all is ok."""
    lines = []
    for c in checks:
        fix = f" To fix it: {c.fix.rstrip('.')}." if c.fix else ""
        if c.level is Level.PROBLEM:
            lines.append(f"Problem (the issue does not go out until it is fixed): {c.name}: {c.finding}.{fix}")
        elif c.level is Level.WARNING:
            lines.append(f"Warning (the issue still goes out): {c.name}: {c.finding}.{fix}")
    return lines


def stopped_lines(checks: Sequence[Check], why: str, now: datetime, unfinished: int | None = None) -> list[str]:
    """The "not sent" mail of a send the checks stopped: each problem with its fix (`why`,
    the error's line, when none came with it), and that nobody was mailed; or, when it was
    the `unfinished` issue going on (some readers may have it), that none still waiting was."""
    if unfinished is not None:
        return [f"Issue {unfinished}, recorded but not finished, did not go on ({now:%Y-%m-%d %H:%M} UTC): a check "
                "before the send found a problem, and none of its readers still waiting for it was mailed.",
                *(check_lines(c for c in checks if c.level is Level.PROBLEM) or [why]),
                "It goes on to the readers still waiting for it, and this week's issue after it, once this is fixed.",
                WHO_FIXES]
    return [f"This week's issue was not sent ({now:%Y-%m-%d %H:%M} UTC): a check before the send found a problem, "
            "and nobody was mailed.",
            *(check_lines(c for c in checks if c.level is Level.PROBLEM) or [why]),
            "Its posts roll into the next issue that goes out, once this is fixed.", WHO_FIXES]


def proof_rendered(rendered: RenderedIssue, lines: list[str], links: Mapping[str, str],
                   before: Sequence[str] = ()) -> RenderedIssue:
    """The issue as readers get it, its subject starting "[Proof]", with the summary, what
    the checks before the send found (`before`: check_lines; nothing when all is ok) and
    the Approve / Hold / Add a note links at the top of both bodies."""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    buttons = " | ".join(f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in links.items())
    block = (f'<div style="border:2px solid #b45309;padding:12px;margin:12px;font-family:sans-serif">'
             f"<strong>Proof: this is the issue as your readers will get it.</strong><ul>{items}</ul>"
             f"{checks_html(before)}<p>{buttons}</p></div>")
    html = at_top(rendered.html, block)
    text = ("PROOF: this is the issue as your readers will get it.\n" + "\n".join(lines) + "\n"
            + checks_text(before)
            + "\n".join(f"{label}: {url}" for label, url in links.items()) + "\n\n" + "-" * 40 + "\n\n" + rendered.text)
    return replace(rendered, subject=f"[Proof] {rendered.subject}", html=html, text=text)


def checks_html(before: Sequence[str]) -> str:
    """The "Before this goes out" section of a proof or the desk's preview ("" when all is ok)."""
    if not before:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in before)
    return f"<p><strong>{BEFORE_IT_GOES}</strong></p><ul>{items}</ul><p>{escape(WHO_FIXES)}</p>"


def checks_text(before: Sequence[str]) -> str:
    """The same section as plain text ("" when all is ok)."""
    if not before:
        return ""
    return f"\n{BEFORE_IT_GOES}:\n" + "".join(f"- {line}\n" for line in before) + WHO_FIXES + "\n\n"


def at_top(html: str, block: str) -> str:
    """`html` with `block` just inside its <body> (at the start when it has none)."""
    match = re.search(r"<body[^>]*>", html, flags=re.IGNORECASE)
    at = match.end() if match else 0
    return html[:at] + block + html[at:]


def author_mail(subject: str, lines: list[str]) -> RenderedIssue:
    """A plain short mail to the author (the report, a notice that an issue did not go)."""
    html = "<html><body>" + "".join(f"<p>{_linked(line)}</p>" for line in lines) + "</body></html>"
    return RenderedIssue(subject=subject, html=html, text="\n".join(lines) + "\n")


def _linked(line: str) -> str:
    """A line, escaped, whose closing URL is a link."""
    match = re.match(r"^(.*?)(https?://\S+)$", line)
    if match is None:
        return str(escape(line))
    return f'{escape(match.group(1))}<a href="{escape(match.group(2))}">{escape(match.group(2))}</a>'


@dataclass(frozen=True)
class DeskHooks:
    """What the desk's pages ask of the jobs (web/desk_pages.py; built by `digest serve`
    from jobs/desk.py over the process's wiring): the web app never mails or builds an
    issue itself. Each is blocking (the pages run them in a thread)."""

    act: Callable[[str, str, datetime | None], str]  # (action, note, the slot of a proof's link, None from the
                                                     # desk): hold, approve or note the next issue
    note_of: Callable[[], str]                     # the next issue's note as it stands
    status: Callable[[], str]                      # one line: the next issue's slot and the author's decisions
    next_issue_html: Callable[[], str | None]      # the next issue as readers will get it (None: no new posts)
    moderate: Callable[[str, int, str], str]       # (accept|decline|answer|forget, question id, value)
    send_signin: Callable[[str], None]             # mail this sign-in URL to [author] email
