"""Signed links: confirm, unsubscribe, preferences. Pure core: no network, no database,
no file writes, no clock (the time comes in as an argument).

A token carries its purpose (as the signing salt, so one purpose's token never passes
for another's), the subscriber's id (never the address: itsdangerous payloads are only
base64), when it was made, and for confirmation a nonce that the store clears once used.
The secret comes in as an argument (adapters/secret.py finds it: environment or file).

A send signs two links per message, so Links keeps one signer per purpose, and encodes
the payload itself: itsdangerous's URL-safe serializer tries zlib on every payload (most
of a token's cost) and keeps the result only when it is shorter, which a payload of an id
and a time almost never is. The tokens are the serializer's own uncompressed form, which
its loads (read_token) reads like the compressed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, Signer, URLSafeSerializer, base64_encode

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


def _signer(secret: str, purpose: str) -> Signer:
    return _serializer(secret, purpose).make_signer()


def _sign(signer: Signer, subscriber_id: int, now: datetime, nonce: str = "") -> str:
    """What URLSafeSerializer.dumps makes of the payload, never compressed."""
    payload: list[object] = [subscriber_id, int(now.timestamp())]
    if nonce:
        payload.append(nonce)
    return signer.sign(base64_encode(json.dumps(payload, separators=(",", ":")))).decode("ascii")


def make_token(secret: str, purpose: str, subscriber_id: int, *, now: datetime, nonce: str = "") -> str:
    """A URL-safe signed token for `purpose` and one subscriber."""
    return _sign(_signer(secret, purpose), subscriber_id, now, nonce)


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
    """Signed links for one subscriber; the signers are made once, for every message."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.base = base_url
        self.secret = secret
        self._signers = {purpose: _signer(secret, purpose) for purpose in PURPOSES}

    def confirm(self, sub: Subscriber, now: datetime) -> str:
        return f"{self.base}/confirm/{_sign(self._signers['confirm'], sub.id, now, sub.confirm_nonce)}"

    def unsubscribe(self, subscriber_id: int, now: datetime) -> str:
        return f"{self.base}/unsubscribe/{_sign(self._signers['unsubscribe'], subscriber_id, now)}"

    def preferences(self, subscriber_id: int, now: datetime) -> str:
        return f"{self.base}/preferences/{_sign(self._signers['preferences'], subscriber_id, now)}"
