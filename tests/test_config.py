"""config.toml loading: every mistake is one line naming the file, table, key and value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from digest.core.config import load_config, read_config
from digest.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config.toml"


def shipped() -> dict:
    return tomllib.loads(SHIPPED.read_text())


def test_shipped_config_loads_and_resolves_paths_next_to_the_file() -> None:
    config = read_config(SHIPPED, {})
    assert Path(config.feed.url) == ROOT / "examples" / "sample-feed.xml"
    assert config.store.url == f"sqlite:///{ROOT / 'subscribers' / 'subscribers.db'}"
    assert config.topics[0] == ("Interviewing", "Interviews")
    assert config.newsletter.from_.endswith("<newsletter@example.com>")


def test_secrets_come_from_the_named_environment_variables_only() -> None:
    config = read_config(SHIPPED, {"DIGEST_SECRET": "s3cret", "DIGEST_SMTP_PASSWORD": "pw"})
    assert config.web.secret == "s3cret"
    assert config.smtp.password == "pw"
    assert "s3cret" not in repr(config) and "pw'" not in repr(config.smtp)


def test_a_password_in_the_file_is_an_unknown_key() -> None:
    data = shipped()
    data["smtp"]["password"] = "oops"
    with pytest.raises(ConfigError, match=r"config.toml: \[smtp\] has unknown key 'password'"):
        load_config(data, {}, SHIPPED)


@pytest.mark.parametrize(
    ("table", "key", "value", "message"),
    [
        ("smtp", "port", "abc", r"\[smtp\] port has value 'abc', not an integer"),
        ("smtp", "port", True, r"\[smtp\] port has value True, not an integer"),
        ("smtp", "security", "tls", r"\[smtp\] security has value 'tls', not one of"),
        ("feed", "timeout_seconds", "10", r"\[feed\] timeout_seconds has value '10', not a number"),
        ("feed", "max_pages", -1, r"\[feed\] max_pages has value -1, which is negative"),
        ("question", "labels", "Reader Questions", r"\[question\] labels has value 'Reader Questions', not a list of strings"),
        ("schedule", "timezone", "Mars/Olympus", r"\[schedule\] timezone has value 'Mars/Olympus', not an IANA time zone"),
        ("schedule", "cron", "0 7 * * 1", r"\[schedule\] cron has value '0 7 \* \* 1', not a day and a time"),
        ("schedule", "cron", "mon 25:00", r"\[schedule\] cron has value 'mon 25:00': no such time of day"),
        ("blog", "url", "thewisejobsearch.blogspot.com", r"\[blog\] url has value 'thewisejobsearch.blogspot.com', not an http\(s\) URL"),
        ("newsletter", "from", "nobody", r"\[newsletter\] from has value 'nobody', not an email address"),
        ("newsletter", "from", "Zoë <zoë@example.com>", r"\[newsletter\] from has value .*does not offer SMTPUTF8"),
        ("newsletter", "reply_to", "ask@\u2615.example", r"\[newsletter\] reply_to has value .*no IDNA 2008 form"),
        ("blog", "colour", "red", r"\[blog\] has unknown key 'colour'"),
    ],
)
def test_wrong_values_name_file_table_key_and_value(table: str, key: str, value: object, message: str) -> None:
    data = shipped()
    data[table][key] = value
    with pytest.raises(ConfigError, match=r"^.*config.toml: " + message) as info:
        load_config(data, {}, SHIPPED)
    assert "\n" not in str(info.value)


def test_missing_required_key_and_table() -> None:
    data = shipped()
    del data["blog"]["name"]
    with pytest.raises(ConfigError, match=r"\[blog\] is missing the key 'name'"):
        load_config(data, {}, SHIPPED)
    data = shipped()
    del data["feed"]
    with pytest.raises(ConfigError, match=r"missing table \[feed\]"):
        load_config(data, {}, SHIPPED)


def test_unknown_table_and_bad_topics() -> None:
    data = shipped()
    data["smpt"] = {}
    with pytest.raises(ConfigError, match=r"unknown table \[smpt\]"):
        load_config(data, {}, SHIPPED)
    data = shipped()
    data["topics"]["Resumes"] = 3
    with pytest.raises(ConfigError, match=r"\[topics\] 'Resumes' has value 3, not a topic name"):
        load_config(data, {}, SHIPPED)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml: no such file"):
        read_config(tmp_path / "nope.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[blog\nname = ")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        read_config(bad, {})
