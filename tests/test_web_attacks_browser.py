"""The web app's defences as the system Chromium meets them (what depends on a browser's own
rules): a page of another site that posts our forms, a signed-in desk that another site
tries to drive, and a page with a token in its address whose link leads to another site.
The app runs under uvicorn on 127.0.0.1 over a real SQLite store and SMTP server; "another
site" is a real HTTP server reached as localhost (another host: another site)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import FeedServer, Reply
from mailserver import free_port
from sending import SECRET, Bed
from test_desk import AUTHOR, SLOT, author_bed, to

from digest.core.config import read_config
from digest.core.tokens import make_token
from digest.jobs.desk import desk_hooks
from digest.web import create_app

pytestmark = pytest.mark.browser


@contextmanager
def served(bed: Bed, port: int) -> Iterator[str]:
    """The app of `bed` under uvicorn on 127.0.0.1:`port`, with the author's desk."""
    import uvicorn

    wiring = bed.wiring()
    app = create_app(bed.config, bed.store, send_confirmation=lambda *a: None, clock=bed.now, secret=wiring.secret,
                     ledger=wiring.ledger, questions=wiring.questions,
                     desk=desk_hooks(bed.config.publication, bed.config.author, wiring))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def site(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path,
         feed_server: FeedServer) -> Iterator[tuple[Bed, str, str]]:
    """(bed, our base URL, the other site's base URL); the blog's address is on the other site."""
    port = free_port()
    other = feed_server.url.replace("127.0.0.1", "localhost")
    bed = author_bed(write_config, mail_server, tmp_path)
    try:
        bed.add(1)
        text = bed.config.path.read_text().replace("https://news.example.com", f"http://127.0.0.1:{port}")
        bed.config.path.write_text(text.replace('url = "https://thewisejobsearch.blogspot.com/"', f'url = "{other}/blog/"', 1))
        bed.config = read_config(bed.config.path, {"DIGEST_SECRET": SECRET})
        with served(bed, port) as base:
            yield bed, base, other
    finally:
        bed.store.close()


def attack_page(feed_server: FeedServer, action: str, fields: dict[str, str]) -> str:
    """A page of the other site that posts a form to `action` as soon as it opens."""
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    html = (f'<!doctype html><form method="post" action="{action}">{inputs}</form>'
            "<script>document.forms[0].submit()</script>")
    path = f"/attack{len(feed_server.routes)}"
    feed_server.serve(path, Reply(200, html.encode(), {"Content-Type": "text/html"}))
    return path


def sign_in(bed: Bed, page: Any, base: str) -> str:
    """Sign in to the desk in the browser as the author does; the desk's CSRF token."""
    page.goto(f"{base}/desk/")
    page.fill("#email", AUTHOR)
    with page.expect_navigation():
        page.click("button[type=submit]")
    deadline = time.monotonic() + 15  # the mail goes after the page is answered
    while not to(bed, AUTHOR) and time.monotonic() < deadline:
        time.sleep(0.05)
    body = str(to(bed, AUTHOR)[-1].message.get_body(("plain",)).get_content())
    page.goto(re.findall(r"(http://127\.0\.0\.1:\d+/desk/signin/\S+)", body)[0])
    with page.expect_navigation():
        page.click("button")
    assert page.url == f"{base}/desk/"
    return str(page.locator('input[name="csrf"]').first.get_attribute("value"))


def test_another_sites_page_cannot_post_our_subscribe_form(site: tuple[Bed, str, str], feed_server: FeedServer,
                                                          browser: Any) -> None:
    bed, base, other = site
    before = bed.store.count()
    page = browser.new_page()
    try:
        with page.expect_navigation(url=f"{base}/subscribe"):
            page.goto(other + attack_page(feed_server, f"{base}/subscribe", {"email": "victim@example.com"}))
        assert "cannot be sent from another site" in page.inner_text("body")
    finally:
        page.close()
    assert bed.store.count() == before and bed.store.find("victim@example.com") is None


def test_another_site_cannot_drive_the_signed_in_desk_even_with_its_csrf_token(
        site: tuple[Bed, str, str], feed_server: FeedServer, browser: Any) -> None:
    """SameSite=Strict keeps the session cookie off a request another site starts, and the
    origin check refuses the post: either alone holds, even if the CSRF token leaked."""
    bed, base, other = site
    context = browser.new_context()
    page = context.new_page()
    try:
        token = sign_in(bed, page, base)
        cookie = [c for c in context.cookies() if c["name"] == "digest_desk"]
        assert cookie and cookie[0]["httpOnly"] and cookie[0]["sameSite"] == "Strict"
        with page.expect_navigation(url=f"{base}/desk/decide"):
            page.goto(other + attack_page(feed_server, f"{base}/desk/decide", {"action": "hold", "csrf": token}))
        assert "Mail me a sign-in link" in page.inner_text("body")  # no session came with it
        page.goto(f"{base}/desk/")
        assert "The next issue" in page.inner_text("body")  # still signed in here, on our own pages
    finally:
        context.close()
    assert bed.wiring().author.decision(SLOT).held_at is None


def test_a_page_with_a_token_in_its_address_sends_none_to_the_site_it_links_to(
        site: tuple[Bed, str, str], feed_server: FeedServer, browser: Any) -> None:
    bed, base, other = site
    feed_server.serve("/blog/", Reply(200, b"<!doctype html><p>the blog</p>", {"Content-Type": "text/html"}))
    reader = bed.store.find("reader0@example.com")
    assert reader is not None
    page = browser.new_page()
    try:
        for purpose in ("unsubscribe", "preferences"):
            path = f"/{purpose}/{make_token(SECRET, purpose, reader.id, now=bed.now())}"
            page.goto(base + path)
            with page.expect_navigation(url=f"{other}/blog/"):
                page.click(f'a[href="{other}/blog/"] >> nth=0')
            [(_, headers)] = [r for r in feed_server.requests if r[0] == "/blog/"][-1:]
            assert "referer" not in headers, headers["referer"]
    finally:
        page.close()

