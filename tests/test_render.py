"""What a reader sees: golden files of the sample feed's issue, escaping, overrides."""

from __future__ import annotations

import difflib
import email
import email.policy
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from lxml import html as lxml_html

from conftest import Run
from digest.jobs import preview
from digest.core.config import read_config
from digest.core.models import PLACEHOLDERS, IssueContent, Post, Section
from digest.core.render import make_environment, render_issue
from feedgen import Entry, atom

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def normalise(text: str) -> str:
    text = re.sub(r"=_digest_[0-9a-f]+", "=_digest_BOUNDARY", text)
    text = re.sub(r"^Message-ID: <[^>]+>", "Message-ID: <ID>", text, flags=re.M)
    return text.replace(str(ROOT), "ROOT")


def check_golden(name: str, actual: str, regen: bool) -> None:
    path = GOLDEN / name
    if regen or not path.exists():
        path.write_text(actual, encoding="utf-8", newline="")
        if not regen:
            pytest.fail(f"{path} did not exist: written now, check it and commit it")
        return
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "golden/" + name, "actual", n=2))
        pytest.fail(f"{name} differs from the golden file (run pytest --regen-golden to accept):\n{diff[:6000]}")


def test_sample_feed_issue_matches_golden_files(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    config = read_config(ROOT / "config.toml", {})
    issue = preview.build_preview(config, now=NOW, every_post=True)
    assert issue is not None
    written = preview.write_preview(config, issue, tmp_path, now=NOW)
    regen = bool(request.config.getoption("--regen-golden"))
    check_golden("issue.html", normalise(written.html_path.read_text("utf-8")), regen)
    check_golden("issue.txt", normalise(written.text_path.read_text("utf-8")), regen)
    check_golden("issue.eml", normalise(written.eml_path.read_bytes().decode("ascii")), regen)


def test_sample_issue_has_every_part_the_design_names(tmp_path: Path) -> None:
    config = read_config(ROOT / "config.toml", {})
    issue = preview.build_preview(config, now=NOW, every_post=True)
    assert issue is not None
    html = preview.write_preview(config, issue, tmp_path, now=NOW).html_path.read_text("utf-8")
    doc = lxml_html.fromstring(html)
    text = " ".join(doc.text_content().split())
    assert "The Wise Job Search" in text and "23 November 2026" in text
    assert [s.title for s in issue.content.sections] == [
        "Interviews", "Resumes & cover letters", "Networking", "Offers & salary", "Workplace culture", "More from the blog"]
    assert "Have a question?" in text and "Readers asked, we answered" in text
    assert {p.title for p in issue.content.featured} == {
        "Reader question: how do I explain a two-year gap in my resume?",
        "Reader question: should I accept the first offer I get?"}
    assert doc.xpath('//a[@href="https://thewisejobsearch.blogspot.com/p/contact.html"]')
    assert doc.xpath('//a[@href="mailto:questions@example.com"]')
    assert doc.xpath('//a[@href="http://localhost:8000/unsubscribe/preview"]')
    assert doc.xpath('//a[@href="http://localhost:8000/preferences/preview"]')
    assert doc.xpath('//a[@href="http://localhost:8000/archive/"]')
    assert "100 Example Street" in text
    thumbs = doc.xpath('//img[contains(@src, "/w240/")]')
    assert thumbs and thumbs[0].get("alt")
    assert doc.xpath('//table[@width="600"]')
    style = "".join(doc.xpath("//style/text()"))
    assert "@media only screen and (max-width: 620px)" in style and "!important" in style
    assert "prefers-color-scheme: dark" in style
    assert 'class="preheader"' in html and "%%" not in html
    # CSS is inlined: the masthead carries its own style attribute.
    assert "border-bottom:3px solid #1d5c8c" in doc.xpath('//td[contains(@class, "masthead")]')[0].get("style")


def _content(title: str, excerpt: str = "x") -> IssueContent:
    post = Post(id="1", title=title, link="https://b.example/1?a=1&b=2", published=NOW, updated=NOW, excerpt=excerpt)
    return IssueContent(sections=(Section("k", "Topic <i>", (post,)),))


def test_titles_are_escaped_exactly_once() -> None:
    config = read_config(ROOT / "config.toml", {})
    title = '<script>alert("x")</script> & <b>bold</b>'
    rendered = render_issue(_content(title, excerpt="Tom & Jerry <img src=x onerror=y>"), config, date=NOW, env=make_environment())
    assert "<script>" not in rendered.html and "<b>bold" not in rendered.html and "<img src=x" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in rendered.html
    assert "&amp;amp;" not in rendered.html
    assert 'href="https://b.example/1?a=1&amp;b=2"' in rendered.html
    assert "Topic &lt;i&gt;" in rendered.html
    assert title in rendered.text  # the text version is text: no entities
    assert rendered.subject == f"The Wise Job Search: {title}"


def test_a_typo_in_a_template_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "issue.txt.j2").write_text("{{ blog.nmae }}")
    (tmp_path / "issue.html.j2").write_text("{% extends 'default:issue.html.j2' %}")
    config = read_config(ROOT / "config.toml", {})
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render_issue(_content("t"), config, date=NOW, env=make_environment(str(tmp_path)))


def test_user_templates_override_and_extend_the_built_in_ones(tmp_path: Path) -> None:
    (tmp_path / "issue.html.j2").write_text(
        "{% extends 'default:issue.html.j2' %}{% block style %}{{ super() }} .masthead { border-bottom: 9px solid #ff0000; }{% endblock %}")
    config = read_config(ROOT / "config.toml", {})
    rendered = render_issue(_content("t"), config, date=NOW, env=make_environment(str(tmp_path)))
    assert "9px solid #ff0000" in rendered.html and "Have a question?" in rendered.html


# ---- feed text that holds a placeholder's text is shown as written ----

MARKERS = ("%%UNSUBSCRIBE_URL%%", "%%GREETING%%", "%%PREFERENCES_URL%%", "%%ARCHIVE_URL%%")


def test_a_post_titled_like_a_placeholder_is_not_substituted(tmp_path: Path, write_config: Callable[..., Path],
                                                            run_cli: Callable[..., Run]) -> None:
    looks_encoded = "=?utf-8?q?x=0D=0ABcc:_evil@example.net?="
    entries = [Entry(i + 1, title=f"Read {marker} now", published=f"2026-11-2{i}T08:00:00Z",
                     html=f"<p>The excerpt holds {marker} too.</p>")
               for i, marker in enumerate(MARKERS)]
    entries.append(Entry(9, title=looks_encoded, published="2026-11-29T08:00:00Z",
                         link="https://blog.example.com/p.html?x=%%UNSUBSCRIBE_URL%%"))
    feed = tmp_path / "feed.xml"
    feed.write_bytes(atom(entries))
    out = tmp_path / "out"
    result = run_cli("preview", "--config", write_config(feed=feed), "--all", "--out", out)
    assert result.code == 0, result.err
    parsed = email.message_from_bytes((out / "issue.eml").read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == f"The Wise Job Search: {looks_encoded}" and parsed["Bcc"] is None
    text_part, html_part = (p.get_content() for p in parsed.iter_parts())
    files = {"issue.txt": (out / "issue.txt").read_text("utf-8"), "issue.html": (out / "issue.html").read_text("utf-8")}
    for name, body in {"text part": text_part, "html part": html_part, **files}.items():
        for marker in MARKERS:
            assert f"Read {marker} now" in body, (name, marker)
            assert f"The excerpt holds {marker} too." in body, (name, marker)
        assert "p.html?x=%%UNSUBSCRIBE_URL%%" in body, name
        assert body.count("https://news.example.com/unsubscribe/preview") == 1, name  # the footer's link only
        assert "Hello, here is what's new" in body, name


def test_placeholders_cannot_be_guessed() -> None:
    values = [getattr(PLACEHOLDERS, name) for name in ("greeting", "unsubscribe_url", "preferences_url", "archive_url")]
    assert not set(values) & set(MARKERS)
    assert all(re.fullmatch(r"%%[A-Z_]+-[0-9a-f]{16}%%", v) for v in values)
