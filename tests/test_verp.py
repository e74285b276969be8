"""VERP envelope senders: signed, short enough for a local part, read back only when ours."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ANY_DAY
from hypothesis import given
from hypothesis import strategies as st
from mailserver import MailServer
from sending import SECRET as SENDING_SECRET
from sending import START, Bed
from test_config import SHIPPED, shipped

from digest.adapters.store import Store
from digest.core.config import load_config, read_config
from digest.core.errors import ConfigError
from digest.core.verp import (
    MAX_ID,
    MAX_RETURN_PATH_LOCAL,
    envelope_sender,
    make_bounce_token,
    read_bounce_token,
    token_in,
)

SECRET = "verp-secret-0123456789abcdef"
FROM = "The Wise Job Search <newsletter@example.com>"


def test_without_return_path_the_envelope_sender_is_the_from_address() -> None:
    assert envelope_sender(FROM, "", SECRET, 1, 2) == "newsletter@example.com"


def test_with_return_path_each_message_gets_its_own_signed_address() -> None:
    a = envelope_sender(FROM, "bounces@example.com", SECRET, 12, 345)
    b = envelope_sender(FROM, "bounces@example.com", SECRET, 12, 346)
    assert a.startswith("bounces+c-9l-") and a.endswith("@example.com") and a != b
    token = token_in(a, "bounces@example.com")
    assert token is not None and read_bounce_token(SECRET, token) == (12, 345)


@given(st.integers(1, MAX_ID), st.integers(1, MAX_ID))
def test_tokens_round_trip_and_fit_a_local_part(issue: int, subscriber: int) -> None:
    token = make_bounce_token(SECRET, issue, subscriber)
    assert read_bounce_token(SECRET, token) == (issue, subscriber)
    assert token == token.lower() and len(token) <= 64 - 1 - MAX_RETURN_PATH_LOCAL
    local = "b" * MAX_RETURN_PATH_LOCAL
    assert len(envelope_sender(FROM, f"{local}@example.com", SECRET, issue, subscriber).split("@")[0]) <= 64


def test_a_server_that_upper_cases_the_local_part_does_not_break_the_token() -> None:
    address = envelope_sender(FROM, "bounces@example.com", SECRET, 3, 4).upper()
    token = token_in(address, "bounces@example.com")
    assert token is not None and read_bounce_token(SECRET, token) == (3, 4)


@pytest.mark.parametrize("change", ["secret", "ids", "signature", "purpose"])
def test_forged_or_foreign_tokens_are_refused(change: str) -> None:
    token = make_bounce_token(SECRET, 7, 8)
    if change == "secret":
        assert read_bounce_token("another-secret-0123456789", token) is None
    elif change == "ids":
        assert read_bounce_token(SECRET, "7-9-" + token.split("-")[2]) is None
    elif change == "signature":
        last = token[-1]
        assert read_bounce_token(SECRET, token[:-1] + ("a" if last != "a" else "b")) is None
    else:  # an unsubscribe link's token is no bounce token
        from datetime import UTC, datetime

        from digest.core.tokens import make_token

        assert read_bounce_token(SECRET, make_token(SECRET, "unsubscribe", 8, now=datetime.now(UTC))) is None


@pytest.mark.parametrize("address", ["bounces@example.com", "other+x@example.com", "bounces+x@example.org", "nonsense"])
def test_addresses_that_are_not_ours_carry_no_token(address: str) -> None:
    assert token_in(address, "bounces@example.com") is None


def test_return_path_with_a_long_local_part_is_one_config_error() -> None:
    data = shipped()
    data["newsletter"]["return_path"] = "b" * (MAX_RETURN_PATH_LOCAL + 1) + "@example.com"
    with pytest.raises(ConfigError, match=r"\[newsletter\] return_path has value .*at most 33 characters"):
        load_config(data, {}, SHIPPED)
    data["newsletter"]["return_path"] = "Bounces <bounces@example.com>"
    with pytest.raises(ConfigError, match=r"\[newsletter\] return_path has value .*not a bare email address"):
        load_config(data, {}, SHIPPED)


def test_digest_send_puts_each_readers_token_in_mail_from(write_config: Callable[..., Path], mail_server: MailServer) -> None:
    # the send path's one change: MAIL FROM comes from envelope_sender()
    path = write_config(smtp_port=mail_server.port, first_issue_days=ANY_DAY, newsletter='return_path = "bounces@example.com"')
    config = read_config(path, {"DIGEST_SECRET": SENDING_SECRET})
    bed = Bed(config, Store.open(config.store.url), mail_server, [START])
    try:
        ids = bed.add(3)
        outcome = bed.send()
        assert outcome.report is not None and outcome.report.counts == {"sent": 3}
        by_recipient = {m.recipients[0]: m.sender for m in mail_server.received}
        for i, sub in enumerate(ids):
            sender = by_recipient[f"reader{i}@example.com"]
            token = token_in(sender, "bounces@example.com")
            assert sender.startswith("bounces+") and token is not None
            assert read_bounce_token(SENDING_SECRET, token) == (outcome.report.issue_id, sub)
            assert "From: The Wise Job Search <newsletter@example.com>" in mail_server.received[i].data.decode()
    finally:
        bed.store.close()
