"""`digest questions ...`, `subscribers remove|export --person` and `status`, run in-process on a real SQLite file."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_NOW, Run
from feedgen import Entry, atom

from digest.adapters.questions import QuestionStore
from digest.adapters.store import Store
from digest.core.config import read_config
from digest.core.models import Consent
from digest.core.questions import new_question

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def setup(write_config: Callable[..., Path], mail_server: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Store]:
    monkeypatch.setenv("DIGEST_SECRET", "cli-secret-0123456789abcdef")
    path = write_config(smtp_port=mail_server.port)
    store = Store.open(read_config(path, {}).store.url)
    return path, store


def ask(store: Store, email: str = "asker@example.com", text: str = "How do I negotiate?", at: datetime = NOW,
        **kw: Any) -> int:
    q, _ = QuestionStore(store).record(new_question(email=email, name="Secret Name", text=text, source="web", **kw), at)
    return q.id


def test_the_desk_from_list_to_answer(setup: tuple[Path, Store], run_cli: Callable[..., Run]) -> None:
    config, store = setup
    qid = ask(store, consent_to_quote=True, display_name="J.")
    other = ask(store, email="other@example.com", text="Line one\nline two")
    listed = run_cli("questions", "list", "--config", config)
    assert listed.code == 0 and listed.err == "2 questions\n"
    first = listed.out.splitlines()[0].split("\t")
    assert first[0] == f"#{qid}" and first[1] == "new" and first[3:] == ["web", "asker@example.com", "may quote", "How do I negotiate?"]
    assert "Line one line two" in listed.out
    accepted = run_cli("questions", "accept", str(qid), "--as", "Negotiating  two offers", "--config", config)
    assert accepted.out == f"Accepted question {qid} as 'Negotiating two offers'. Label its answer post Q-{qid}.\n"
    assert run_cli("questions", "decline", str(other), "--config", config).out == f"Declined question {other}.\n"
    assert run_cli("questions", "list", "--status", "accepted", "--config", config).err == "1 question accepted\n"
    linked = run_cli("questions", "answer", str(qid), "https://thewisejobsearch.blogspot.com/2026/11/offers.html",
                     "--config", config)
    assert linked.code == 0 and "when `digest send` finds that post in the feed" in linked.out
    shown = run_cli("questions", "show", str(qid), "--config", config)
    assert shown.code == 0 and "Asker: asker@example.com (Secret Name)" in shown.out
    assert "Quoting: allowed, signed 'J.'" in shown.out and "Paraphrase: Negotiating two offers" in shown.out
    assert "Answer: https://thewisejobsearch.blogspot.com/2026/11/offers.html (marked answered" in shown.out
    assert shown.out.endswith("\n\nHow do I negotiate?\n")


@pytest.mark.parametrize(("args", "message"), [
    (("show", "99"), "Error: there is no question 99 (digest questions list shows them)\n"),
    (("answer", "1", "https://blog.example.com/x"), "Error: question 1 cannot be linked to an answer: it is new "
                                                    "(accept it first: digest questions accept ID)\n"),
    (("answer", "1", "javascript:alert(1)"), "Error: the answer's URL 'javascript:alert(1)' is not an http(s) URL\n"),
    (("accept", "1", "--as", "  "), "Error: --as needs the paraphrase's words (or leave --as out)\n"),
    (("forget", "not-an-address"), "Error: not a valid email address: 'not-an-address'"),
])
def test_mistakes_are_one_line(setup: tuple[Path, Store], run_cli: Callable[..., Run], args: tuple[str, ...],
                               message: str) -> None:
    config, store = setup
    ask(store)
    result = run_cli("questions", *args, "--config", config)
    assert result.code == 2 and result.err.startswith(message) and result.err.count("\n") == 1


def test_answered_is_final_on_the_command_line_too(setup: tuple[Path, Store], run_cli: Callable[..., Run]) -> None:
    config, store = setup
    qid = ask(store)
    run_cli("questions", "accept", str(qid), "--config", config)
    QuestionStore(store).move(qid, "answer", NOW, answer_url="https://x.example/a")
    from digest.core.answers import AnswerLink
    from digest.core.models import Post

    QuestionStore(store).mark_answered([AnswerLink(qid, Post("p", "A", "https://x.example/a", NOW, None), "link")], NOW,
                                       lambda i: f"<a{i}@x>")
    result = run_cli("questions", "decline", str(qid), "--config", config)
    assert result.err == f"Error: question {qid} cannot be declined: an answered question is final\n"


def test_forget_and_subscribers_remove_delete_the_questions(setup: tuple[Path, Store], run_cli: Callable[..., Run]) -> None:
    config, store = setup
    ask(store)
    ask(store, text="second")
    ask(store, email="reader@example.com")
    store.add("reader@example.com", "reader@example.com", "R", (), confirmed=True, now=NOW, consent=Consent(NOW, "cli"))
    assert run_cli("questions", "forget", "Asker@Example.com", "--config", config).out == "Deleted 2 questions of Asker@example.com.\n"
    assert run_cli("questions", "forget", "asker@example.com", "--config", config).out == "No question of asker@example.com is kept.\n"
    assert run_cli("subscribers", "remove", "reader@example.com", "--config", config).code == 0
    assert QuestionStore(store).listed() == []


def test_a_persons_data_export(setup: tuple[Path, Store], run_cli: Callable[..., Run], tmp_path: Path) -> None:
    config, store = setup
    store.add("reader@example.com", "reader@example.com", "Reader", ("Interviews",), confirmed=True, now=NOW,
              consent=Consent(NOW, "web", ip="203.0.113.9", user_agent="Firefox", version="1"))
    qid = ask(store, email="reader@example.com", consent_to_quote=True)
    ask(store)  # someone else's
    out = tmp_path / "reader.json"
    result = run_cli("subscribers", "export", "--person", "reader@example.com", out, "--config", config)
    assert result.code == 0 and result.out == f"Wrote the data kept about reader@example.com (1 question) to {out}.\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = json.loads(out.read_text())
    assert data["subscription"]["status"] == "confirmed" and data["subscription"]["topics"] == ["Interviews"]
    assert data["subscription"]["consent"] == {"at": NOW.isoformat(), "method": "web", "ip": "203.0.113.9",
                                               "user_agent": "Firefox", "version": "1"}
    [question] = data["questions"]
    assert question["id"] == qid and question["text"] == "How do I negotiate?" and question["consent_to_quote"] is True
    assert question["notice"] == {"status": "none", "last_reply": ""} and "confirm_nonce" not in data["subscription"]
    only_asked = run_cli("subscribers", "export", "--person", "asker@example.com", "--config", config)
    assert json.loads(only_asked.out)["subscription"] is None
    nobody = run_cli("subscribers", "export", "--person", "nobody@example.com", "--config", config)
    assert nobody.code == 2 and nobody.err == "Error: nothing is kept about nobody@example.com: not on the list, no question\n"


def test_status_counts_questions_and_the_median_days(setup: tuple[Path, Store], run_cli: Callable[..., Run]) -> None:
    config, store = setup
    assert "Questions: 0 received, 0 answered, no answer yet" in run_cli("status", "--config", config).out
    from digest.core.answers import AnswerLink
    from digest.core.models import Post

    qs = QuestionStore(store)
    for n, days in enumerate((1, 3)):
        qid = ask(store, text=f"q{n}")
        qs.move(qid, "accept", NOW)
        qs.mark_answered([AnswerLink(qid, Post(f"p{n}", "A", f"https://x.example/{n}", NOW, None), "label")],
                         NOW + timedelta(days=days), lambda i: f"<a{i}@x>")
    ask(store, text="open")
    assert "Questions: 3 received, 2 answered, median 2.0 days to answer" in run_cli("status", "--config", config).out


def test_send_says_what_it_answered_and_notified(setup: tuple[Path, Store], run_cli: Callable[..., Run],
                                                 tmp_path: Path, mail_server: Any) -> None:
    config, store = setup
    qid = ask(store)
    QuestionStore(store).move(qid, "accept", NOW)
    feed = tmp_path / "feed.xml"
    published = (CLI_NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    feed.write_bytes(atom([Entry(1, "The answer", labels=[f"Q-{qid}"], published=published)]))
    result = run_cli("send", "--yes", "--feed", feed, "--config", config)
    assert result.code == 0, result.err
    assert f"Question {qid} answered by https://blog.example.com/2026/11/post-1.html.\n" in result.out
    assert "Answer notices: 1 sent.\n" in result.out
    assert [m.recipients for m in mail_server.received] == [["asker@example.com"]]
    mail_server.handler.inject("RCPT", "451 4.7.1 Try later")
    other = ask(store, email="later@example.com", text="later?")
    QuestionStore(store).move(other, "accept", NOW)
    feed.write_bytes(atom([Entry(1, "The answer", labels=[f"Q-{qid}"], published=published),
                           Entry(2, "Another", labels=[f"Q-{other}"], published=published)]))
    deferred = run_cli("send", "--yes", "--feed", feed, "--config", config)
    assert deferred.code == 75 and "1 answer notice deferred; digest send and digest serve retry them." in deferred.err
