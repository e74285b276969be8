"""Issue 21's feed doors: characters XML forbids never reach XML, headers or HTML; post
HTML nested past a sane depth is flattened before nh3; the whole parse has a deadline
([feed] parse_seconds) and misses it with one clear line. Feeds come from a real HTTP
server; the archive feed from a real SQLite store through Starlette's TestClient."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from conftest import FeedServer, Reply, Run
from feedgen import Entry, atom
from test_cli import one_error_line

from digest.core.depth import MAX_DEPTH, flatten_deep
from digest.core.errors import FeedError
from digest.core.parse import parse_feed
from digest.core.sanitize import sanitize_html

BASE = "https://blog.example.com/feeds/posts/default"
FORBIDDEN = "\ufffe\uffff\ufdd0\U0001fffe\x0b\x1f"


def with_forbidden(xml: bytes) -> bytes:
    """A feed whose title, body and label carry, as character references, what XML forbids."""
    refs = "&#xFFFE;&#xFFFF;&#xFDD0;&#x1FFFE;&#x0B;&#x1F;"
    return (xml.replace(b"Post number 1", f"Post{refs} number 1".encode())
               .replace(b"Body of the post.", f"Body{refs.replace('&', '&amp;')} of the post.".encode())
               .replace(b"term='Interviewing'", f"term='Inter{refs}viewing'".encode()))


def test_characters_xml_forbids_are_dropped_from_every_field() -> None:
    post = parse_feed(with_forbidden(atom([Entry(1, labels=["Interviewing"])])), BASE).posts[0]
    for field in (post.title, post.content_html, post.excerpt, *post.labels):
        assert not set(field) & set(FORBIDDEN), repr(field)
    assert post.title == "Post number 1" and post.labels == ("Interviewing",)
    assert "Body of the post." in post.content_html


def test_links_lose_them_too() -> None:
    xml = atom([Entry(1, link="https://blog.example.com/2026/11/a\ufffe-post.html",
                      html="<a href='https://blog.example.com/b&#xFFFF;'>b</a>")])
    post = parse_feed(xml, BASE).posts[0]
    assert post.link == "https://blog.example.com/2026/11/a-post.html"
    assert 'href="https://blog.example.com/b"' in post.content_html


def test_the_archive_feed_stays_valid_xml(write_config: Callable[..., Path], mail_server: object) -> None:
    from test_web import START, make_web

    from digest.adapters.ledger import Ledger
    from digest.core.models import Post

    for web in make_web(write_config, mail_server):
        # An issue as an older version stored it: the raw noncharacter in its subject and titles.
        post = Post("p1", "Salary\ufffe talk\U0010ffff", "https://b.example/1", START, START, excerpt="x")
        ledger = Ledger(web.store)
        issue, _ = ledger.create_issue(key="k1", now=START, cutoff=START, subject="Week\ufffe 1\x0c", posts=[post],
                                       html="<p>x</p>", text="x", domain="example.com", state=None)
        ledger.finish_if_done(issue.id, START)
        response = web.client.get("/archive/feed.xml")
        root = ET.fromstring(response.content)  # expat: refuses a document with a character XML forbids
        titles = [e.text for e in root.iter("{http://www.w3.org/2005/Atom}title")]
        assert "Week 1" in titles


def depth(html: str) -> int:
    """How deep the elements of well-formed (nh3's) HTML nest."""
    deepest = level = 0
    for closing, name in re.findall(r"<(/?)([a-z0-9]+)[^>]*>", html):
        if name in ("br", "img", "hr"):
            continue
        level += -1 if closing else 1
        deepest = max(deepest, level)
    return deepest


def test_deeply_nested_post_html_is_flattened_before_nh3() -> None:
    for opener in ("<div>", "<div><object></div></object>", "<blockquote></i>", "<b>", "<ul><li>"):
        cleaned = sanitize_html(opener * 5000 + "deep words" + "</div>" * 100)
        assert "deep words" in cleaned
        assert depth(cleaned) <= MAX_DEPTH * 2, (opener, depth(cleaned))
    ordinary = "<div><p>One <b>bold</b> <i>word</i></p><ul><li>a<li>b</ul><p>x<p>y</div>"
    assert flatten_deep(ordinary * 100) == ordinary * 100  # untouched below the depth, however long
    assert sanitize_html("<div>" * 60 + "x" + "</div>" * 60).count("<div>") == 60


def test_a_post_nested_150000_deep_previews_through_a_real_server(
        tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run], feed_server: FeedServer) -> None:
    nested = "<div>" * 150_000 + "Still readable." + "</div>" * 150_000
    url = feed_server.serve("/deep", Reply(body=atom([Entry(1, html=nested), Entry(2)]),
                                           headers={"Content-Type": "application/atom+xml"}))
    result = run_cli("preview", "--config", write_config(feed=url), "--all", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    html = (tmp_path / "out" / "issue.html").read_text()
    assert "Post number 1" in html and "Still readable" not in result.err


def test_a_parse_past_its_deadline_is_one_clear_line(
        tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run], feed_server: FeedServer) -> None:
    url = feed_server.serve("/slow", Reply(body=atom([Entry(n) for n in range(1, 40)]),
                                           headers={"Content-Type": "application/atom+xml"}))
    config = write_config(feed=url)
    config.write_text(config.read_text().replace("deadline_seconds = 5\n", "deadline_seconds = 5\nparse_seconds = 0.000001\n"))
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "out")
    one_error_line(result, FeedError.exit_code, "not parsed within 1e-06 s ([feed] parse_seconds)", "0 of 39 posts")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
