"""Every route through Starlette's TestClient, with a real SQLite store and a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from digest.core.config import read_config
from digest.core.tokens import make_token
from digest.jobs.mail import confirmation_mailer, welcome_mailer
from digest.web import create_app

SECRET = "test-secret-0123456789abcdef"
START = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
BLOGGER = "https://thewisejobsearch.blogspot.com"
WEB_EXTRA = """
[web]
base_url = "https://news.example.com"
allowed_origins = ["https://thewisejobsearch.blogspot.com"]
ip_limit_per_hour = {limit}
confirm_hours = 48
confirm_resend_minutes = 60
"""


@dataclass
class Web:
    client: TestClient
    store: Store
    mail: Any
    clock: list[datetime]

    def advance(self, **delta: float) -> None:
        self.clock[0] += timedelta(**delta)

    def subscribe(self, email: str, name: str = "", headers: dict[str, str] | None = None, **fields: Any) -> Any:
        return self.client.post("/subscribe", data={"email": email, "name": name, **fields}, headers=headers or {})

    def confirm_link(self, index: int = -1) -> str:
        """The link of the index-th confirmation mail (the welcome mails that follow have none)."""
        confirmations = [r for r in self.mail.received if r.message["Subject"].startswith("Confirm")]
        text = confirmations[index].message.get_body(("plain",)).get_content()
        return re.search(r"https://news\.example\.com(/confirm/\S+)", text).group(1)  # type: ignore[union-attr]

    def confirm(self, link: str | None = None) -> Any:
        """Open a confirmation link and press its page's one button, as a reader does."""
        path = link or self.confirm_link()
        shown = self.client.get(path)
        if shown.status_code != 200:
            return shown
        assert "Confirm my subscription" in shown.text and 'method="post"' in shown.text
        return self.client.post(path)


def make_web(write_config: Callable[..., Path], mail_server: Any, limit: int = 50) -> Iterator[Web]:
    path = write_config(smtp_port=mail_server.port, extra="")
    text = path.read_text().replace('[web]\nbase_url = "https://news.example.com"\n', WEB_EXTRA.format(limit=limit))
    path.write_text(text)
    config = read_config(path, {"DIGEST_SECRET": SECRET})
    store = Store.open(config.store.url)
    clock = [START]
    with TestClient(create_app(config, store, send_confirmation=confirmation_mailer(config.publication, Wiring(config, store=store)),
                               send_welcome=welcome_mailer(config.publication, Wiring(config, store=store)),
                               clock=lambda: clock[0]), base_url="https://news.example.com",
                    follow_redirects=False) as client:
        yield Web(client, store, mail_server, clock)
    store.close()


@pytest.fixture
def web(write_config: Callable[..., Path], mail_server: Any) -> Iterator[Web]:
    yield from make_web(write_config, mail_server)


def test_subscribe_page_has_the_form(web: Web) -> None:
    page = web.client.get("/subscribe")
    assert page.status_code == 200
    for needle in ('name="email"', 'name="name"', 'name="website"', 'value="Interviews"', 'value="Offers"',
                   'action="subscribe"'):
        assert needle in page.text
    assert page.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_the_forms_post_wherever_the_page_was_opened(web: Web) -> None:
    # `digest serve` prints http://127.0.0.1:8000/subscribe while base_url says localhost:
    # the form posts to its own page, and the page's own origin is accepted.
    assert 'action="subscribe"' in web.client.get("/subscribe").text
    done = web.client.post("/subscribe", data={"email": "ana@example.com"},
                           headers={"origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"})
    assert done.status_code == 200 and "Check your inbox" in done.text
    forged = web.client.post("/subscribe", data={"email": "bo@example.com"},
                             headers={"origin": "https://evil.example", "host": "127.0.0.1:8000"})
    assert forged.status_code == 403 and web.store.find("bo@example.com") is None


def test_the_site_root_leads_to_the_subscribe_page(web: Web) -> None:
    home = web.client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/subscribe"
    assert "content-security-policy" in home.headers


def test_double_opt_in(web: Web) -> None:
    response = web.subscribe("Ana@Example.com", "Ana", topics=["Interviews", "Networking"])
    assert response.status_code == 200 and "Check your inbox" in response.text
    sub = web.store.find("ana@example.com")
    assert sub is not None and sub.status == "pending" and sub.topics == ("Interviews", "Networking")
    assert sub.consent is not None and sub.consent.method == "web" and sub.consent.ip == "testclient"
    assert len(web.mail.received) == 1
    mail = web.mail.received[0]
    assert mail.recipients == ["Ana@example.com"]
    assert mail.message["Subject"] == "Confirm your subscription to The Wise Job Search"
    assert mail.message["Precedence"] is None and mail.message["List-Unsubscribe"] is None
    confirmed = web.confirm()
    assert confirmed.status_code == 200 and "subscribed, Ana" in confirmed.text
    sub = web.store.find("ana@example.com")
    assert sub is not None and sub.status == "confirmed" and sub.confirmed_at == START
    again = web.confirm()  # a second click on a used link
    assert again.status_code == 200 and "subscribed" in again.text


def test_a_confirmation_that_never_left_does_not_hold_the_next_back(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    web.mail.handler.inject("MAIL", "421 4.3.2 not now")  # the relay refuses: the mail never leaves
    web.subscribe("ana@example.com")
    assert web.mail.received == []
    web.subscribe("ana@example.com")  # at once, well within confirm_resend_minutes
    assert len(web.mail.received) == 1, "a mail that never left must not count against the window"
    with caplog.at_level("INFO", logger="digest.web"):
        web.subscribe("ana@example.com")  # this one went: the next is held back, and the log says so
    assert len(web.mail.received) == 1
    held = [r.getMessage() for r in caplog.records if "held back" in r.getMessage()]
    assert len(held) == 1 and "confirm_resend_minutes" in held[0]
    assert "went at 07:00 EST" in held[0]  # 12:00 UTC, in [schedule] timezone


def test_the_answer_is_the_same_whatever_the_address_state(web: Web) -> None:
    web.subscribe("pending@example.com")
    web.subscribe("confirmed@example.com")
    web.confirm()
    web.subscribe("gone@example.com")
    gone = web.store.find("gone@example.com")
    assert gone is not None
    web.client.post(f"/unsubscribe/{make_token(SECRET, 'unsubscribe', gone.id, now=START)}")
    answers = [web.subscribe(email) for email in ("new@example.com", "pending@example.com", "confirmed@example.com",
                                                 "gone@example.com", "CONFIRMED@example.com")]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert len({tuple(sorted((k, v) for k, v in a.headers.items() if k != "date")) for a in answers}) == 1


def test_one_confirmation_mail_per_window(web: Web) -> None:
    for _ in range(5):
        web.subscribe("target@example.com")
    assert len(web.mail.received) == 1
    web.advance(minutes=61)
    web.subscribe("target@example.com")
    assert len(web.mail.received) == 2


def test_honeypot_does_nothing_but_answers_the_same(web: Web) -> None:
    normal = web.subscribe("human@example.com")
    bot = web.subscribe("bot@example.com", website="http://spam.example")
    assert bot.status_code == 200 and bot.text == normal.text
    assert web.store.find("bot@example.com") is None and len(web.mail.received) == 1


def test_bad_address_shows_the_form_again(web: Web) -> None:
    page = web.subscribe("not-an-address", "<b>Eve</b>")
    assert page.status_code == 400 and "Please enter a valid email address." in page.text
    assert "&lt;b&gt;Eve&lt;/b&gt;" in page.text and "<b>Eve" not in page.text
    assert web.store.count() == 0


@pytest.mark.parametrize("smtputf8", [False, True], ids=["plain", "smtputf8"])
def test_addresses_that_are_not_ascii_get_their_confirmation_or_a_log_line(
        write_config: Callable[..., Path], smtputf8: bool, caplog: pytest.LogCaptureFixture) -> None:
    from mailserver import MailServer

    server = MailServer(enable_SMTPUTF8=smtputf8).start()
    try:
        for web in make_web(write_config, server):
            idn = web.subscribe("user@bücher.example")
            assert idn.status_code == 200 and "Check your inbox" in idn.text
            assert web.mail.received[-1].recipients == ["user@xn--bcher-kva.example"]
            utf8 = web.subscribe("josé@example.com")  # the background task runs before the client returns
            assert utf8.status_code == 200 and "Check your inbox" in utf8.text
            assert web.store.find("josé@example.com").status == "pending"  # type: ignore[union-attr]
            if smtputf8:
                assert web.mail.received[-1].recipients == ["josé@example.com"]
                assert "SMTPUTF8" in web.mail.received[-1].options
            else:
                assert len(web.mail.received) == 1
                assert "does not offer SMTPUTF8" in caplog.text
    finally:
        server.stop()


def test_per_ip_rate_limit(write_config: Callable[..., Path], mail_server: Any) -> None:
    for web in make_web(write_config, mail_server, limit=3):
        codes = [web.subscribe(f"u{i}@example.com").status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        assert web.store.count() == 3
        web.advance(hours=1, seconds=1)
        assert web.subscribe("later@example.com").status_code == 200


def test_a_client_cannot_choose_its_address_by_sending_the_proxy_header_itself(
        write_config: Callable[..., Path], mail_server: Any) -> None:
    """A proxy that appends its own X-Forwarded-For line (HAProxy's option forwardfor) leaves
    the client's line first: the header is the lines joined (RFC 9110 5.3), and only its
    last entry, the proxy's, names the client."""
    original = write_config

    def with_proxy(**kw: Any) -> Path:
        path = original(**kw)
        path.write_text(path.read_text().replace('[web]\nbase_url = "https://news.example.com"\n',
                                                 '[web]\nbase_url = "https://news.example.com"\n'
                                                 'trusted_proxy_header = "X-Forwarded-For"\n', 1))
        return path

    for web in make_web(with_proxy, mail_server, limit=2):
        codes = [web.client.post("/subscribe", data={"email": f"s{n}@example.com"},
                                 headers=[("X-Forwarded-For", f"203.0.113.{n}"),  # the client's own
                                          ("X-Forwarded-For", "198.51.100.1")]).status_code  # the proxy's
                 for n in range(3)]
        assert codes == [200, 200, 429]
        sub = web.store.find("s0@example.com")
        assert sub is not None and sub.consent is not None and sub.consent.ip == "198.51.100.1"


def test_a_port_in_the_proxy_header_does_not_make_each_connection_a_client_of_its_own(
        write_config: Callable[..., Path], mail_server: Any) -> None:
    """Some proxies write the client's port too ("192.0.2.7:40001", "[2001:db8::7]:40001"), a
    new one per connection: kept in the address, every connection was a client of its own
    for the per-client limits, so there was no limit at all."""
    original = write_config

    def with_proxy(**kw: Any) -> Path:
        path = original(**kw)
        path.write_text(path.read_text().replace('[web]\nbase_url = "https://news.example.com"\n',
                                                 '[web]\nbase_url = "https://news.example.com"\n'
                                                 'trusted_proxy_header = "X-Forwarded-For"\n', 1))
        return path

    for web in make_web(with_proxy, mail_server, limit=2):
        for at, address in (("192.0.2.7:4000{n}", "192.0.2.7"), ("[2001:db8::7]:4000{n}", "2001:db8::7")):
            codes = [web.client.post("/subscribe", data={"email": f"{address[:4]}{n}@example.com"},
                                     headers={"X-Forwarded-For": at.format(n=n)}).status_code for n in range(3)]
            assert codes == [200, 200, 429], at
            sub = web.store.find(f"{address[:4]}0@example.com")
            assert sub is not None and sub.consent is not None and sub.consent.ip == address


def test_cross_origin_posts(web: Web) -> None:
    refused = web.subscribe("a@example.com", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and web.store.count() == 0
    assert web.subscribe("b@example.com", headers={"Origin": "null"}).status_code == 403
    assert web.subscribe("c@example.com", headers={"Origin": BLOGGER}).status_code == 200
    assert web.subscribe("d@example.com", headers={"Origin": "https://news.example.com"}).status_code == 200
    assert web.store.count() == 2


def test_bad_tokens_all_get_the_same_page_and_change_nothing(web: Web) -> None:
    web.subscribe("a@example.com")
    sub = web.store.find("a@example.com")
    assert sub is not None
    good = web.confirm_link()
    unsub = make_token(SECRET, "unsubscribe", sub.id, now=START)
    prefs = make_token(SECRET, "preferences", sub.id, now=START)
    forged = make_token("another-secret-0123456789", "confirm", sub.id, now=START, nonce=sub.confirm_nonce)
    web.advance(hours=49)
    expired = web.client.get(good)
    bad = [
        expired,
        web.client.get(good[:-3] + "abc"),
        web.client.get(f"/confirm/{forged}"),
        web.client.get(f"/confirm/{unsub}"),          # wrong purpose
        web.client.get(f"/unsubscribe/{prefs}"),
        web.client.post(f"/unsubscribe/{prefs}"),
        web.client.get(f"/preferences/{unsub}"),
        web.client.post(f"/preferences/{unsub}", data={"name": "x"}),
        web.client.get("/confirm/garbage"),
        web.client.post(good),                          # expired, pressed
        web.client.post(f"/confirm/{forged}"),
    ]
    assert {r.status_code for r in bad} == {400}
    assert len({r.text for r in bad}) == 1 and "This link does not work" in bad[0].text
    after = web.store.find("a@example.com")
    assert after is not None and after.status == "pending" and after.name == ""


def test_unsubscribe_get_changes_nothing_and_post_is_one_click(web: Web) -> None:
    web.subscribe("a@example.com")
    web.confirm()
    sub = web.store.find("a@example.com")
    assert sub is not None
    path = f"/unsubscribe/{make_token(SECRET, 'unsubscribe', sub.id, now=START)}"
    page = web.client.get(path)
    assert page.status_code == 200 and f'action="{path}"' in page.text and "<button" in page.text
    assert web.store.find("a@example.com").status == "confirmed"  # type: ignore[union-attr]
    web.client.cookies.clear()
    done = web.client.post(path, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "location" not in done.headers and "unsubscribed" in done.text
    after = web.store.find("a@example.com")
    assert after is not None and after.status == "unsubscribed" and after.unsubscribed_how == "one-click"
    assert web.client.post(path).status_code == 200  # again: still fine


def test_preferences(web: Web) -> None:
    web.subscribe("a@example.com", "Ana")
    web.confirm()
    sub = web.store.find("a@example.com")
    assert sub is not None
    path = f"/preferences/{make_token(SECRET, 'preferences', sub.id, now=START)}"
    page = web.client.get(path)
    # An all-topics reader: none ticked, as the hint says "none ticked: all of them"; the page names the address.
    assert page.status_code == 200 and 'value="Ana"' in page.text and page.text.count(' name="topics"') == 4
    assert re.findall(r'name="topics"[^>]*checked', page.text) == []
    assert "none ticked: all of them, as now" in page.text and "a@example.com" in page.text
    saved = web.client.post(path, data={"name": "<script>x</script>", "topics": ["Offers"]})
    assert saved.status_code == 200 and "Saved." in saved.text and "<script>x" not in saved.text
    after = web.store.find("a@example.com")
    assert after is not None and after.topics == ("Offers",) and after.name == "<script>x</script>"
    assert len(re.findall(r'name="topics"[^>]*checked', saved.text)) == 1 and ", as now" not in saved.text
    assert web.client.post(path, data={"name": "Eve"}, headers={"Origin": "https://evil.example"}).status_code == 403


def test_markup_in_a_name_is_escaped_in_the_mail_and_pages(web: Web) -> None:
    web.subscribe("x@example.com", '<img src=x onerror="alert(1)">')
    assert "img src" not in web.mail.received[0].data.decode()  # the confirmation carries no name at all
    page = web.confirm()
    assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    welcome = web.mail.received[-1].message  # the name greets the reader once confirmed, as text
    html = welcome.get_body(("html",)).get_content()
    assert welcome["Subject"].startswith("Welcome") and "<img src=x" not in html and "&lt;img src=x onerror=" in html


def test_no_route_redirects_anywhere(web: Web) -> None:
    for path in ("/subscribe?next=https://evil.example", "/confirm/x?next=//evil.example", "/unsubscribe/x?return=https://evil.example"):
        response = web.client.get(path)
        assert "location" not in response.headers and not 300 <= response.status_code < 400


def test_a_slash_too_many_or_too_few_leads_on_by_a_relative_redirect(web: Web) -> None:
    """Starlette's own slash redirect spelled out the address from the request's Host header
    and scheme: behind a TLS proxy (uvicorn runs with proxy_headers off) /desk led to
    http://, carrying a link's token in clear for /confirm/TOKEN/, and any Host a proxy
    passed on came back in Location. Ours is relative, as every redirect here is."""
    for path, to in (("/desk", "/desk/"), ("/archive?from=feed", "/archive/?from=feed"), ("/confirm/abc.def/", "/confirm/abc.def"),
                     ("/subscribe//", "/subscribe")):
        led = web.client.get(path, headers={"Host": "evil.example"})
        assert led.status_code == 307 and led.headers["location"] == to, path
    for path in ("/nowhere/", "/nowhere", "/desk/x/", "https://news.example.com//evil.example/subscribe/",
                 "https://news.example.com//subscribe"):
        missing = web.client.get(path)
        assert missing.status_code == 404 and "location" not in missing.headers, path


def test_an_escaped_slash_is_never_led_back_to_itself(web: Web) -> None:
    """/subscribe%2F is /subscribe/ decoded, but its raw path has no slash to take away: the
    slash redirect sent it to itself, a 307 loop until the browser gave up."""
    for path in ("/subscribe%2F", "/subscribe%2f", "/confirm/abc.def%2F"):
        answer = web.client.get(path)
        assert answer.headers.get("location") != path and answer.status_code == 404, path


def test_healthz(web: Web) -> None:
    assert web.client.get("/healthz").json() == {"status": "ok"}


def test_healthz_tells_the_world_nothing_of_a_broken_database(write_config: Callable[..., Path], mail_server: Any,
                                                              postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """/healthz is public: the driver's message (the database server's address and port, the
    database's and the user's names) goes to the log, not to whoever asks."""
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE t_health_broken"))
    url = postgres_url.rsplit("/", 1)[0] + "/t_health_broken"
    path = write_config(smtp_port=mail_server.port, extra="")
    path.write_text(path.read_text().replace('url = "sqlite:///', f'url = "{url}"\n# "sqlite:///', 1))
    config = read_config(path, {"DIGEST_SECRET": SECRET})
    store = Store.open(config.store.url)
    try:
        with TestClient(create_app(config, store, send_confirmation=lambda *a: None)) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            store.engine.dispose()
            with admin.connect() as conn:  # the database goes away under the running app
                conn.execute(sa.text("DROP DATABASE t_health_broken WITH (FORCE)"))
            broken = client.get("/healthz")
        assert broken.status_code == 503 and broken.json() == {"status": "error"}
        assert "t_health_broken" in caplog.text  # the operator still learns why
    finally:
        store.close()
        admin.dispose()


def test_archive_lists_sent_issues_and_shows_one_without_personal_links(web: Web) -> None:
    from digest.adapters.ledger import Ledger
    from digest.core.models import Post

    ledger = Ledger(web.store)
    post = Post("p1", "Salary talk", "https://b.example/p1", START, START)
    html = ('<html><body><p>Hello,</p><a href="https://news.example.com/subscribe">Unsubscribe</a>'
            '<a href="https://b.example/p1">Salary talk</a></body></html>')
    late = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)  # still 25 November in New York
    done, _ = ledger.create_issue(key="k1", now=late, cutoff=START, subject="Week 1: <Salary> talk", posts=[post], html=html,
                                  text="", domain="example.com", state=None)
    ledger.finish_if_done(done.id, START)
    sending, _ = ledger.create_issue(key="k2", now=START, cutoff=START, subject="Not yet", posts=[post], html="<p>draft</p>",
                                     text="", domain="example.com", state=None)
    listing = web.client.get("/archive/")
    assert listing.status_code == 200
    assert "Week 1: &lt;Salary&gt; talk" in listing.text and f'href="https://news.example.com/archive/{done.id}"' in listing.text
    assert "Not yet" not in listing.text
    assert "25 November 2026" in listing.text and "26 November" not in listing.text  # in [schedule] timezone
    page = web.client.get(f"/archive/{done.id}")
    assert page.status_code == 200 and "Salary talk" in page.text
    assert "/unsubscribe/" not in page.text and "/preferences/" not in page.text
    assert web.client.get(f"/archive/{sending.id}").status_code == 404
    assert web.client.get("/archive/999").status_code == 404


def test_a_removed_subscribers_links_do_not_reach_the_next_subscriber(write_config: Callable[..., Path], mail_server: Any,
                                                                     store_url: str) -> None:
    from dataclasses import replace
    from urllib.parse import urlsplit

    from digest.core.models import Consent
    from digest.core.tokens import Links

    config = read_config(write_config(smtp_port=mail_server.port), {"DIGEST_SECRET": SECRET})
    config = replace(config, store=replace(config.store, url=store_url))
    store = Store.open(store_url)
    consent = Consent(at=START, method="import")
    links = Links(config.web.base_url, SECRET)
    ana, _ = store.add("ana@example.com", "ana@example.com", "Ana", (), confirmed=True, now=START, consent=consent)
    ana_unsubscribe, ana_preferences = links.unsubscribe(ana.id, START), links.preferences(ana.id, START)  # in her last issue
    store.remove("ana@example.com")
    bob, _ = store.add("bob@example.com", "bob@example.com", "Bob Newcomer", ("Offers",), confirmed=True, now=START,
                       consent=consent)
    try:
        with TestClient(create_app(config, store, send_confirmation=confirmation_mailer(config.publication, Wiring(config, store=store)),
                                   clock=lambda: START), base_url="https://news.example.com") as client:
            prefs = client.get(urlsplit(ana_preferences).path)
            assert prefs.status_code == 400 and "Bob Newcomer" not in prefs.text
            done = client.post(urlsplit(ana_unsubscribe).path, content=b"List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert done.status_code == 200  # the same answer as for anyone: no page tells who is on the list
        after = store.find("bob@example.com")
        assert after is not None and after.id == bob.id and after.status == "confirmed" and after.name == "Bob Newcomer"
    finally:
        store.close()


# ---- limits and headers on every response ----

def assert_security_headers(response: Any) -> None:
    from digest.web.middleware import SECURITY_HEADERS

    missing = {k: v for k, v in SECURITY_HEADERS.items() if response.headers.get(k) != v}
    assert not missing, f"{response.request.method} {response.request.url.path} -> {response.status_code} lacks {missing}"


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_body_over_64_kb_is_refused_before_parsing(web: Web) -> None:
    big = b"email=a%40example.com&name=" + b"x" * 70_000
    declared = web.client.post("/subscribe", content=big, headers=FORM)
    assert declared.status_code == 413 and "too large" in declared.text

    def chunks() -> Iterator[bytes]:
        yield b"email=b%40example.com&name="
        for _ in range(100):
            yield b"y" * 1024

    chunked = web.client.post("/subscribe", content=chunks(), headers=FORM)
    assert chunked.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in chunked.request.headers
    assert chunked.status_code == 413
    assert web.store.count() == 0 and web.mail.received == []
    fits = web.client.post("/subscribe", content=b"email=c%40example.com&name=" + b"z" * 60_000, headers=FORM)
    assert fits.status_code == 200 and web.store.count() == 1  # a big but allowed body still works


def test_a_one_click_post_over_the_cap_unsubscribes_no_one(web: Web) -> None:
    web.subscribe("a@example.com")
    web.confirm()
    sub = web.store.find("a@example.com")
    assert sub is not None
    path = f"/unsubscribe/{make_token(SECRET, 'unsubscribe', sub.id, now=START)}"
    refused = web.client.post(path, content=b"List-Unsubscribe=One-Click&pad=" + b"p" * 70_000, headers=FORM)
    assert refused.status_code == 413 and web.store.find("a@example.com").status == "confirmed"  # type: ignore[union-attr]


def test_security_headers_on_errors_redirects_and_the_one_click_post(web: Web) -> None:
    web.subscribe("a@example.com")
    web.confirm()
    sub = web.store.find("a@example.com")
    assert sub is not None
    path = f"/unsubscribe/{make_token(SECRET, 'unsubscribe', sub.id, now=START)}"
    responses = {
        200: web.client.post(path, content=b"List-Unsubscribe=One-Click", headers=FORM),  # RFC 8058
        404: web.client.get("/no-such-page"),
        405: web.client.put("/subscribe", content=b"x"),
        413: web.client.post("/subscribe", content=b"x" * 70_000, headers=FORM),
        307: web.client.get("/archive"),  # Starlette's redirect to /archive/
        400: web.client.get("/confirm/garbage"),
    }
    assert {code: r.status_code for code, r in responses.items()} == {code: code for code in responses}
    assert responses[307].headers["location"].endswith("/archive/")
    for response in responses.values():
        assert_security_headers(response)


def test_a_server_error_carries_the_security_headers_too(web: Web) -> None:
    with web.store.engine.begin() as conn:  # a real failure: the table the archive reads is gone
        conn.exec_driver_sql("DROP TABLE deliveries")
        conn.exec_driver_sql("DROP TABLE issues")
    with TestClient(web.client.app, base_url="https://news.example.com", raise_server_exceptions=False) as client:
        broken = client.get("/archive/")
    assert broken.status_code == 500 and "Something went wrong" in broken.text and "Traceback" not in broken.text
    assert_security_headers(broken)


def test_an_archive_id_beyond_the_integer_range_is_404(write_config: Callable[..., Path], mail_server: Any,
                                                       store_url: str) -> None:
    from dataclasses import replace

    config = read_config(write_config(smtp_port=mail_server.port), {"DIGEST_SECRET": SECRET})
    config = replace(config, store=replace(config.store, url=store_url))
    store = Store.open(store_url)
    try:
        with TestClient(create_app(config, store, send_confirmation=confirmation_mailer(config.publication, Wiring(config, store=store))),
                        base_url="https://news.example.com") as client:
            for issue in ("1" * 30, str(2**63), str(2**31), "0", "1"):
                page = client.get(f"/archive/{issue}")
                assert page.status_code == 404, issue
                assert "No such issue" in page.text
                assert_security_headers(page)
    finally:
        store.close()


# ---- the welcome mail, once, after confirming ----

def _record_done_issue(web: Web, key: str, posts: list[Any], subject: str = "An issue") -> int:
    from digest.adapters.ledger import Ledger

    ledger = Ledger(web.store)
    issue, _ = ledger.create_issue(key=key, now=START, cutoff=START, subject=subject, posts=posts, html="<p>x</p>",
                                   text="x", domain="example.com", state=None)
    ledger.finish_if_done(issue.id, START)
    return issue.id


def _post(n: int, *labels: str) -> Any:
    from digest.core.models import Post

    return Post(f"p{n}", f"Post number {n}", f"https://b.example/{n}", START, START, labels=labels,
                excerpt=f"Excerpt of post {n}.")


def test_confirming_sends_one_welcome_mail(web: Web) -> None:
    web.subscribe("ana@example.com", "Ana")
    link = web.confirm_link()
    assert web.confirm(link).status_code == 200
    assert len(web.mail.received) == 2
    welcome = web.mail.received[1]
    message = welcome.message
    assert welcome.recipients == ["ana@example.com"] and message["Subject"] == "Welcome to The Wise Job Search"
    assert message["Precedence"] is None and message["List-Unsubscribe"] is None  # one person's mail
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Hi Ana,")
    assert "One email every Monday at 7:00 a.m., New York time" in text and "America/New_York" not in text
    assert "Ask your question: https://thewisejobsearch.blogspot.com/p/contact.html" in text
    assert "Or write to: questions@example.com" in text
    assert "Readers asked" not in text  # nothing answered yet
    preferences = re.search(r"https://news\.example\.com(/preferences/\S+)", text).group(1)  # type: ignore[union-attr]
    assert web.client.get(preferences).status_code == 200
    html = message.get_body(("html",)).get_content()
    assert "Ask your question</a>" in html and "<h2" in html
    assert web.confirm(link).status_code == 200  # a second click on the link
    web.advance(hours=2)
    assert web.confirm(link).status_code == 200
    assert len(web.mail.received) == 2  # no second welcome


def test_the_welcome_mail_shows_a_few_recently_answered_questions(web: Web) -> None:
    from digest.adapters.ledger import Ledger

    _record_done_issue(web, "k1", [_post(1, "Reader Questions"), _post(2, "Networking")])
    _record_done_issue(web, "k2", [_post(3, "reader questions"), _post(4, "Reader Questions", "Resumes"), _post(5)])
    _record_done_issue(web, "k3", [_post(6, "Reader Questions"), _post(3, "Reader Questions")])
    Ledger(web.store).create_issue(key="k4", now=START, cutoff=START, subject="Not yet", html="", text="",  # still sending
                                   posts=[_post(7, "Reader Questions")], domain="example.com", state=None)
    web.subscribe("ana@example.com")
    web.confirm()
    text = web.mail.received[-1].message.get_body(("plain",)).get_content()
    answers = text.split("== Readers asked, we answered ==")[1]
    assert re.findall(r"Post number \d+", answers) == ["Post number 6", "Post number 3", "Post number 4"]
    assert "https://b.example/6" in answers and "Past issues: https://news.example.com/archive/" in answers


def test_the_welcome_template_can_be_overridden(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    own = tmp_path / "templates"
    own.mkdir()
    (own / "welcome_email.txt.j2").write_text("{% extends 'default:welcome_email.txt.j2' %}")
    (own / "welcome_email.html.j2").write_text(
        "{% extends 'default:welcome_email.html.j2' %}{% block style %}{{ super() }} .masthead { border-bottom: 9px solid #ff0000; }{% endblock %}")
    def with_templates(**kw: Any) -> Path:
        return write_config(newsletter=f'templates_dir = "{own}"', **kw)

    for web in make_web(with_templates, mail_server):
        web.subscribe("ana@example.com")
        web.confirm()
        html = web.mail.received[-1].message.get_body(("html",)).get_content()
        assert "border-bottom:9px solid #f00" in html and "Welcome, and thank you for confirming" in html  # inlined


# ---- the archive's Atom feed ----

def test_the_archive_has_an_atom_feed_of_sent_issues(web: Web) -> None:
    import feedparser

    empty = web.client.get("/archive/feed.xml")
    assert empty.status_code == 200 and empty.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(empty.content)
    assert not parsed.bozo and parsed.version == "atom10" and parsed.entries == []
    first = _record_done_issue(web, "k1", [_post(1), _post(2)], subject="Week 1: <Salary> & talk")
    web.advance(days=7)
    second = _record_done_issue(web, "k2", [_post(3)], subject="Week 2")
    from digest.adapters.ledger import Ledger

    Ledger(web.store).create_issue(key="k3", now=START, cutoff=START, subject="Not yet", posts=[_post(4)], html="",
                                   text="", domain="example.com", state=None)
    response = web.client.get("/archive/feed.xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.feed.title == "The Wise Job Search: past issues"
    assert [e.title for e in parsed.entries] == ["Week 2", "Week 1: <Salary> & talk"]
    assert [e.link for e in parsed.entries] == [f"https://news.example.com/archive/{second}",
                                                f"https://news.example.com/archive/{first}"]
    assert parsed.entries[1].summary == "Issue 1, 2 posts: Post number 1; Post number 2"
    assert parsed.entries[0].updated_parsed is not None and parsed.feed.updated_parsed is not None
    for entry in parsed.entries:
        assert web.client.get(entry.link.removeprefix("https://news.example.com")).status_code == 200
    listing = web.client.get("/archive/")
    assert 'rel="alternate" type="application/atom+xml"' in listing.text and "/archive/feed.xml" in listing.text
