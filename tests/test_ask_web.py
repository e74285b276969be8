"""GET/POST /ask through Starlette's TestClient, with a real SQLite store and a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import Run
from starlette.testclient import TestClient

from digest.adapters.questions import QuestionStore
from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from digest.core.config import read_config
from digest.core.questions import MAX_QUESTION_CHARS
from digest.jobs.mail import confirmation_mailer
from digest.jobs.questions import question_acknowledger
from digest.web import create_app

SECRET = "test-secret-0123456789abcdef"
START = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
BLOGGER = "https://thewisejobsearch.blogspot.com"


@dataclass
class Ask:
    client: TestClient
    store: Store
    mail: Any
    clock: list[datetime]

    def post(self, email: str = "asker@example.com", question: str = "How do I negotiate?",
             headers: dict[str, str] | None = None, **fields: Any) -> Any:
        return self.client.post("/ask", data={"email": email, "question": question, **fields}, headers=headers or {})

    @property
    def questions(self) -> QuestionStore:
        return QuestionStore(self.store)


def make_ask(write_config: Callable[..., Path], mail_server: Any, limit: int = 50) -> Iterator[Ask]:
    path = write_config(smtp_port=mail_server.port)
    path.write_text(path.read_text().replace('[web]\nbase_url = "https://news.example.com"\n',
                                             f'[web]\nbase_url = "https://news.example.com"\nallowed_origins = ["{BLOGGER}"]\n'
                                             f'ip_limit_per_hour = {limit}\n'))
    config = read_config(path, {"DIGEST_SECRET": SECRET})
    store = Store.open(config.store.url)
    clock = [START]
    wiring = Wiring(config, store=store, clock=lambda: clock[0])
    app = create_app(config, store, send_confirmation=confirmation_mailer(config.publication, wiring), clock=lambda: clock[0],
                     acknowledge_question=question_acknowledger(config.publication, wiring))
    with TestClient(app, base_url="https://news.example.com", follow_redirects=False) as client:
        yield Ask(client, store, mail_server, clock)
    store.close()


@pytest.fixture
def ask(write_config: Callable[..., Path], mail_server: Any) -> Iterator[Ask]:
    yield from make_ask(write_config, mail_server)


def test_the_ask_page_has_the_form_and_asks_nothing_by_default(ask: Ask) -> None:
    page = ask.client.get("/ask")
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for needle in ('action="ask"', 'name="question"', 'name="email"', 'name="name"',
                   'name="display_name"', 'name="website"', f'maxlength="{MAX_QUESTION_CHARS}"'):
        assert needle in page.text
    assert 'name="quote" value="yes">' in page.text  # not checked


def test_a_question_is_kept_and_acknowledged_after_the_page(ask: Ask) -> None:
    page = ask.post(name="Secret Name", question="<b>How</b> do I negotiate?\n-- \nsig", quote="yes", display_name="J.")
    assert page.status_code == 200 and "Thank you for your question" in page.text
    assert "asker@example.com" not in page.text and "Secret Name" not in page.text
    [q] = ask.questions.listed()
    assert (q.email, q.name, q.text, q.consent_to_quote, q.display_name, q.source, q.status) == (
        "asker@example.com", "Secret Name", "<b>How</b> do I negotiate?", True, "J.", "web", "new")
    assert [m.recipients for m in ask.mail.received] == [["asker@example.com"]]
    assert ask.questions.require(q.id).acknowledged_at == START
    assert ask.post(question="Another").status_code == 200  # a second one: no second mail this window
    assert len(ask.mail.received) == 1 and ask.questions.listed()[1].consent_to_quote is False


def test_the_acknowledgements_promise_and_the_forms_sign_it_as_agree(ask: Ask) -> None:
    """The form offers "Sign it as" (a name printed with a quote): the acknowledgement may not
    promise "without your name", and both say the same thing in the same words."""
    form = " ".join(ask.client.get("/ask").text.split())
    assert "never with my address or my name" in form and "Sign it as" in form and "shown with the quote" in form
    ask.post(quote="yes", display_name="J.")
    message = ask.mail.received[0].message
    for part in ("plain", "html"):
        body = " ".join(message.get_body((part,)).get_content().split())
        assert "without your name" not in body
        assert "never with your address or your name: signed only with the first name or pseudonym you chose" in body


def test_every_accepted_post_gets_the_same_page(ask: Ask) -> None:
    new = ask.post().content
    duplicate = ask.post().content
    honeypot = ask.post(email="bot@example.com", website="http://spam.example").content
    ask.questions.mark_bounced("bounced@example.com", START)
    bounced = ask.post(email="bounced@example.com").content
    assert new == duplicate == honeypot == bounced
    assert len(ask.questions.listed()) == 2 and [m.recipients for m in ask.mail.received] == [["asker@example.com"]]


@pytest.mark.parametrize(("fields", "error"), [
    ({"email": "not-an-address"}, "Please enter a valid email address."),
    ({"question": "> only a quote"}, "Please write your question."),
    ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, "Please keep your question under 5,000 characters."),
])
def test_a_wrong_form_comes_back_with_one_error_and_what_was_typed(ask: Ask, fields: dict[str, str], error: str) -> None:
    page = ask.post(**{"name": "Kim <script>", **fields})
    assert page.status_code == 400 and error in page.text and "Kim &lt;script&gt;" in page.text
    assert ask.questions.listed() == [] and ask.mail.received == []


def test_other_sites_are_refused_but_the_blog_gadget_works(ask: Ask) -> None:
    assert ask.post(headers={"Origin": "https://evil.example"}).status_code == 403
    assert ask.post(headers={"Origin": "null"}).status_code == 403
    assert ask.post(headers={"Origin": BLOGGER}).status_code == 200
    assert len(ask.questions.listed()) == 1


def test_each_client_address_is_limited(write_config: Callable[..., Path], mail_server: Any) -> None:
    for ask in make_ask(write_config, mail_server, limit=3):
        codes = [ask.post(question=f"Question {n}").status_code for n in range(4)]
        assert codes == [200, 200, 200, 429]
        ask.clock[0] += timedelta(hours=1, seconds=1)
        assert ask.post(question="Later").status_code == 200
        assert ask.client.post("/subscribe", data={"email": "a@example.com"}).status_code == 200  # its own bucket


def test_snippet_ask_prints_the_gadget_form(write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    result = run_cli("snippet", "--ask", "--config", write_config())
    assert result.code == 0 and 'action="https://news.example.com/ask"' in result.out
    assert 'name="website"' in result.out and 'name="quote" value="yes">' in result.out
    assert 'action="https://news.example.com/subscribe"' in run_cli("snippet", "--config", write_config()).out


def test_one_ipv6_network_is_one_client(write_config: Callable[..., Path], mail_server: Any) -> None:
    """Anyone with IPv6 holds a /64: counted per address, the limit was 2^64 posts an hour."""
    original = write_config
    def with_proxy(**kw: Any) -> Path:
        path = original(**kw)
        web = '[web]\nbase_url = "https://news.example.com"\n'
        path.write_text(path.read_text().replace(web, web + 'trusted_proxy_header = "X-Real-IP"\n', 1))
        return path
    for ask in make_ask(with_proxy, mail_server, limit=3):
        codes = [ask.post(question=f"Question {n}", headers={"X-Real-IP": f"2001:db8:1:2::{n + 1:x}"}).status_code
                 for n in range(4)]
        assert codes == [200, 200, 200, 429]
        assert ask.post(question="Elsewhere", headers={"X-Real-IP": "2001:db8:1:3::1"}).status_code == 200
        codes = [ask.client.post("/subscribe", data={"email": f"s{n}@example.com"},
                                 headers={"X-Real-IP": f"2001:db8:9:9:{n:x}::1"}).status_code for n in range(4)]
        assert codes == [200, 200, 200, 429]
        assert [ask.post(question=f"v4 {n}", headers={"X-Real-IP": f"192.0.2.{n}"}).status_code for n in range(4)] \
            == [200, 200, 200, 200]  # IPv4 stays per address
