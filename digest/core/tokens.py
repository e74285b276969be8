"""Signed links: confirm, unsubscribe, preferences. Pure core: no network, no database,
no file writes, no clock (the time comes in as an argument).

A token carries its purpose (as the signing salt, so one purpose's token never passes
for another's), the subscriber's id (never the address: itsdangerous payloads are only
base64), when it was made, and for confirmation a nonce that the store clears once used.
The secret comes in as an argument (adapters/secret.py finds it: environment or file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from .errors import TokenError
from .models import Subscriber

PURPOSES = ("confirm", "unsubscribe", "preferences")


@dataclass(frozen=True)
class TokenData:
    purpose: str
    subscriber_id: int
    issued_at: int
    nonce: str = ""


def _serializer(secret: str, purpose: str) -> URLSafeSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeSerializer(secret, salt=f"digest.{purpose}")


def make_token(secret: str, purpose: str, subscriber_id: int, *, now: datetime, nonce: str = "") -> str:
    """A URL-safe signed token for `purpose` and one subscriber."""
    payload: list[object] = [subscriber_id, int(now.timestamp())]
    if nonce:
        payload.append(nonce)
    return str(_serializer(secret, purpose).dumps(payload))


def read_token(secret: str, token: str, purpose: str, *, now: datetime, max_age: timedelta | None = None) -> TokenData:
    """The token's contents, or TokenError if forged, tampered, of another purpose or expired."""
    try:
        payload = _serializer(secret, purpose).loads(token)
    except BadData as exc:
        raise TokenError("this link is not valid") from exc
    if not (isinstance(payload, list) and 2 <= len(payload) <= 3 and all(isinstance(x, (int, str)) for x in payload)
            and isinstance(payload[0], int) and isinstance(payload[1], int)):
        raise TokenError("this link is not valid")
    issued = int(payload[1])
    if max_age is not None and now.timestamp() - issued > max_age.total_seconds():
        raise TokenError("this link has expired")
    return TokenData(purpose, int(payload[0]), issued, str(payload[2]) if len(payload) == 3 else "")


class Links:
    """Signed links for one subscriber."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.base = base_url
        self.secret = secret

    def confirm(self, sub: Subscriber, now: datetime) -> str:
        return f"{self.base}/confirm/{make_token(self.secret, 'confirm', sub.id, now=now, nonce=sub.confirm_nonce)}"

    def unsubscribe(self, subscriber_id: int, now: datetime) -> str:
        return f"{self.base}/unsubscribe/{make_token(self.secret, 'unsubscribe', subscriber_id, now=now)}"

    def preferences(self, subscriber_id: int, now: datetime) -> str:
        return f"{self.base}/preferences/{make_token(self.secret, 'preferences', subscriber_id, now=now)}"
