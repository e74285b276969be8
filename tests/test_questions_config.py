"""The questions loop's keys in config.toml: defaults as shipped, and each wrong value one line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from digest.core.config import load_config
from digest.core.errors import ConfigError

SHIPPED = Path(__file__).resolve().parent.parent / "config.toml"


def shipped() -> dict[str, dict[str, object]]:
    return tomllib.loads(SHIPPED.read_text())


def test_the_shipped_values() -> None:
    config = load_config(shipped(), {}, SHIPPED)
    q = config.question
    assert (q.answer_label_prefix, q.keep_days, q.acknowledge, q.acknowledge_window_hours) == ("Q-", 90, True, 24.0)
    assert config.newsletter.quiet_week == "skip"


@pytest.mark.parametrize(("table", "key", "value", "message"), [
    ("newsletter", "quiet_week", "send", r"\[newsletter\] quiet_week has value 'send', not one of 'skip', 'questions'"),
    ("question", "answer_label_prefix", "", r"\[question\] answer_label_prefix has value '', not a label prefix like 'Q-'"),
    ("question", "answer_label_prefix", "Q1-", r"\[question\] answer_label_prefix has value 'Q1-', not a label prefix"),
    ("question", "acknowledge", "yes", r"\[question\] acknowledge has value 'yes', not true or false"),
    ("question", "acknowledge", 1, r"\[question\] acknowledge has value 1, not true or false"),
    ("question", "keep_days", 0, r"\[question\] keep_days has value 0, not between 1 and 36500"),
    ("question", "acknowledge_window_hours", 0, r"\[question\] acknowledge_window_hours has value 0, not above 0"),
    ("question", "keep_days", 1.5, r"\[question\] keep_days has value 1.5, not an integer"),
])
def test_wrong_values_are_one_line(table: str, key: str, value: object, message: str) -> None:
    data = shipped()
    data[table][key] = value
    with pytest.raises(ConfigError, match=r"^.*config.toml: " + message) as info:
        load_config(data, {}, SHIPPED)
    assert "\n" not in str(info.value)
