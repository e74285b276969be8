"""The author's changes to the list from the command line: add (mailing the confirmation
link to whoever still has to confirm), confirm by hand, send the link again; and one
person's data, for their access request. A job (layer 3): the CLI formats what these
return.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ..core.config import Publication
from ..core.errors import InputError
from ..core.models import Consent, Subscriber
from ..core.subscriptions import normalise_email
from .mail import mail_confirmation
from .ports import MailParts, QuestionBook, Subscribers


@dataclass(frozen=True)
class Change:
    """What happened to one address: the subscriber now, and what was done."""

    subscriber: Subscriber
    done: str              # "added", "confirmed", "mailed", "unchanged"
    mail_problem: str = ""  # why the confirmation mail did not go, when it did not


def add_subscriber(pub: Publication, parts: MailParts, email: str, key: str, name: str, topics: tuple[str, ...], *,
                   confirmed: bool, now: datetime) -> Change:
    """Add an address. Unconfirmed, it gets the confirmation link at once; --confirmed on a
    pending address confirms it (recorded as confirmed by the author)."""
    store = parts.store
    sub, created = store.add(email, key, name, topics, confirmed=confirmed, now=now, consent=Consent(at=now, method="cli"))
    if not created:
        if confirmed and sub.status == "pending":
            return _confirm(store, sub, now)
        return Change(sub, "unchanged")
    if confirmed:
        return Change(sub, "added")
    problem = _mail(pub, parts, sub, now)
    return Change(store.get(sub.id) or sub, "added", problem)


def confirm_subscriber(store: Subscribers, key: str, *, now: datetime) -> Change:
    """The author confirms a pending address by hand."""
    sub = _find(store, key)
    if sub.status != "pending":
        return Change(sub, "unchanged")
    return _confirm(store, sub, now)


def resend_confirmation(pub: Publication, parts: MailParts, key: str, *, now: datetime) -> Change:
    """Mail a pending address its confirmation link again."""
    sub = _find(parts.store, key)
    if sub.status != "pending":
        return Change(sub, "unchanged")
    problem = _mail(pub, parts, sub, now)
    return Change(parts.store.get(sub.id) or sub, "mailed", problem)


def _find(store: Subscribers, key: str) -> Subscriber:
    sub = store.find(key)
    if sub is None:
        raise InputError(f"{key} is not on the list")
    return sub


def _confirm(store: Subscribers, sub: Subscriber, now: datetime) -> Change:
    done = store.confirm_by_author(sub.id, now=now)
    return Change(done, "confirmed") if done else Change(store.get(sub.id) or sub, "unchanged")


def _mail(pub: Publication, parts: MailParts, sub: Subscriber, now: datetime) -> str:
    ready = parts.store.mark_confirmation_sent(sub.id, now=now)
    if ready is None:
        return "no longer pending"
    return mail_confirmation(pub, parts, ready, now) or ""


_NOT_EXPORTED = ("email_key", "dup_key", "featured_key")
# A question linked to this reader by their own copy's Message-ID but written from another
# address (their copy was forwarded): its writer's address and name are not this reader's.
_THEIRS = ("email", "name", "display_name")


def person_export(store: Subscribers, questions: QuestionBook, email: str, *, now: datetime) -> dict[str, Any]:
    """Everything kept about one address: the subscription with its consent record, and
    every question it asked (or that a reply of theirs was linked to), with its notice.
    InputError when nothing at all is kept."""
    address, key = normalise_email(email)
    sub = store.find(key)
    asked = questions.of_address(key)
    if sub is None and not asked:
        raise InputError(f"nothing is kept about {address}: not on the list, no question")
    subscription = None
    if sub is not None:
        subscription = {k: v for k, v in asdict(sub).items() if k not in ("confirm_nonce", "id")}
        subscription["topics"] = list(sub.topics)
    data: dict[str, Any] = _jsonable({
        "address": address, "exported_at": now, "subscription": subscription,
        "questions": [{**{k: v for k, v in asdict(q).items() if k not in _NOT_EXPORTED + (() if q.email_key == key else _THEIRS)},
                       "notice": dict(zip(("status", "last_reply"), questions.notice_status(q.id) or ("none", ""), strict=True))}
                      for q in asked],
    })
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
