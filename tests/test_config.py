"""config.toml loading: every mistake is one line naming the file, table, key and value."""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import Run

from digest.core.checks import BOUNDS
from digest.core.config import _DERIVED, _TABLES, load_config, read_config
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
        ("newsletter", "from", "Zoë <zoë@example.com>", r"\[newsletter\] from has value .*(does not offer SMTPUTF8|not supported)"),
        ("newsletter", "reply_to", "ask@\u2615.example", r"\[newsletter\] reply_to has value .*(no IDNA 2008 form|not an email address)"),
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
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        read_config(tmp_path / "nope.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[blog\nname = ")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        read_config(bad, {})


def test_the_secret_file_is_found_next_to_the_config_file(tmp_path: Path) -> None:
    assert read_config(SHIPPED, {}).web.secret_file == str(ROOT / "subscribers" / "secret")
    data = shipped()
    data["web"]["secret_file"] = "/etc/blog-digest/secret"
    assert load_config(data, {}, tmp_path / "config.toml").web.secret_file == "/etc/blog-digest/secret"
    data["web"]["secret_file"] = "data/secret"
    assert load_config(data, {}, tmp_path / "config.toml").web.secret_file == str(tmp_path / "data" / "secret")


# ---- through `digest preview`: refused at load, one line, exit 3 ----

def set_key(path: Path, table: str, key: str, toml_value: str) -> Path:
    """Rewrite `path` with `key = toml_value` in [table], replacing the key if it is there."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"[{table}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    mine = [i for i in range(start + 1, end) if lines[i].split("=")[0].strip() in (key, f'"{key}"')]
    if mine:
        lines[mine[0]] = f"{key} = {toml_value}"
    else:
        lines.insert(start + 1, f"{key} = {toml_value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def refused(run_cli: Callable[..., Run], config: Path, tmp_path: Path, *needles: str) -> str:
    result = run_cli("preview", "--all", "--out", tmp_path / "out", "--config", config)
    assert result.code == ConfigError.exit_code, result
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {config}: "), result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    return lines[0]


@pytest.mark.parametrize(("table", "key", "value", "needle"), [
    ("feed", "timeout_seconds", "nan", "[feed] timeout_seconds has value nan, not a finite number"),
    ("feed", "timeout_seconds", "inf", "[feed] timeout_seconds has value inf, not a finite number"),
    ("feed", "timeout_seconds", "0", "[feed] timeout_seconds has value 0, not above 0 and at most 86400"),
    ("feed", "deadline_seconds", "1e300", "[feed] deadline_seconds has value 1e+300, not above 0 and at most 86400"),
    ("feed", "max_bytes", "10", "[feed] max_bytes has value 10, not between 1024 and 1000000000"),
    ("feed", "max_pages", "0", "[feed] max_pages has value 0, not between 1 and 1000"),
    ("feed", "page_size", "100000", "[feed] page_size has value 100000, not 0 or between 1 and 500"),
    ("newsletter", "max_posts", "0", "[newsletter] max_posts has value 0, not between 1 and 500"),
    ("newsletter", "max_posts", "1000000", "[newsletter] max_posts has value 1000000, not between 1 and 500"),
    ("newsletter", "max_sections", "0", "[newsletter] max_sections has value 0, not between 1 and 50"),
    ("newsletter", "excerpt_chars", "99999999", "[newsletter] excerpt_chars has value 99999999, not between 20 and 5000"),
    ("newsletter", "first_issue_days", "36500000", "[newsletter] first_issue_days has value 36500000, not between 1 and 36500"),
    ("newsletter", "thumbnail_width", "0", "[newsletter] thumbnail_width has value 0, not between 16 and 2000"),
    ("schedule", "max_late_hours", "inf", "[schedule] max_late_hours has value inf, not a finite number"),
    ("schedule", "max_late_hours", "nan", "[schedule] max_late_hours has value nan, not a finite number"),
    ("smtp", "port", "0", "[smtp] port has value 0, not between 1 and 65535"),
    ("smtp", "port", "70000", "[smtp] port has value 70000, not between 1 and 65535"),
    ("smtp", "timeout_seconds", "nan", "[smtp] timeout_seconds has value nan, not a finite number"),
    ("smtp", "data_timeout_seconds", "1e9", "[smtp] data_timeout_seconds has value 1000000000.0, not above 0"),
    ("smtp", "max_per_second", "1e-300", "[smtp] max_per_second has value 1e-300, not 0 or between 0.01 and 10000"),
    ("smtp", "max_per_second", "inf", "[smtp] max_per_second has value inf, not a finite number"),
    ("smtp", "connections", "0", "[smtp] connections has value 0, not between 1 and 64"),
    ("smtp", "connections", "1000", "[smtp] connections has value 1000, not between 1 and 64"),
    ("web", "confirm_hours", "nan", "[web] confirm_hours has value nan, not a finite number"),
    ("web", "confirm_hours", "1e308", "[web] confirm_hours has value 1e+308, not above 0 and at most 720"),
    ("web", "confirm_resend_minutes", "inf", "[web] confirm_resend_minutes has value inf, not a finite number"),
    ("web", "ip_limit_per_hour", "0", "[web] ip_limit_per_hour has value 0, not between 1 and 100000"),
    ("feed", "timeout_seconds", "9" * 400, "[feed] timeout_seconds has value 999"),
])
def test_numbers_out_of_range_are_refused_at_load(table: str, key: str, value: str, needle: str, tmp_path: Path,
                                                  write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    refused(run_cli, set_key(write_config(), table, key, value), tmp_path, needle)


def test_every_numeric_key_has_bounds_that_hold_its_default() -> None:
    for table, cls in _TABLES.items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name in _DERIVED or hints[f.name] not in (int, float):
                continue
            bounds = BOUNDS.get((table, f.name))
            assert bounds is not None, f"[{table}] {f.name} has no line in checks.BOUNDS"
            assert bounds.problem(f.default) is None, f"[{table}] {f.name}'s default is out of its bounds"


@pytest.mark.parametrize(("table", "key", "value", "needle"), [
    ("blog", "url", '"https://thewisejobsearch.blogspot.com/a b"', "[blog] url has value 'https://thewisejobsearch.blogspot.com/a b', not a usable URL"),
    ("blog", "url", '"javascript:alert(1)"', "[blog] url has value 'javascript:alert(1)', not an http(s) URL"),
    ("blog", "url", '"https://blog.example.com@evil.example"', "names a user before the host"),
    ("blog", "contact_url", '"ftp://example.com/contact"', "[blog] contact_url has value 'ftp://example.com/contact', not an http(s) URL"),
    ("blog", "contact_url", '"https://example.com/\\"onmouseover=x"', "[blog] contact_url has value "),
    ("feed", "url", '"https://example.com/feed\\r\\nX: y"', "[feed] url has value 'https://example.com/feed\\r\\nX: y', not a usable URL"),
    ("feed", "url", '"gopher://example.com/feed"', "[feed] url has value 'gopher://example.com/feed', not an http(s) URL or a path"),
    ("feed", "url", '"https://example.com:99999/feed"', "its port is not a number"),
    ("question", "url", '"https://example.com/<script>"', "[question] url has value 'https://example.com/<script>', not a usable URL"),
    ("web", "base_url", '"https://news.example.com/a b"', "[web] base_url has value 'https://news.example.com/a b', not a usable URL"),
    ("web", "base_url", '"https://news.example.com,https://evil.example"', "[web] base_url has value 'https://news.example.com,https://evil.example', not a usable URL"),
    ("web", "base_url", '"https://news.example.com/?x=1"', "[web] base_url has value 'https://news.example.com/?x=1', not a base address"),
    ("web", "base_url", '"https://nëws.example.com"', "[web] base_url has value 'https://nëws.example.com', not an ASCII URL"),
    ("web", "base_url", '"news.example.com"', "[web] base_url has value 'news.example.com', not an http(s) URL"),
    ("web", "allowed_origins", '["https://blog.example.com/page"]', "[web] allowed_origins has value 'https://blog.example.com/page', not an origin"),
    ("web", "allowed_origins", '["https://a.example.com, https://b.example.com"]', "[web] allowed_origins has value 'https://a.example.com, https://b.example.com'"),
])
def test_urls_are_checked_at_load(table: str, key: str, value: str, needle: str, tmp_path: Path,
                                  write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    refused(run_cli, set_key(write_config(), table, key, value), tmp_path, needle)


@pytest.mark.parametrize(("table", "key", "value", "needle"), [
    ("newsletter", "unsubscribe_mailto", '"unsub@example.com\\r\\nBcc: evil@example.com"',
     "[newsletter] unsubscribe_mailto has value 'unsub@example.com\\r\\nBcc: evil@example.com', which holds a line break"),
    ("newsletter", "unsubscribe_mailto", '"Unsub <unsub@example.com>"', "not a bare email address"),
    ("newsletter", "unsubscribe_mailto", '"unsub?body=x@example.com"', "not usable in a mailto: link"),
    ("newsletter", "unsubscribe_mailto", '"unsub@example.com>, <https://evil.example"', "[newsletter] unsubscribe_mailto has value"),
    ("newsletter", "from", '"News <news@example.com>\\nBcc: evil@example.com"', "[newsletter] from has value 'News <news@example.com>\\nBcc: evil@example.com', which holds a line break"),
    ("newsletter", "from", '"A <a@example.com>, B <b@example.com>"', "[newsletter] from has value 'A <a@example.com>, B <b@example.com>', not one email address"),
    ("newsletter", "from", '"News <news@@example.com>"', "[newsletter] from has value 'News <news@@example.com>', not an email address"),
    ("newsletter", "reply_to", '"questions@example"', "[newsletter] reply_to has value 'questions@example', not an email address"),
    ("newsletter", "reply_to", '"q@example.com\\rX: y"', "[newsletter] reply_to has value 'q@example.com\\rX: y', which holds a line break"),
    ("question", "email", '"ask us"', "[question] email has value 'ask us', not"),
    ("question", "email", '"q@exämple.com\\u0000"', "[question] email has value"),
])
def test_addresses_are_checked_at_load(table: str, key: str, value: str, needle: str, tmp_path: Path,
                                       write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    refused(run_cli, set_key(write_config(), table, key, value), tmp_path, needle)


def test_good_urls_and_addresses_still_load(write_config: Callable[..., Path]) -> None:
    path = write_config(extra='allowed_origins = ["https://blog.example.com", "http://localhost:8080/"]\n')
    set_key(path, "web", "base_url", '"https://news.example.com/digest/"')
    set_key(path, "newsletter", "unsubscribe_mailto", '"unsubscribe+list@example.com"')
    set_key(path, "newsletter", "reply_to", '"\\"Questions, please\\" <q@example.com>"')
    set_key(path, "blog", "contact_url", '""')
    set_key(path, "smtp", "max_per_second", "0")
    config = read_config(path, {})
    assert config.web.base_url == "https://news.example.com/digest"
    assert config.newsletter.unsubscribe_mailto == "unsubscribe+list@example.com"
    assert config.smtp.max_per_second == 0
