"""premailer runs once per issue, without the network, and keeps the mobile rules winning."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, FeedServer, Reply

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


@pytest.mark.slow  # starts processes
def test_loading_the_inliner_leaves_requests_to_whoever_imports_it() -> None:
    """premailer is imported without loading requests (40-50 ms of each run), and that is
    all: a stand-in left in sys.modules made importlib.util.find_spec("requests") raise,
    and `import requests.adapters` run a second copy of that module, whose HTTPAdapter
    was not the one a requests.Session mounts. A fresh interpreter, as `digest` is."""
    code = (
        "import importlib.util, sys\n"
        "from digest.core.inline import inline_css\n"
        "inline_css('<html><head><style>p { margin: 0; }</style></head><body><p>hi</p></body></html>')\n"
        "assert 'urllib3' not in sys.modules, 'requests loaded'\n"
        "assert importlib.util.find_spec('requests') is not None\n"
        "assert 'requests' not in sys.modules and 'urllib3' not in sys.modules, 'something left in sys.modules'\n"
        "import requests.adapters\n"
        "import requests\n"
        "session = requests.Session()\n"
        "assert isinstance(session.get_adapter('https://example.com/'), requests.adapters.HTTPAdapter), 'two copies'\n"
        "assert requests.adapters is sys.modules['requests.adapters']\n"
        "import premailer\n"
        "assert premailer.Premailer('<p>x</p>', allow_network=False).session.get is requests.get\n"
        "print('OK')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0 and run.stdout.strip() == "OK", run.stderr


def test_the_same_html_is_inlined_once_and_its_dropped_rules_still_reported() -> None:
    page = ("<html><head><style>p { color: red; } p { colr: ; } @media (max-width: 1px) { p { margin: 0 !important; } }"
            "</style></head><body><p>again</p></body></html>")
    first = inline_css_checked(page)
    again = inline_css_checked(page)  # a retry run prepares the same issue again
    assert again is first and 'style="color:red"' in again[0]
    assert any("colr" in line for line in again[1]), again[1]
    # The stylesheet is parsed once per process; inlined afresh, or another page with the same
    # stylesheet (next week's issue in `digest serve`), it still says what it dropped.
    assert inline_css_checked.__wrapped__(page) == first
    other = inline_css_checked(page.replace("again", "other"))
    assert other[0] != first[0] and other[1] == first[1]


def test_a_second_page_with_the_same_bad_style_attribute_still_reports_it() -> None:
    """premailer keeps what cssutils made of each style="" attribute for the process, and
    cssutils says what it drops only while parsing: next week's issue in `digest serve`, from
    the same template, must still say it (the attribute is this test's own: no other test
    has inlined it before)."""
    style = "colr: ; margin: 3px 1px 4px 1px"
    pages = [f"<html><head><style>p {{ color: red; }}</style></head><body><p style='{style}'>{n}</p></body></html>"
             for n in ("this week", "next week")]
    first, second = (inline_css_checked.__wrapped__(page)[1] for page in pages)
    assert any("colr" in line for line in first), first
    assert second == first


# A stylesheet premailer keeps (its @media rules, which it rewrites in place to !important:
# unmarked, duplicated, upper-case, commented) and style="" attributes, good and bad.
_SHARED = ("<style>p { color: red; } .a { margin: 0; } p { colr: ; }\n"
           "@media only screen and (max-width: 600px) {\n"
           "  .a { width: 100%; width: calc(100% - 2px); COLOR: Blue; margin: 0 auto !important; }\n"
           "  p { font: 12px/1.5 Arial, sans-serif; padding: 1px; padding-left: 3px !IMPORTANT }\n"
           "  /* a comment */ .b { color: red !important; color: blue; }\n"
           "}\n"
           "@media (prefers-color-scheme: dark) { body { background: #000 } .a:hover { color: #fff } }</style>")


@pytest.mark.slow  # starts a process per page
def test_pages_sharing_a_stylesheet_inline_as_each_would_in_a_fresh_process() -> None:
    """The parsed stylesheet (and premailer's own caches) outlive an inline: each page of a
    long-running process comes out byte for byte, with the same warnings, as in a new one."""
    pages = [f"<html><head>{_SHARED}</head><body><p class='a' style='{style}'>page {n}</p><div class='b'>x</div>"
             "</body></html>"
             for n, style in enumerate(["color: bluee; width: 10pxx", "", "margin: ; colr: 1px", "color: blue"] * 2)]
    here = [inline_css_checked.__wrapped__(page) for page in pages]
    code = ("import json, sys\nfrom digest.core.inline import inline_css_checked\n"
            "print(json.dumps(inline_css_checked.__wrapped__(sys.stdin.read())))")
    for page, mine in zip(pages, here, strict=True):
        run = subprocess.run([sys.executable, "-c", code], input=page, capture_output=True, text=True, cwd=ROOT,
                             env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, check=True)
        html, warnings = json.loads(run.stdout)
        assert mine == (html, tuple(warnings))
    assert any("colr" in line for line in here[-2][1])
