"""The author's desk at /desk/ through Starlette's TestClient, over a real SQLite store and
a real SMTP server: sign-in by a link mailed to [author] email only, the session cookie,
CSRF tokens, and what the desk does; every refusal changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sending import Bed
from starlette.testclient import TestClient
from test_desk import AUTHOR, SLOT, author_bed, desk_bed, to

from digest.core.questions import new_question
from digest.jobs.desk import desk_hooks
from digest.web import create_app


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> Iterator[Bed]:
    yield from desk_bed(write_config, mail_server, tmp_path, readers=2)


def client_for(bed: Bed) -> TestClient:
    wiring = bed.wiring()
    app = create_app(bed.config, bed.store, send_confirmation=lambda *a: None, clock=bed.now, secret=wiring.secret,
                     ledger=wiring.ledger, questions=wiring.questions,
                     desk=desk_hooks(bed.config.publication, bed.config.author, wiring) if bed.config.author.email else None)
    return TestClient(app, base_url="https://news.example.com", follow_redirects=False)


def csrf(html: str) -> str:
    return re.findall(r'name="csrf" value="([^"]+)"', html)[0]


def ask_for_link(client: TestClient, email: str) -> Any:
    form = client.get("/desk/")
    assert form.status_code == 200 and "Mail me a sign-in link" in form.text
    return client.post("/desk/signin", data={"email": email, "csrf": csrf(form.text)})


def signin_link(bed: Bed) -> str:
    body = str(to(bed, AUTHOR)[-1].message.get_body(("plain",)).get_content())
    return re.findall(r"https://news\.example\.com(/desk/signin/\S+)", body)[0]


def signed_in(bed: Bed, client: TestClient) -> str:
    """Sign in as the author; the desk page's CSRF token."""
    assert ask_for_link(client, AUTHOR).status_code == 200
    link = signin_link(bed)
    page = client.get(link)
    assert page.status_code == 200 and page.text.count("<button") == 1
    assert client.cookies.get("digest_desk") is None  # the GET signs no one in
    done = client.post(link)
    assert done.status_code == 303 and done.headers["location"] == "/desk/"
    desk = client.get("/desk/")
    assert desk.status_code == 200 and "The next issue" in desk.text
    return csrf(desk.text)


def test_the_author_signs_in_by_the_mailed_link_and_gets_a_strict_session_cookie(bed: Bed) -> None:
    with client_for(bed) as client:
        assert ask_for_link(client, AUTHOR).status_code == 200
        link = signin_link(bed)
        assert to(bed, AUTHOR)[-1].message["Subject"] == "Your sign-in link to the desk"
        done = client.post(link)
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("digest_desk=")
    for part in ("HttpOnly", "SameSite=strict", "Secure", "Max-Age=43200", "Path=/desk/"):
        assert part.lower() in cookie.lower(), part


def test_no_secure_flag_on_plain_http(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    b = author_bed(write_config, mail_server, tmp_path)
    try:
        from digest.core.config import read_config

        b.config.path.write_text(b.config.path.read_text().replace("https://news.example.com", "http://news.example.com"))
        b.config = read_config(b.config.path, {"DIGEST_SECRET": "send-secret-0123456789abcdef"})
        with client_for(b) as client:
            client.base_url = "http://news.example.com"  # type: ignore[assignment]
            ask_for_link(client, AUTHOR)
            body = str(to(b, AUTHOR)[-1].message.get_body(("plain",)).get_content())
            link = re.findall(r"http://news\.example\.com(/desk/signin/\S+)", body)[0]
            cookie = client.post(link).headers["set-cookie"]
        assert "httponly" in cookie.lower() and "secure" not in cookie.lower()
    finally:
        b.store.close()


def test_a_sign_in_for_any_other_address_answers_the_same_and_sends_nothing(bed: Bed) -> None:
    with client_for(bed) as client:
        theirs = ask_for_link(client, "someone@example.com")
        tagged = ask_for_link(client, "author+x@example.com")
        ours = ask_for_link(client, AUTHOR)
    strip = lambda html: re.sub(r'name="csrf" value="[^"]+"', "", html)  # noqa: E731
    assert theirs.status_code == tagged.status_code == ours.status_code == 200
    assert strip(theirs.text) == strip(ours.text) == strip(tagged.text)
    assert [m.recipients for m in bed.mail.received] == [[AUTHOR]]


def test_without_a_session_the_desk_refuses(bed: Bed) -> None:
    with client_for(bed) as client:
        for path in ("/desk/issue.html", "/desk/questions/1", "/desk/subscriber?email=reader0@example.com"):
            refused = client.get(path)
            assert refused.status_code == 401 and "Mail me a sign-in link" in refused.text
        assert client.post("/desk/decide", data={"action": "hold", "csrf": "x"}).status_code == 401
        assert client.post("/desk/subscriber/remove", data={"email": "reader0@example.com"}).status_code == 401
        client.cookies.set("digest_desk", "WzAsMTc5NjAxODQwMF0.forged", domain="news.example.com", path="/desk/")
        assert client.post("/desk/decide", data={"action": "hold", "csrf": "x"}).status_code == 401
    assert bed.wiring().author.decision(SLOT).held_at is None
    assert bed.store.find("reader0@example.com") is not None


def test_a_forged_or_expired_sign_in_link_signs_no_one_in(bed: Bed) -> None:
    with client_for(bed) as client:
        ask_for_link(client, AUTHOR)
        link = signin_link(bed)
        assert client.post(link[:-2] + ("xx" if not link.endswith("xx") else "yy")).status_code == 400
        assert client.post(link).status_code == 303
        client.cookies.clear()
        used = client.post(link)  # a link works once: forwarded or leaked, it signs no one else in
        assert used.status_code == 400 and "set-cookie" not in used.headers
        bed.advance(minutes=31)
        assert client.get(link).status_code == 400
        assert client.post(link).status_code == 400
        assert "set-cookie" not in client.post(link).headers
        assert client.get("/desk/issue.html").status_code == 401


def test_a_session_expires(bed: Bed) -> None:
    with client_for(bed) as client:
        signed_in(bed, client)
        assert client.get("/desk/issue.html").status_code == 200
        bed.advance(hours=12, minutes=1)
        assert client.get("/desk/issue.html").status_code == 401


def test_a_cross_site_or_token_less_post_changes_nothing(bed: Bed) -> None:
    with client_for(bed) as client:
        token = signed_in(bed, client)
        cross = client.post("/desk/decide", data={"action": "hold", "csrf": token},
                            headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert client.post("/desk/decide", data={"action": "hold"}).status_code == 403
        assert client.post("/desk/decide", data={"action": "hold", "csrf": "0" * 40}).status_code == 403
        assert client.post("/desk/signin", data={"email": AUTHOR, "csrf": "forged"}).status_code == 403
    assert bed.wiring().author.decision(SLOT).held_at is None
    assert len(to(bed, AUTHOR)) == 1  # the one sign-in link


def test_sign_in_requests_count_against_the_rate_limit(bed: Bed) -> None:
    with client_for(bed) as client:
        form = client.get("/desk/")
        codes = [client.post("/desk/signin", data={"email": "x@example.com", "csrf": csrf(form.text)}).status_code
                 for _ in range(bed.config.web.ip_limit_per_hour + 1)]
    assert codes[-1] == 429 and set(codes[:-1]) == {200}


def test_the_desk_shows_and_does_what_the_author_needs(bed: Bed) -> None:
    wiring = bed.wiring()
    q, _ = wiring.questions.record(new_question(email="asker@example.com", name="Maria Lopez", text="How do I explain a gap?",
                                                source="web", consent_to_quote=False, display_name=""), bed.now())
    q2, _ = wiring.questions.record(new_question(email="other@example.com", name="", text="Cover letters?",
                                                 source="mail", consent_to_quote=False, display_name=""), bed.now())
    with client_for(bed) as client:
        token = signed_in(bed, client)
        desk = client.get("/desk/").text
        assert "Maria" in desk and "Lopez" not in desk and "asker@example.com" not in desk
        assert 'value="How do I explain a gap?"' in desk  # the paraphrase, filled in with the text
        linked = client.get(f"/desk/questions/{q.id}").text  # the page the questions mail links to
        assert "From Maria (via web)" in linked and 'value="How do I explain a gap?"' in linked
        assert linked.count("<button") == 2 and "asker@example.com" not in linked
        assert client.get("/desk/questions/999").status_code == 404
        assert re.search(r'<th><a href="/desk/subscriber\?status=confirmed">confirmed</a></th><td>2</td>', desk)
        listed = client.get("/desk/subscriber", params={"status": "confirmed"}).text
        assert "2 confirmed" in listed and "reader0@example.com" in listed and "reader1@example.com" in listed
        assert "reader0@example.com" not in client.get("/desk/subscriber", params={"status": "bounced"}).text
        frame = client.get("/desk/issue.html")
        assert "Juggling two offers" in frame.text and "frame-ancestors 'self'" in frame.headers["content-security-policy"]
        # the next issue: a note, then hold
        client.post("/desk/decide", data={"action": "note", "note": "A short week.", "csrf": token})
        assert "A short week." in client.get("/desk/issue.html").text
        assert client.post("/desk/decide", data={"action": "hold", "csrf": token}).status_code == 303
        assert "held" in client.get("/desk/").text
        # the questions
        accepted = client.post(f"/desk/questions/{q.id}", data={"action": "accept", "value": "Explaining a gap",
                                                                 "csrf": token})
        assert accepted.status_code == 303 and "Explaining+a+gap" in accepted.headers["location"].replace("%20", "+")
        assert wiring.questions.require(q.id).paraphrase == "Explaining a gap"
        client.post(f"/desk/questions/{q.id}", data={"action": "answer", "value": "https://blog.example.com/gap",
                                                      "csrf": token})
        assert wiring.questions.require(q.id).answer_url == "https://blog.example.com/gap"
        client.post(f"/desk/questions/{q2.id}", data={"action": "decline", "csrf": token})
        assert wiring.questions.require(q2.id).status == "declined"
        client.post(f"/desk/questions/{q2.id}", data={"action": "forget", "csrf": token})
        assert wiring.questions.get(q2.id) is None
        # a subscriber's record, then removed
        record = client.get("/desk/subscriber", params={"email": "reader0@example.com"}).text
        assert "confirmed" in record and "Reader 0" in record
        client.post("/desk/subscriber/remove", data={"email": "reader0@example.com", "csrf": token})
        assert bed.store.find("reader0@example.com") is None


def test_the_desk_lists_the_issues_sent_with_their_counts(bed: Bed) -> None:
    from digest.jobs.desk import gated_send

    bed.clock[0] = SLOT + timedelta(seconds=30)
    gated_send(bed.config.publication, bed.config.author, bed.wiring())
    with client_for(bed) as client:
        signed_in(bed, client)
        desk = client.get("/desk/").text
    assert re.search(r'<a href="/archive/1">1</a>.*sent 2', desk, flags=re.S)


def test_signing_in_from_a_question_s_link_leads_back_to_the_question_and_never_off_site(bed: Bed) -> None:
    q, _ = bed.wiring().questions.record(new_question(email="asker@example.com", name="", text="Gap?", source="web",
                                                      consent_to_quote=False, display_name=""), bed.now())
    with client_for(bed) as client:
        asked = client.get(f"/desk/questions/{q.id}")
        assert asked.status_code == 401 and f'name="next" value="/desk/questions/{q.id}"' in asked.text
        client.post("/desk/signin", data={"email": AUTHOR, "csrf": csrf(asked.text), "next": f"/desk/questions/{q.id}"})
        link = signin_link(bed)
        assert link.endswith(f"?next=/desk/questions/{q.id}")
        assert client.get(link).text.count("<button") == 1
        done = client.post(link)
        assert done.status_code == 303 and done.headers["location"] == f"/desk/questions/{q.id}"
        assert "Gap?" in client.get(done.headers["location"]).text
        for elsewhere in ("https://evil.example/", "//evil.example/desk/", "/desk/../unsubscribe/x"):
            bed.advance(minutes=5, seconds=1)  # one sign-in mail per 5 minutes
            client.cookies.clear()
            form = client.get("/desk/")
            client.post("/desk/signin", data={"email": AUTHOR, "csrf": csrf(form.text), "next": elsewhere})
            assert "next=" not in signin_link(bed)
            hacked = signin_link(bed) + "?next=" + elsewhere
            assert client.post(hacked).headers["location"] == "/desk/"


def test_signing_out_ends_the_session_a_copied_cookie_included(bed: Bed) -> None:
    """Sign-out is the author's way to end a session on a shared or lost machine: the cookie
    is signed, not stored, so deleting it in this browser alone would leave a copy of it
    working until its 12 hours are up."""
    with client_for(bed) as client:
        token = signed_in(bed, client)
        session = client.cookies.get("digest_desk")
        assert session
        out = client.post("/desk/signout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/desk/"
        assert "digest_desk" in out.headers["set-cookie"] and "max-age=0" in out.headers["set-cookie"].lower()
    bed.advance(minutes=5)
    with client_for(bed) as thief:
        thief.cookies.set("digest_desk", session, domain="news.example.com", path="/desk/")
        assert "Mail me a sign-in link" in thief.get("/desk/").text
        assert thief.get("/desk/issue.html").status_code == 401
        assert thief.post("/desk/decide", data={"action": "hold", "csrf": token}).status_code == 401
    assert bed.wiring().author.decision(SLOT).held_at is None
    with client_for(bed) as client:  # a new sign-in after it works
        again = signed_in(bed, client)
        assert client.post("/desk/decide", data={"action": "hold", "csrf": again}).status_code == 303
    assert bed.wiring().author.decision(SLOT).held_at is not None


def test_sign_in_links_reach_the_author_at_most_once_per_few_minutes_whoever_asks(bed: Bed) -> None:
    """The per-client limit alone lets a stranger with many addresses (every IPv6 /64 is one
    client) mail the author a sign-in link per request. The link mailed always goes to the
    author, so a global pause between mails never locks the author out: the last one is in
    their inbox."""
    wiring = bed.wiring()
    app = create_app(bed.config, bed.store, send_confirmation=lambda *a: None, clock=bed.now, secret=wiring.secret,
                     ledger=wiring.ledger, questions=wiring.questions,
                     desk=desk_hooks(bed.config.publication, bed.config.author, wiring))
    pages = []
    for n in range(1, 6):
        with TestClient(app, base_url="https://news.example.com", follow_redirects=False,
                        client=(f"2001:db8:{n}::1", 40000)) as stranger:
            pages.append(ask_for_link(stranger, AUTHOR))
    assert {p.status_code for p in pages} == {200}
    assert len(to(bed, AUTHOR)) == 1
    bed.advance(minutes=5, seconds=1)
    with TestClient(app, base_url="https://news.example.com", follow_redirects=False,
                    client=("2001:db8:9::1", 40000)) as author:
        assert ask_for_link(author, AUTHOR).status_code == 200
    assert len(to(bed, AUTHOR)) == 2


def test_a_head_request_on_the_sign_in_link_signs_no_one_in_and_spends_nothing(bed: Bed) -> None:
    """Link scanners (Safe Links, Proofpoint, Mimecast) send HEAD as well as GET: the HEAD of
    the mailed link must neither hand the scanner a session nor use up the author's link."""
    with client_for(bed) as client:
        assert ask_for_link(client, AUTHOR).status_code == 200
        link = signin_link(bed)
    with client_for(bed) as scanner:
        scanned = scanner.head(link)
        assert scanned.status_code == 200 and "set-cookie" not in scanned.headers
        assert scanner.cookies.get("digest_desk") is None
        assert scanner.get("/desk/issue.html").status_code == 401
    with client_for(bed) as author:
        done = author.post(link)
        assert done.status_code == 303 and author.cookies.get("digest_desk")
