"""premailer runs once per issue, without the network, and keeps the mobile rules winning."""

from __future__ import annotations

from conftest import FeedServer, Reply

from digest.core.inline import inline_css, inline_css_checked


def test_inline_never_fetches_stylesheets_or_imports(feed_server: FeedServer) -> None:
    css = feed_server.serve("/x.css", Reply(body=b"p { color: red; }"))
    imported = feed_server.serve("/i.css", Reply(body=b"p { color: blue; }"))
    page = (f'<html><head><link rel="stylesheet" href="{css}"><style>@import url("{imported}"); '
            "p { margin: 0; }</style></head><body><p>hi</p></body></html>")
    inline_css(page)
    assert feed_server.requests == []


def test_important_media_rules_are_kept_in_a_style_block() -> None:
    page = ("<html><head><style>.c { width: 600px; } @media only screen and (max-width: 620px) "
            "{ .c { width: 100% !important; } }</style></head><body><table class='c'><tr><td>x</td></tr></table></body></html>")
    out = inline_css(page)
    assert 'style="width:600px"' in out
    assert "@media only screen and (max-width: 620px)" in out and "width: 100% !important" in out


def test_the_same_html_is_inlined_once_and_its_dropped_rules_still_reported() -> None:
    page = ("<html><head><style>p { color: red; } p { colr: ; } @media (max-width: 1px) { p { margin: 0 !important; } }"
            "</style></head><body><p>again</p></body></html>")
    first = inline_css_checked(page)
    again = inline_css_checked(page)  # a retry run prepares the same issue again
    assert again is first and 'style="color:red"' in again[0]
    # premailer parses a stylesheet once per process: inlined afresh, it no longer says what it dropped
    assert any("colr" in line for line in again[1]), again[1]
    assert inline_css_checked.__wrapped__(page)[0] == first[0]
    assert inline_css_checked(page.replace("again", "other"))[0] != first[0]
