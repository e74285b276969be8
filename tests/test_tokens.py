"""Signed links: what Links and make_token sign is what itsdangerous itself signs (never
compressed), and read_token reads it back for its purpose only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from digest.core.errors import TokenError
from digest.core.models import Subscriber
from digest.core.tokens import Links, make_token, read_token

SECRET = "token-secret-0123456789abcdef"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=2**31 - 1), st.text(alphabet="0123456789abcdef", max_size=64) | st.text(max_size=20),
       st.sampled_from(["confirm", "unsubscribe", "preferences"]))
def test_tokens_are_the_serializer_s_own(subscriber_id: int, nonce: str, purpose: str) -> None:
    payload: list[object] = [subscriber_id, int(NOW.timestamp())] + ([nonce] if nonce else [])
    made = make_token(SECRET, purpose, subscriber_id, now=NOW, nonce=nonce)
    serializer = URLSafeSerializer(SECRET, salt=f"digest.{purpose}")
    theirs = serializer.dumps(payload)
    assert made == theirs or theirs.startswith(".")  # the same, unless zlib shortened theirs
    assert serializer.loads(made) == payload
    data = read_token(SECRET, made, purpose, now=NOW)
    assert (data.subscriber_id, data.nonce) == (subscriber_id, nonce)


def test_links_sign_each_purpose_apart() -> None:
    links = Links("https://news.example", SECRET)
    sub = Subscriber(id=7, email="a@example.com", name="", status="pending", topics=(), consent=None, created_at=NOW,
                     confirm_nonce="abc")
    unsubscribe = links.unsubscribe(7, NOW).rpartition("/")[2]
    assert unsubscribe == make_token(SECRET, "unsubscribe", 7, now=NOW)
    assert read_token(SECRET, links.preferences(7, NOW).rpartition("/")[2], "preferences", now=NOW).subscriber_id == 7
    assert read_token(SECRET, links.confirm(sub, NOW).rpartition("/")[2], "confirm", now=NOW).nonce == "abc"
    with pytest.raises(TokenError):
        read_token(SECRET, unsubscribe, "preferences", now=NOW)
    with pytest.raises(TokenError, match="expired"):
        read_token(SECRET, unsubscribe, "unsubscribe", now=NOW + timedelta(days=2), max_age=timedelta(days=1))
