"""An asker's address and name appear in no newsletter, no archived issue and no web page,
even when their question is featured, quoted with consent, or waiting on the desk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from feedgen import Entry, atom
from sending import SECRET, Bed, make_bed
from starlette.routing import Route
from starlette.testclient import TestClient

from digest.adapters.questions import QuestionStore
from digest.core.questions import new_question
from digest.core.tokens import make_token
from digest.jobs.mail import confirmation_mailer
from digest.web import create_app

ASKER, NAME = "asker@example.com", "Secret Name"
SECRETS = (ASKER, NAME, "asker@", "Secret")


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> Iterator[Bed]:
    b = make_bed(write_config, mail_server)
    [reader] = b.add(1)
    qs = QuestionStore(b.store)
    answered, _ = qs.record(new_question(email=ASKER, name=NAME, text=f"I am {NAME} ({ASKER}). Two offers?",
                                         source="web", consent_to_quote=True, display_name="J."), b.now())
    waiting, _ = qs.record(new_question(email=ASKER, name=NAME, text=f"Signed {NAME}, {ASKER}: gap years?",
                                        source="web", consent_to_quote=True), b.now())
    quoted, _ = qs.record(new_question(email=ASKER, name=NAME, text=f"From {NAME}: references?", source="web",
                                       consent_to_quote=True, display_name="Pat"), b.now())
    qs.move(answered.id, "accept", b.now())  # no paraphrase: the consented words are quoted, scrubbed
    qs.move(waiting.id, "accept", b.now())
    qs.move(quoted.id, "accept", b.now(), paraphrase="Checking references")
    feed = tmp_path / "feed.xml"
    feed.write_bytes(atom([Entry(1, "Two offers", labels=[f"Q-{answered.id}"]), Entry(2, "References", labels=[f"Q-{quoted.id}"])]))
    outcome = b.send(feed=str(feed))
    assert [q.id for q in outcome.answered] == [answered.id, quoted.id] and reader
    yield b
    b.store.close()


def assert_private(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} appears in {where}"


def test_no_newsletter_and_no_recorded_issue_names_the_asker(bed: Bed) -> None:
    newsletters = [m for m in bed.mail.received if m.recipients != [ASKER]]
    assert newsletters
    for message in newsletters:
        text = message.message.get_body(("plain",)).get_content()
        assert "[name] ([address]). Two offers?" in text and "Checking references" in text and "gap years?" in text
        assert_private(message.data.decode(), "a newsletter")
        assert_private(text, "a newsletter's text")
    issue = bed.ledger.last_issue()
    assert issue is not None
    assert_private(issue.html, "the archived HTML")
    assert_private(issue.text, "the archived text")
    assert_private(issue.subject, "the subject")


def test_no_web_page_names_the_asker(bed: Bed) -> None:
    sub = bed.store.find("reader0@example.com")
    assert sub is not None
    app = create_app(bed.config, bed.store, send_confirmation=confirmation_mailer(bed.config.publication, bed.wiring()), clock=bed.now)
    tokens = {purpose: make_token(SECRET, purpose, sub.id, now=bed.now(), nonce="n" if purpose == "confirm" else "")
              for purpose in ("confirm", "unsubscribe", "preferences")}
    pages = 0
    with TestClient(app, base_url="https://news.example.com") as client:
        for route in app.routes:
            assert isinstance(route, Route)
            if "GET" not in (route.methods or ()):
                continue
            path = route.path.replace("{issue:int}", "1")
            for purpose, token in tokens.items():
                path = path.replace("{token}", token) if route.path.startswith(f"/{purpose}/") else path
            response = client.get(path)
            assert response.status_code < 500, path
            assert_private(response.text, path)
            pages += 1
        for path, form in (("/ask", {"email": "someone@example.com", "question": f"About {NAME}?"}),
                           ("/subscribe", {"email": ASKER, "name": NAME})):
            assert_private(client.post(path, data=form).text, f"POST {path}")
    assert pages >= 8
