"""The command line: one `Error:` line and the documented exit code for every user mistake."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ANY_DAY, CLI_NOW, ROOT, FeedServer, Reply, Run
from feedgen import Entry, atom

from digest.core.errors import ConfigError, FeedError, SendError


def one_error_line(result: Run, code: int, *needles: str) -> None:
    assert result.code == code, (result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_preview_writes_three_files_and_a_summary(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    out = tmp_path / "out"
    result = run_cli("preview", "--config", write_config(), "--all", "--out", out)
    assert result.code == 0, result.err
    assert result.out.splitlines()[:3] == [str(out / "issue.html"), str(out / "issue.txt"), str(out / "issue.eml")]
    assert "14 posts" in result.out and "HTML" in result.out and "KB" in result.out
    assert all((out / name).stat().st_size > 1000 for name in ("issue.html", "issue.txt", "issue.eml"))


def test_preview_changes_no_state(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    config = write_config()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run_cli("preview", "--config", config, "--all", "--out", tmp_path / "out").code == 0
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == sorted(before + ["out"])  # no database, no state file


def test_preview_without_new_posts_says_so(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    old = tmp_path / "old.xml"
    old.write_bytes(atom([Entry(1, published="2020-01-01T00:00:00Z")]))
    result = run_cli("preview", "--config", write_config(feed=old), "--out", tmp_path / "out")
    assert result.code == 0
    assert "No new posts in the last 7 days" in result.out and "--all" in result.out
    assert not (tmp_path / "out").exists()


def test_missing_config(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    one_error_line(run_cli("preview", "--config", tmp_path / "nope.toml"), ConfigError.exit_code, "nope.toml: no such file")


def test_config_from_the_environment(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_CONFIG", str(write_config()))
    assert run_cli("preview", "--all", "--out", tmp_path / "o").code == 0


def test_bad_config(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    config = write_config(extra="\n[extra]\nkey = 1\n")
    one_error_line(run_cli("preview", "--config", config), ConfigError.exit_code, "config.toml: unknown table [extra]")


def test_missing_feed_file(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    config = write_config(feed=tmp_path / "missing.xml")
    one_error_line(run_cli("preview", "--config", config, "--all"), FeedError.exit_code, "missing.xml: no such file")


def test_unreachable_host(write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    port = closed_port()
    config = write_config(feed=f"http://127.0.0.1:{port}/feed")
    one_error_line(run_cli("preview", "--config", config, "--all"), FeedError.exit_code, f"127.0.0.1:{port}", "cannot fetch")


@pytest.mark.parametrize(("reply", "needle"), [
    (Reply(404, b"no"), "HTTP 404"),
    (Reply(500, b"oops"), "HTTP 500"),
    (Reply(410, b""), "HTTP 410 Gone"),
    (Reply(200, b"<!DOCTYPE html><html><body>My blog</body></html>", {"Content-Type": "text/html"}), "an HTML page, not an RSS or Atom feed"),
    (Reply(200, b""), "the document is empty"),
    (Reply(200, atom([])), "the feed has no posts"),
])
def test_feed_mistakes(feed_server: FeedServer, write_config: Callable[..., Path], run_cli: Callable[..., Run],
                       reply: Reply, needle: str) -> None:
    url = feed_server.serve("/feed", reply)
    one_error_line(run_cli("preview", "--config", write_config(feed=url), "--all"), FeedError.exit_code, needle)


def test_feed_option_overrides_config(feed_server: FeedServer, tmp_path: Path, write_config: Callable[..., Path],
                                      run_cli: Callable[..., Run]) -> None:
    url = feed_server.serve("/other", Reply(body=atom([Entry(1, title="From the other feed")])))
    result = run_cli("preview", "--config", write_config(), "--feed", url, "--all", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    assert "From the other feed" in (tmp_path / "o" / "issue.html").read_text()


def test_debug_shows_the_traceback(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    config = write_config(feed=tmp_path / "missing.xml")
    result = run_cli("preview", "--config", config, "--all", "--debug")
    assert result.code == FeedError.exit_code
    assert "Traceback" in result.err and result.err.strip().splitlines()[-1].startswith("Error: ")


def test_unwritable_out_dir(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error_line(run_cli("preview", "--config", write_config(), "--all", "--out", blocker / "out"), 2, "cannot write the preview")


def test_to_sends_one_test_copy(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run], mail_server: object) -> None:
    config = write_config(smtp_port=mail_server.port)  # type: ignore[attr-defined]
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "o", "--to", "author@example.org")
    assert result.code == 0, result.err
    assert "Sent a test copy to author@example.org" in result.out
    received = mail_server.received  # type: ignore[attr-defined]
    assert len(received) == 1 and received[0].recipients == ["author@example.org"]
    message = received[0].message
    assert message["To"] == "author@example.org"
    assert message["Subject"].startswith("[Test] The Wise Job Search: ")  # marked, and otherwise the issue's
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    assert "/preview" not in text, "no placeholder links: every link of the test copy works"
    assert "https://news.example.com/archive/" in text and "https://news.example.com/subscribe" in text


def test_to_sends_a_signed_copy_with_the_subscribers_own_links(tmp_path: Path, write_config: Callable[..., Path],
                                                               run_cli: Callable[..., Run], mail_server: object,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import dkim
    from test_send_lint import dkim_key

    monkeypatch.setenv("DIGEST_SECRET", "test-copy-secret-0123456789")
    key_file, record = dkim_key(tmp_path)
    config = write_config(smtp_port=mail_server.port)  # type: ignore[attr-defined]
    config.write_text(config.read_text().replace("[newsletter]\n", f'[newsletter]\ndkim_selector = "news"\n'
                                                                    f'dkim_key_file = "{key_file}"\n', 1))
    assert run_cli("subscribers", "add", "author@example.org", "--confirmed", "--config", config).code == 0
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "o", "--to", "author@example.org")
    assert result.code == 0, result.err
    raw = mail_server.received[0].data  # type: ignore[attr-defined]
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record if name == b"news._domainkey.example.com." else None)
    text = mail_server.received[0].message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    unsubscribe = re.search(r"https://news\.example\.com/unsubscribe/(\S+)", text)
    assert unsubscribe is not None and unsubscribe.group(1) != "preview"  # the author's own, signed link


def test_to_an_idn_address_goes_in_a_labels(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run],
                                            mail_server: object) -> None:
    config = write_config(smtp_port=mail_server.port)  # type: ignore[attr-defined]
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "o", "--to", "author@bücher.example")
    assert result.code == 0, result.err
    received = mail_server.received  # type: ignore[attr-defined]
    assert received[0].recipients == ["author@xn--bcher-kva.example"]
    assert received[0].message["To"] == "author@xn--bcher-kva.example"


def test_to_with_smtp_down(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    config = write_config(smtp_port=closed_port())
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "o", "--to", "author@example.org")
    one_error_line(result, SendError.exit_code, "SMTP 127.0.0.1:", "cannot connect")


def test_to_with_a_bad_address(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    result = run_cli("preview", "--config", write_config(), "--all", "--out", tmp_path / "o", "--to", "a@b.c\r\nBcc: x@y.z")
    one_error_line(result, 2, "not a usable email address")


@pytest.mark.slow  # starts processes
def test_the_console_script_runs_as_a_process(tmp_path: Path, write_config: Callable[..., Path]) -> None:
    proc = subprocess.run([sys.executable, "-m", "digest", "preview", "--config", str(write_config(feed=tmp_path / "x.xml")), "--all"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == FeedError.exit_code
    assert proc.stderr.strip().startswith("Error: ") and "Traceback" not in proc.stderr


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import click

    found = []
    for name, command in getattr(group, "commands", {}).items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_and_debug_go_before_or_after_the_command(where: str, tmp_path: Path, write_config: Callable[..., Path],
                                                          run_cli: Callable[..., Run]) -> None:
    good, missing = write_config(), tmp_path / "nowhere.toml"
    for command in (["history"], ["subscribers", "list"], ["status"]):
        ok = run_cli(*(["--config", good, *command] if where == "before" else [*command, "--config", good]))
        assert ok.code == 0, ok.err
        bad = run_cli(*(["--debug", "--config", missing, *command] if where == "before"
                        else [*command, "--config", missing, "--debug"]))
        assert bad.code == ConfigError.exit_code and "Traceback" in bad.err and str(missing) in bad.err


def test_the_option_after_the_command_wins(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    result = run_cli("--config", tmp_path / "nowhere.toml", "preview", "--all", "--config", write_config(),
                     "--out", tmp_path / "out")
    assert result.code == 0, result.err


def test_every_command_takes_config_and_debug() -> None:
    from digest.cli import cli

    commands = _commands(cli)
    assert ("mailbox",) in commands and ("subscribers", "add") in commands
    for path in commands:
        command = cli
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--config", "--debug"} <= options, f"digest {' '.join(path)} lacks --config/--debug"


def test_preview_says_what_the_first_issue_holds_and_counts_that_add_up(
        tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(first_issue_days=ANY_DAY).read_text()
    (tmp_path / "config.toml").write_text(config)
    result = run_cli("preview", "--config", tmp_path / "config.toml", "--out", "rel")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == ("No issue sent yet: the first issue holds the posts of the last 36,500 days "
                        "([newsletter] first_issue_days).")
    assert lines[1:4] == [str(tmp_path / "rel" / name) for name in ("issue.html", "issue.txt", "issue.eml")]
    summary = lines[5]
    assert summary.startswith("14 posts: 12 in 5 sections, 2 answering readers' questions; HTML "), summary


def test_one_post_is_one_post(feed_server: FeedServer, tmp_path: Path, write_config: Callable[..., Path],
                              run_cli: Callable[..., Run]) -> None:
    feed = feed_server.serve("/one.xml", Reply(body=atom([Entry(1, "Only one")])))
    result = run_cli("preview", "--config", write_config(feed), "--all", "--out", tmp_path / "out")
    assert result.code == 0 and "\n1 post: 1 in 1 section; HTML" in result.out, result.out


def test_or_all_shows_every_post_when_nothing_is_new(tmp_path: Path, write_config: Callable[..., Path],
                                                     run_cli: Callable[..., Run]) -> None:
    cfg = write_config(first_issue_days=1)
    later = lambda: CLI_NOW + timedelta(days=2)  # noqa: E731 - two days after the sample's newest post
    plain = run_cli("preview", "--config", cfg, "--out", tmp_path / "a", clock=later)
    either = run_cli("preview", "--config", cfg, "--out", tmp_path / "b", "--or-all", clock=later)
    assert plain.code == 0 and plain.out.startswith("No new posts in the last 1 day ([newsletter] first_issue_days): "
                                                    "digest send would send nothing now.")
    assert not (tmp_path / "a").exists()
    # What it says agrees with the issue it renders ("14 new posts ... what's new this week").
    assert ('This preview shows the feed\'s 14 posts instead (--or-all), as an issue would if they were new: '
            'that is why it says "14 new posts".') in either.out
    assert "14 new posts" in (tmp_path / "b" / "issue.txt").read_text()
    assert (tmp_path / "b" / "issue.html").exists() and "14 posts" in either.out


@pytest.mark.slow  # starts processes
def test_open_on_a_machine_without_a_browser_says_where_the_file_is(tmp_path: Path,
                                                                    write_config: Callable[..., Path]) -> None:
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "digest", "preview", "--all", "--open", "--config", str(write_config()),
                          "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"No browser to open here; open {(tmp_path / 'out' / 'issue.html').as_uri()}" in run.stderr


def test_history_and_status_speak_the_blogs_time_zone(tmp_path: Path, write_config: Callable[..., Path],
                                                       run_cli: Callable[..., Run], mail_server: object) -> None:
    cfg = write_config(smtp_port=mail_server.port, first_issue_days=ANY_DAY)  # type: ignore[attr-defined]
    assert run_cli("subscribers", "add", "a@example.com", "--confirmed", "--config", cfg).code == 0
    assert run_cli("send", "--yes", "--config", cfg).code == 0
    history = run_cli("history", "--config", cfg).out
    status = run_cli("status", "--config", cfg).out
    assert " UTC " not in history + status
    assert any(zone in history for zone in (" EST ", " EDT ")) and "14 posts" in history
    assert "(America/New_York, in " in status and any(zone in status.splitlines()[1] for zone in (" EST,", " EDT,"))
