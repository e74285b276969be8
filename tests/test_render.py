"""What a reader sees: golden files of the sample feed's issue, escaping, overrides."""

from __future__ import annotations

import difflib
import email
import email.policy
import itertools
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import Run
from feedgen import Entry, atom
from lxml import html as lxml_html

from digest.adapters.fetch import fetch_feed
from digest.core.answers import AnsweredQuestion, IssueQuestions
from digest.core.config import read_config
from digest.core.models import PLACEHOLDERS, IssueContent, Post, Section
from digest.core.render import headline, make_environment, render_issue
from digest.jobs import preview

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
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    written = preview.write_preview(config.publication, issue, tmp_path, now=NOW)
    regen = bool(request.config.getoption("--regen-golden"))
    check_golden("issue.html", normalise(written.html_path.read_text("utf-8")), regen)
    check_golden("issue.txt", normalise(written.text_path.read_text("utf-8")), regen)
    check_golden("issue.eml", normalise(written.eml_path.read_bytes().decode("ascii")), regen)


def test_sample_issue_has_every_part_the_design_names(tmp_path: Path) -> None:
    config = read_config(ROOT / "config.toml", {})
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    html = preview.write_preview(config.publication, issue, tmp_path, now=NOW).html_path.read_text("utf-8")
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
    assert doc.xpath('//a[@href="http://localhost:8000/archive/1"]')  # the issue the send will record
    assert "100 Example Street" in text
    thumbs = doc.xpath('//img[contains(@src, "/w240/")]')
    assert thumbs and all(t.get("alt") == "" for t in thumbs)  # decorative: the title is read once, from the link
    container = doc.xpath('//table[contains(@class, "container")]')[0]  # fluid, with or without <style>
    assert container.get("width") == "100%" and "max-width:600px" in container.get("style")
    assert '<!--[if mso]><table role="presentation" width="600"' in html  # Outlook ignores max-width
    style = "".join(doc.xpath("//style/text()"))
    assert "@media only screen and (max-width: 620px)" in style and "!important" in style
    assert "prefers-color-scheme: dark" in style
    # ... as the template writes them: premailer left their block alone, and took its mark off
    assert ".question-inner { padding: 16px 16px !important; }" in style and "data-premailer" not in html
    assert 'class="preheader"' in html and "%%" not in html
    # CSS is inlined: the masthead carries its own style attribute.
    assert "border-bottom:3px solid #1d5c8c" in doc.xpath('//td[contains(@class, "masthead")]')[0].get("style")


def _content(title: str, excerpt: str = "x") -> IssueContent:
    post = Post(id="1", title=title, link="https://b.example/1?a=1&b=2", published=NOW, updated=NOW, excerpt=excerpt)
    return IssueContent(sections=(Section("k", "Topic <i>", (post,)),))


def test_titles_are_escaped_exactly_once() -> None:
    config = read_config(ROOT / "config.toml", {})
    title = '<script>alert("x")</script> & <b>bold</b>'
    rendered = render_issue(_content(title, excerpt="Tom & Jerry <img src=x onerror=y>"), config.publication, date=NOW, env=make_environment())
    assert "<script>" not in rendered.html and "<b>bold" not in rendered.html and "<img src=x" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in rendered.html
    assert "&amp;amp;" not in rendered.html
    assert 'href="https://b.example/1?a=1&amp;b=2"' in rendered.html
    assert "Topic &lt;i&gt;" in rendered.html
    assert title in rendered.text  # the text version is text: no entities
    assert rendered.subject == "This week: 1 new post on Topic <i>"  # text: no entities (title too long to fit)


def test_a_typo_in_a_template_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "issue.txt.j2").write_text("{{ blog.nmae }}")
    (tmp_path / "issue.html.j2").write_text("{% extends 'default:issue.html.j2' %}")
    config = read_config(ROOT / "config.toml", {})
    from digest.core.errors import TemplateError

    with pytest.raises(TemplateError, match=r"issue\.txt\.j2, line 1: .* has no attribute 'nmae'") as caught:
        render_issue(_content("t"), config.publication, date=NOW, env=make_environment(str(tmp_path)))
    assert caught.value.template == str(tmp_path / "issue.txt.j2") and caught.value.line == 1


def test_user_templates_override_and_extend_the_built_in_ones(tmp_path: Path) -> None:
    (tmp_path / "issue.html.j2").write_text(
        "{% extends 'default:issue.html.j2' %}{% block style %}{{ super() }} .masthead { border-bottom: 9px solid #ff0000; }{% endblock %}")
    config = read_config(ROOT / "config.toml", {})
    rendered = render_issue(_content("t"), config.publication, date=NOW, env=make_environment(str(tmp_path)))
    assert "9px solid #ff0000" in rendered.html and "Have a question?" in rendered.html


def test_a_template_is_compiled_once_per_process_and_again_when_edited(tmp_path: Path) -> None:
    (tmp_path / "issue.txt.j2").write_text("first {{ blog.name }}\n")
    config = read_config(ROOT / "config.toml", {})
    first, second = make_environment(str(tmp_path)), make_environment(str(tmp_path))
    code = first.get_template("issue.txt.j2").root_render_func.__code__
    # A second environment (a second mail) runs the code the first one compiled.
    assert second.get_template("issue.txt.j2").root_render_func.__code__ is code
    assert make_environment().get_template("issue.html.j2").root_render_func.__code__ is \
        make_environment().get_template("issue.html.j2").root_render_func.__code__
    (tmp_path / "issue.txt.j2").write_text("edited {{ blog.name }}\n")
    rendered = render_issue(_content("t"), config.publication, date=NOW, env=make_environment(str(tmp_path)))
    assert rendered.text == f"edited {config.blog.name}\n"


def test_code_kept_in_memory_for_other_filters_is_compiled_again(tmp_path: Path) -> None:
    """As with a cache folder (test_template_cache.py): how a filter is called is compiled
    in, so code compiled for another filter of that name is not reused."""
    import jinja2

    from digest.core.templating import render_file

    (tmp_path / "greet.txt.j2").write_text("{{ who|greet }}")
    before = make_environment(str(tmp_path))
    before.filters["greet"] = lambda who: f"Hello {who}"
    assert render_file(before, "greet.txt.j2", {"who": "Ana"}) == "Hello Ana"

    @jinja2.pass_context
    def greet(context: jinja2.runtime.Context, who: str) -> str:
        return f"{context['greeting']} {who}"

    after = make_environment(str(tmp_path))
    after.filters["greet"] = greet
    assert render_file(after, "greet.txt.j2", {"who": "Ana", "greeting": "Hi"}) == "Hi Ana"


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


# ---- the issue a reader looks forward to: order, structure, Outlook, subject, archive ----

FEATURED = ("Reader question: how do I explain a two-year gap in my resume?",
            "Reader question: should I accept the first offer I get?")


def sample_issue(tmp_path: Path, config_text: str = "", **build: object) -> tuple[str, str, preview.BuiltIssue]:
    """The sample feed's issue as `digest preview --all` writes it: (HTML, text, issue)."""
    path = ROOT / "config.toml"
    if config_text:
        path = tmp_path / "config.toml"
        path.write_text(config_text)
    config = read_config(path, {})
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True, **build)  # type: ignore[arg-type]
    assert issue is not None
    written = preview.write_preview(config.publication, issue, tmp_path / "out", now=NOW)
    return written.html_path.read_text("utf-8"), written.text_path.read_text("utf-8"), issue


def shipped_config(**replace: str) -> str:
    text = (ROOT / "config.toml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.replace('url = "examples/sample-feed.xml"', f'url = "{ROOT / "examples" / "sample-feed.xml"}"')


def visible_text(html: str) -> str:
    """The words of the body, the hidden preheader left out."""
    body = lxml_html.fromstring(html).xpath("//body")[0]
    for hidden in body.xpath('.//*[contains(@class, "preheader")]'):
        hidden.drop_tree()
    return " ".join(body.text_content().split())


def test_the_invitation_comes_first_then_the_answers_then_the_topics(tmp_path: Path) -> None:
    # A phone's first screen shows the invitation with its button and the first answer's title.
    html, text, _ = sample_issue(tmp_path)
    words = visible_text(html)
    order = [words.index(s) for s in ("here is what's new", "Have a question?", "Ask your question",
                                      "Readers asked, we answered", FEATURED[0], FEATURED[1], "Interviews",
                                      "Five questions to ask")]
    assert order == sorted(order), words[:600]
    order = [text.index(s) for s in ("here is what's new", "== Have a question? ==", "== Readers asked, we answered ==",
                                     FEATURED[0], "== Interviews ==")]
    assert order == sorted(order)
    assert "Read the answer: https://thewisejobsearch.blogspot.com/2026/11/reader-question-how-do-i-explain.html" in text


def test_a_questions_only_issue_says_so(tmp_path: Path) -> None:
    config = read_config(ROOT / "config.toml", {})
    answered = IssueQuestions(answered=(AnsweredQuestion("Gap years", "", "The gap year", "https://b.example/a"),))
    rendered = render_issue(IssueContent(sections=()), config.publication, date=NOW, env=make_environment(), questions=answered)
    for body in (visible_text(rendered.html), rendered.text):
        assert "0 new posts" not in body and "what's new" not in body
        assert "readers' questions" in body and "Gap years" in body
    assert rendered.subject == "This week: The gap year"


def test_replies_are_invited_where_reply_to_sends_them(tmp_path: Path) -> None:
    html, text, issue = sample_issue(tmp_path)
    assert "Or write to questions@example.com, or just reply to this email." in visible_text(html)
    assert "Or just reply to this email." in text
    assert "just reply" not in visible_text(issue.composer.archive().html)  # a web page is not an email
    html, text, _ = sample_issue(tmp_path, shipped_config(**{'reply_to = "questions@example.com"': 'reply_to = ""'}))
    assert "reply to this email" not in html and "reply to this email" not in text


def test_real_headings_in_order() -> None:
    config = read_config(ROOT / "config.toml", {})
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    doc = lxml_html.fromstring(issue.template.html)
    headings = [(h.tag, " ".join(h.text_content().split())) for h in doc.xpath("//h1|//h2|//h3|//h4|//h5|//h6")]
    assert headings[0] == ("h1", "The Wise Job Search") and [h for h in headings if h[0] == "h1"] == headings[:1]
    assert ("h2", "Readers asked, we answered") in headings and ("h2", "Have a question?") in headings
    assert [t for tag, t in headings if tag == "h2"][2:] == [s.title for s in issue.content.sections]
    assert sorted(t for tag, t in headings if tag == "h3") == sorted(p.title for p in issue.content.posts)
    levels = [int(tag[1]) for tag, _ in headings]
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), "a heading level is skipped"
    # styled as before: inlined sizes, no browser default margins
    title = doc.xpath('//h3[contains(@class, "post-title")]')[0]
    assert "font-size:19px" in title.get("style") and "margin:0" in title.get("style")


def test_read_more_links_say_where_they_lead_and_thumbnails_are_decorative() -> None:
    config = read_config(ROOT / "config.toml", {})
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    doc = lxml_html.fromstring(issue.template.html)
    more = doc.xpath('//a[contains(@class, "more") or contains(@class, "answer-more")]')
    assert len(more) == len(issue.content.posts)
    for link in more:
        label = link.get("aria-label")
        assert label.startswith(("Read more: ", "Read the answer: ")) and label.split(": ", 1)[1] in \
            {p.title for p in issue.content.posts if p.link == link.get("href")}
    for img in doc.xpath("//img"):
        assert img.get("alt") == ""
        wrapper = img.getparent()
        assert wrapper.tag == "a" and wrapper.get("aria-hidden") == "true" and wrapper.get("tabindex") == "-1"


def _post(n: int, thumbnail: str | None) -> Post:
    return Post(id=str(n), title=f"Post {n}", link=f"https://b.example/{n}", published=NOW, updated=NOW, excerpt="x",
                thumbnail=thumbnail)


def test_every_post_with_a_thumbnail_shows_it_beside_its_text() -> None:
    config = read_config(ROOT / "config.toml", {})
    mixed = Section("a", "Mixed", (_post(1, "https://img.example/1.jpg"), _post(2, None)))
    full = Section("b", "Full", (_post(3, "https://img.example/3.jpg"), _post(4, "https://img.example/4.jpg")))
    rendered = render_issue(IssueContent(sections=(mixed, full)), config.publication, date=NOW, env=make_environment())
    doc = lxml_html.fromstring(rendered.html)
    images = doc.xpath("//img")
    assert [img.get("src") for img in images] == [f"https://img.example/{n}.jpg" for n in (1, 3, 4)]
    for img in images:  # floated in the post's own cell: no column of its own, empty when images are blocked
        assert img.get("align") == "right" and img.get("width") == "120"
        assert img.xpath('ancestor::td[1]')[0].get("class") == "post"


def test_outlook_safe_button_and_question_box() -> None:
    config = read_config(ROOT / "config.toml", {})
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    doc = lxml_html.fromstring(issue.template.html)
    button = doc.xpath('//a[@href="https://thewisejobsearch.blogspot.com/p/contact.html"]')[0]
    cell = button.getparent()
    assert cell.tag == "td" and "padding:11px 20px" in cell.get("style") and cell.get("bgcolor") == "#1d5c8c"
    assert "padding" not in (button.get("style") or "")
    for table in doc.xpath("//table"):
        assert "margin" not in (table.get("style") or ""), lxml_html.tostring(table)[:200]
    box = doc.xpath('//table[contains(@class, "question")]')[0]
    assert box.getparent().tag == "td" and "padding:20px 32px 6px 32px" in box.getparent().get("style")


def test_no_invalid_attributes() -> None:
    config = read_config(ROOT / "config.toml", {})
    issue = preview.build_preview(config.publication, fetch_feed, now=NOW, every_post=True)
    assert issue is not None
    for html in (issue.template.html, issue.composer.archive().html):
        doc = lxml_html.fromstring(html)
        for el in doc.iter():
            if not isinstance(el.tag, str):
                continue
            for name in ("width", "height"):
                if el.get(name) is not None:
                    assert el.tag in ("table", "td", "th", "img"), (el.tag, name)
                    assert re.fullmatch(r"\d+%?" if el.tag != "img" else r"\d+", el.get(name)), (el.tag, name, el.get(name))
            if el.get("bgcolor") is not None:
                assert el.tag in ("body", "table", "tr", "td", "th") and re.fullmatch(r"#[0-9a-f]{6}", el.get("bgcolor"))
            if el.get("valign") is not None:
                assert el.tag in ("td", "th", "tr") and el.get("valign") in ("top", "middle", "bottom", "baseline")


def test_default_subject_fits_a_phone_and_the_preheader_adds_to_it(tmp_path: Path) -> None:
    html, _, issue = sample_issue(tmp_path)
    subject, preheader = issue.rendered.subject, issue.rendered.preheader
    assert subject == "This week: 14 new posts on Interviews and more" and len(subject) <= 50
    assert "The Wise Job Search" not in subject  # From shows the blog's name
    assert preheader.startswith(FEATURED[0]) and FEATURED[1] in preheader and "Five questions" not in preheader
    # In the inbox preview, the preheader is followed by invisible filler, never by the greeting.
    doc = lxml_html.fromstring(html)
    hidden = doc.xpath('//div[contains(@class, "preheader")]')[0]
    assert "display:none" in hidden.get("style") and "color" not in hidden.get("style")
    body_text = doc.xpath("//body")[0].text_content()
    start = body_text.index(preheader) + len(preheader)
    assert body_text[start:start + 200] == "\u200c\u00a0" * 100
    assert body_text[start:].lstrip("\u200c\u00a0 \n").startswith("The Wise Job Search")


@pytest.mark.parametrize(("first_title", "count", "subject"), [
    ("Salary talk", 5, "This week: Salary talk and 4 more"),
    ("Salary talk", 1, "This week: Salary talk"),
    ("Five questions to ask at the end of an interview", 14, "This week: 14 new posts on K"),
    ("A title that runs on and on, well past what a phone can show", 1, "This week: 1 new post on K"),
])
def test_the_subject_says_in_whole_words_that_it_is_the_digest(first_title: str, count: int, subject: str) -> None:
    config = read_config(ROOT / "config.toml", {})
    posts = tuple(_post(i, None) for i in range(count))
    posts = (Post(id="t", title=first_title, link="https://b.example/t", published=NOW, updated=NOW), *posts[1:])
    rendered = render_issue(IssueContent(sections=(Section("k", "K", posts),)), config.publication, date=NOW, env=make_environment())
    assert rendered.subject == subject and len(subject) <= 50 and "…" not in subject
    assert first_title not in rendered.preheader


def test_the_subject_names_as_many_whole_topics_as_fit() -> None:
    assert headline("x" * 60, 9, ["Interviews", "Offers"]) == "This week: 9 new posts on Interviews and Offers"
    assert headline("x" * 60, 9, ["Interviews", "Networking", "Offers"]) == "This week: 9 new posts on Interviews and more"
    assert headline("x" * 60, 9, ["A very long topic name that fills the line"]) == "This week: 9 new posts"
    assert headline("An answer with a long title that cannot fit whole", 0) == "This week: readers' questions, answered"


def test_long_issues_say_what_was_left_out(tmp_path: Path) -> None:
    html, text, issue = sample_issue(tmp_path, shipped_config(**{"max_posts = 20": "max_posts = 10"}))
    assert issue.content.left_out == 4 and len(issue.content.posts) == 10
    doc = lxml_html.fromstring(html)
    link = doc.xpath('//a[starts-with(normalize-space(.), "4 more posts on the blog")]')
    assert link and link[0].get("href") == "https://thewisejobsearch.blogspot.com/"
    assert "4 more posts on the blog: https://thewisejobsearch.blogspot.com/" in text
    html, text, _ = sample_issue(tmp_path)
    assert "more posts on the blog" not in html and "more posts on the blog" not in text


def test_forwarded_copies_can_subscribe(tmp_path: Path) -> None:
    html, text, _ = sample_issue(tmp_path)
    doc = lxml_html.fromstring(html)
    link = doc.xpath('//p[contains(@class, "forward")]/a')[0]
    assert link.text == "Subscribe" and link.get("href") == "http://localhost:8000/subscribe"
    assert "Forwarded this? Subscribe to get it every Monday." in visible_text(html)
    assert "Forwarded this? Subscribe to get it every Monday: http://localhost:8000/subscribe" in text


def test_the_issue_number_is_in_the_masthead(tmp_path: Path) -> None:
    html, text, _ = sample_issue(tmp_path, history=preview.PreviewHistory(next_number=12))
    meta = lxml_html.fromstring(html).xpath('//p[contains(@class, "issue-meta")]')[0]
    assert " ".join(meta.text_content().split()) == "Issue 12 · 23 November 2026 · 14 new posts"
    assert text.splitlines()[1] == "Issue 12 - 23 November 2026 - 14 new posts"


def test_the_archive_copy_is_a_public_page(tmp_path: Path) -> None:
    _, _, issue = sample_issue(tmp_path, history=preview.PreviewHistory(next_number=3))
    archived = issue.composer.archive()
    doc = lxml_html.fromstring(archived.html)
    words = visible_text(archived.html)
    assert "Issue 3 · 23 November 2026" in words
    for absent in ("Hello", "Hi ", "You are receiving", "Unsubscribe", "Choose topics", "View in browser", "Forwarded"):
        assert absent not in words, absent
    assert "/unsubscribe" not in archived.html and "/preferences" not in archived.html and "%%" not in archived.html
    button = doc.xpath('//td[contains(@class, "button")]/a[text()="Subscribe"]')
    assert button and button[0].get("href") == "http://localhost:8000/subscribe"
    assert [a.get("href") for a in doc.xpath("//a") if a.get("href", "").endswith("/subscribe")] == \
        ["http://localhost:8000/subscribe"]  # one Subscribe button, no dead links to /subscribe
    assert doc.xpath('//link[@rel="alternate" and @type="application/atom+xml"]')[0].get("href") == \
        "http://localhost:8000/archive/feed.xml"
    assert "Have a question?" in words and FEATURED[0] in words
    assert "Hello" not in archived.text and "Subscribe" not in archived.text.split("--")[0]
    assert "Get the next issue by email (every Monday): http://localhost:8000/subscribe" in archived.text


def test_the_text_part_keeps_urls_whole(tmp_path: Path) -> None:
    config = read_config(ROOT / "config.toml", {})
    url = "https://www.example.com/a/very/long/path/that-goes-on-and-on/page.html"
    post = Post(id="1", title="t", link="https://b.example/1", published=NOW, updated=NOW,
                excerpt="Word " * 12 + url + " and more words after it.")
    rendered = render_issue(IssueContent(sections=(Section("k", "K", (post,)),)), config.publication, date=NOW, env=make_environment())
    assert url in rendered.text.splitlines()[rendered.text.splitlines().index("t") + 3]


def test_the_sample_issue_stays_under_gmails_clip(tmp_path: Path) -> None:
    html, _, _ = sample_issue(tmp_path)
    assert len(html.encode("utf-8")) < preview.GMAIL_CLIP_BYTES


# ---- a mistake in the author's own templates is one line naming the file and line ----

@pytest.mark.parametrize(("template", "body", "needle"), [
    ("issue.html.j2", '{% extends "default:issue.html.j2" %}\n{% block style %}\n{{ super() }\n{% endblock %}\n',
     "issue.html.j2, line 3: unexpected '}'"),
    ("issue.txt.j2", "Hello\n\n{{ blog.titel }}\n", "issue.txt.j2, line 3: 'digest.core.sections.BlogConfig object' has no attribute 'titel'"),
    ("issue.html.j2", "<p>\n{% for post in sections %}\n{{ post.titles.upper() }}\n{% endfor %}\n</p>\n",
     "issue.html.j2, line 3:"),
])
def test_a_template_mistake_is_one_error_line_with_file_and_line(template: str, body: str, needle: str, tmp_path: Path,
                                                                  write_config: Callable[..., Path],
                                                                  run_cli: Callable[..., Run]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / template).write_text(body)
    config = write_config()
    config.write_text(config.read_text().replace("[newsletter]\n", f'[newsletter]\ntemplates_dir = "{mine}"\n'))
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "out")
    assert result.code == 3 and "Traceback" not in result.err, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {mine / template}, line "), lines
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_a_mistake_in_the_subject_template_names_the_file_and_key(tmp_path: Path, write_config: Callable[..., Path],
                                                                  run_cli: Callable[..., Run]) -> None:
    """As every other config error: the file it is in (not always config.toml), then the key."""
    config = write_config(name="weekly.toml")
    config.write_text(config.read_text().replace('subject = "{{ blog }}: {{ first_title }}"', 'subject = "{{ frist_title }}"'))
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "out")
    assert result.code == 3 and result.err.startswith(f"Error: {config}: [newsletter] subject, line 1: "
                                                      "'frist_title' is undefined"), result.err


def test_css_the_inliner_drops_is_a_warning(tmp_path: Path, write_config: Callable[..., Path],
                                            run_cli: Callable[..., Run]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "issue.html.j2").write_text('{% extends "default:issue.html.j2" %}\n{% block style %}{{ super() }}\n'
                                        ".post-title { color: }\n{% endblock %}\n")
    config = write_config()
    config.write_text(config.read_text().replace("[newsletter]\n", f'[newsletter]\ntemplates_dir = "{mine}"\n'))
    result = run_cli("preview", "--config", config, "--all", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    assert "Warning: a CSS rule was dropped: CSSStyleDeclaration: Syntax Error in Property: color:" in result.err
    plain = run_cli("preview", "--config", write_config(name="plain.toml"), "--all", "--out", tmp_path / "out2")
    assert "CSS rule was dropped" not in plain.err  # the built-in templates' CSS is all used


def test_every_date_a_reader_sees_is_in_the_schedule_timezone() -> None:
    # 03:00 UTC on 24 November is still 23 November in New York, the blog's [schedule] timezone.
    config = read_config(ROOT / "config.toml", {})
    late = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)
    post = Post(id="1", title="Late post", link="https://b.example/1", published=late, updated=late)
    rendered = render_issue(IssueContent(sections=(Section("k", "K", (post,)),)), config.publication, date=late,
                            env=make_environment())
    for body in (visible_text(rendered.html), rendered.text):
        assert "23 November 2026" in body and "24 November" not in body


def test_in_the_archive_page_the_phone_and_dark_rules_come_after_the_others(tmp_path: Path) -> None:
    """Nothing is inlined in the archive page: its rules meet in the browser's cascade, where
    of two rules as specific the later wins. With the @media block first, a phone rule of a
    template's own media_style written without !important lost to the rule it overrides
    (it did not when both were in one block, the @media rules last)."""
    _, _, issue = sample_issue(tmp_path)
    html = issue.composer.archive().html
    assert html.count("<style") == 2
    assert html.index("@media only screen and (max-width: 620px)") > html.index("body { margin: 0;")
