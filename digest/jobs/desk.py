"""The author's side of a send: the proof, hold / approve / note, the weekly send gated by
the author's decisions, the report after each send, and the questions mail. A job (layer
3): every mail goes through the outbox (send_now), each recorded before it goes
(adapters/author.py), the policy is core/desk.py.

Nothing here changes what readers get when the author does nothing with [author]
approval = "auto": the weekly send then goes as it always did, with no note.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ..core.calendar import last_run
from ..core.compose import prepare
from ..core.config import AuthorConfig, Publication
from ..core.desk import (
    APPROVE,
    HOLD,
    NOTE,
    DeskHooks,
    at_top,
    blocked,
    check_lines,
    checks_html,
    desk_on,
    late_slot,
    proof_due,
    proof_rendered,
    proof_summary,
    upcoming_slot,
)
from ..core.errors import DeliverabilityError, DigestError, InputError
from ..core.message import Recipient, personalise
from ..core.models import DeliveryStatus
from ..core.note import render_note
from ..core.tokens import make_token
from ..core.verdict import problems
from .answers import questions_hook
from .author_mail import after_send, mail_signin, tell_not_sent, tell_stopped
from .build import NOTE_MAX_BYTES, build_issue
from .deliver import SendReport
from .ports import AuthorParts
from .preflight import before_it_goes, offline_checks
from .retry import Sender, report_line
from .send_issue import SendOutcome, send_next, summary

log = logging.getLogger("digest.send")

NO_AUTHOR = "[author] email is empty: no proof, report or author mail"


def action_url(pub: Publication, secret: str, action: str, slot: datetime, now: datetime) -> str:
    """The signed link of a proof's Approve / Hold / Add a note for the issue of `slot`."""
    return f"{pub.base_url}/desk/do/{action}/{make_token(secret, action, int(slot.timestamp()), now=now)}"


def proof(pub: Publication, author: AuthorConfig, parts: AuthorParts, *, force: bool = False) -> str:
    """Mail the author the proof of the next issue when one is due (always, when `force`:
    `digest proof`); one line on what was done ("" when nothing was due)."""
    if not desk_on(author):
        return NO_AUTHOR if force else ""
    now = parts.clock()
    slot = upcoming_slot(pub.schedule, now)
    decision = parts.author.decision(slot)
    if not force and not proof_due(author, decision, now):
        return ""
    if decision.version == 0:
        decision = parts.author.decide(slot, now)
    ledger = parts.ledger
    last = ledger.last_issue()
    _, built = build_issue(pub, parts.fetch, now=now, cutoff=last.cutoff if last else None,
                           sent_ids=ledger.sent_post_ids(), number=ledger.next_issue_id(), note=decision.note,
                           questions=questions_hook(pub, parts.questions, now=now, record=False))
    if built is None:
        return "proof: no new posts, no issue to proof"
    rendered = built.composer.render(())
    if rendered is None:
        return "proof: no new posts, no issue to proof"
    if not parts.author.claim_proof(slot, decision.version, now) and not force:
        return "proof: already sent for the issue as it stands"
    template = built.composer.template(())
    checks = offline_checks(pub, template, built.composer.number, now) if template is not None else []
    lines = proof_summary(posts=len(built.posts), answered=len(built.composer.questions.answered), note=decision.note,
                          readers=parts.store.count("confirmed"), decision=decision, approval=author.approval,
                          stopped=bool(problems(checks)))
    secret = parts.outbox.secret
    links = {"Approve": action_url(pub, secret, APPROVE, slot, now), "Hold": action_url(pub, secret, HOLD, slot, now),
             "Add a note": action_url(pub, secret, NOTE, slot, now)}
    proofed = prepare(pub, proof_rendered(rendered, lines, links, check_lines(checks)), bulk=False)
    sent = parts.outbox.send_now(proofed, author_recipient(pub, author), kind="proof", ref=None, now=now)
    parts.author.proof_sent(slot, decision.version, now)
    return f"proof of {rendered.subject!r} mailed to {author.email}" + (f" ({sent.refusal})" if sent.refusal else "")


def author_recipient(pub: Publication, author: AuthorConfig) -> Recipient:
    """The author's copy of an issue: the links a reader's copy makes personal lead to the
    desk instead (a reader's own settings and unsubscribe links mean nothing to the author,
    and the archive has no copy until the issue is sent)."""
    desk_url = f"{pub.base_url}/desk/"
    return Recipient(author.email, "", unsubscribe_url=desk_url, preferences_url=desk_url,
                     archive_url=f"{desk_url}issue.html")


def hold(pub: Publication, author: AuthorConfig, parts: AuthorParts, reason: str = "", *,
         slot: datetime | None = None) -> str:
    """Hold the next issue: its posts roll into the one after. `slot`: the slot a proof's link
    was signed for (web/desk.py), refused unless it is the next issue's."""
    if not desk_on(author):
        return NO_AUTHOR
    now = parts.clock()
    slot = _only_next(pub, slot, now)
    parts.author.decide(slot, now, held_at=now, hold_reason=reason.strip()[:500], approved_at=None)
    followed = proof(pub, author, parts)
    return f"the issue of {slot:%Y-%m-%d %H:%M} UTC is held" + (f"; {followed}" if followed else "")


def approve(pub: Publication, author: AuthorConfig, parts: AuthorParts, *, slot: datetime | None = None) -> str:
    """Approve the next issue (it may go with approval = "required"); an issue that was not
    sent at its slot (held, or waiting for approval), within [schedule] max_late_hours, goes now.
    `slot`: the slot a proof's link was signed for (web/desk.py): only that slot's issue."""
    if not desk_on(author):
        return NO_AUTHOR
    now = parts.clock()
    late = late_slot(pub.schedule, now)
    outcome = parts.author.decision(late).outcome if late is not None else None
    if late is not None and slot in (None, late) and outcome in ("unapproved", "held"):
        parts.author.decide(late, now, approved_at=now, held_at=None, hold_reason="", outcome="")
        return "approved late: " + gated_send(pub, author, parts, slot=late)
    if late is not None and slot == late and outcome == "":  # its send has not run yet: it will find it approved
        parts.author.decide(late, now, approved_at=now, held_at=None, hold_reason="")
        return f"the issue of {late:%Y-%m-%d %H:%M} UTC is approved"
    slot = _only_next(pub, slot, now)
    parts.author.decide(slot, now, approved_at=now, held_at=None, hold_reason="")
    followed = proof(pub, author, parts)
    return f"the issue of {slot:%Y-%m-%d %H:%M} UTC is approved" + (f"; {followed}" if followed else "")


def set_note(pub: Publication, author: AuthorConfig, parts: AuthorParts, markdown: str, *,
             slot: datetime | None = None) -> str:
    """Give the next issue the author's note (Markdown, the rules of --note; empty: none).
    `slot`: the slot a proof's link was signed for, refused unless it is the next issue's."""
    if not desk_on(author):
        return NO_AUTHOR
    if len(markdown.encode()) > NOTE_MAX_BYTES:
        raise InputError(f"the note is {len(markdown.encode()) / 1000:.0f} KB; keep it under {NOTE_MAX_BYTES // 1000} KB")
    render_note(markdown)  # the same sanitising as --note; fails here, not at the send
    now = parts.clock()
    slot = _only_next(pub, slot, now)
    parts.author.decide(slot, now, note=markdown.strip())
    followed = proof(pub, author, parts)
    return f"the note of the issue of {slot:%Y-%m-%d %H:%M} UTC is saved" + (f"; {followed}" if followed else "")


def _only_next(pub: Publication, slot: datetime | None, now: datetime) -> datetime:
    """The next issue's slot; InputError when `slot` (a proof's link's) is another: the link
    of an issue that went (or was held past its time) must not decide about the next one."""
    upcoming = upcoming_slot(pub.schedule, now)
    if slot is not None and slot != upcoming:
        raise InputError(f"this link is for the issue of {slot:%Y-%m-%d %H:%M} UTC, whose time has passed: it "
                         f"decides nothing about the next one ({upcoming:%Y-%m-%d %H:%M} UTC). "
                         "Use the links of the newest proof, or the desk.")
    return upcoming


def gated_send(pub: Publication, author: AuthorConfig, parts: AuthorParts, *, slot: datetime | None = None) -> str:
    """The weekly send, as the author decided: a held or (with "required") unapproved issue
    does not go and the author is told; otherwise the send of `digest send`, with the note,
    then the report. A problem the checks before the send find stops it (DeliverabilityError,
    raised on) and the author is told, once per slot. One line on what was done."""
    if not desk_on(author):
        return summary(_warned(send_next(pub, parts, retry_deferred=False)))
    now = parts.clock()
    slot = slot or last_run(pub.schedule, now)
    decision = parts.author.decision(slot)
    why = blocked(author, decision)
    if why is not None:
        parts.author.decide(slot, now, changes=False, outcome=why)
        tell_not_sent(pub, author, parts, decision, why, now)
        finished = finish_interrupted(pub, parts)  # a hold stops the new issue, never the crash promise of an old one
        after_send(pub, author, parts, SendOutcome(reports=tuple(finished)))
        return (f"not sent: the issue of {slot:%Y-%m-%d %H:%M} UTC is {why}; its posts roll into the next issue"
                + "".join(f"; {report_line(r)}" for r in finished))
    try:
        outcome = _warned(send_next(pub, parts, retry_deferred=False, note=decision.note))
    except DeliverabilityError as exc:  # the author hears of it once per slot, however often this runs
        try:
            parts.author.decide(slot, now, changes=False, outcome="stopped")
        except DigestError as failed:  # the database: logged; exc still says why nobody was mailed
            log.warning("the slot of %s was not marked stopped: %s", slot.isoformat(), failed)
        tell_stopped(pub, author, parts, slot, exc, now)  # never raises
        raise
    if outcome.report is not None and not outcome.resumed:
        parts.author.decide(slot, now, changes=False, outcome="sent")
    after_send(pub, author, parts, outcome)
    return summary(outcome)


def _warned(outcome: SendOutcome) -> SendOutcome:
    """Log what `digest send` prints after its send (the checks' warnings, the feed's, the CSS
    premailer dropped, the posts max_posts left out): the one line this send returns to
    `digest serve`'s timer keeps none of it."""
    for warning in outcome.warnings:
        log.warning("send: %s", warning)
    return outcome


def finish_interrupted(pub: Publication, parts: AuthorParts) -> list[SendReport]:
    """Finish the issues a crash or a stop left with messages pending, as a send would first."""
    sender = Sender(pub, parts)
    sender.sweep()
    reports = []
    for issue in parts.ledger.unfinished_issues():
        counts = parts.ledger.counts(issue.id)
        if counts.get(DeliveryStatus.PENDING) or counts.get(DeliveryStatus.SENDING):
            reports.append(sender.deliver(issue, resumed=True))
    return reports


def desk_hooks(pub: Publication, author: AuthorConfig, parts: AuthorParts) -> DeskHooks:
    """What `digest serve` hands the web app's desk (core/desk.py: DeskHooks)."""
    def act(action: str, note: str, slot: datetime | None) -> str:
        if action == APPROVE:
            return approve(pub, author, parts, slot=slot)
        if action == HOLD:
            return hold(pub, author, parts, slot=slot)
        return set_note(pub, author, parts, note, slot=slot)

    def note_of() -> str:
        return parts.author.decision(upcoming_slot(pub.schedule, parts.clock())).note

    return DeskHooks(act=act, note_of=note_of, status=lambda: status_line(pub, author, parts),
                     next_issue_html=lambda: next_issue_html(pub, author, parts),
                     moderate=lambda action, qid, value: moderate(parts, action, qid, value),
                     send_signin=lambda url: mail_signin(pub, author, parts, url))


def moderate(parts: AuthorParts, action: str, question_id: int, value: str) -> str:
    """One moderation from the desk, as `digest questions accept|decline|answer|forget` does it."""
    from . import questions as q

    now, book = parts.clock(), parts.questions
    if action == "accept":
        done = q.accept(book, question_id, value if value.strip() else None, now)
        return f"Accepted question {done.id}" + (f" as {done.paraphrase!r}" if done.paraphrase else "")
    if action == "decline":
        return f"Declined question {q.decline(book, question_id, now).id}"
    if action == "answer":
        done = q.link_answer(book, question_id, value, now)
        return f"Question {done.id} will be marked answered by {done.answer_url} when the post is in the feed"
    if action == "forget":
        _, deleted = q.forget(book, book.require(question_id).email)
        return f"Deleted {deleted} question{'s' if deleted != 1 else ''} of that asker"
    raise InputError(f"no such action {action!r}")


def status_line(pub: Publication, author: AuthorConfig, parts: AuthorParts) -> str:
    """The next issue's slot and what the author decided about it, in one line."""
    now = parts.clock()
    slot = upcoming_slot(pub.schedule, now)
    d = parts.author.decision(slot)
    state = ("held" + (f" ({d.hold_reason})" if d.hold_reason else "") if d.held_at is not None else
             "approved" if d.approved_at is not None else
             "waiting for your approval" if author.approval == "required" else "goes at its time unless held")
    return f"Next issue: {slot:%Y-%m-%d %H:%M} UTC, {state}" + ("; with your note" if d.note else "")


def next_issue_html(pub: Publication, author: AuthorConfig, parts: AuthorParts) -> str | None:
    """The next issue as readers of every topic will get it (CSS inlined, no one's links),
    with the note it has now, and above it what the checks before the send would find
    ("Before this goes out", as in the proof); None when nothing is new. Records nothing."""
    now = parts.clock()
    note = parts.author.decision(upcoming_slot(pub.schedule, now)).note
    ledger = parts.ledger
    last = ledger.last_issue()
    _, built = build_issue(pub, parts.fetch, now=now, cutoff=last.cutoff if last else None,
                           sent_ids=ledger.sent_post_ids(), number=ledger.next_issue_id(), note=note,
                           questions=questions_hook(pub, parts.questions, now=now, record=False))
    if built is None:
        return None
    template = built.composer.template(())
    if template is None:
        return None
    before = before_it_goes(pub, template, built.composer.number, now)
    html = personalise(template.html, author_recipient(pub, author), as_html=True)
    return at_top(html, checks_html(before)) if before else html


