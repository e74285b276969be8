"""The author's changes to the list from the command line: add (mailing the confirmation
link to whoever still has to confirm), confirm by hand, send the link again. A job
(layer 3): the CLI formats what these return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..adapters.secret import load_or_create_secret
from ..adapters.smtp import SMTPMailer
from ..adapters.store import Store
from ..core.config import Config
from ..core.errors import InputError
from ..core.models import Consent, Subscriber
from ..core.tokens import Links
from .mail import mail_confirmation
from .ports import Mailer


@dataclass(frozen=True)
class Change:
    """What happened to one address: the subscriber now, and what was done."""

    subscriber: Subscriber
    done: str              # "added", "confirmed", "mailed", "unchanged"
    mail_problem: str = ""  # why the confirmation mail did not go, when it did not


def add_subscriber(config: Config, store: Store, email: str, key: str, name: str, topics: tuple[str, ...], *,
                   confirmed: bool, now: datetime, mailer: Mailer | None = None) -> Change:
    """Add an address. Unconfirmed, it gets the confirmation link at once; --confirmed on a
    pending address confirms it (recorded as confirmed by the author)."""
    sub, created = store.add(email, key, name, topics, confirmed=confirmed, now=now, consent=Consent(at=now, method="cli"))
    if not created:
        if confirmed and sub.status == "pending":
            return _confirm(store, sub, now)
        return Change(sub, "unchanged")
    if confirmed:
        return Change(sub, "added")
    problem = _mail(config, store, sub, now, mailer)
    return Change(store.get(sub.id) or sub, "added", problem)


def confirm_subscriber(store: Store, key: str, *, now: datetime) -> Change:
    """The author confirms a pending address by hand."""
    sub = _find(store, key)
    if sub.status != "pending":
        return Change(sub, "unchanged")
    return _confirm(store, sub, now)


def resend_confirmation(config: Config, store: Store, key: str, *, now: datetime, mailer: Mailer | None = None) -> Change:
    """Mail a pending address its confirmation link again."""
    sub = _find(store, key)
    if sub.status != "pending":
        return Change(sub, "unchanged")
    problem = _mail(config, store, sub, now, mailer)
    return Change(store.get(sub.id) or sub, "mailed", problem)


def _find(store: Store, key: str) -> Subscriber:
    sub = store.find(key)
    if sub is None:
        raise InputError(f"{key} is not on the list")
    return sub


def _confirm(store: Store, sub: Subscriber, now: datetime) -> Change:
    done = store.confirm_by_author(sub.id, now=now)
    return Change(done, "confirmed") if done else Change(store.get(sub.id) or sub, "unchanged")


def _mail(config: Config, store: Store, sub: Subscriber, now: datetime, mailer: Mailer | None) -> str:
    ready = store.mark_confirmation_sent(sub.id, now=now)
    if ready is None:
        return "no longer pending"
    links = Links(config.web.base_url, load_or_create_secret(config))
    return mail_confirmation(config, ready, links, now, mailer or SMTPMailer(config.smtp)) or ""
