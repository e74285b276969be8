"""VERP-style envelope senders: each message's MAIL FROM names its issue and subscriber,
signed, so that a bounce says whom it is about even when its report is garbled. Pure
core: no network, no database, no clock, no file writes; the secret comes in.

With [newsletter] return_path = "bounces@example.com", the message of issue 12 to
subscriber 345 goes out with the envelope sender "bounces+c-9l-<signature>@example.com":
the receiving server writes it into Return-Path, and a bounce comes back to it. The token
is the two ids in base 36 and 16 base-32 characters (80 bits) of an HMAC keyed by
itsdangerous from the link secret with the purpose "bounce" as salt, so a bounce token
never passes for a link token. Everything is lower-case: some servers fold the local part.
At most 30 characters, so the local part stays within SMTP's 64 when return_path's own
is at most MAX_RETURN_PATH_LOCAL (config.py checks it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from itsdangerous import Signer

from .message import sender_address

SALT = "digest.bounce"
SIGNATURE_CHARS = 16
MAX_ID = 2**31 - 1
_MAX_TOKEN = 2 * len("zik0zj") + 2 + SIGNATURE_CHARS  # zik0zj is MAX_ID in base 36
MAX_RETURN_PATH_LOCAL = 64 - 1 - _MAX_TOKEN
_TOKEN = re.compile(rf"^([0-9a-z]{{1,6}})-([0-9a-z]{{1,6}})-([a-z2-7]{{{SIGNATURE_CHARS}}})$")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def _signature(secret: str, value: str) -> str:
    signer = Signer(secret, salt=SALT, key_derivation="hmac", digest_method=hashlib.sha256)
    digest = signer.algorithm.get_signature(signer.derive_key(), value.encode("ascii"))
    return base64.b32encode(digest).decode("ascii").lower()[:SIGNATURE_CHARS]


def make_bounce_token(secret: str, issue_id: int, subscriber_id: int) -> str:
    """The signed token of one message: "<issue>-<subscriber>-<signature>"."""
    if not (0 < issue_id <= MAX_ID and 0 < subscriber_id <= MAX_ID):
        raise ValueError("ids out of range")
    value = f"{_base36(issue_id)}-{_base36(subscriber_id)}"
    return f"{value}-{_signature(secret, value)}"


def read_bounce_token(secret: str, token: str) -> tuple[int, int] | None:
    """(issue id, subscriber id) of a token we made, or None for anything else."""
    m = _TOKEN.match(token.strip().lower())
    if not m:
        return None
    value = f"{m.group(1)}-{m.group(2)}"
    if not hmac.compare_digest(_signature(secret, value), m.group(3)):
        return None
    issue_id, subscriber_id = int(m.group(1), 36), int(m.group(2), 36)
    if not (0 < issue_id <= MAX_ID and 0 < subscriber_id <= MAX_ID):
        return None
    return issue_id, subscriber_id


def envelope_sender(from_: str, return_path: str, secret: str, issue_id: int, subscriber_id: int) -> str:
    """The MAIL FROM of one newsletter message: the VERP address when `return_path` is
    set, else the From address (as before)."""
    if not return_path:
        return sender_address(from_)
    local, _, domain = return_path.rpartition("@")
    return f"{local}+{make_bounce_token(secret, issue_id, subscriber_id)}@{domain}"


def token_in(address: str, return_path: str) -> str | None:
    """The token of a VERP address made from `return_path` ("bounces+TOKEN@domain"), or None."""
    if not return_path or "@" not in address:
        return None
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base_local, _, base_domain = return_path.rpartition("@")
    prefix = base_local.lower() + "+"
    if domain.lower() != base_domain.lower() or not local.lower().startswith(prefix):
        return None
    return local[len(prefix):].lower() or None
