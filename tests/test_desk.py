"""The author's desk without a browser: [author] keys, the proof, hold / approve / note,
the weekly send as the author decided, and the report; a real SQLite store, feed files
and a real SMTP server (aiosmtpd), at clocks the tests choose."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dkim
import pytest
from feedgen import Entry, atom
from sending import START, Bed, make_bed
from test_send_lint import dkim_key

from digest.adapters.store import Store
from digest.core.config import load_config, read_config
from digest.core.errors import ConfigError
from digest.core.models import Consent
from digest.core.questions import new_question
from digest.jobs import author_mail, desk

AUTHOR = "author@example.com"
SLOT = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)  # mon 07:00 America/New_York, the week after START
SHIPPED = Path(__file__).resolve().parent.parent / "config.toml"


def author_section(email: str = AUTHOR, approval: str = "auto", report: bool = True) -> str:
    return f'\n[author]\nemail = "{email}"\napproval = "{approval}"\nreport = {"true" if report else "false"}\n'


def posts_feed(tmp_path: Path, *entries: Entry, name: str = "feed.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(atom(list(entries or (Entry(1, "Juggling two offers", labels=["Salary & Offers"]),
                                            Entry(2, "Gaps in a resume", labels=["Resumes"])))))
    return path


def author_bed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path, **author: Any) -> Bed:
    bed = make_bed(write_config, mail_server, feed=posts_feed(tmp_path), first_issue_days=30,
                   extra=author_section(**author))
    bed.clock[0] = SLOT - timedelta(hours=6)
    return bed


def desk_bed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path, *, readers: int = 0,
             **author: Any) -> Iterator[Bed]:
    """The desk test files' `bed` fixture: author_bed with `readers` readers, closed after."""
    b = author_bed(write_config, mail_server, tmp_path, **author)
    if readers:
        b.add(readers)
    yield b
    b.store.close()


@pytest.fixture
def bed(write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> Iterator[Bed]:
    yield from desk_bed(write_config, mail_server, tmp_path)


def to(bed: Bed, address: str) -> list[Any]:
    return [m for m in bed.mail.received if m.recipients == [address]]


def readers(bed: Bed) -> list[Any]:
    return [m for m in bed.mail.received if m.recipients != [AUTHOR]]


def text_of(received: Any) -> str:
    return str(received.message.get_body(("plain",)).get_content())


def html_of(received: Any) -> str:
    return str(received.message.get_body(("html",)).get_content())


# ---- [author] in config.toml ----

def test_the_author_keys_as_shipped_and_their_defaults() -> None:
    data = tomllib.loads(SHIPPED.read_text())
    a = load_config(data, {}, SHIPPED).author
    assert (a.email, a.approval, a.proof_hours, a.report, a.questions_digest) == ("", "auto", 24.0, True, "daily")
    del data["author"]
    assert load_config(data, {}, SHIPPED).author == a


@pytest.mark.parametrize(("key", "value", "message"), [
    ("approval", "yes", r"\[author\] approval has value 'yes', not one of 'auto', 'required'"),
    ("questions_digest", "weekly", r"\[author\] questions_digest has value 'weekly', not one of 'daily', 'off'"),
    ("proof_hours", 0, r"\[author\] proof_hours has value 0, not above 0"),
    ("report", "no", r"\[author\] report has value 'no', not true or false"),
    ("email", "Author <a@example.com>", r"\[author\] email has value 'Author <a@example.com>'"),
    ("colour", "blue", r"\[author\] has unknown key 'colour'"),
])
def test_a_wrong_author_key_is_one_line(key: str, value: object, message: str) -> None:
    data = tomllib.loads(SHIPPED.read_text())
    data["author"][key] = value
    with pytest.raises(ConfigError, match=r"^.*config.toml: " + message) as info:
        load_config(data, {}, SHIPPED)
    assert "\n" not in str(info.value)


# ---- the proof ----

def normalised(text: str) -> str:
    """A copy's text without what differs between two copies: personal links and the greeting's name
    (the author's copy has the desk's links there: its own, that work for the author)."""
    text = re.sub(r"https://news\.example\.com/(unsubscribe/|preferences/|archive/|desk/)\S*", "LINK", text)
    return re.sub(r"^(Hi|Hello)[^,\r\n]*,", "Hi,", text, flags=re.MULTILINE)


def test_the_proof_is_the_issue_as_readers_get_it_signed_with_its_summary_and_three_links(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    key_file, record = dkim_key(tmp_path)
    bed = author_bed(write_config, mail_server, tmp_path)
    try:
        text = bed.config.path.read_text().replace(
            "max_posts = 20\n", f'max_posts = 20\ndkim_selector = "news"\ndkim_key_file = "{key_file}"\n')
        bed.config.path.write_text(text)
        bed.config = read_config(bed.config.path, {"DIGEST_SECRET": "send-secret-0123456789abcdef"})
        bed.add(3)
        line = desk.proof(bed.config.publication, bed.config.author, bed.wiring(), force=True)
        assert line.startswith("proof of") and AUTHOR in line
        [got] = to(bed, AUTHOR)
        assert readers(bed) == []
        assert got.message["Subject"].startswith("[Proof] The Wise Job Search: ")
        assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: record)
        body = text_of(got)
        for line in ("Posts: 2", "Questions answered: 0", "Your note: (none)", "Readers it will reach: 3"):
            assert line in body
        html = html_of(got)
        links = dict(re.findall(r'<a href="(https://news\.example\.com/desk/do/[^"]+)"[^>]*>([^<]+)</a>', html))
        assert sorted(links.values()) == ["Add a note", "Approve", "Hold"]
        assert "https://news.example.com/desk/issue.html" in body and "/unsubscribe/" not in body
        # Then the issue goes out as proofed: the reader's copy is the proof's, after its summary.
        bed.clock[0] = SLOT + timedelta(seconds=30)
        desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
        reader = readers(bed)[0]
        assert normalised(text_of(reader)) in normalised(body)
        assert got.message["Subject"] == "[Proof] " + reader.message["Subject"]
        assert dkim.verify(to(bed, AUTHOR)[-1].data, dnsfunc=lambda name, timeout=5: record)  # the report too
    finally:
        bed.store.close()


def test_the_scheduler_s_proof_goes_once_within_proof_hours_and_again_after_a_change(bed: Bed) -> None:
    bed.add(1)
    bed.clock[0] = SLOT - timedelta(hours=30)
    assert desk.proof(bed.config.publication, bed.config.author, bed.wiring()) == "" and to(bed, AUTHOR) == []
    bed.clock[0] = SLOT - timedelta(hours=20)
    assert desk.proof(bed.config.publication, bed.config.author, bed.wiring()).startswith("proof of")
    assert desk.proof(bed.config.publication, bed.config.author, bed.wiring()) == ""
    assert len(to(bed, AUTHOR)) == 1
    bed.advance(hours=1)
    assert "held" in desk.hold(bed.config.publication, bed.config.author, bed.wiring(), "wrong post")
    proofs = to(bed, AUTHOR)
    assert len(proofs) == 2 and "Held because: wrong post" in text_of(proofs[1])
    assert desk.proof(bed.config.publication, bed.config.author, bed.wiring()) == ""


def test_a_proof_killed_mid_send_goes_at_most_twice(bed: Bed) -> None:
    bed.add(1)
    wiring = bed.wiring()
    slot = SLOT
    decision = wiring.author.decide(slot, bed.now())
    assert wiring.author.claim_proof(slot, decision.version, bed.now())  # the first try, killed before it was marked
    assert desk.proof(bed.config.publication, bed.config.author, wiring).startswith("proof of")  # the second try goes ...
    assert desk.proof(bed.config.publication, bed.config.author, wiring) == ""                    # ... and no third
    assert len(to(bed, AUTHOR)) == 1


# ---- hold, approve, the note ----

def test_a_held_issue_is_not_sent_and_its_posts_roll_into_the_next(bed: Bed, tmp_path: Path) -> None:
    bed.add(2)
    desk.hold(bed.config.publication, bed.config.author, bed.wiring(), "not this week")
    bed.clock[0] = SLOT + timedelta(seconds=30)
    line = desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    assert line.startswith("not sent:") and "held" in line
    assert readers(bed) == [] and bed.ledger.last_issue() is None
    told = to(bed, AUTHOR)[-1]
    assert told.message["Subject"] == "Not sent: this week's issue" and "you held it" in text_of(told)
    bed.clock[0] = SLOT + timedelta(hours=bed.config.schedule.max_late_hours, minutes=1)
    assert "approved late" not in desk.approve(bed.config.publication, bed.config.author, bed.wiring())  # too late: it waits for the next slot
    assert readers(bed) == []
    # A week on, a third post: the next issue holds all three.
    posts_feed(tmp_path, Entry(1, "Juggling two offers", labels=["Salary & Offers"]),
               Entry(2, "Gaps in a resume", labels=["Resumes"]),
               Entry(3, "Thank-you notes", labels=["Interviewing"], published="2026-12-03T08:00:00.000-05:00"))
    bed.clock[0] = SLOT + timedelta(days=7, seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    assert len(readers(bed)) == 2
    body = text_of(readers(bed)[0])
    assert all(title in body for title in ("Juggling two offers", "Gaps in a resume", "Thank-you notes"))


def test_a_held_slot_still_finishes_an_issue_a_crash_left_unsent(bed: Bed) -> None:
    from digest.core.models import Post

    bed.add(2)
    old = Post("old", "Last week's post", "https://blog.example.com/old", START, START)
    bed.ledger.create_issue(key="interrupted", now=START, cutoff=START, subject="Last week", posts=[old], html="",
                            text="", domain="example.com", state=None)
    desk.hold(bed.config.publication, bed.config.author, bed.wiring())
    bed.clock[0] = SLOT + timedelta(seconds=30)
    line = desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    assert line.startswith("not sent:") and "issue 1 resumed: 2 sent" in line
    assert [m.message["Subject"] for m in readers(bed)] == ["The Wise Job Search: Last week's post"] * 2
    assert bed.ledger.last_issue().id == 1  # type: ignore[union-attr]  # no new issue: this week's is held


def test_required_approval_an_unapproved_issue_waits_and_a_late_approval_sends_it_at_once(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    bed = author_bed(write_config, mail_server, tmp_path, approval="required")
    try:
        bed.add(2)
        bed.clock[0] = SLOT + timedelta(seconds=30)
        assert "unapproved" in desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
        assert readers(bed) == []
        assert "was not approved" in text_of(to(bed, AUTHOR)[-1])
        bed.clock[0] = SLOT + timedelta(hours=3)
        line = desk.approve(bed.config.publication, bed.config.author, bed.wiring())
        assert line.startswith("approved late:")
        assert len(readers(bed)) == 2 and bed.ledger.last_issue() is not None
        assert to(bed, AUTHOR)[-1].message["Subject"] == "Report: issue 1 sent"
    finally:
        bed.store.close()


def test_a_held_issue_approved_within_max_late_hours_goes_at_once(bed: Bed) -> None:
    bed.add(1)
    desk.hold(bed.config.publication, bed.config.author, bed.wiring())
    bed.clock[0] = SLOT + timedelta(seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    assert readers(bed) == []
    bed.advance(hours=1)
    assert desk.approve(bed.config.publication, bed.config.author, bed.wiring()).startswith("approved late: issue 1: 1 sent")
    assert len(readers(bed)) == 1


def test_required_approval_given_before_the_slot_lets_the_issue_go(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    bed = author_bed(write_config, mail_server, tmp_path, approval="required")
    try:
        bed.add(1)
        assert "approved" in desk.approve(bed.config.publication, bed.config.author, bed.wiring())
        bed.clock[0] = SLOT + timedelta(seconds=30)
        desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
        assert len(readers(bed)) == 1
    finally:
        bed.store.close()


def test_a_note_from_the_desk_goes_into_the_sent_issue_and_a_new_proof_follows(bed: Bed) -> None:
    bed.add(1)
    desk.set_note(bed.config.publication, bed.config.author, bed.wiring(), "Back from **holiday**: <script>x</script>thanks for waiting.")
    [proof] = to(bed, AUTHOR)
    assert "Back from" in text_of(proof) and "<strong>holiday</strong>" in html_of(proof)
    bed.clock[0] = SLOT + timedelta(seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
    html = html_of(readers(bed)[0])
    assert "<strong>holiday</strong>" in html and "<script>" not in html


def test_with_approval_auto_and_the_author_doing_nothing_readers_see_no_change(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path) -> None:
    """The gated weekly send and the plain one send the same mail."""
    copies = []
    for name, section in (("plain", author_section(email="")), ("desk", author_section())):
        folder = tmp_path / name
        folder.mkdir()
        path = write_config(posts_feed(folder), smtp_port=mail_server.port, first_issue_days=30, extra=section,
                            name=f"{name}.toml")
        path.write_text(path.read_text().replace(str(tmp_path / "subscribers.db"), str(folder / "subscribers.db")))
        config = read_config(path, {"DIGEST_SECRET": "send-secret-0123456789abcdef"})
        b = Bed(config, Store.open(config.store.url), mail_server, [SLOT + timedelta(seconds=30)])
        try:
            b.add(1)
            before = len(mail_server.received)
            desk.gated_send(b.config.publication, b.config.author, b.wiring())
            copies.append([m for m in mail_server.received[before:] if m.recipients != [AUTHOR]])
        finally:
            b.store.close()
    plain, gated = copies
    assert len(plain) == len(gated) == 1
    assert plain[0].message["Subject"] == gated[0].message["Subject"]
    assert normalised(text_of(plain[0])) == normalised(text_of(gated[0]))


# ---- the report ----

def test_the_report_gives_the_counts_once_per_issue(bed: Bed) -> None:
    ids = bed.add(4)
    wiring = bed.wiring()
    bed.clock[0] = SLOT - timedelta(hours=1)
    bed.store.unsubscribe(ids[3], how="link", now=bed.now())
    from digest.adapters.choices import Choices

    Choices(bed.store).pause(ids[2], weeks=None, how="web", now=bed.now())  # "I got the job!": no issues meanwhile
    bed.store.add("late@example.com", "late@example.com", "", (), confirmed=True, now=bed.now(),
                           consent=Consent(bed.now(), "web"))
    wiring.questions.record(new_question(email="asker@example.com", name="", text="How do I negotiate?", source="web",
                                         consent_to_quote=False, display_name=""), bed.now())
    bed.mail.handler.inject("RCPT", "550 5.1.1 no such user")  # the first reader's address is gone
    bed.clock[0] = SLOT + timedelta(seconds=30)
    desk.gated_send(bed.config.publication, bed.config.author, wiring)
    [report] = [m for m in to(bed, AUTHOR) if m.message["Subject"].startswith("Report")]
    body = text_of(report)
    for line in ("Delivered: 2", "Deferred: 0", "Failed: 1", "New subscribers: 1", "Unsubscribed by link: 1",
                 "Unsubscribed by mail: 0", "Unsubscribed by complaint: 0", "Bounced: 1", "Questions received: 1",
                 "Questions answered: 0", "Readers who got the job: 1",
                 "In the archive: https://news.example.com/archive/1"):
        assert line in body, line
    assert "reader" not in body and "asker" not in body and "<img" not in html_of(report)  # counts only
    assert author_mail.send_report(bed.config.publication, bed.config.author, wiring, 1) == "the report of issue 1 was sent before"
    assert len([m for m in to(bed, AUTHOR) if m.message["Subject"].startswith("Report")]) == 1


def test_a_report_claimed_before_a_kill_is_not_sent_again(bed: Bed) -> None:
    bed.add(1)
    wiring = bed.wiring()
    bed.clock[0] = SLOT + timedelta(seconds=30)
    wiring.author.claim_mail("report", "1", bed.now())  # a run that claimed the report and died before sending it
    desk.gated_send(bed.config.publication, bed.config.author, wiring)
    assert len(readers(bed)) == 1
    assert [m for m in to(bed, AUTHOR) if m.message["Subject"].startswith("Report")] == []


def test_digest_send_by_hand_reports_too(bed: Bed, run_cli: Callable[..., Any]) -> None:
    bed.add(1)
    run = run_cli("--config", bed.config.path, "send", "--yes", clock=lambda: SLOT + timedelta(seconds=30))
    assert run.code == 0, run.err
    assert [m.message["Subject"] for m in to(bed, AUTHOR)] == ["Report: issue 1 sent"]


# ---- no author ----

def test_with_no_author_email_no_proof_report_or_author_mail(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    bed = author_bed(write_config, mail_server, tmp_path, email="")
    try:
        bed.add(1)
        assert desk.proof(bed.config.publication, bed.config.author, bed.wiring(), force=True) == desk.NO_AUTHOR
        assert desk.hold(bed.config.publication, bed.config.author, bed.wiring()) == desk.NO_AUTHOR
        from digest.jobs.author_questions import mail_questions

        ask(bed, "Is anyone reading?")
        assert mail_questions(bed.config.publication, bed.config.author, bed.wiring()) == ""
        bed.clock[0] = SLOT + timedelta(seconds=30)
        desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
        assert [m.recipients for m in bed.mail.received] == [["reader0@example.com"]]
        run = run_cli("--config", bed.config.path, "proof")
        assert run.code == 0 and "[author] email is empty" in run.out
    finally:
        bed.store.close()


def test_the_cli_holds_and_approves(bed: Bed, run_cli: Callable[..., Any]) -> None:
    bed.add(1)
    clock = bed.now
    run = run_cli("--config", bed.config.path, "hold", "--reason", "typo in a title", clock=clock)
    assert run.code == 0 and "is held" in run.out
    assert bed.wiring().author.decision(SLOT).hold_reason == "typo in a title"
    run = run_cli("--config", bed.config.path, "approve", clock=clock)
    assert run.code == 0 and "is approved" in run.out
    decision = bed.wiring().author.decision(SLOT)
    assert decision.held_at is None and decision.approved_at is not None
    run = run_cli("--config", bed.config.path, "proof", clock=clock)
    assert run.code == 0 and run.out.startswith("proof of")


# ---- the questions mail ----

def ask(bed: Bed, text: str, name: str = "", source: str = "web", email: str = "asker@example.com") -> int:
    q, _ = bed.wiring().questions.record(new_question(email=email, name=name, text=text, source=source,
                                                      consent_to_quote=False, display_name=""), bed.now())
    return q.id


def test_new_questions_reach_the_author_once_a_day_with_links_to_the_desk(bed: Bed) -> None:
    from digest.jobs.author_questions import mail_questions

    first = ask(bed, "How do I explain a gap?", name="Maria Lopez")
    second = ask(bed, "Is a cover letter still needed?", source="mail", email="b@example.com")
    assert mail_questions(bed.config.publication, bed.config.author, bed.wiring()).startswith("questions mail: 2")
    [mail] = to(bed, AUTHOR)
    body = text_of(mail)
    assert "from Maria (via web)" in body and "Lopez" not in body and "asker@example.com" not in body
    assert "from a reader (via mail)" in body and "Is a cover letter still needed?" in body
    html = html_of(mail)
    for qid in (first, second):
        assert f'<a href="https://news.example.com/desk/questions/{qid}">' in html
    assert mail_questions(bed.config.publication, bed.config.author, bed.wiring()) == ""
    bed.advance(hours=1)
    third = ask(bed, "Should I negotiate a first offer?", email="c@example.com")
    assert mail_questions(bed.config.publication, bed.config.author, bed.wiring()) == ""  # today's mail went: it waits for tomorrow
    bed.advance(days=1)
    assert mail_questions(bed.config.publication, bed.config.author, bed.wiring()).startswith("questions mail: 1")
    assert f"Question {third}," in text_of(to(bed, AUTHOR)[-1]) and f"Question {first}," not in text_of(to(bed, AUTHOR)[-1])


def test_with_questions_digest_off_no_questions_mail(write_config: Callable[..., Path], mail_server: Any,
                                                     tmp_path: Path) -> None:
    from digest.jobs.author_questions import mail_questions

    bed = author_bed(write_config, mail_server, tmp_path)
    try:
        bed.config.path.write_text(bed.config.path.read_text() + 'questions_digest = "off"\n')
        bed.config = read_config(bed.config.path, {"DIGEST_SECRET": "send-secret-0123456789abcdef"})
        ask(bed, "Anything?")
        assert mail_questions(bed.config.publication, bed.config.author, bed.wiring()) == "" and to(bed, AUTHOR) == []
    finally:
        bed.store.close()


def test_the_weekly_send_of_digest_serve_logs_the_warnings_digest_send_prints(
        write_config: Callable[..., Path], mail_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`digest send` prints its send's warnings (the CSS premailer dropped, the posts
    max_posts left out); `digest serve` runs the same send on its timer and keeps one line:
    it logs them, the next week's issue from the same template too (the stylesheet is
    parsed once per process: core/inline.py)."""
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "issue.html.j2").write_text('{% extends "default:issue.html.j2" %}{% block style %}{{ super() }}\n'
                                        "p { colr: ; }\n{% endblock %}", encoding="utf-8")
    feed = posts_feed(tmp_path)
    bed = make_bed(write_config, mail_server, feed=feed, first_issue_days=30, max_posts=1,
                   newsletter=f'templates_dir = "{mine}"')
    bed.add(1)
    try:
        for week in range(2):
            bed.clock[0] = START + timedelta(weeks=week)
            day = (datetime(2026, 11, 20) + timedelta(weeks=week)).date().isoformat()
            feed.write_bytes(atom([Entry(10 * week + n, f"Week {week}, post {n}", published=f"{day}T08:00:00.000-05:00")
                                   for n in (1, 2)]))
            caplog.clear()
            line = desk.gated_send(bed.config.publication, bed.config.author, bed.wiring())
            assert line.startswith(f"issue {week + 1}: 1 sent"), line
            logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert any("a CSS rule was dropped" in m and "colr" in m for m in logged), (week, logged)
            assert any("1 post left out by [newsletter] max_posts (1)" in m for m in logged), (week, logged)
    finally:
        bed.store.close()
