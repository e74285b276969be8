"""The secret that signs links: the environment variable, else a file made once with mode
600 (adapters/secret.py), shared by every command and surviving restarts."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from browser import ROOT, digest_process
from conftest import ANY_DAY, Run
from mailserver import free_port

from digest.adapters.secret import load_or_create_secret
from digest.adapters.store import Store
from digest.core.config import Config, read_config
from digest.core.errors import ConfigError
from digest.core.tokens import make_token, read_token

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def no_secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_SECRET", raising=False)


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Config:
    return read_config(write_config(), {})


def secret_file(config: Config) -> Path:
    return Path(config.web.secret_file)


def test_the_file_is_made_once_with_mode_600_in_the_data_folder(config: Config, tmp_path: Path) -> None:
    umask = os.umask(0)  # even a permissive umask gets a private file
    try:
        first = load_or_create_secret(config)
    finally:
        os.umask(umask)
    path = tmp_path / "subscribers" / "secret"
    assert secret_file(config) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 40 and path.read_text() == first + "\n"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    again = load_or_create_secret(read_config(config.path, {}))  # another run reads the same file
    assert again == first
    token = make_token(first, "unsubscribe", 7, now=NOW)
    assert read_token(again, token, "unsubscribe", now=NOW).subscriber_id == 7


def test_the_environment_variable_wins(config: Config) -> None:
    from_env = read_config(config.path, {"DIGEST_SECRET": "from-the-environment-0123456789"})
    assert load_or_create_secret(from_env) == "from-the-environment-0123456789"
    assert not secret_file(config).exists()  # set: no file is made
    made = load_or_create_secret(config)
    assert load_or_create_secret(from_env) == "from-the-environment-0123456789" != made
    assert secret_file(config).read_text().strip() == made


def test_processes_racing_to_make_the_file_share_one_secret(config: Config) -> None:
    start = time.time() + 1.5
    script = ("import sys, time; from digest.core.config import read_config; "
              "from digest.adapters.secret import load_or_create_secret; "
              "time.sleep(max(0, float(sys.argv[2]) - time.time())); "
              "print(load_or_create_secret(read_config(__import__('pathlib').Path(sys.argv[1]), {})))")
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_SECRET"} | {"PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(config.path), str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert {out.strip() for out, _ in results} == {secret_file(config).read_text().strip()}


def test_a_file_others_can_read_is_refused_with_one_line(config: Config, run_cli: Callable[..., Run]) -> None:
    path = secret_file(config)
    path.parent.mkdir()
    path.write_text("a-good-long-secret-0123456789\n")
    path.chmod(0o644)
    result = run_cli("send", "--dry-run", "--config", config.path)
    assert result.code == 3 and result.out == ""
    assert result.err.splitlines() == [(f"Error: {path}: the link secret can be read or changed by group or others "
                                        f"(mode 644): run chmod 600 {path}")]
    assert path.read_text() == "a-good-long-secret-0123456789\n"  # refused, never replaced


@pytest.mark.parametrize("content", ["", "\n", "short\n", "\xff\xfe" * 20])
def test_an_empty_or_short_file_is_refused(config: Config, content: str) -> None:
    path = secret_file(config)
    path.parent.mkdir()
    path.write_bytes(content.encode("latin-1"))
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: the link secret \(\[web\] secret_file\) is "
                                          "empty or shorter than 16 characters"):
        load_or_create_secret(config)


def test_a_short_environment_secret_is_refused(config: Config) -> None:
    with pytest.raises(ConfigError, match=r"DIGEST_SECRET \(\[web\] secret_env\) is too short"):
        load_or_create_secret(read_config(config.path, {"DIGEST_SECRET": "short"}))


def test_without_variable_or_file_setting_it_says_what_to_set(config: Config) -> None:
    text = config.path.read_text().replace('[web]\n', '[web]\nsecret_file = ""\n')
    config.path.write_text(text)
    with pytest.raises(ConfigError, match=r"no secret to sign links: set the environment variable DIGEST_SECRET"):
        load_or_create_secret(read_config(config.path, {}))


# ---- end to end: `digest send` in one process, `digest serve` in others ----

@pytest.fixture
def served(write_config: Callable[..., Path], mail_server: Any, run_cli: Callable[..., Run]) -> Path:
    path = write_config(smtp_port=mail_server.port, first_issue_days=ANY_DAY)
    assert run_cli("subscribers", "add", "ana@example.com", "--confirmed", "--config", path).code == 0
    return path


def one_click(port: int, path: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_send_and_a_restarted_serve_agree_on_links_already_sent(served: Path, mail_server: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_SECRET"} | {"PYTHONPATH": str(ROOT)}
    sent = subprocess.run([sys.executable, "-m", "digest", "send", "--yes", "--config", str(served)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env, check=False)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    header = mail_server.received[0].message["List-Unsubscribe"]
    link = re.search(r"<https://news\.example\.com(/unsubscribe/[^>]+)>", header).group(1)  # type: ignore[union-attr]
    for _restart in range(2):
        port = free_port()
        with digest_process("serve", "--no-scheduler", "--port", str(port), "--config", str(served),
                            health=f"http://127.0.0.1:{port}/healthz"):
            assert one_click(port, link) == 200  # 400 if this process signed with another secret
    store = Store.open(read_config(served, {}).store.url)
    try:
        ana = store.find("ana@example.com")
        assert ana is not None and ana.status == "unsubscribed" and ana.unsubscribed_how == "one-click"
    finally:
        store.close()
    secret = served.parent / "subscribers" / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
