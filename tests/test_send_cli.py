"""`digest send` and `digest history` from the command line: summaries and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ANY_DAY, Run


@pytest.fixture
def cfg(write_config: Callable[..., Path], mail_server: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_SECRET", "cli-secret-0123456789abcdef")
    path = write_config(smtp_port=mail_server.port, first_issue_days=ANY_DAY)
    return path


def add(run_cli: Callable[..., Run], cfg: Path, *emails: str) -> None:
    for email in emails:
        assert run_cli("subscribers", "add", email, "--confirmed", "--config", cfg).code == 0


def test_send_history_and_nothing_new(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    assert run_cli("history", "--config", cfg).out == "No issue sent yet.\n"
    add(run_cli, cfg, "a@example.com", "b@example.com")
    dry = run_cli("send", "--dry-run", "--config", cfg, "--out", cfg.parent / "dry")
    assert dry.code == 0 and dry.out.splitlines()[-1].startswith("Dry run: built 2 messages") and mail_server.received == []
    sent = run_cli("send", "--yes", "--config", cfg)
    assert sent.code == 0, sent.err
    assert sent.out == "Issue 1: 2 sent.\n"
    assert len(mail_server.received) == 2
    again = run_cli("send", "--yes", "--config", cfg)
    assert again.code == 0 and again.out == "No new posts since the last issue: nothing sent.\n"
    history = run_cli("history", "--config", cfg).out.splitlines()
    assert len(history) == 1 and history[0].startswith("#1  ") and "done" in history[0]
    assert "14 posts  2 delivered / 0 failed / 0 pending" in history[0]


def test_transient_failures_exit_75_and_the_next_run_finishes(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    add(run_cli, cfg, "a@example.com", "b@example.com")
    mail_server.handler.inject("RCPT", "451 4.3.0 Try later")
    first = run_cli("send", "--yes", "--config", cfg)  # [smtp] retry_window_minutes = 0: no waiting
    assert first.code == 75
    assert first.out == "Issue 1: 1 sent, 1 deferred.\n"
    assert first.err == ("1 message deferred; digest send retries them now, digest serve every 5 minutes, "
                         "for up to 72 hours.\n")
    assert "1 pending" in run_cli("history", "--config", cfg).out
    again = run_cli("send", "--yes", "--config", cfg)  # by hand, at once: the backoff's minute has not passed
    assert again.code == 0, again.err
    assert again.out == "Issue 1 (resumed): 2 sent.\nNo new posts since the last issue: nothing new sent.\n"
    assert "2 delivered / 0 failed / 0 pending" in run_cli("history", "--config", cfg).out
    assert sorted(r for m in mail_server.received for r in m.recipients) == ["a@example.com", "b@example.com"]


def test_paused_send(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    add(run_cli, cfg, "a@example.com")
    mail_server.handler.inject("MAIL", "550 5.7.1 Sender blocked")
    result = run_cli("send", "--yes", "--config", cfg)
    assert result.code == 75 and "Paused: the server refused us: 550 5.7.1 Sender blocked" in result.err


def test_smtp_down_is_one_error_line_and_the_issue_waits(cfg: Path, run_cli: Callable[..., Run]) -> None:
    from mailserver import free_port

    add(run_cli, cfg, "a@example.com")
    cfg.write_text(cfg.read_text().replace("[smtp]\nhost = \"127.0.0.1\"\nport = ", f"[smtp]\nhost = \"127.0.0.1\"\nport = {free_port()}\n#"))
    result = run_cli("send", "--yes", "--config", cfg)
    assert result.code == 5 and result.err.startswith("Error: SMTP 127.0.0.1:") and "Traceback" not in result.err
    assert "0 delivered / 0 failed / 1 pending" in run_cli("history", "--config", cfg).out


def test_send_needs_the_secret(cfg: Path, run_cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the variable the secret file is used (tests/test_secret.py); without both, nothing can sign.
    monkeypatch.delenv("DIGEST_SECRET")
    cfg.write_text(cfg.read_text().replace("[web]\n", '[web]\nsecret_file = ""\n'))
    result = run_cli("send", "--yes", "--config", cfg)
    assert result.code == 3 and "no secret to sign links: set the environment variable DIGEST_SECRET" in result.err


def test_the_next_send_asks_the_feed_conditionally(cfg: Path, run_cli: Callable[..., Run], feed_server: Any) -> None:
    from http.server import BaseHTTPRequestHandler

    from conftest import ROOT, Reply

    body = (ROOT / "examples" / "sample-feed.xml").read_bytes()

    def route(handler: BaseHTTPRequestHandler) -> Reply:
        if handler.headers.get("If-None-Match") == '"v1"':
            return Reply(304)
        return Reply(body=body, headers={"ETag": '"v1"', "Content-Type": "application/atom+xml"})

    url = feed_server.serve("/feeds/posts/default", route)
    cfg.write_text(cfg.read_text().replace(str(ROOT / "examples" / "sample-feed.xml"), url))
    add(run_cli, cfg, "a@example.com")
    assert run_cli("send", "--yes", "--config", cfg).code == 0
    again = run_cli("send", "--yes", "--config", cfg)
    assert again.out == "No new posts since the last issue (the feed has not changed): nothing sent.\n"
    assert feed_server.requests[-1][1].get("if-none-match") == '"v1"'
    assert "max-results=25" in feed_server.requests[0][0]


def test_preview_shows_what_the_next_send_would_hold(cfg: Path, run_cli: Callable[..., Run], tmp_path: Path) -> None:
    add(run_cli, cfg, "a@example.com")
    first = run_cli("preview", "--config", cfg, "--out", tmp_path / "p1")
    assert first.code == 0 and "14 posts" in first.out
    assert run_cli("send", "--yes", "--config", cfg).code == 0
    after = run_cli("preview", "--config", cfg, "--out", tmp_path / "p2")
    assert after.code == 0 and "No new posts since the last issue" in after.out
    assert "14 posts" in run_cli("preview", "--all", "--config", cfg, "--out", tmp_path / "p3").out


def test_status(cfg: Path, run_cli: Callable[..., Run]) -> None:
    before = run_cli("status", "--config", cfg)
    assert before.code == 0
    lines = before.out.splitlines()
    assert lines[0].startswith("Next send: Mon ") and "America/New_York" in lines[0]
    assert lines[1] == "Last issue: none yet"
    assert lines[2].endswith("(not fetched by a send yet)")
    assert lines[3] == "Subscribers: 0 pending, 0 confirmed, 0 unsubscribed, 0 bounced"
    add(run_cli, cfg, "a@example.com")
    run_cli("send", "--yes", "--config", cfg)
    after = run_cli("status", "--config", cfg).out.splitlines()
    assert after[1].startswith("Last issue: #1 of ") and ", done: 1 delivered / 0 failed / 0 pending; " in after[1]
    assert after[2].startswith("Feed: ") and after[3] == "Subscribers: 0 pending, 1 confirmed, 0 unsubscribed, 0 bounced"


def test_a_dry_run_shows_who_gets_what_and_writes_one_sample_per_set_of_topics(
        cfg: Path, run_cli: Callable[..., Run], mail_server: Any, tmp_path: Path) -> None:
    add(run_cli, cfg, "a@example.com", "b@example.com")
    assert run_cli("subscribers", "add", "c@example.com", "--topics", "Interviews", "--confirmed", "--config", cfg).code == 0
    assert run_cli("subscribers", "add", "d@example.com", "--topics", "Offers", "--confirmed", "--config", cfg).code == 0
    dry = run_cli("send", "--dry-run", "--config", cfg, "--out", tmp_path / "dry")
    assert dry.code == 0, dry.err
    lines = dry.out.splitlines()
    assert lines[0].startswith("Subject: ") and lines[1] == "Posts: 14" and lines[2] == "Recipients by the topics they follow:"
    assert lines[3].split() [:4] == ["2", "subscribers", "every", "topic"]
    assert any(line.split()[:3] == ["1", "subscriber", "Interviews"] for line in lines)
    samples = sorted((tmp_path / "dry").glob("*.eml"))
    assert [p.name for p in samples] == ["01-every-topic.eml", "02-Interviews.eml", "03-Offers.eml"]
    assert b"To: a@example.com" in samples[0].read_bytes() and b"To: c@example.com" in samples[1].read_bytes()
    assert lines[-1] == "Dry run: built 4 messages (" + lines[-1].split("(")[1] and mail_server.received == []
    assert "No issue sent yet." in run_cli("history", "--config", cfg).out


def test_send_without_a_terminal_or_yes_refuses(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    add(run_cli, cfg, "a@example.com")
    result = run_cli("send", "--config", cfg)  # pytest's stdin is no terminal, as a pipe's is not
    assert result.code == 2 and result.err.startswith("Error: digest send asks before it sends") and "--yes" in result.err
    assert mail_server.received == [] and "No issue sent yet." in run_cli("history", "--config", cfg).out


@pytest.mark.slow  # starts processes
def test_piping_n_into_send_sends_nothing(cfg: Path, mail_server: Any) -> None:
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "digest", "subscribers", "add", "a@example.com", "--confirmed",
                    "--config", str(cfg)], env=env, check=True, capture_output=True)
    piped = subprocess.run([sys.executable, "-m", "digest", "send", "--config", str(cfg)], input="n\n", text=True,
                           env=env, capture_output=True, timeout=60)
    assert piped.returncode == 2 and "--yes" in piped.stderr and mail_server.received == []
