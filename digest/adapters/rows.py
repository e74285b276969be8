"""A subscribers row as a Subscriber record. Adapter-side: the store, the choices and the
audience read subscribers through it.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.models import Consent, Subscriber

_CHOICES = ("frequency", "pause_reason", "paused_at", "paused_until", "away_issues", "away_since", "away_issue",
            "new_email", "new_email_at")  # readers' choices (core/audience.py), read with every subscriber


def subscriber(row: Any) -> Subscriber:
    """A subscribers row as the record the program passes around."""
    consent = None
    if row.consent_at is not None:
        consent = Consent(row.consent_at, row.consent_method, row.consent_ip, row.consent_user_agent, row.consent_version)
    return Subscriber(
        id=row.id, email=row.email, name=row.name, status=row.status,
        topics=tuple(json.loads(row.topics)) if row.topics else (), consent=consent, created_at=row.created_at,
        confirmed_at=row.confirmed_at, unsubscribed_at=row.unsubscribed_at, unsubscribed_how=row.unsubscribed_how,
        confirm_nonce=row.confirm_nonce, confirm_sent_at=row.confirm_sent_at, confirmed_how=row.confirmed_how,
        **{name: getattr(row, name) for name in _CHOICES},
    )
