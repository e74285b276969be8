"""The author's mails besides the proof: the report after each send (once per issue), the
notice that an issue did not go (held, unapproved, or stopped by the checks before the
send: once per weekly slot), and the desk's sign-in link. A job (layer 3): each a
template (core/desk.py: author_mail) and a few lines over the outbox's send_now, claimed
before it goes (adapters/author.py), so that a kill never sends one twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..core.calendar import last_run
from ..core.compose import prepare
from ..core.config import AuthorConfig, Publication
from ..core.desk import Decision, Report, author_mail, desk_on, report_lines, stopped_lines
from ..core.errors import DeliverabilityError, DigestError
from ..core.message import Recipient
from .ports import AuthorParts
from .send_issue import SendOutcome

log = logging.getLogger("digest.send")


def after_send(pub: Publication, author: AuthorConfig, parts: AuthorParts, outcome: SendOutcome) -> None:
    """The report of each issue this send sent to (once per issue)."""
    for sent in outcome.reports:
        send_report(pub, author, parts, sent.issue_id)


def send_report(pub: Publication, author: AuthorConfig, parts: AuthorParts, issue_id: int) -> str | None:
    """Mail the author the report of `issue_id`, at most once; why not, or None when it went."""
    if not desk_on(author) or not author.report:
        return "no report: [author] report is off or email empty"
    now = parts.clock()
    issue = parts.ledger.get_issue(issue_id)
    if issue is None:
        return f"no issue {issue_id}"
    if not parts.author.claim_mail("report", str(issue_id), now):
        return f"the report of issue {issue_id} was sent before"
    before = parts.ledger.get_issue(issue_id - 1)  # the week since the issue before (the first: the week before it)
    period = parts.author.period(before.created_at if before else issue.created_at - timedelta(days=7), now)
    report = Report(issue_id, issue.subject, parts.ledger.counts(issue_id), period["new"], period["unsubscribed"],
                    period["bounced"], period["asked"], period["answered"], f"{pub.base_url}/archive/{issue_id}",
                    period.get("hired", 0), issue.warnings)
    return send_author(pub, author, parts, "report", str(issue_id), f"Report: issue {issue_id} sent",
                        report_lines(report), now, claimed=True)


def tell_not_sent(pub: Publication, author: AuthorConfig, parts: AuthorParts, decision: Decision, why: str,
                  now: datetime) -> None:
    lines = [f"The issue of {decision.slot:%Y-%m-%d %H:%M} UTC was not sent: "
             + ("you held it." if why == "held" else "it was not approved ([author] approval = \"required\")."),
             "Its posts roll into the next issue."]
    if why == "unapproved":
        lines.append(f"Approving it within [schedule] max_late_hours ({pub.schedule.max_late_hours:g} h) sends it at once: "
                     f"{pub.base_url}/desk/ or `digest approve`.")
    send_author(pub, author, parts, "not-sent", decision.slot.isoformat()[:40], "Not sent: this week's issue", lines, now)


def tell_stopped(pub: Publication, author: AuthorConfig, parts: AuthorParts, slot: datetime | None, exc: DeliverabilityError,
                 now: datetime) -> str | None:
    """Tell the author that the checks before a send stopped it and nobody was mailed, with
    each problem's fix: at most once per weekly slot (`slot`; None: the one just passed, for
    `digest send` by hand), however often the scheduler or a hand runs the send again.
    None when the author was told (now or before); else why not, logged. Never raises:
    the caller raises `exc` on, and nothing here may take its place."""
    if not desk_on(author):
        return None
    ref = (slot or last_run(pub.schedule, now)).isoformat()[:40]
    try:
        if not parts.author.claim_mail("not-sent-check", ref, now):
            return None  # told before, for this slot
        why = send_author(pub, author, parts, "not-sent-check", ref, "Not sent: this week's issue",
                          stopped_lines(exc.checks, exc.message, now, exc.unfinished), now, claimed=True)
    except Exception as failed:  # noqa: BLE001 - the database or a template: whatever it is, the
        why = str(failed)  # DeliverabilityError says why nobody was mailed, and goes on
    if why is not None:
        log.warning("the author was not told that the send stopped: %s", why)
    return why


def send_author(pub: Publication, author: AuthorConfig, parts: AuthorParts, kind: str, ref: str, subject: str,
                lines: list[str], now: datetime, *, claimed: bool = False) -> str | None:
    """One short mail to the author, claimed first (at most once per kind and ref)."""
    if not claimed and not parts.author.claim_mail(kind, ref, now):
        return f"the {kind} mail of {ref} was sent before"
    template = prepare(pub, author_mail(subject, lines), bulk=False)
    try:
        sent = parts.outbox.send_now(template, Recipient(author.email), kind=kind, ref=None, now=now)
    except DigestError as exc:
        parts.author.settle_mail(kind, ref, "failed", now)
        return str(exc)
    parts.author.settle_mail(kind, ref, "sent" if sent.refusal is None else "failed", now)
    return sent.refusal


def mail_signin(pub: Publication, author: AuthorConfig, parts: AuthorParts, url: str) -> None:
    """Mail the desk's sign-in link to [author] email, the only address it ever goes to."""
    if not desk_on(author):
        return
    now = parts.clock()
    template = prepare(pub, author_mail("Your sign-in link to the desk", [
        "Open this link to sign in to your newsletter's desk (it works for 30 minutes):", url,
        "If you did not ask for it, ignore this mail: nothing happens without the link."]), bulk=False)
    parts.outbox.send_now(template, Recipient(author.email), kind="desk-signin", ref=None, now=now)
