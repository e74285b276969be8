"""Feed bytes -> Post records: ids, links, dates, labels, sanitised content, thumbnails."""

from __future__ import annotations

import pytest
from feedgen import Entry, atom

from digest.core.errors import FeedParseError
from digest.core.parse import ParseOptions, parse_feed

BASE = "https://blog.example.com/feeds/posts/default"


def one(entry: Entry, **kw: object) -> object:
    page = parse_feed(atom([entry], **kw), BASE)  # type: ignore[arg-type]
    assert len(page.posts) == 1
    return page.posts[0]


HOSTILE = (
    '<p onclick="steal()">Hello<script>alert(1)</script></p>'
    '<a href="javascript:alert(2)">js</a>'
    '<a href="/relative">rel</a>'
    '<iframe src="https://evil.example/"></iframe>'
    '<form action="https://evil.example/"><input name="pw">Log in</form>'
    '<div style="background:url(https://evil.example/track.png)">styled</div>'
    '<style>@import url(https://evil.example/x.css); body{color:red}</style>'
    '<link rel="stylesheet" href="https://evil.example/y.css">'
    '<img src="https://feeds.feedburner.com/~r/blog/~4/abc" height="1" width="1" alt="">'
    '<img src="https://img.example.com/pixel.gif" width="1" height="1">'
    '<img src="data:image/png;base64,AAAA" alt="data">'
    '<img src="https://img.example.com/photo.jpg" alt="photo" onerror="x()">'
)


@pytest.mark.parametrize("needle", [
    "<script", "alert(", "onclick", "javascript:", "<iframe", "evil.example", "<form", "<input",
    "style=", "@import", "<style", "<link", "feedburner", "pixel.gif", "data:image", "onerror",
])
def test_hostile_content_is_sanitised(needle: str) -> None:
    post = one(Entry(1, html=HOSTILE))
    assert needle not in post.content_html  # type: ignore[attr-defined]


def test_sanitising_keeps_the_harmless_parts_and_resolves_links() -> None:
    post = one(Entry(1, html=HOSTILE))
    html = post.content_html  # type: ignore[attr-defined]
    assert "Hello" in html and "styled" in html
    assert 'href="https://blog.example.com/relative"' in html
    assert '<img src="https://img.example.com/photo.jpg" alt="photo">' in html
    assert post.thumbnail == "https://img.example.com/photo.jpg"  # type: ignore[attr-defined]


def test_title_with_markup_and_newlines_becomes_one_plain_line() -> None:
    xml = atom([Entry(1)]).replace(
        b"<title type='text'>Post number 1</title>",
        b"<title type='html'>&lt;b&gt;Bold&lt;/b&gt;\n  move &amp;amp; &lt;script&gt;x()&lt;/script&gt;win\r\n</title>",
    )
    post = parse_feed(xml, BASE).posts[0]
    assert post.title == "Bold move & win"


def test_text_title_keeps_angle_brackets_as_text() -> None:
    post = one(Entry(1, title="Why <salary> talk\nmatters\t now"))
    assert post.title == "Why <salary> talk matters now"  # type: ignore[attr-defined]


def test_labels_are_entry_categories_of_the_blogger_scheme_only() -> None:
    kind = "<category scheme='http://schemas.google.com/g/2005#kind' term='http://schemas.google.com/blogger/2008/kind#post'/>"
    post = one(Entry(1, labels=["Resumes", "Interviewing", "Resumes"], extra=kind), feed_labels=["Everything", "Else"])
    assert post.labels == ("Resumes", "Interviewing")  # type: ignore[attr-defined]


def test_feedburner_origlink_wins_over_tracking_link() -> None:
    extra = "<feedburner:origLink>https://blog.example.com/2026/11/real.html</feedburner:origLink>"
    post = one(Entry(1, link="http://feedproxy.google.com/~r/blog/~3/xyz/real.html", extra=extra))
    assert post.link == "https://blog.example.com/2026/11/real.html"  # type: ignore[attr-defined]


def test_javascript_entry_link_is_refused() -> None:
    post = one(Entry(1, link="javascript:alert(1)"))
    assert post.link == ""  # type: ignore[attr-defined]


def test_blogger_thumbnail_is_rewritten_to_a_usable_width() -> None:
    thumb = "<media:thumbnail url='https://blogger.googleusercontent.com/img/b/abc/s72-c/pic.jpg' height='72' width='72'/>"
    page = parse_feed(atom([Entry(1, extra=thumb)]), BASE, ParseOptions(thumbnail_width=300))
    assert page.posts[0].thumbnail == "https://blogger.googleusercontent.com/img/b/abc/w300/pic.jpg"


def test_dates_are_timezone_aware_and_published_is_kept_apart_from_updated() -> None:
    post = one(Entry(1, published="2026-11-20T08:00:00.000-05:00", updated="2029-01-01T00:00:00Z"))
    assert post.published.isoformat() == "2026-11-20T13:00:00+00:00"  # type: ignore[attr-defined]
    assert post.updated.year == 2029  # type: ignore[attr-defined]


def test_excerpt_is_plain_text_cut_at_a_word() -> None:
    body = "<p>" + " ".join(f"word{i}" for i in range(200)) + "</p>"
    page = parse_feed(atom([Entry(1, html=body)]), BASE, ParseOptions(excerpt_chars=50))
    text = page.posts[0].excerpt
    assert len(text) <= 50 and text.endswith("…") and "<" not in text
    assert text[:-1].split()[-1].startswith("word")


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>R</title><link>https://r.example/</link>
<item><title>Has guid</title><guid>post-1</guid><link>https://r.example/1</link></item>
<item><title>No guid</title><link>HTTPS://R.Example/2#comments</link><description>&lt;b&gt;hi&lt;/b&gt;</description></item>
<item><title>Plain text</title><link>https://r.example/3</link><description type="text">x</description></item>
</channel></rss>"""


def test_rss_ids_are_the_guid_as_written_else_the_normalised_link() -> None:
    posts = parse_feed(RSS, "https://moved.example/feed").posts
    assert posts[0].id == "post-1"  # not resolved against the feed URL
    assert posts[1].id == "https://r.example/2"
    assert posts[1].published is None and posts[1].updated is None


def test_bozo_feed_with_entries_still_parses() -> None:
    data = b"\n\n" + atom([Entry(1), Entry(2)])
    page = parse_feed(data, BASE)
    assert len(page.posts) == 2 and page.bozo_reason


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the document is empty"),
    (b"   \n", "the document is empty"),
    (b"<!DOCTYPE html><html><head><title>Blog</title></head><body><p>Hi</body></html>", "an HTML page, not an RSS or Atom feed"),
    (b"\x00\x01garbage", "not a feed"),
])
def test_documents_without_a_feed_are_errors(data: bytes, message: str) -> None:
    with pytest.raises(FeedParseError, match=message):
        parse_feed(data, BASE)


def test_next_page_link_is_found_and_absolute() -> None:
    page = parse_feed(atom([Entry(1)], next_url="/feeds/posts/default?start-index=26&max-results=25"), BASE)
    assert page.next_url == "https://blog.example.com/feeds/posts/default?start-index=26&max-results=25"


@pytest.mark.parametrize("body", [
    "<dl><dt>by A. Writer on behalf of the Committee</dt></dl>The conference",
    "<p>by A. Writer on behalf of the Committee</p><p>The conference</p>",
    "<ul><li>by A. Writer on behalf of the Committee</li><li>The conference</li></ul>",
    "<div>by A. Writer on behalf of the Committee</div><section>The conference</section>",
    "<dl><dd>by A. Writer on behalf of the Committee</dd></dl><hr>The conference",
    "<table><tr><th>by A. Writer on behalf of the Committee</th><td>The conference</td></tr></table>",
    "<h2>by A. Writer on behalf of the Committee</h2><figure><figcaption>The conference</figcaption></figure>",
])
def test_excerpt_keeps_words_apart_where_blocks_join(body: str) -> None:
    post = one(Entry(1, html=body))
    assert post.excerpt == "by A. Writer on behalf of the Committee The conference"  # type: ignore[attr-defined]
