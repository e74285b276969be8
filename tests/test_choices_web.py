"""Readers' choices through the web pages (Starlette's TestClient), on SQLite and PostgreSQL,
with a real SMTP server catching the mails: frequency, pauses, "I got the job!" and coming
back, a new address, the unsubscribe page's alternatives, and coming back after leaving."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from digest.adapters.choices import Choices
from digest.adapters.questions import QuestionStore
from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from digest.core.config import read_config
from digest.core.models import Consent, Subscriber
from digest.core.questions import NewQuestion
from digest.jobs.choices import choice_mailer
from digest.jobs.mail import confirmation_mailer
from digest.web import create_app

SECRET = "choices-secret-0123456789abcdef"
START = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@dataclass
class Site:
    client: TestClient
    store: Store
    mail: Any
    clock: list[datetime]

    def reader(self, email: str, topics: tuple[str, ...] = ()) -> Subscriber:
        sub, _ = self.store.add(email, email, "", topics, confirmed=True, now=START,
                                consent=Consent(at=START, method="cli"))
        return sub

    def prefs(self, sub: Subscriber) -> str:
        url: str = self.client.app.state.links.preferences(sub.id, self.clock[0])  # type: ignore[attr-defined]
        return url.removeprefix("https://news.example.com")

    def unsubscribe_path(self, sub: Subscriber) -> str:
        url: str = self.client.app.state.links.unsubscribe(sub.id, self.clock[0])  # type: ignore[attr-defined]
        return url.removeprefix("https://news.example.com")

    def mails(self, to: str) -> list[Any]:
        return [r.message for r in self.mail.received if to in r.recipients]

    def link_in(self, message: Any, path: str) -> str:
        text = message.get_body(("plain",)).get_content()
        return re.search(rf"https://news\.example\.com(/{path}/\S+)", text).group(1)  # type: ignore[union-attr]


@pytest.fixture
def site(write_config: Callable[..., Path], mail_server: Any, store_url: str) -> Iterator[Site]:
    path = write_config(smtp_port=mail_server.port)
    config = read_config(path, {"DIGEST_SECRET": SECRET})
    config = replace(config, store=replace(config.store, url=store_url))
    store = Store.open(store_url)
    clock = [START]
    wiring = Wiring(config, store=store, clock=lambda: clock[0])
    app = create_app(config, store, send_confirmation=confirmation_mailer(config.publication, wiring),
                     send_choice_mail=choice_mailer(config.publication, wiring), clock=lambda: clock[0])
    with TestClient(app, base_url="https://news.example.com", follow_redirects=False) as client:
        yield Site(client, store, mail_server, clock)
    store.close()


def test_the_preferences_page_sets_monthly_and_back_to_weekly(site: Site) -> None:
    sub = site.reader("ana@example.com")
    page = site.client.get(site.prefs(sub)).text
    assert 'value="monthly"' in page and 'value="weekly" checked' in page
    done = site.client.post(site.prefs(sub), data={"do": "save", "name": "Ana", "frequency": "monthly"})
    assert "one issue a month" in done.text and 'value="monthly" checked' in done.text
    assert site.store.get(sub.id).frequency == "monthly"  # type: ignore[union-attr]
    site.client.post(site.prefs(sub), data={"do": "save", "name": "Ana", "frequency": "weekly"})
    assert site.store.get(sub.id).frequency == "weekly"  # type: ignore[union-attr]
    assert [c.kind for c in Choices(site.store).trail(sub.id)] == ["frequency", "frequency"]


def test_a_pause_of_two_four_or_eight_weeks_and_its_end(site: Site) -> None:
    sub = site.reader("ana@example.com")
    done = site.client.post(site.prefs(sub), data={"do": "pause", "weeks": "4"})
    assert "Paused for 4 weeks" in done.text and "the first after 23 December" in done.text
    assert site.store.get(sub.id).paused_until == START + timedelta(weeks=4)  # type: ignore[union-attr]
    shown = site.client.get(site.prefs(sub)).text
    assert "Paused until 23 December 2026" in shown, shown[shown.find("<h1"):]
    assert "not offered" in site.client.post(site.prefs(sub), data={"do": "pause", "weeks": "3"}).text
    site.client.post(site.prefs(sub), data={"do": "resume"})
    assert site.store.get(sub.id).pause_reason == ""  # type: ignore[union-attr]
    assert site.mail.received == []  # a pause of some weeks mails nothing


def test_i_got_the_job_congratulates_and_its_link_brings_them_back(site: Site) -> None:
    sub = site.reader("ana@example.com")
    done = site.client.post(site.prefs(sub), data={"do": "job"})
    assert "Congratulations on the new job!" in done.text
    site.client.post(site.unsubscribe_path(sub), data={"do": "job"})  # pressed again, elsewhere: no second mail
    [mail] = site.mails("ana@example.com")
    assert mail["Subject"].startswith("Congratulations on the new job!")
    comeback = site.link_in(mail, "comeback")
    site.clock[0] += timedelta(days=200)  # the link never expires
    shown = site.client.get(comeback)
    assert "Start my newsletter again" in shown.text
    assert site.store.get(sub.id).pause_reason == "job"  # type: ignore[union-attr]  # GET changes nothing
    site.client.post(comeback)
    assert site.store.get(sub.id).pause_reason == ""  # type: ignore[union-attr]
    assert Choices(site.store).got_the_job() == 1


def test_a_new_address_moves_only_once_confirmed_and_the_old_one_gets_one_notice(site: Site) -> None:
    sub = site.reader("ana@example.com", topics=("Interviews",))
    Choices(site.store).set_frequency(sub.id, "monthly", how="web", now=START)
    asked, _ = QuestionStore(site.store).record(NewQuestion(
        email="ana@example.com", email_key="ana@example.com", name="", text="How do I negotiate?", source="web",
        consent_to_quote=False, display_name="", dup_key="k1"), START)
    said = site.client.post(site.prefs(sub), data={"do": "address", "email": "ana@new.example"}).text
    assert "We sent a message to ana@new.example" in said
    assert site.store.get(sub.id).email == "ana@example.com"  # type: ignore[union-attr]  # not yet
    [mail] = site.mails("ana@new.example")
    link = site.link_in(mail, "address")
    assert "Move my subscription here" in site.client.get(link).text
    assert site.mails("ana@example.com") == []
    assert "now comes to this address" in site.client.post(link).text
    moved = site.store.get(sub.id)
    assert moved is not None and moved.email == "ana@new.example"
    assert moved.topics == ("Interviews",) and moved.frequency == "monthly" and moved.consent is not None
    moved_question = QuestionStore(site.store).get(asked.id)
    assert moved_question is not None and moved_question.email == "ana@new.example"
    [notice] = site.mails("ana@example.com")
    assert notice["Subject"].startswith("Your subscription to")
    assert "ana@new.example" not in notice.get_body(("plain",)).get_content()
    assert site.client.post(link).status_code == 400  # single use
    assert len(site.mails("ana@example.com")) == 1


def test_a_settings_link_of_the_old_address_stops_working_once_the_subscription_moved(site: Site) -> None:
    """The settings links in the mails of the old address stay in that mailbox (a former
    employer's, a shared one): once the subscription has moved, they must not show the new
    address, nor change anything. The page is the expired link's: the reader, typing the
    new address, gets a fresh link there."""
    sub = site.reader("ana@work.example")
    old_link = site.prefs(sub)
    site.client.post(old_link, data={"do": "address", "email": "ana@home.example"})
    site.clock[0] += timedelta(minutes=1)
    assert "now comes to this address" in site.client.post(site.link_in(site.mails("ana@home.example")[0], "address")).text
    site.clock[0] += timedelta(minutes=1)
    shown = site.client.get(old_link)
    assert shown.status_code == 410 and "ana@home.example" not in shown.text
    refused = site.client.post(old_link, data={"do": "save", "name": "Someone else"})
    assert refused.status_code == 410 and "ana@home.example" not in refused.text
    assert site.store.get(sub.id).name == ""  # type: ignore[union-attr]
    fresh = site.client.get(site.prefs(sub))  # a link made after the move works
    assert fresh.status_code == 200 and "ana@home.example" in fresh.text


def test_an_unsubscribe_link_of_the_old_address_leaves_the_moved_subscription_alone(site: Site) -> None:
    """The old address is no longer on the list: its unsubscribe link (and the one-click POST
    its mail program sends) answers that it is unsubscribed, and changes nothing of the
    subscription that moved away from it; a link of the new address still unsubscribes."""
    sub = site.reader("ana@work.example")
    old_link = site.unsubscribe_path(sub)
    site.client.post(site.prefs(sub), data={"do": "address", "email": "ana@home.example"})
    site.clock[0] += timedelta(minutes=1)
    site.client.post(site.link_in(site.mails("ana@home.example")[0], "address"))
    site.clock[0] += timedelta(minutes=1)
    page = site.client.get(old_link)
    assert page.status_code == 200 and "I got the job!" not in page.text  # no alternatives offered
    one_click = site.client.post(old_link, content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200
    assert site.client.post(old_link).status_code == 200
    assert site.client.post(old_link, data={"do": "job"}).status_code == 200
    after = site.store.get(sub.id)
    assert after is not None and after.status == "confirmed" and after.pause_reason == ""
    assert len(site.mails("ana@home.example")) == 1  # the move link only: no congratulation
    site.client.post(site.unsubscribe_path(sub))
    assert site.store.get(sub.id).status == "unsubscribed"  # type: ignore[union-attr]


def test_an_address_already_on_the_list_is_told_so_and_the_old_one_learns_nothing(site: Site) -> None:
    ana = site.reader("ana@example.com")
    bo = site.reader("bo@example.com")
    Choices(site.store).pause(bo.id, weeks=None, how="web", now=START)  # bo's state is nobody else's business
    taken = site.client.post(site.prefs(ana), data={"do": "address", "email": "bo@example.com"}).text
    free = site.client.post(site.prefs(ana), data={"do": "address", "email": "cy@example.com"}).text
    assert _notice(taken).replace("bo@", "X@") == _notice(free).replace("cy@", "X@")  # the same words either way
    assert "already on our list" in site.mails("bo@example.com")[0].get_body(("plain",)).get_content()
    assert site.store.get(ana.id).email == "ana@example.com"  # type: ignore[union-attr]


def _notice(page: str) -> str:
    return re.search(r'<p class="notice" role="status">(.*?)</p>', page, re.S).group(1)  # type: ignore[union-attr]


def test_the_unsubscribe_page_offers_monthly_and_a_pause_and_one_click_still_unsubscribes(site: Site) -> None:
    ana, bo, cy = (site.reader(f"{n}@example.com") for n in ("ana", "bo", "cy"))
    page = site.client.get(site.unsubscribe_path(ana)).text
    assert "Send me one issue a month" in page and "Pause for 4 weeks" in page and "I got the job!" in page
    kept = site.client.post(site.unsubscribe_path(ana), data={"do": "monthly"})
    assert "still subscribed" in kept.text
    after = site.store.get(ana.id)
    assert after is not None and after.status == "confirmed" and after.frequency == "monthly"
    site.client.post(site.unsubscribe_path(bo), data={"do": "pause", "weeks": "4"})
    assert site.store.get(bo.id).paused_until == START + timedelta(weeks=4)  # type: ignore[union-attr]
    one_click = site.client.post(site.unsubscribe_path(cy), content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200 and site.store.get(cy.id).status == "unsubscribed"  # type: ignore[union-attr]
    site.client.post(site.unsubscribe_path(ana))  # the button itself still unsubscribes
    assert site.store.get(ana.id).status == "unsubscribed"  # type: ignore[union-attr]


def test_an_unsubscribe_link_never_moves_the_subscription_to_another_address(site: Site) -> None:
    """The unsubscribe link never expires (RFC 8058) and rides in every issue's headers; the
    settings link, which may move a subscription, works for [web] preferences_days only, so
    that a newsletter passed on does not hand its new reader the subscription for good. The
    unsubscribe page does what it offers (monthly, a pause, the job), not a new address."""
    ana = site.reader("ana@example.com")
    path = site.unsubscribe_path(ana)
    site.clock[0] += timedelta(days=400)  # long after any settings link has expired
    for form in ({"do": "address", "email": "thief@example.com"}, {"do": "frequency", "frequency": "weekly"}):
        refused = site.client.post(path, data=form)
        assert refused.status_code == 400 and "not offered" in refused.text
    assert site.mails("thief@example.com") == []
    after = site.store.get(ana.id)
    assert after is not None and after.status == "confirmed" and after.new_email == ""
    assert Choices(site.store).trail(ana.id) == []


def test_job_and_resume_pressed_in_turn_mail_the_congratulation_once_per_window(site: Site) -> None:
    """Whoever holds a settings link (a newsletter passed on keeps it for [web]
    preferences_days) could press "I got the job!" and "resume" in turn, each job a mail to
    the subscriber's mailbox from our server. One per [web] confirm_resend_minutes: the
    first mail's link (it never expires) still brings the reader back."""
    sub = site.reader("ana@example.com")
    for _ in range(4):
        assert "Congratulations" in site.client.post(site.prefs(sub), data={"do": "job"}).text
        site.client.post(site.prefs(sub), data={"do": "resume"})
    assert len(site.mails("ana@example.com")) == 1
    site.clock[0] += timedelta(minutes=61)
    site.client.post(site.prefs(sub), data={"do": "job"})
    assert len(site.mails("ana@example.com")) == 2
    assert site.store.get(sub.id).pause_reason == "job"  # type: ignore[union-attr]


def test_coming_back_keeps_the_topics_chosen_before(site: Site) -> None:
    sub = site.reader("ana@example.com", topics=("Interviews", "Offers"))
    site.store.unsubscribe(sub.id, how="web", now=START)
    site.client.post("/subscribe", data={"email": "ana@example.com", "name": "Ana"})
    back = site.store.get(sub.id)
    assert back is not None and back.status == "pending" and back.topics == ("Interviews", "Offers")
    # ticking topics is a new choice, and counts
    site.store.unsubscribe(sub.id, how="web", now=START)
    site.clock[0] += timedelta(hours=2)
    site.client.post("/subscribe", data={"email": "ana@example.com", "topics": ["Resumes"]})
    assert site.store.get(sub.id).topics == ("Resumes",)  # type: ignore[union-attr]


def test_a_choice_link_is_one_button_from_this_site_for_its_own_purpose_and_time(site: Site) -> None:
    """Both links of a choice's mail (a new address, coming back): GET shows the button and
    changes nothing; a POST from another site is refused; a link works only for its own
    purpose; the new address's link only within [web] confirm_hours (48 here)."""
    ana = site.reader("ana@example.com")
    site.client.post(site.prefs(ana), data={"do": "job"})
    comeback = site.link_in(site.mails("ana@example.com")[0], "comeback")
    site.client.post(site.prefs(ana), data={"do": "address", "email": "ana@new.example"})
    address = site.link_in(site.mails("ana@new.example")[0], "address")
    for link in (comeback, address):
        refused = site.client.post(link, headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403 and "cannot be sent from another site" in refused.text
    swapped = [address.replace("/address/", "/comeback/"), comeback.replace("/comeback/", "/address/")]
    assert [site.client.post(link).status_code for link in swapped] == [400, 400]
    now = site.store.get(ana.id)
    assert now is not None and now.pause_reason == "job" and now.email == "ana@example.com"
    site.clock[0] += timedelta(hours=48, minutes=1)
    assert site.client.get(address).status_code == 400 and site.client.post(address).status_code == 400
    assert site.store.get(ana.id).email == "ana@example.com"  # type: ignore[union-attr]
    assert "Welcome back" in site.client.post(comeback).text  # coming back never expires
