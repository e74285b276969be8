"""[inbox] in config.toml: defaults, the password from the environment, paths next to the
file, and one ConfigError line for each wrong value."""

from __future__ import annotations

import pytest
from test_config import SHIPPED, shipped

from digest.core.config import load_config, read_config
from digest.core.errors import ConfigError


def test_shipped_config_has_the_inbox_off_and_its_password_comes_from_the_environment() -> None:
    config = read_config(SHIPPED, {"DIGEST_IMAP_PASSWORD": "app-password"})
    assert config.inbox.host == "" and config.inbox.folder == "INBOX" and config.inbox.done_folder == "digest-done"
    assert config.inbox.password == "app-password" and "app-password" not in repr(config)
    assert read_config(SHIPPED, {}).inbox.password is None


def test_ca_file_is_resolved_next_to_the_config() -> None:
    data = shipped()
    data["inbox"]["ca_file"] = "certs/ca.pem"
    assert load_config(data, {}, SHIPPED).inbox.ca_file == str(SHIPPED.parent / "certs" / "ca.pem")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("security", "tls", r"\[inbox\] security has value 'tls', not one of 'ssl', 'starttls'"),
    ("port", 0, r"\[inbox\] port has value 0, not between 1 and 65535"),
    ("poll_minutes", 0.5, r"\[inbox\] poll_minutes has value 0.5, not 0 or between 1 and 1440"),
    ("max_message_bytes", 100, r"\[inbox\] max_message_bytes has value 100, not between 10000 and 100000000"),
    ("bounce_after", 0, r"\[inbox\] bounce_after has value 0, not between 1 and 100"),
    ("done_folder", "INBOX", r"\[inbox\] done_folder has value 'INBOX', the folder it reads"),
    ("folder", " ", r"\[inbox\] folder has value ' ', not a folder name"),
    ("password", "oops", r"\[inbox\] has unknown key 'password'"),
])
def test_wrong_inbox_values_are_one_line_naming_the_key(key: str, value: object, message: str) -> None:
    data = shipped()
    data["inbox"][key] = value
    with pytest.raises(ConfigError, match=r"^.*config.toml: " + message) as info:
        load_config(data, {}, SHIPPED)
    assert "\n" not in str(info.value)
