"""Every real feed under ../shared/feeds previews with --all, and every title shows."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
from conftest import SHARED_FEEDS, Run
from lxml import html as lxml_html

FEEDS = sorted(SHARED_FEEDS.glob("*/*.xml")) if SHARED_FEEDS.is_dir() else []


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.skipif(not FEEDS, reason="real blogs' feeds kept beside the project's own checkouts (../shared/feeds) are not here; "
                    "nothing of yours is missing: the rest of the suite tests the parser on its own feeds")
@pytest.mark.parametrize("feed", FEEDS, ids=[f"{f.parent.name}/{f.name}" for f in FEEDS])
def test_shared_feed_previews_with_every_title(feed: Path, tmp_path: Path, write_config: Callable[..., Path],
                                              run_cli: Callable[..., Run]) -> None:
    config = write_config(max_posts=500)  # [newsletter] max_posts stops at 500; these feeds hold fewer
    result = run_cli("preview", "--config", config, "--feed", feed, "--all", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    page = (tmp_path / "out" / "issue.html").read_text("utf-8")
    text = words(lxml_html.fromstring(page).text_content())
    parsed = feedparser.parse(feed.read_bytes())
    assert parsed.entries
    for entry in parsed.entries:
        title = entry.title
        if "html" in entry.title_detail.type:
            title = html.unescape(lxml_html.fromstring(f"<div>{title}</div>").text_content())
        assert words(title) in text, f"{feed.name}: {title!r} missing"
    assert "<script" not in page.lower() and "<iframe" not in page.lower()


GTAC = SHARED_FEEDS / "blogger" / "google-testing-blog-2017-feedburner.xml"


@pytest.mark.skipif(not GTAC.is_file(), reason="../shared/feeds is not next to this checkout")
def test_excerpts_keep_words_apart_where_blocks_join() -> None:
    from digest.core.parse import parse_feed

    excerpts = [p.excerpt for p in parse_feed(GTAC.read_bytes(), str(GTAC)).posts]
    assert any("GTAC 2017 Committee The Google Test" in e for e in excerpts)
    assert not any("CommitteeThe" in e for e in excerpts)


@pytest.mark.skipif(not FEEDS, reason="../shared/feeds is not next to this checkout")
@pytest.mark.parametrize("feed", FEEDS, ids=[f"{f.parent.name}/{f.name}" for f in FEEDS])
def test_every_issue_stays_under_gmails_clip_at_the_default_max_posts(feed: Path, tmp_path: Path,
                                                                     write_config: Callable[..., Path],
                                                                     run_cli: Callable[..., Run]) -> None:
    from digest.jobs.build import NOTE_MAX_BYTES
    from digest.jobs.preview import GMAIL_CLIP_BYTES

    note = tmp_path / "note.md"  # the longest note allowed, too
    note.write_text(("A paragraph of the editor's note, with [a link](https://example.com/x). " * 12 + "\n\n") * 200)
    note.write_bytes(note.read_bytes()[:NOTE_MAX_BYTES])
    result = run_cli("preview", "--config", write_config(), "--feed", feed, "--all", "--out", tmp_path / "out",
                     "--note", note)
    assert result.code == 0, result.err
    size = (tmp_path / "out" / "issue.html").stat().st_size
    assert size < GMAIL_CLIP_BYTES, f"{feed.name}: {size} bytes"
    assert "Gmail clips" not in result.err
