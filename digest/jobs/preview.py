"""Preview the next issue: files to look at, and one test copy by mail. A job (layer 3):
reads the ledger and the questions it is handed (none when there is no store yet: a
preview never makes one), fetches the feed, writes the preview files; changes no state.
The test copy goes through the outbox like every mail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from ..core.compose import prepare, preview_recipient, subscriber_recipient
from ..core.config import Publication
from ..core.deliverability import GMAIL_CLIP_BYTES
from ..core.errors import InputError, SendError
from ..core.message import Recipient, build_message, make_message_id, personalise, sender_address, sender_domain
from ..core.subscriptions import normalise_email
from ..core.tokens import Links
from ..core.verdict import Level
from .answers import questions_hook
from .build import BuiltIssue, build_issue
from .outbox import Outbox
from .ports import Fetch, IssueLedger, QuestionBook, Subscribers
from .preflight import offline_checks

__all__ = ["GMAIL_CLIP_BYTES", "Preview", "PreviewHistory", "build_preview", "preview_history", "send_test_copy",
           "write_preview"]



@dataclass(frozen=True)
class Preview:
    html_path: Path
    text_path: Path
    eml_path: Path
    issue: BuiltIssue
    html_bytes: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class PreviewHistory:
    """What the next issue starts after: the last issue's cut-off and the posts it sent;
    and the number it will be recorded with."""

    cutoff: datetime | None = None
    sent_ids: frozenset[str] = frozenset()
    next_number: int = 1


def preview_history(ledger: IssueLedger | None) -> PreviewHistory:
    """The ledger's history; none when there is no store (no issue was sent yet)."""
    if ledger is None:
        return PreviewHistory()
    last = ledger.last_issue()
    return PreviewHistory(last.cutoff if last else None, ledger.sent_post_ids(), ledger.next_issue_id())


def build_preview(pub: Publication, fetch: Fetch, *, now: datetime, feed: str | None = None, every_post: bool = False,
                  history: PreviewHistory | None = None, note: str = "",
                  questions: QuestionBook | None = None) -> BuiltIssue | None:
    """The issue `digest send` would build next (every post with `every_post`), numbered as
    the send will number it, with the readers' `questions` it would show (none: no store);
    None when it would hold nothing. Nothing is marked."""
    history = history or PreviewHistory()
    _, issue = build_issue(pub, fetch, now=now, feed=feed, every_post=every_post, cutoff=history.cutoff,
                           sent_ids=history.sent_ids, number=history.next_number, note=note,
                           questions=None if questions is None else questions_hook(pub, questions, now=now,
                                                                                  record=False))
    return issue


def write_preview(pub: Publication, issue: BuiltIssue, out_dir: Path, *, now: datetime) -> Preview:
    """Write issue.html, issue.txt and issue.eml into `out_dir`; each file appears whole."""
    recipient = preview_recipient(pub, sender_address(pub.newsletter.from_), issue.composer.number)
    template = issue.template
    html = personalise(template.html, recipient, as_html=True)
    text = personalise(template.text, recipient, as_html=False)
    eml = build_message(template, recipient, date=now,
                        message_id=make_message_id(sender_domain(pub.newsletter.from_), "preview"))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = (out_dir / "issue.html", out_dir / "issue.txt", out_dir / "issue.eml")
        for path, data in zip(paths, (html.encode("utf-8"), text.encode("utf-8"), eml), strict=True):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot write the preview: {exc.strerror}") from exc
    size = len(html.encode("utf-8"))
    warnings = list(issue.fetched.warnings) + issue.composer.warnings
    for check in offline_checks(pub, template, issue.composer.number, now):  # what digest send would say
        if check.level is not Level.OK:
            stop = ": digest send would stop here" if check.level is Level.PROBLEM else ""
            warnings.append(f"{check.name}: {check.finding}{stop} ({check.fix})")
    return Preview(*paths, issue=issue, html_bytes=size, warnings=tuple(warnings))


def send_test_copy(pub: Publication, outbox: Outbox, issue: BuiltIssue, to: str, *, now: datetime,
                   subscribers: Subscribers | None = None) -> None:
    """Mail one faithful copy of the issue to `to` through the outbox: "[Test]" before its
    subject, built and DKIM-signed as every message is, and links that work for the author
    (their own signed links when `to` is one of `subscribers`; else the archive and the
    subscribe page). SendError if refused."""
    rendered = issue.composer.render()
    if rendered is None:
        raise InputError("the issue holds nothing to send as a test copy")
    template = prepare(pub, replace(rendered, subject=f"[Test] {rendered.subject}"))
    recipient = _test_recipient(pub, to, now, outbox.secret, subscribers)
    sent = outbox.send_now(template, recipient, kind="test", ref=None, now=now)
    if sent.refusal is not None:
        raise SendError(f"{outbox.host}:{outbox.port}", f"the test copy to {to} was {sent.refusal}")


def _test_recipient(pub: Publication, to: str, now: datetime, secret: str, subscribers: Subscribers | None) -> Recipient:
    """A subscriber's own links when `to` is on the list (they work: preferences, unsubscribe);
    else pages that exist for anyone: the subscribe page and the archive."""
    base = pub.base_url
    sub = subscribers.find(normalise_email(to)[1]) if subscribers is not None else None
    if sub is not None and sub.status in ("pending", "confirmed"):
        return subscriber_recipient(pub, sub, Links(base, secret), now=now)
    return Recipient(email=to, name="", unsubscribe_url=f"{base}/subscribe", preferences_url=f"{base}/subscribe",
                     archive_url=f"{base}/archive/")
