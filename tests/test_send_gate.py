"""`digest send`, the weekly send and `digest preview` run the offline deliverability
checks first: a problem stops the send before anyone gets mail, a warning is printed and
logged. Real SMTP (aiosmtpd), a real SQLite file."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_NOW, ROOT, Run, require

from digest.cli.serve import weekly_send
from digest.cli.wiring import Wiring
from digest.core.config import read_config

SECRET = "gate-secret-0123456789abcdef"


@pytest.fixture
def cfg(write_config: Callable[..., Path], mail_server: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    path = write_config(smtp_port=mail_server.port)
    path.write_text(path.read_text().replace("first_issue_days = 7", "first_issue_days = 36500"))
    return path


def base_url(cfg: Path, url: str) -> None:
    cfg.write_text(cfg.read_text().replace('base_url = "https://news.example.com"', f'base_url = "{url}"'))


def add(run_cli: Callable[..., Run], cfg: Path, *emails: str) -> None:
    for email in emails:
        assert run_cli("subscribers", "add", email, "--confirmed", "--config", cfg).code == 0


def test_a_problem_stops_the_send_before_anyone_gets_mail(cfg: Path, run_cli: Callable[..., Run],
                                                          mail_server: Any) -> None:
    add(run_cli, cfg, "a@example.com", "b@example.com")
    base_url(cfg, "http://news.example.com")
    result = run_cli("send", "--yes", "--config", cfg)
    assert result.code == 10, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: not sent, nobody was mailed: List-Unsubscribe: "
                               "http://news.example.com/unsubscribe/... is plain http")
    assert "digest doctor lists every check" in lines[0]
    assert mail_server.received == []
    assert run_cli("history", "--config", cfg).out == "No issue sent yet.\n"  # nothing recorded either
    cfg.write_text(cfg.read_text().replace('base_url = "http://news.example.com"', 'base_url = "https://news.example.com"'))
    fixed = run_cli("send", "--yes", "--config", cfg)
    assert fixed.code == 0 and fixed.out == "Issue 1: 2 sent.\n", fixed.err
    assert "Warning" not in fixed.err


def test_the_weekly_send_stops_too(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    add(run_cli, cfg, "a@example.com")
    base_url(cfg, "http://news.example.com")
    config = read_config(cfg, {"DIGEST_SECRET": SECRET})
    with Wiring(config) as wiring:
        line = weekly_send(config, wiring)()
    assert line.startswith("send failed: not sent, nobody was mailed: List-Unsubscribe:"), line
    assert mail_server.received == []


def test_a_resumed_issue_is_checked_before_it_goes_on(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    add(run_cli, cfg, "a@example.com", "b@example.com")
    mail_server.handler.inject("RCPT", "451 4.3.0 Try later")
    assert run_cli("send", "--yes", "--config", cfg).code == 75
    assert len(mail_server.received) == 1
    base_url(cfg, "http://news.example.com")
    again = run_cli("send", "--yes", "--config", cfg)
    assert again.code == 10 and "issue 1 did not go on, none of its readers still waiting for it was mailed: " \
        "List-Unsubscribe" in again.err  # not "nobody was mailed": a@example.com has it
    assert len(mail_server.received) == 1


def test_a_warning_is_printed_by_digest_send(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    add(run_cli, cfg, "a@example.com")
    base_url(cfg, "http://127.0.0.1:8000")
    result = run_cli("send", "--yes", "--config", cfg)
    assert result.code == 0 and len(mail_server.received) == 1
    assert ("Warning: List-Unsubscribe: http://127.0.0.1:8000/unsubscribe/... is plain http on this machine"
            in result.err), result.err


def test_a_warning_is_logged_once_by_the_weekly_send(cfg: Path, run_cli: Callable[..., Run], mail_server: Any,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    add(run_cli, cfg, "a@example.com")
    base_url(cfg, "http://127.0.0.1:8000")
    config = read_config(cfg, {"DIGEST_SECRET": SECRET})
    with caplog.at_level(logging.WARNING, logger="digest.send"), Wiring(config, clock=lambda: CLI_NOW) as wiring:
        assert weekly_send(config, wiring)().startswith("issue 1: 1 sent")
    logged = [r.getMessage() for r in caplog.records]
    assert sum("List-Unsubscribe: http://127.0.0.1:8000/unsubscribe/..." in m for m in logged) == 1, logged


@pytest.mark.slow  # starts a process: logging as a real run has it, with no pytest handler to catch it
def test_digest_send_prints_a_warning_once(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    """The checks' warning used to reach the author twice: printed, and logged to the same
    terminal by logging's last-resort handler ("deliverability: ...")."""
    require(shutil.which("faketime") is not None, "faketime not installed (apt-get install faketime)")
    add(run_cli, cfg, "a@example.com")
    base_url(cfg, "http://127.0.0.1:8000")
    run = subprocess.run(["faketime", CLI_NOW.strftime("%Y-%m-%d %H:%M:%S"), sys.executable, "-m", "digest", "send",
                          "--yes", "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "DIGEST_SECRET": SECRET, "TZ": "UTC"})
    assert run.returncode == 0 and len(mail_server.received) == 1, run.stderr
    assert run.stderr.count("is plain http on this machine") == 1, run.stderr


def test_preview_prints_the_same_warnings_and_problems(cfg: Path, run_cli: Callable[..., Run], tmp_path: Path) -> None:
    base_url(cfg, "http://127.0.0.1:8000")
    result = run_cli("preview", "--config", cfg, "--out", tmp_path / "out")
    assert result.code == 0
    assert "Warning: List-Unsubscribe: http://127.0.0.1:8000/unsubscribe/... is plain http on this machine" in result.err
    cfg.write_text(cfg.read_text().replace('base_url = "http://127.0.0.1:8000"', 'base_url = "http://news.example.com"'))
    result = run_cli("preview", "--config", cfg, "--out", tmp_path / "out")
    assert result.code == 0  # a preview changes nothing and sends nothing: it says what the send would do
    assert "is plain http: Gmail and Yahoo want an https one-click link: digest send would stop here" in result.err
