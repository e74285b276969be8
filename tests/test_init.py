"""`digest init`: a new blog's folder, and the template it comes from kept equal to the
shipped config.toml."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, FeedServer, Reply, Run
from feedgen import Entry, atom

from digest.core.config import read_config
from digest.core.starter import render_config, sample_values


def test_the_shipped_config_is_the_init_template_with_the_sample_values() -> None:
    rendered = render_config(sample_values("examples/sample-feed.xml"), sample=True)
    shipped = (ROOT / "config.toml").read_text()
    if rendered != shipped:
        import difflib

        diff = "".join(difflib.unified_diff(shipped.splitlines(True), rendered.splitlines(True), "config.toml",
                                            "templates/config.toml.j2"))
        pytest.fail("config.toml and templates/config.toml.j2 differ: change both the same way\n" + diff)


def test_the_data_folder_readme_is_the_one_init_writes() -> None:
    assert (ROOT / "templates" / "subscribers_readme.md.j2").read_text() == (ROOT / "subscribers" / "README.md").read_text()


def test_init_writes_a_config_that_works_the_data_folder_and_a_private_secret(
        tmp_path: Path, feed_server: FeedServer, run_cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "a secret from the shell, longer than 16")
    feed_server.serve("/feeds/posts/default", Reply(body=atom([Entry(1, "Hello from a new blog")]),
                                                    headers={"Content-Type": "application/atom+xml"}))
    folder = tmp_path / "blog"
    result = run_cli("init", folder, "--blog-url", feed_server.url + "/", "--name", "Nice & Quoted \"Blog\"")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"Wrote {folder / 'config.toml'}" and "Next:" in lines and lines[-1].startswith("  3. ")
    secret = folder / "subscribers" / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) >= 16
    assert (folder / "subscribers" / "README.md").read_text().startswith("# subscribers/")
    config = read_config(folder / "config.toml", {})
    assert config.blog.name == 'Nice & Quoted "Blog"' and config.feed.url == feed_server.url + "/feeds/posts/default"
    assert config.web.secret_file == str(secret) and config.topics == ()
    preview = run_cli("preview", "--config", folder / "config.toml", "--all", "--out", tmp_path / "out")
    assert preview.code == 0, preview.err
    assert "Hello from a new blog" in (tmp_path / "out" / "issue.html").read_text()


def test_init_never_overwrites(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    (tmp_path / "config.toml").write_text("# mine\n")
    result = run_cli("init", tmp_path)
    assert result.code == 2 and result.err.startswith(f"Error: {tmp_path / 'config.toml'}: already exists")
    assert (tmp_path / "config.toml").read_text() == "# mine\n" and not (tmp_path / "subscribers").exists()


def test_init_in_an_unwritable_place_is_one_line(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/blog")  # root can write anywhere on disk, but not there
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "blog"
    result = run_cli("init", target)
    assert result.code == 2 and result.err.count("\n") == 1 and "cannot write there" in result.err


@pytest.mark.parametrize("url", ['https://x.blogspot.com/"\n[smtp]\nhost="evil"', "ftp://blog.example.com/",
                                 "https://user:pw@blog.example.com/"])
def test_a_blog_url_that_is_refused_leaves_no_config_behind(tmp_path: Path, run_cli: Callable[..., Run], url: str) -> None:
    """init wrote config.toml, then refused it: the folder kept a config that does not load,
    and the next `digest init` with the address corrected said "already exists"."""
    refused = run_cli("init", tmp_path / "blog", "--blog-url", url)
    assert refused.code == 3 and "[blog] url" in refused.err and refused.err.count("\n") == 1
    assert not (tmp_path / "blog" / "config.toml").exists()
    again = run_cli("init", tmp_path / "blog", "--blog-url", "https://blog.example.com/")
    assert again.code == 0, again.err


def _blog(feed_server: FeedServer, title: str = "The Wise Job Search", contact: bool = True) -> str:
    feed_server.serve("/feeds/posts/default", Reply(body=atom([Entry(1, "Hello")], title=title),
                                                    headers={"Content-Type": "application/atom+xml"}))
    if contact:
        pages = atom([Entry(7, "About"), Entry(8, "Contact", link=f"{feed_server.url}/p/contact.html")])
        feed_server.serve("/feeds/pages/default", Reply(body=pages, headers={"Content-Type": "application/atom+xml"}))
    return feed_server.url + "/"


def test_init_names_the_blog_from_its_feed_and_finds_its_contact_page(
        tmp_path: Path, feed_server: FeedServer, run_cli: Callable[..., Run]) -> None:
    url = _blog(feed_server)
    result = run_cli("init", tmp_path / "blog", "--blog-url", url)
    assert result.code == 0, result.err
    config = read_config(tmp_path / "blog" / "config.toml", {})
    assert config.blog.name == "The Wise Job Search" and "guess" not in result.out and "Named the blog" not in result.out
    assert config.blog.contact_url == config.question.url == f"{feed_server.url}/p/contact.html"
    assert "[question]" in result.out and "Contact page" in result.out
    # The next steps name the command as the README's install has it.
    assert ".venv/bin/digest mailbox --web 8025" in result.out and ".venv/bin/digest preview" in result.out
    assert " digest mailbox" not in result.out.replace(".venv/bin/digest", "")


def test_init_says_when_it_guessed_the_name_and_leaves_the_question_box_out(
        tmp_path: Path, feed_server: FeedServer, run_cli: Callable[..., Run]) -> None:
    feed_server.serve("/feeds/posts/default", Reply(500, b"down"))
    result = run_cli("init", tmp_path / "blog", "--blog-url", feed_server.url + "/")
    assert result.code == 0, result.err
    assert "Named the blog '127' from its address" in result.out and "--name" in result.out
    config = read_config(tmp_path / "blog" / "config.toml", {})
    assert config.question.url == "" and config.blog.contact_url == ""
    assert "[question] url" in result.out and "/ask" in result.out
    # The issue then has no "Have a question?" box that leads nowhere.
    from datetime import datetime, timezone

    from digest.core.models import IssueContent, Post, Section
    from digest.core.render import make_environment, render_issue

    when = datetime(2026, 11, 23, tzinfo=timezone.utc)
    post = Post(id="1", title="A post", link="https://b.example/1", published=when, updated=when)
    rendered = render_issue(IssueContent(sections=(Section("k", "K", (post,)),)), config.publication, date=when, env=make_environment())
    assert "Have a question?" not in rendered.html and "Have a question?" not in rendered.text


def test_init_sample_works_from_any_folder(tmp_path: Path, run_cli: Callable[..., Run],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the checkout: no examples/ here
    result = run_cli("init", "tryout", "--sample")
    assert result.code == 0, result.err
    config = read_config(tmp_path / "tryout" / "config.toml", {})
    assert Path(config.feed.url).is_file() and Path(config.feed.url).name == "sample-feed.xml"
    preview = run_cli("preview", "--config", tmp_path / "tryout" / "config.toml", "--out", tmp_path / "out")
    assert preview.code == 0, preview.err
