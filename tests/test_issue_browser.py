"""The issue as readers see it, measured in the system Chromium: every text's contrast in
light and dark, no sideways scrolling on phones, the question section in the first screen,
thumbnails sharp at phone width, link names for screen readers; screenshots for review.

No network: the page's own file loads, images get a local SVG of the size asked for
(so that thumbnails show and their displayed width can be measured), anything else is
refused.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from browser import ARTIFACTS
from conftest import ROOT, SHARED_FEEDS
from feedgen import Entry, atom

from digest.adapters.fetch import fetch_feed
from digest.core.compose import compose_acknowledgement, compose_answer_notice, compose_confirmation, compose_welcome
from digest.core.config import Config, read_config
from digest.core.questions import ANSWERED, Question
from digest.jobs import preview

pytestmark = pytest.mark.browser
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
FEEDS = sorted(SHARED_FEEDS.glob("*/*.xml")) if SHARED_FEEDS.is_dir() else []
NOTE = """A short note this week: I am **away** on Monday, so the next issue comes on *Tuesday*.
Until then, the [interview series](https://thewisejobsearch.blogspot.com/search/label/Interviewing) is a good start.
"""
LONG_URL = "https://www.example.com/careers/2026/applications/status?ref=newsletter1"  # 70 characters, no break


def _offline(route: Any) -> None:
    request = route.request
    if request.url.startswith("file:"):
        route.continue_()
    elif request.resource_type == "image":
        asked = re.search(r"/w(\d+)/", request.url)
        width = int(asked.group(1)) if asked else 640
        height = width * 9 // 16
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
               f'<rect width="100%" height="100%" fill="#9fb6c9"/><circle cx="{width // 2}" cy="{height // 2}" '
               f'r="{height // 4}" fill="#e8eef3"/></svg>')
        route.fulfill(status=200, content_type="image/svg+xml", body=svg)
    else:
        route.abort()


def open_page(browser: Any, path: Path, width: int, height: int = 900, scheme: str = "light") -> Any:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.emulate_media(color_scheme=scheme)
    page.route("**/*", _offline)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def render(config: Config, out: Path, *, feed: str | None = None, note: str = "") -> tuple[Path, Path]:
    """The mail copy (as `digest preview` writes it) and the archive copy of one issue."""
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, feed=feed, every_post=True, note=note,
                                  history=preview.PreviewHistory(next_number=7))
    assert issue is not None
    written = preview.write_preview(config.publication, issue, out, now=NOW)
    archive = out / "archive.html"
    archive.write_text(issue.composer.archive().html, encoding="utf-8")
    return written.html_path, archive


@pytest.fixture(scope="module")
def config() -> Config:
    return read_config(ROOT / "config.toml", {})


@pytest.fixture(scope="module")
def sample(config: Config, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample issue with a note, as it goes out."""
    return render(config, tmp_path_factory.mktemp("sample"), note=NOTE)


@pytest.fixture(scope="module")
def pages(config: Config, sample: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every page whose contrast is measured: the issue (with a note and a "more posts"
    link), its archive copy, and the welcome mail."""
    out = tmp_path_factory.mktemp("pages")
    short = replace(config, newsletter=replace(config.newsletter, max_posts=10))
    mail, archive = render(short, out, note=NOTE)
    welcome = out / "welcome.html"
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    welcome.write_text(compose_welcome(config.publication, name="Ana", answered=issue.content.featured,
                                       preferences_url="https://news.example.com/preferences/x").html, encoding="utf-8")
    return {"issue": mail, "archive": archive, "welcome": welcome, **single_mails(config, out)}


def single_mails(config: Config, out: Path) -> dict[str, Path]:
    """The confirmation, the acknowledgement and the answer notice, as their HTML goes out."""
    question = Question(id=17, email="a@example.com", email_key="a@example.com", name="", text="", source="web",
                        status=ANSWERED, consent_to_quote=False, display_name="", created_at=NOW,
                        paraphrase="Two offers, one deadline", answer_title="Juggling two offers",
                        answer_url="https://thewisejobsearch.blogspot.com/2026/11/two-offers.html")
    mails = {"confirmation": compose_confirmation(config.publication, confirm_url="https://news.example.com/confirm/x"),
             "acknowledgement": compose_acknowledgement(config.publication), "notice": compose_answer_notice(config.publication, question)}
    paths = {}
    for name, template in mails.items():
        paths[name] = out / f"{name}.html"
        paths[name].write_text(template.html, encoding="utf-8")
    return paths


# ---- contrast ----

CONTRAST_JS = r"""
(scheme) => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => {  // top composited over an opaque colour
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + below[i] * (1 - a)).concat([1]);
  };
  const canvas = scheme === "dark" ? [18, 18, 18, 1] : [255, 255, 255, 1];
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let color = canvas;
    for (const layer of layers.reverse()) color = over(layer, color);
    return color;
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const hex = (c) => "#" + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, "0")).join("");
  const results = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].filter(n => n.nodeType === Node.TEXT_NODE)
      .map(n => n.textContent).join("").replace(/[\s\u200c\u00a0]+/g, " ").trim();
    if (!own) continue;
    if (!el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}) || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize);
    const bold = parseInt(style.fontWeight, 10) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    results.push({text: own.slice(0, 60), tag: el.tagName.toLowerCase(), cls: el.className, fg: hex(fg), bg: hex(bg),
                  ratio: Math.round(ratio * 100) / 100, required: large ? 3 : 4.5});
  }
  return results;
}
"""


def measure(page: Any, scheme: str) -> list[dict[str, Any]]:
    return list(page.evaluate(CONTRAST_JS, scheme))


def failures(measured: list[dict[str, Any]]) -> list[str]:
    return [f"{m['tag']}.{m['cls']} {m['text']!r}: {m['fg']} on {m['bg']} = {m['ratio']}:1 < {m['required']}:1"
            for m in measured if m["ratio"] < m["required"]]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", ["issue", "archive", "welcome", "confirmation", "acknowledgement", "notice"])
def test_every_text_reaches_wcag_aa_contrast(browser: Any, pages: dict[str, Path], name: str, scheme: str) -> None:
    page = open_page(browser, pages[name], 600, scheme=scheme)
    try:
        measured = measure(page, scheme)
        texts = " ".join(m["text"] for m in measured)
        if name in ("issue", "archive"):
            assert "Readers asked, we answered" in texts and "Read the answer" in texts and "Read more" in texts
            assert "A short note this week" in texts
        if name == "issue":
            assert "4 more posts on the blog" in texts and "Unsubscribe" in texts
            preheader = page.locator(".preheader")
            assert preheader.count() == 1 and not preheader.is_visible()
            assert preheader.inner_text().split("\u200c")[0].strip() not in texts  # hidden: not measured
        assert len(measured) > {"issue": 40, "archive": 40, "welcome": 15}.get(name, 5)
        assert failures(measured) == []
    finally:
        page.close()


def test_the_contrast_walk_finds_what_readers_cannot_read(browser: Any, tmp_path: Path) -> None:
    html = tmp_path / "bad.html"
    html.write_text("""<!DOCTYPE html><html><head><meta name="color-scheme" content="light dark"><style>
      body { background: #ffffff; color: #222222; font-size: 16px; }
      .grey { color: #777777; background: #888888; }
      .big { font-size: 24px; color: #8a8a8a; }
      .small { font-size: 16px; color: #8a8a8a; }
      .veil { background: rgba(0, 0, 0, 0.5); } .veil span { color: #333333; }
      .hidden { display: none; color: #ffffff; }
      @media (prefers-color-scheme: dark) { body { background: #1c1c1e; } .dim { color: #2b2b2b; } }
    </style></head><body>
      <p>Fine text</p><p class="grey">grey on grey</p><p class="big">large enough</p><p class="small">too light</p>
      <div class="veil"><span>dark on a dark veil</span></div><div class="hidden">hidden</div><p class="dim">dim in dark</p>
    </body></html>""")
    for scheme, bad in (("light", {"grey on grey", "too light", "dark on a dark veil"}),
                        ("dark", {"grey on grey", "dark on a dark veil", "dim in dark", "Fine text"})):
        page = open_page(browser, html, 600, scheme=scheme)
        measured = measure(page, scheme)
        page.close()
        assert {m["text"] for m in measured if m["ratio"] < m["required"]} == bad, scheme
        assert "hidden" not in {m["text"] for m in measured}


# ---- phones: nothing sideways ----

def _overflowing(page: Any, width: int) -> list[str]:
    return list(page.evaluate("""(width) => [...document.body.querySelectorAll('*')]
        .filter(e => e.getBoundingClientRect().right > width + 0.5)
        .map(e => e.tagName.toLowerCase() + '.' + e.className + ' ' + (e.textContent || '').trim().slice(0, 40))
        .slice(0, 5)""", width))


def _check_no_overflow(browser: Any, paths: tuple[Path, ...]) -> None:
    for path in paths:
        for width in (320, 375):
            page = open_page(browser, path, width)
            try:
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, f"{path.parent.name}/{path.name} is {scroll} px wide at {width} px: {_overflowing(page, width)}"
            finally:
                page.close()


@pytest.mark.skipif(not FEEDS, reason="../shared/feeds is not next to this checkout")
@pytest.mark.parametrize("feed", FEEDS, ids=[f"{f.parent.name}/{f.name}" for f in FEEDS])
def test_no_feed_makes_the_issue_wider_than_a_phone(browser: Any, config: Config, feed: Path, tmp_path: Path) -> None:
    _check_no_overflow(browser, render(config, tmp_path, feed=str(feed)))


def test_long_urls_words_and_notes_wrap_on_a_phone(browser: Any, config: Config, sample: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 2
    entries = [
        Entry(1, title=f"Where is my application? {LONG_URL}", labels=["Interviewing"],
              html=f"<p>Check {LONG_URL} first.</p><p>Then {word}.</p>"),
        Entry(2, title=word, labels=["Reader Questions"], html=f"<p>A reader asks about {LONG_URL}</p>",
              extra=f"<author><name>{word}</name></author>"),
    ]
    feed = tmp_path / "long.xml"
    feed.write_bytes(atom(entries))
    note = f"Read {LONG_URL} and `{word}`.\n\n    {LONG_URL}/{word}\n"
    _check_no_overflow(browser, (*render(config, tmp_path, feed=str(feed), note=note), *sample))


def test_without_its_style_block_the_issue_still_fits_a_phone(browser: Any, sample: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    # Mail clients that drop <style> (the Gmail app with other accounts, several webmails) keep the inlined styles.
    bare = tmp_path / "issue-no-style.html"
    bare.write_text(re.sub(r"<style[^>]*>.*?</style>", "", sample[0].read_text("utf-8"), flags=re.S), encoding="utf-8")
    assert "<style" not in bare.read_text("utf-8")
    _check_no_overflow(browser, (bare,))
    page = open_page(browser, bare, 375, 667)
    try:
        page.screenshot(path=str(ARTIFACTS / "issue-375-no-style.png"), full_page=True)
        widths = page.evaluate("[...document.querySelectorAll('img.thumb')].map(i => i.getBoundingClientRect().width)")
        assert widths and max(widths) <= 0.3 * 375, "thumbnails stay beside the text, not across it"
    finally:
        page.close()


# ---- the first screen, sharp thumbnails, names for screen readers ----

@pytest.mark.parametrize(("width", "height"), [(375, 667), (600, 800)])
def test_the_first_screen_shows_the_invitation_and_a_title(browser: Any, sample: tuple[Path, Path], width: int,
                                                           height: int) -> None:
    page = open_page(browser, sample[0], width, height)
    try:
        def bottom(locator: Any) -> float:
            box = locator.bounding_box()
            return float(box["y"] + box["height"])

        invitation = page.locator("h2", has_text="Have a question?")
        assert bottom(page.locator("h1")) < height and bottom(invitation) < height
        assert bottom(page.locator("a", has_text="Ask your question")) < height
        assert bottom(page.locator("h3").first) < height, "one of the week's titles in the first screen"
        answered = page.locator("h2", has_text="Readers asked, we answered").bounding_box()
        assert invitation.bounding_box()["y"] < answered["y"] < page.locator("h2.topic").first.bounding_box()["y"]
    finally:
        page.close()


@pytest.mark.parametrize("width", [320, 375, 414, 430, 431, 600, 800])
def test_thumbnails_are_asked_for_at_twice_their_shown_width(browser: Any, sample: tuple[Path, Path], width: int) -> None:
    page = open_page(browser, sample[0], width)
    try:
        shown = page.evaluate("""() => [...document.querySelectorAll('img')]
            .map(i => [i.currentSrc, i.getBoundingClientRect().width, i.naturalWidth])""")
        assert len(shown) == 3
        for src, displayed, natural in shown:
            asked = int(re.search(r"/w(\d+)/", src).group(1))  # type: ignore[union-attr]
            assert natural == asked and asked >= 2 * displayed, (src, displayed)
            # beside the post, smaller on a phone, never more than 30% of the text's width
            assert min(120 if width > 430 else 88, 0.3 * (width - (36 if width <= 620 else 64))) - 0.5 <= displayed
            assert displayed <= (120 if width > 430 else 88)
    finally:
        page.close()


def test_links_have_names_and_thumbnails_stay_out_of_the_way(browser: Any, sample: tuple[Path, Path], config: Config) -> None:
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    page = open_page(browser, sample[0], 600)
    try:
        assert page.get_by_role("link", name="Read more", exact=True).count() == 0
        for section in issue.content.sections:
            for post in section.posts:
                assert page.get_by_role("link", name=f"Read more: {post.title}", exact=True).count() == 1
                assert page.get_by_role("heading", name=post.title, level=3).count() == 1
        for post in issue.content.featured:
            assert page.get_by_role("link", name=f"Read the answer: {post.title}", exact=True).count() == 1
        assert page.get_by_role("img").count() == 0  # decorative: not announced, their links hidden
        assert page.get_by_role("heading", level=1).all_inner_texts() == ["The Wise Job Search"]
    finally:
        page.close()


# ---- screenshots for review ----

@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [600, 375])
def test_screenshots(browser: Any, sample: tuple[Path, Path], width: int, scheme: str) -> None:
    page = open_page(browser, sample[0], width, height=900 if width == 600 else 667, scheme=scheme)
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"issue-{width}-{scheme}.png"
        page.screenshot(path=str(path), full_page=True)
        first = ARTIFACTS / f"issue-{width}-{scheme}-first-screen.png"
        page.screenshot(path=str(first))
        assert path.stat().st_size > 10_000 and first.stat().st_size > 5_000
    finally:
        page.close()


# ---- the single mails: on-brand next to the issue ----

@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", ["confirmation", "acknowledgement", "notice"])
def test_the_single_mails_wear_the_issues_look(browser: Any, pages: dict[str, Path], name: str, scheme: str) -> None:
    page = open_page(browser, pages[name], 375, 667, scheme=scheme)
    try:
        page.screenshot(path=str(ARTIFACTS / f"mail-{name}-375-{scheme}.png"), full_page=True)
        assert page.get_by_role("heading", level=1).all_inner_texts() == ["The Wise Job Search"]  # the masthead
        colours = page.evaluate("""() => [...document.querySelectorAll('.inner a:not(.button-link), .footer a')]
            .map(a => getComputedStyle(a).color)""")
        assert colours and "rgb(0, 0, 238)" not in colours, "no default-blue links"
        background = page.evaluate("getComputedStyle(document.querySelector('.container')).backgroundColor")
        assert background == ("rgb(38, 38, 41)" if scheme == "dark" else "rgb(255, 255, 255)")
        padding = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.inner')).paddingLeft)")
        assert padding <= 18, "a phone's side padding, as the issue's"
        footer = page.inner_text(".footer")
        assert footer.count("The Wise Job Search") <= 1 + ("of The Wise Job Search" in footer), footer
        text = page.inner_text("body")
        assert "we hope you" not in text and "as the post puts it" not in text
        if name == "notice":  # the subscribe link says where it leads, not "here"
            assert page.get_by_role("link", name="here", exact=True).count() == 0
            assert page.get_by_role("link", name="subscribe to the weekly newsletter of The Wise Job Search").count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        page.close()
