"""The editor's note (`digest preview|send --note FILE`): Markdown rendered safely, at the
top of both parts, in the recorded issue; a bad file is one Error line."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ANY_DAY, Run
from lxml import html as lxml_html

from digest.core.note import render_note

NOTE = """Dear readers,

I am **away** next week: the issue comes on *Tuesday*. Meanwhile, read
[the interview series](https://thewisejobsearch.blogspot.com/search/label/Interviewing?max=20&by=date).

- Send questions
- Share the newsletter
"""


def test_markdown_becomes_safe_html_and_plain_text() -> None:
    note = render_note(NOTE)
    doc = lxml_html.fromstring(f"<div>{note.html}</div>")
    assert doc.xpath("//strong")[0].text == "away" and doc.xpath("//em")[0].text == "Tuesday"
    link = doc.xpath("//a")[0]
    assert link.get("href") == "https://thewisejobsearch.blogspot.com/search/label/Interviewing?max=20&by=date"
    assert [li.text for li in doc.xpath("//li")] == ["Send questions", "Share the newsletter"]
    assert note.text == (
        "Dear readers,\n\n"
        "I am away next week: the issue comes on Tuesday. Meanwhile, read the\n"
        "interview series\n"
        "(https://thewisejobsearch.blogspot.com/search/label/Interviewing?max=20&by=date).\n\n"
        "- Send questions\n- Share the newsletter")


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>",
    '<img src="https://evil.example/x.png" onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD4=)",
    '<a href="https://evil.example" style="position:fixed">x</a>',
    "![pixel](https://tracker.example/p.gif)",
    "<style>@import url(https://evil.example/x.css);</style>",
])
def test_the_note_is_treated_as_untrusted(hostile: str) -> None:
    html = render_note("Hello " + hostile).html
    doc = lxml_html.fromstring(f"<div>{html}</div>")
    assert not doc.xpath("//script|//img|//style|//iframe|//*[@style]|//*[@onerror]")
    assert all(a.get("href", "").startswith(("http://", "https://", "mailto:")) for a in doc.xpath("//a"))
    assert "javascript:" not in "".join(a.get("href", "") for a in doc.xpath("//a"))


def test_headings_become_bold_paragraphs() -> None:
    html = render_note("# This week\n\nText").html
    assert "<h1" not in html and "<p><strong>This week</strong></p>" in html


def test_an_empty_note_is_no_note() -> None:
    assert not render_note("  \n\n ") and render_note("x")


# ---- from the command line ----

def test_preview_puts_the_note_at_the_top_of_both_parts(tmp_path: Path, write_config: Callable[..., Path],
                                                       run_cli: Callable[..., Run]) -> None:
    note = tmp_path / "note.md"
    note.write_text(NOTE, encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("preview", "--config", write_config(), "--all", "--out", out, "--note", note)
    assert result.code == 0, result.err
    html = (out / "issue.html").read_text("utf-8")
    body = lxml_html.fromstring(html).xpath("//body")[0]
    note_box = body.xpath('.//div[contains(@class, "note")]')[0]
    assert note_box.xpath(".//strong")[0].text == "away"
    assert "border-left:3px solid #1d5c8c" in note_box.get("style")  # inlined like the rest
    words = " ".join(body.text_content().split())
    assert words.index("here is what's new") < words.index("Dear readers") < words.index("Readers asked")
    text = (out / "issue.txt").read_text("utf-8")
    assert text.index("here is what's new") < text.index("Dear readers,\n\nI am away next week") < text.index("== Readers")
    assert "**" not in text and "[the interview" not in text
    parsed = email.message_from_bytes((out / "issue.eml").read_bytes(), policy=email.policy.default)
    assert "Dear readers" in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def _one_error(result: Run, *needles: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.err, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(("content", "needle"), [
    (None, "cannot read the note"),
    (b"\xff\xfe\xfa not utf-8", "not UTF-8"),
    (b"   \n", "the note is empty"),
    (b"x" * 30_000, "keep it under 20 KB"),
])
@pytest.mark.parametrize("command", ["preview", "send"])
def test_a_bad_note_file_is_one_error_line(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run],
                                           content: bytes | None, needle: str, command: str) -> None:
    note = tmp_path / "note.md"
    if content is not None:
        note.write_bytes(content)
    args = ["--all", "--out", tmp_path / "out"] if command == "preview" else ["--yes"]
    _one_error(run_cli(command, "--config", write_config(), "--note", note, *args), str(note), needle)
    assert not (tmp_path / "out").exists() and not (tmp_path / "subscribers.db").exists()


def test_send_records_the_note(tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Run],
                               mail_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.adapters.ledger import Ledger
    from digest.adapters.store import Store
    from digest.core.config import read_config

    monkeypatch.setenv("DIGEST_SECRET", "note-secret-0123456789abcdef")
    config = write_config(smtp_port=mail_server.port, first_issue_days=ANY_DAY)
    assert run_cli("subscribers", "add", "a@example.com", "--confirmed", "--config", config).code == 0
    note = tmp_path / "note.md"
    note.write_text("A **short** note from the author.", encoding="utf-8")
    sent = run_cli("send", "--yes", "--config", config, "--note", note)
    assert sent.code == 0, sent.out + sent.err
    message = mail_server.received[0].message
    assert "A short note from the author." in message.get_body(("plain",)).get_content()
    assert "<strong>short</strong>" in message.get_body(("html",)).get_content()
    store = Store.open(read_config(config, {}).store.url)
    try:
        issue = Ledger(store).get_issue(1)
        assert issue is not None and issue.note == "A **short** note from the author."
        assert "<strong>short</strong>" in issue.html and "A short note from the author." in issue.text  # the archive
    finally:
        store.close()


def test_a_resumed_send_keeps_the_note_and_the_number(write_config: Callable[..., Path], mail_server: Any) -> None:
    from sending import make_bed


    bed = make_bed(write_config, mail_server, first_issue_days=ANY_DAY)
    bed.add(2)
    mail_server.handler.inject("RCPT", "451 4.3.0 Try later")  # the second message waits for the next run
    first = bed.send(note="Written *once*.")
    assert first.report is not None and first.report.remaining == 1
    bed.advance(minutes=2)
    second = bed.send(note="Another note, given by mistake.")
    assert second.resumed and second.report is not None and second.report.remaining == 0
    assert second.warnings == ("--note was not used: issue 1 goes out as it was recorded",)
    assert len(mail_server.received) == 2
    for received in mail_server.received:  # the same mail, before and after the interruption
        html = received.message.get_body(("html",)).get_content()
        assert "Written <em>once</em>." in html and "Issue 1 · 23 November 2026" in html
        assert "Another note" not in html
    bed.store.close()
