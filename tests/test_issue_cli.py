"""`digest preview` and `digest send` agree on what the reader gets: the issue's number in
the masthead, and the posts [newsletter] max_posts leaves out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ANY_DAY, Run
from lxml import html as lxml_html


@pytest.fixture
def cfg(write_config: Callable[..., Path], mail_server: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_SECRET", "cli-secret-0123456789abcdef")
    path = write_config(smtp_port=mail_server.port, first_issue_days=ANY_DAY)
    return path


def masthead(html: str) -> str:
    return " ".join(lxml_html.fromstring(html).xpath('//p[contains(@class, "issue-meta")]')[0].text_content().split())


def test_preview_shows_the_number_the_send_gives(cfg: Path, tmp_path: Path, run_cli: Callable[..., Run],
                                                mail_server: Any) -> None:
    out = tmp_path / "out"
    assert run_cli("preview", "--config", cfg, "--all", "--out", out).code == 0
    assert masthead((out / "issue.html").read_text("utf-8")).startswith("Issue 1 · ")
    assert 'href="https://news.example.com/archive/1"' in (out / "issue.html").read_text("utf-8")
    assert run_cli("subscribers", "add", "a@example.com", "--confirmed", "--config", cfg).code == 0
    assert run_cli("send", "--yes", "--config", cfg).code == 0
    sent = mail_server.received[0].message.get_body(("html",)).get_content()
    assert masthead(sent).startswith("Issue 1 · ")
    assert 'href="https://news.example.com/archive/1"' in sent  # "View in browser": the same issue
    assert run_cli("preview", "--config", cfg, "--all", "--out", out).code == 0  # with --all too
    assert masthead((out / "issue.html").read_text("utf-8")).startswith("Issue 2 · ")
    assert (out / "issue.txt").read_text("utf-8").splitlines()[1].startswith("Issue 2 - ")


def test_what_max_posts_leaves_out_is_said(write_config: Callable[..., Path], tmp_path: Path,
                                          run_cli: Callable[..., Run]) -> None:
    result = run_cli("preview", "--config", write_config(max_posts=5), "--all", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    assert "9 posts left out by [newsletter] max_posts (5): the issue links to the blog for them." in result.out
    assert "9 more posts on the blog" in (tmp_path / "out" / "issue.txt").read_text("utf-8")
    result = run_cli("preview", "--config", write_config(max_posts=20), "--all", "--out", tmp_path / "out")
    assert "left out" not in result.out


def test_send_says_what_max_posts_left_out(cfg: Path, run_cli: Callable[..., Run], mail_server: Any) -> None:
    cfg.write_text(cfg.read_text().replace("max_posts = 20", "max_posts = 13"))
    assert run_cli("subscribers", "add", "a@example.com", "--confirmed", "--config", cfg).code == 0
    result = run_cli("send", "--yes", "--config", cfg)
    assert result.code == 0, result.err
    assert "Warning: 1 post left out by [newsletter] max_posts (13): the issue links to the blog for them" in result.err
    text = mail_server.received[0].message.get_body(("plain",)).get_content()
    assert "1 more post on the blog: https://thewisejobsearch.blogspot.com/" in text
