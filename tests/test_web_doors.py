"""Issue 21's web doors, as an attacker would try them: the subscribe form as a megaphone
(typed names, plus and dot variants, a flood), link scanners on /confirm, forwarded
settings links. Starlette's TestClient, a real SQLite store, a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_web import SECRET, START, WEB_EXTRA, Web

from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from digest.core.config import read_config
from digest.core.tokens import make_token
from digest.jobs.mail import confirmation_mailer, preferences_link_mailer, welcome_mailer
from digest.web import create_app

PHISH = "URGENT: your account is suspended, verify at https://evil.example"


def doors_web(write_config: Callable[..., Path], mail_server: Any, extra: str = "", limit: int = 50) -> Iterator[Web]:
    path = write_config(smtp_port=mail_server.port, extra="")
    text = path.read_text().replace('[web]\nbase_url = "https://news.example.com"\n',
                                    WEB_EXTRA.format(limit=limit) + extra)
    path.write_text(text)
    config = read_config(path, {"DIGEST_SECRET": SECRET})
    store = Store.open(config.store.url)
    clock = [START]
    wiring = Wiring(config, store=store, clock=lambda: clock[0])
    app = create_app(config, store, send_confirmation=confirmation_mailer(config.publication, wiring),
                     send_welcome=welcome_mailer(config.publication, wiring),
                     send_preferences_link=preferences_link_mailer(config.publication, wiring), clock=lambda: clock[0])
    with TestClient(app, base_url="https://news.example.com", follow_redirects=False) as client:
        yield Web(client, store, mail_server, clock)
    store.close()


@pytest.fixture
def web(write_config: Callable[..., Path], mail_server: Any) -> Iterator[Web]:
    yield from doors_web(write_config, mail_server)


def confirmations(web: Web) -> list[Any]:
    return [r for r in web.mail.received if r.message["Subject"].startswith("Confirm")]


# ---- the subscribe form is nobody's megaphone ----

def test_the_confirmation_mail_carries_no_typed_name(web: Web) -> None:
    web.subscribe("victim@example.org", name=PHISH)
    [mail] = confirmations(web)
    raw = mail.data.decode("utf-8", "replace")
    for part in ("URGENT", "evil.example", "suspended"):
        assert part not in raw, f"the typed name reached the confirmation mail: {part!r}"
    assert mail.message["To"] == "victim@example.org"
    assert mail.message.get_body(("plain",)).get_content().startswith("Hello,")
    web.confirm()  # once confirmed, the name is the reader's own
    sub = web.store.find("victim@example.org")
    assert sub is not None and sub.name == PHISH[:100]


def test_plus_and_gmail_dot_variants_count_against_one_mailbox(web: Web) -> None:
    variants = ["victim@gmail.com", "victim+1@gmail.com", "Victim+2@gmail.com", "vic.tim@gmail.com",
                "v.i.c.t.i.m+x@googlemail.com", "victim@googlemail.com"]
    for address in variants:
        assert web.subscribe(address).status_code == 200
    assert [r.recipients for r in confirmations(web)] == [["victim@gmail.com"]]
    assert web.store.count() == len(variants)  # every address is kept; only the mail is held back
    # Dots are folded only where the mail system folds them: elsewhere a.b@ and ab@ are two people.
    for address in ("ab@example.org", "a.b@example.org", "ab+news@example.org"):
        web.subscribe(address)
    assert [r.recipients[0] for r in confirmations(web)[1:]] == ["ab@example.org", "a.b@example.org"]
    # Past [web] confirm_resend_minutes, a variant held back gets its mail when it asks again.
    web.advance(minutes=61)
    web.subscribe("victim+1@gmail.com")
    assert confirmations(web)[-1].recipients == ["victim+1@gmail.com"]


def test_confirmation_mails_have_an_hourly_cap_for_all_addresses_together(
        write_config: Callable[..., Path], mail_server: Any) -> None:
    for web in doors_web(write_config, mail_server, extra="confirm_per_hour = 3\n"):
        pages = {web.subscribe(f"reader{i}@example.org").text for i in range(6)}
        assert len(pages) == 1  # the same page, whether mailed or held back
        assert len(confirmations(web)) == 3, "[web] confirm_per_hour = 3"
        web.advance(minutes=61)
        web.subscribe("reader5@example.org")  # held back before: mailed now
        assert confirmations(web)[-1].recipients == ["reader5@example.org"]
        web.confirm()
        sub = web.store.find("reader5@example.org")
        assert sub is not None and sub.status == "confirmed"


def test_a_ligature_or_eszett_address_does_not_squat_the_plain_one(web: Web) -> None:
    for address in ("ﬁ@example.org", "straße@example.org"):
        web.subscribe(address)  # an attacker's mailbox, subscribed first
    for address in ("fi@example.org", "strasse@example.org"):
        web.subscribe(address)  # the real owners
        web.confirm()
        sub = web.store.find(address)
        assert sub is not None and sub.email == address and sub.status == "confirmed", address
    assert web.store.count() == 4


# ---- /confirm: a link shows a button, the button confirms ----

def test_opening_the_confirmation_link_confirms_nothing(web: Web) -> None:
    web.subscribe("scanned@example.org")
    link = web.confirm_link()
    for _ in range(3):  # Safe Links, Proofpoint, Mimecast: GET (and HEAD) the link, more than once
        shown = web.client.get(link)
        assert shown.status_code == 200 and "Confirm my subscription" in shown.text
        web.client.head(link)
    sub = web.store.find("scanned@example.org")
    assert sub is not None and sub.status == "pending"
    assert len(web.mail.received) == 1, "no welcome mail before the click"
    refused = web.client.post(link, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    done = web.client.post(link)
    assert done.status_code == 200 and "You're subscribed" in done.text
    sub = web.store.find("scanned@example.org")
    assert sub is not None and sub.status == "confirmed" and sub.confirmed_how == "link"
    assert [r.message["Subject"] for r in web.mail.received][-1].startswith("Welcome")


# ---- settings links expire, and a fresh one comes by mail ----

def settings_link(web: Web, email: str) -> str:
    web.subscribe(email, name="Rae")
    web.confirm()
    sub = web.store.find(email)
    assert sub is not None
    return f"/preferences/{make_token(SECRET, 'preferences', sub.id, now=web.clock[0])}"


def test_a_settings_link_expires_and_the_reader_can_get_a_fresh_one(web: Web) -> None:
    link = settings_link(web, "rae@example.org")
    web.advance(days=59)
    assert "Your newsletter settings" in web.client.get(link).text
    web.advance(days=2)  # 61 days: past [web] preferences_days (60)
    expired = web.client.get(link)
    assert expired.status_code == 410 and "expired" in expired.text and f'action="{link}/renew"' in expired.text
    renamed = web.client.post(link, data={"name": "Forwardee"})
    assert renamed.status_code == 410
    sub = web.store.find("rae@example.org")
    assert sub is not None and sub.name == "Rae", "an expired link changed the settings"

    before = len(web.mail.received)
    answers = [web.client.post(f"{link}/renew", data={"email": typed})
               for typed in ("someone@else.example", "not an address", "RAE@example.org")]
    assert {a.status_code for a in answers} == {200} and len({a.text for a in answers}) == 1
    [fresh] = web.mail.received[before:]
    assert fresh.recipients == ["rae@example.org"] and fresh.message["Subject"].startswith("Your settings link")
    text = fresh.message.get_body(("plain",)).get_content()
    new_link = re.search(r"https://news\.example\.com(/preferences/\S+)", text).group(1)  # type: ignore[union-attr]
    assert "Your newsletter settings" in web.client.get(new_link).text
    web.client.post(f"{link}/renew", data={"email": "rae@example.org"})
    assert len(web.mail.received) == before + 1, "one fresh link per [web] confirm_resend_minutes"


def test_asking_for_fresh_links_is_rate_limited(write_config: Callable[..., Path], mail_server: Any) -> None:
    for web in doors_web(write_config, mail_server, limit=3):
        link = settings_link(web, "rae@example.org")
        web.advance(days=90)
        codes = [web.client.post(f"{link}/renew", data={"email": f"x{i}@example.org"}).status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]


def test_a_forged_or_unsigned_settings_link_gets_no_renewal_form(web: Web) -> None:
    forged = make_token("another-secret-0123456789", "preferences", 1, now=START - timedelta(days=400))
    for path in (f"/preferences/{forged}", "/preferences/garbage"):
        assert web.client.get(path).status_code == 400
        assert web.client.post(f"{path}/renew", data={"email": "a@example.org"}).status_code == 400


def test_a_head_request_on_an_unsubscribe_link_unsubscribes_no_one(web: Web) -> None:
    web.subscribe("kept@example.org")
    web.confirm()
    sub = web.store.find("kept@example.org")
    assert sub is not None
    link = f"/unsubscribe/{make_token(SECRET, 'unsubscribe', sub.id, now=START)}"
    assert web.client.head(link).status_code == 200
    after = web.store.find("kept@example.org")
    assert after is not None and after.status == "confirmed", "HEAD, as link scanners send it, unsubscribed"


def test_the_typed_name_is_shown_to_the_mailbox_owner_before_it_greets_anyone(web: Web) -> None:
    web.subscribe("owner@example.org", name=PHISH)
    link = web.confirm_link()
    shown = web.client.get(link)
    assert 'name="name"' in shown.text and "URGENT: your account is suspended" in shown.text  # in a field, escaped
    done = web.client.post(link, data={"name": ""})  # the owner clears it, then clicks
    assert done.status_code == 200 and "URGENT" not in done.text
    sub = web.store.find("owner@example.org")
    assert sub is not None and sub.status == "confirmed" and sub.name == ""
    welcome = web.mail.received[-1]
    assert welcome.message["Subject"].startswith("Welcome") and b"URGENT" not in welcome.data


def test_removing_an_address_forgets_what_the_limits_kept_of_its_mailbox(web: Web) -> None:
    web.subscribe("vic.tim+news@gmail.com")
    with web.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM rate_events WHERE key = 'victim@gmail.com'").scalar() == 1
    from digest.core.subscriptions import normalise_email

    assert web.store.remove(normalise_email("vic.tim+news@gmail.com")[1]) == "vic.tim+news@gmail.com"
    with web.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM rate_events WHERE key = 'victim@gmail.com'").scalar() == 0
