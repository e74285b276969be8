"""Issue 2 of a questions loop, as a reader opens it on a phone (375x667) in the system
Chromium: the first screen shows the masthead, the "Have a question?" invitation with its
button and at least one of the week's titles; the question answered this week is not
listed again "On the desk" nor twice; with the <style> block removed (mail clients that
drop it) nothing scrolls sideways.

The loop is real: the shipped config.toml (its own [question] box, its subject), a real
SQLite file, the real SMTP server of tests/mailserver.py; the issue read is the HTML part
of the message the server received. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser import ARTIFACTS
from conftest import ROOT
from feedgen import Entry, atom
from sending import START, Bed

from digest.adapters.questions import QuestionStore
from digest.adapters.store import Store
from digest.core.config import read_config
from digest.core.questions import new_question

pytestmark = pytest.mark.browser
SECRET = "s" * 40
ANSWERED = "Two offers, one deadline: which do I take?"
WAITING = "How do I follow up after a silent recruiter?"


def _config(tmp_path: Path, smtp_port: int) -> Path:
    text = (ROOT / "config.toml").read_text()
    for old, new in (("port = 1025", f"port = {smtp_port}"), ("retry_window_minutes = 15", "retry_window_minutes = 0"),
                     ('url = "sqlite:///subscribers/subscribers.db"', f'url = "sqlite:///{tmp_path / "db.sqlite"}"'),
                     ('host = "localhost"', 'host = "127.0.0.1"')):
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def _week_two(qid: int) -> list[Entry]:
    """Issue 2's posts: the answer (labelled Q-<id> and as a reader question) and the week's others."""
    long = "<p>" + " ".join(["A paragraph long enough to fill a phone screen with an excerpt."] * 8) + "</p>"
    return [
        Entry(10, "Reader question: two offers and one deadline", labels=["Reader Questions", f"Q-{qid}"], html=long,
              published="2026-11-28T08:00:00Z"),
        Entry(11, "Reader question: is a cover letter still read?", labels=["Reader Questions"], html=long,
              published="2026-11-28T09:00:00Z"),
        Entry(12, "Salary bands, explained", labels=["Salary & Offers"], html=long, published="2026-11-29T08:00:00Z"),
        Entry(13, "Networking when you are shy", labels=["Networking"], html=long, published="2026-11-29T09:00:00Z"),
    ]


@pytest.fixture(scope="module")
def issue_two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the issue's HTML as received, the same with its <style> block removed)."""
    from mailserver import MailServer

    tmp_path = tmp_path_factory.mktemp("loop")
    server = MailServer().start()
    try:
        config = read_config(_config(tmp_path, server.port), {"DIGEST_SECRET": SECRET})
        store = Store.open(config.store.url)
        bed = Bed(config, store, server, [START])
        bed.add(1)
        first = tmp_path / "week1.xml"
        first.write_bytes(atom([Entry(1, "Last week's post", labels=["Interviewing"], published="2026-11-20T08:00:00Z")]))
        assert bed.send(feed=str(first)).report is not None
        questions = QuestionStore(store)
        ids = []
        for text, email in ((ANSWERED, "one@example.com"), (WAITING, "two@example.com")):
            q, _ = questions.record(new_question(email=email, name="Secret Name", text=text, source="web",
                                                 consent_to_quote=True, display_name="Pat"), bed.now())
            questions.move(q.id, "accept", bed.now())
            ids.append(q.id)
        bed.advance(days=7)
        second = tmp_path / "week2.xml"
        second.write_bytes(atom(_week_two(ids[0])))
        outcome = bed.send(feed=str(second))
        assert [q.id for q in outcome.answered] == [ids[0]]
        readers = [m for m in server.received if m.recipients == ["reader0@example.com"]]
        assert len(readers) == 2
        html = str(readers[1].message.get_body(("html",)).get_content())
        store.close()
    finally:
        server.stop()
    mail = tmp_path / "issue2.html"
    mail.write_text(html, encoding="utf-8")
    bare = tmp_path / "issue2-no-style.html"
    bare.write_text(re.sub(r"<style[^>]*>.*?</style>", "", html, flags=re.S), encoding="utf-8")
    assert "<style" not in bare.read_text() and "max-width" in bare.read_text()
    return mail, bare


def _open(browser: Any, path: Path, scheme: str = "light") -> Any:
    page = browser.new_page(viewport={"width": 375, "height": 667})
    page.emulate_media(color_scheme=scheme)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def _bottom(page: Any, locator: Any) -> float:
    box = locator.bounding_box()
    assert box is not None
    return float(box["y"] + box["height"])


@pytest.mark.parametrize("styled", [True, False], ids=["with-style", "no-style"])
def test_the_first_screen_shows_the_masthead_the_invitation_and_a_title(browser: Any, issue_two: tuple[Path, Path],
                                                                       styled: bool) -> None:
    page = _open(browser, issue_two[0 if styled else 1])
    try:
        name = "styled" if styled else "no-style"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"questions-issue-2-375-{name}-first-screen.png"))
        page.screenshot(path=str(ARTIFACTS / f"questions-issue-2-375-{name}.png"), full_page=True)
        assert _bottom(page, page.locator("h1")) < 667
        assert _bottom(page, page.locator("h2", has_text="Have a question?")) < 667
        assert _bottom(page, page.locator("a", has_text="Ask your question")) < 667
        titles = page.locator("h3")
        assert titles.count() >= 4 and _bottom(page, titles.first) < 667, "no title of the week in the first screen"
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= 375, f"{scroll} px wide at 375 px{'' if styled else ' without the <style> block'}"
    finally:
        page.close()


def test_the_answered_question_is_shown_once_and_not_on_the_desk(browser: Any, issue_two: tuple[Path, Path]) -> None:
    page = _open(browser, issue_two[0])
    try:
        text = page.inner_text("body")
        assert text.count(ANSWERED) == 1, "the answered question is shown once, with its answer"
        assert text.count("Reader question: two offers and one deadline") == 1, "the answer post is listed once"
        desk = page.locator("h2", has_text="On the desk")
        assert desk.count() == 1
        after_desk = page.evaluate("""() => { const h = [...document.querySelectorAll('h2')].find(e => e.textContent.includes('On the desk'));
            let t = ''; for (let e = h.nextElementSibling; e; e = e.nextElementSibling) t += e.textContent; return t; }""")
        assert WAITING in after_desk and ANSWERED not in after_desk
        asked = page.locator("p.asked", has_text=ANSWERED)
        answer_box = page.locator("h3", has_text="two offers and one deadline").bounding_box()
        assert asked.bounding_box()["y"] < answer_box["y"], "the question reads just above its answer"
        assert "Secret Name" not in text and "one@example.com" not in text
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_questions_box_at_the_bottom_has_the_page_gutter(browser: Any, issue_two: tuple[Path, Path],
                                                            scheme: str) -> None:
    page = _open(browser, issue_two[0], scheme)
    try:
        page.screenshot(path=str(ARTIFACTS / f"questions-issue-2-375-{scheme}.png"), full_page=True)
        from test_issue_browser import failures, measure

        assert failures(measure(page, scheme)) == [], "every text of the question boxes reaches WCAG AA"
        desk = page.locator("table.question").last.bounding_box()
        page_box = page.locator("table.container").bounding_box()
        top = page.locator("table.question").first.bounding_box()
        assert desk["x"] == top["x"] and desk["width"] == top["width"], "both question boxes share one gutter"
        assert desk["x"] >= page_box["x"] + 8, "the box is set in from the page's edge, like the one at the top"
    finally:
        page.close()
