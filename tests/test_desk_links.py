"""The proof's Approve / Hold / Add a note pages through Starlette's TestClient: one button,
GET changes nothing, the POST is authorised by the signed link alone; a forged, expired or
cross-site request changes nothing; with no author, 404."""

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

from digest.jobs import desk
from digest.jobs.desk import desk_hooks
from digest.web import create_app


def client_for(bed: Bed) -> TestClient:
    wiring = bed.wiring()
    app = create_app(bed.config, bed.store, send_confirmation=lambda *a: None, clock=bed.now, secret=wiring.secret,
                     desk=desk_hooks(bed.config.publication, bed.config.author, wiring) if bed.config.author.email else None)
    return TestClient(app, base_url="https://news.example.com", follow_redirects=False)


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> Iterator[Bed]:
    yield from desk_bed(write_config, mail_server, tmp_path, readers=2)


def proof_links(bed: Bed) -> dict[str, str]:
    desk.proof(bed.config.publication, bed.config.author, bed.wiring(), force=True)
    html = str(to(bed, AUTHOR)[-1].message.get_body(("html",)).get_content())
    found = re.findall(r'<a href="https://news\.example\.com(/desk/do/[^"]+)"[^>]*>([^<]+)</a>', html)
    return {label: path for path, label in found}


def test_each_link_opens_a_page_with_one_button_and_a_get_changes_nothing(bed: Bed) -> None:
    links = proof_links(bed)
    with client_for(bed) as client:
        for label in ("Approve", "Hold", "Add a note"):
            page = client.get(links[label])
            assert page.status_code == 200
            assert page.text.count("<button") == 1 and 'method="post"' in page.text
    decision = bed.wiring().author.decision(SLOT)
    assert decision.held_at is None and decision.approved_at is None and decision.note == ""


def test_the_hold_button_holds_and_a_new_proof_follows(bed: Bed) -> None:
    links = proof_links(bed)
    with client_for(bed) as client:
        done = client.post(links["Hold"])
    assert done.status_code == 200 and "is held" in done.text
    assert bed.wiring().author.decision(SLOT).held_at is not None
    assert len(to(bed, AUTHOR)) == 2 and "held: it will not go" in to(bed, AUTHOR)[-1].message.get_body(("plain",)).get_content()


def test_the_note_page_saves_the_note_and_approve_approves(bed: Bed) -> None:
    links = proof_links(bed)
    with client_for(bed) as client:
        assert client.post(links["Add a note"], data={"note": "A **short** week."}).status_code == 200
        assert "A **short** week." in client.get(links["Add a note"]).text  # the page shows the note as it stands
        assert client.post(links["Approve"]).status_code == 200
    decision = bed.wiring().author.decision(SLOT)
    assert decision.note == "A **short** week." and decision.approved_at is not None


def test_a_forged_link_changes_nothing(bed: Bed) -> None:
    links = proof_links(bed)
    forged = links["Hold"][:-3] + ("AAA" if not links["Hold"].endswith("AAA") else "BBB")
    other_action = links["Hold"].replace("/desk-hold/", "/desk-approve/")  # a Hold token on the Approve page
    with client_for(bed) as client:
        assert client.get(forged).status_code == 400
        assert client.post(forged).status_code == 400
        assert client.post(other_action).status_code == 400
    assert bed.wiring().author.decision(SLOT).held_at is None
    assert bed.wiring().author.decision(SLOT).approved_at is None


def test_an_expired_link_changes_nothing(bed: Bed) -> None:
    links = proof_links(bed)
    bed.clock[0] = SLOT + timedelta(hours=bed.config.schedule.max_late_hours, minutes=1)
    with client_for(bed) as client:
        assert client.post(links["Hold"]).status_code == 400
    assert bed.wiring().author.decision(SLOT).held_at is None


def test_a_cross_site_post_changes_nothing(bed: Bed) -> None:
    links = proof_links(bed)
    with client_for(bed) as client:
        refused = client.post(links["Hold"], headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert bed.wiring().author.decision(SLOT).held_at is None


def test_with_no_author_email_the_desk_is_not_found(write_config: Callable[..., Path], mail_server: Any,
                                                    tmp_path: Path) -> None:
    bed = author_bed(write_config, mail_server, tmp_path, email="")
    try:
        from digest.core.tokens import make_token

        token = make_token("send-secret-0123456789abcdef", "desk-hold", int(SLOT.timestamp()), now=bed.now())
        with client_for(bed) as client:
            assert client.get("/desk/").status_code == 404
            assert client.get(f"/desk/do/desk-hold/{token}").status_code == 404
            assert client.post(f"/desk/do/desk-hold/{token}").status_code == 404
    finally:
        bed.store.close()


def readers_mailed(bed: Bed) -> list[Any]:
    return [m for m in bed.mail.received if m.recipients != [AUTHOR]]


def test_a_link_of_an_issue_already_sent_decides_nothing_about_the_next_one(bed: Bed) -> None:
    """Within [schedule] max_late_hours of its slot a proof's link still opens (a late
    approval may send a held issue), but once that issue went, its Hold, Approve and Add a
    note must not act on next week's issue, which the author has not seen a proof of."""
    links = proof_links(bed)  # the proof of SLOT's issue
    bed.clock[0] = SLOT + timedelta(seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    assert len(readers_mailed(bed)) == 2  # SLOT's issue went
    bed.clock[0] = SLOT + timedelta(hours=1)
    following = SLOT + timedelta(days=7)
    desk.set_note(bed.config.publication, bed.config.author, bed.wiring(), "Next week's draft")
    with client_for(bed) as client:
        for label, data in (("Hold", {}), ("Approve", {}), ("Add a note", {"note": "Next week's note"})):
            refused = client.post(links[label], data=data)
            assert refused.status_code == 400, label
        shown = client.get(links["Add a note"])  # nor does its page show next week's note
        assert shown.status_code == 400 and "Next week's draft" not in shown.text
    after = bed.wiring().author.decision(following)
    assert after.held_at is None and after.approved_at is None and after.note == "Next week's draft"


def test_the_next_issues_approve_link_never_sends_a_held_issue_of_the_slot_before(bed: Bed) -> None:
    """The approve link of next week's proof approves next week's issue; it does not send,
    at once, the issue held at the slot that just passed (its own proof's Approve does)."""
    desk.hold(bed.config.publication, bed.config.author, bed.wiring())
    held_links = proof_links(bed)  # SLOT's proof, after the hold
    bed.clock[0] = SLOT + timedelta(seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    assert readers_mailed(bed) == []
    bed.clock[0] = SLOT + timedelta(hours=1)
    next_links = proof_links(bed)  # a proof of next week's issue, e.g. `digest proof`
    following = SLOT + timedelta(days=7)
    with client_for(bed) as client:
        done = client.post(next_links["Approve"])
        assert done.status_code == 200 and "approved late" not in done.text
        assert readers_mailed(bed) == []
        assert bed.wiring().author.decision(following).approved_at is not None
        late = client.post(held_links["Approve"])  # the held issue's own link sends it
    assert late.status_code == 200 and "approved late" in late.text
    assert len(readers_mailed(bed)) == 2


def test_an_approve_pressed_just_after_the_slot_before_its_send_approves_that_issue(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    b = author_bed(write_config, mail_server, tmp_path, approval="required")
    try:
        b.add(1)
        links = proof_links(b)
        b.clock[0] = SLOT + timedelta(seconds=10)  # the slot passed; the send has not run yet
        with client_for(b) as client:
            assert client.post(links["Approve"]).status_code == 200
        assert b.wiring().author.decision(SLOT).approved_at is not None
        assert b.wiring().author.decision(SLOT + timedelta(days=7)).approved_at is None
        b.clock[0] = SLOT + timedelta(seconds=30)
        desk.gated_send(b.config.publication, b.config.author, b.wiring())
        assert len(readers_mailed(b)) == 1
    finally:
        b.store.close()
