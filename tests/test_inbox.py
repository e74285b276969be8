"""`digest inbox` against a real Dovecot (Debian's dovecot-imapd, started by
tests/imapserver.py): every kind sorted and acted on, one line per message, handled mail
moved, nothing handled twice across runs, kills, two readers, a lost connection; TLS
verified; wrong credentials and oversized mail are one clear line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ROOT, Run
from imapserver import IMAPServer
from inboxbed import DONE, LATE, READERS, InboxBed, delayed, fixture, issue_id_of, make_bed, question

from digest.core.errors import InboxError

pytestmark = pytest.mark.slow

ORDER = ["gmail_bounce.eml", "outlook_bounce.eml", "yahoo_bounce.eml", "postfix_bounce.eml", "exim_bounce.eml",
         "qmail_bounce.eml", "exim_delayed.eml", "postfix_delayed.eml", "arf_complaint.eml", "unsubscribe.eml",
         "auto_submitted.eml", "out_of_office.eml", "verp_garbled.eml", "forged_dsn.eml", "question.eml",
         "broken_mime.eml", "unknown_charset.eml"]


@pytest.fixture
def bed(write_config: Callable[..., Path], dovecot: IMAPServer) -> Iterator[InboxBed]:
    made = make_bed(write_config, dovecot)
    yield made
    made.store.close()


@pytest.fixture
def env(bed: InboxBed, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in bed.env.items():
        monkeypatch.setenv(key, value)
    return bed.env


def uid_of(line: str) -> int:
    m = re.match(r"#(\d+) ", line)
    assert m, line
    return int(m.group(1))


def message_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("#")]


def test_digest_inbox_sorts_each_kind_acts_once_and_moves_it(bed: InboxBed, env: dict[str, str],
                                                             run_cli: Callable[..., Run]) -> None:
    bed.append(*(fixture(name) for name in ORDER))
    result = run_cli("inbox", "--config", bed.path)
    assert result.code == 0, result.err
    lines = message_lines(result.out)
    assert [uid_of(line) for line in lines] == list(range(1, len(ORDER) + 1))
    said = dict(zip(ORDER, lines, strict=True))
    for name in ORDER[:6]:
        n = ORDER.index(name) + 1
        assert said[name].startswith(f"#{n} bounce (") and said[name].endswith(f"subscriber {n} bounced"), said[name]
    assert "via the Message-ID it quotes" in said["gmail_bounce.eml"]
    assert said["exim_delayed.eml"].endswith("subscriber 7: 1 of 3 issues in a row came back")
    assert said["postfix_delayed.eml"].endswith("subscriber 7: 1 of 3 issues in a row came back")  # same issue: once
    assert said["arf_complaint.eml"].endswith("subscriber 8 unsubscribed (complaint)")
    assert said["unsubscribe.eml"].endswith("subscriber 9 unsubscribed (mail)")
    assert said["auto_submitted.eml"] == "#11 auto-reply (Auto-Submitted: auto-replied): ignored, not answered"
    assert "out-of-office reply to our newsletter" in said["out_of_office.eml"]
    assert said["verp_garbled.eml"].endswith("5.1.1 via its VERP address; subscriber 12 bounced")
    assert said["forged_dsn.eml"].endswith("5.1.1 quotes a Message-ID in our form that we never sent: nothing changed")
    # Anything else is a reader's question (no SMTP server here: the acknowledgement cannot go).
    assert re.search(r"unsorted \(.*\): question \d+ \(mail\), not acknowledged \(SMTP ", said["question.eml"])
    for name in ("broken_mime.eml", "unknown_charset.eml"):
        assert " unsorted (" in said[name] and (": question " in said[name] or "kept unsorted" in said[name]), said[name]
    assert "Traceback" not in result.out + result.err
    assert f"Read INBOX on 127.0.0.1: {len(ORDER)} handled" in result.out
    statuses = {email: bed.status(i + 1) for i, email in enumerate(READERS)}
    assert [statuses[e] for e in READERS] == ["bounced"] * 6 + ["confirmed", "unsubscribed", "unsubscribed",
                                                                "confirmed", "confirmed", "bounced"]
    assert bed.store.find(LATE) is not None and bed.store.find(LATE).status == "confirmed"  # type: ignore[union-attr]
    sub9 = bed.store.get(9)
    assert sub9 is not None and sub9.unsubscribed_how == "mail"
    assert bed.count("INBOX") == 0 and bed.count(DONE) == len(ORDER)
    # a second read handles nothing again
    again = run_cli("inbox", "--config", bed.path)
    assert again.code == 0 and message_lines(again.out) == [] and "0 handled, 0 moved" in again.out
    assert len(bed.handled()) == len(ORDER)


def test_status_shows_the_inbox(bed: InboxBed, env: dict[str, str], run_cli: Callable[..., Run]) -> None:
    before = run_cli("status", "--config", bed.path)
    assert "Inbox: INBOX on 127.0.0.1, not read yet" in before.out
    bed.append(fixture("gmail_bounce.eml"), fixture("unsubscribe.eml"), fixture("question.eml"), fixture("arf_complaint.eml"))
    assert run_cli("inbox", "--config", bed.path).code == 0
    line = next(x for x in run_cli("status", "--config", bed.path).out.splitlines() if x.startswith("Inbox:"))
    assert re.match(r"Inbox: INBOX on 127\.0\.0\.1, last read \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T "
                    r"\(4 handled, 4 moved to Digest Done\); "
                    r"messages handled: 1 bounce, 1 complaint, 1 unsorted, 1 unsubscribe; "
                    r"last 7 days by mail: 1 bounced, 2 unsubscribed$", line), line


def test_without_an_inbox_configured_it_says_which_key(write_config: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    result = run_cli("inbox", "--config", write_config())
    assert result.code == 3 and result.out == ""
    assert re.fullmatch(r"Error: .*config\.toml: \[inbox\] host is empty: set \[inbox\] host, username and password_env "
                        r"to read the mail that comes back\n", result.err)
    assert "Inbox: not set up" in run_cli("status", "--config", write_config()).out


def test_a_wrong_password_is_one_error_line_with_its_exit_code(bed: InboxBed, env: dict[str, str],
                                                              run_cli: Callable[..., Run],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "not-the-password")
    result = run_cli("inbox", "--config", bed.path)
    assert result.code == InboxError.exit_code == 9
    assert result.err.count("\n") == 1 and result.out == ""
    assert re.fullmatch(rf"Error: IMAP 127\.0\.0\.1:{bed.server.imaps_port}: login refused for '{bed.user}': "
                        r".*Authentication failed.* \(check \[inbox\] username and the password in DIGEST_IMAP_PASSWORD\)\n",
                        result.err), result.err
    monkeypatch.delenv("DIGEST_IMAP_PASSWORD")
    result = run_cli("inbox", "--config", bed.path)
    assert result.code == 9 and result.err == (f"Error: IMAP 127.0.0.1:{bed.server.imaps_port}: no password: "
                                               "set the environment variable DIGEST_IMAP_PASSWORD\n")


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_is_verified_an_untrusted_certificate_is_refused(write_config: Callable[..., Path], dovecot: IMAPServer,
                                                             security: str, run_cli: Callable[..., Run],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    untrusted = make_bed(write_config, dovecot, security=security, ca=False)
    for key, value in untrusted.env.items():
        monkeypatch.setenv(key, value)
    untrusted.append(question(1))
    result = run_cli("inbox", "--config", untrusted.path)
    assert result.code == 9 and result.err.count("\n") == 1
    assert "TLS certificate not trusted: unable to get local issuer certificate" in result.err
    assert "set [inbox] ca_file" in result.err
    assert untrusted.count("INBOX") == 1 and untrusted.handled() == []
    untrusted.store.close()
    trusted = make_bed(write_config, dovecot, security=security, ca=True)
    trusted.append(question(2))
    assert len(trusted.read().lines) == 1 and trusted.count(DONE) == 1
    trusted.store.close()


def test_a_message_over_the_size_cap_is_left_unread_and_reported_once(write_config: Callable[..., Path],
                                                                      dovecot: IMAPServer) -> None:
    bed = make_bed(write_config, dovecot, extra_inbox="max_message_bytes = 10000\n")
    try:
        bed.append(question(1, size=30_000), question(2))
        report = bed.read()
        assert len(report.lines) == 2
        assert re.fullmatch(r"#1 too-large: 30,\d{3} bytes, over \[inbox\] max_message_bytes \(10,000\): "
                            r"left in INBOX, unread; from Reader 1 <reader1@example\.org>", report.lines[0]), report.lines[0]
        assert bed.count("INBOX") == 1 and bed.count(DONE) == 1
        with bed.mailbox() as box:
            (left,) = list(box.fetch(headers_only=True, mark_seen=False))
            assert "\\Seen" not in left.flags
        assert bed.read().lines == []  # reported once
        assert bed.count("INBOX") == 1
    finally:
        bed.store.close()


def test_five_hundred_messages_are_read_in_batches(bed: InboxBed) -> None:
    bed.append(*(question(n) if n % 2 else delayed(n) for n in range(500)))
    report = bed.read()
    assert report.handled == 500 and report.moved == 500 and report.batches == 5
    assert report.kinds == {"unsorted": 250, "bounce": 250}
    assert bed.count("INBOX") == 0 and bed.count(DONE) == 500
    assert len({mid for _, _, mid in bed.handled()}) == 500
    assert len(bed.returns()) == 250  # one count per delay notice, none twice
    assert bed.read().handled == 0


def _cli(bed: InboxBed) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "digest", "inbox", "--config", str(bed.path)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **bed.env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})


def _all_handled_once(bed: InboxBed, n: int, delays: int) -> None:
    handled = bed.handled()
    assert len(handled) == n and len({mid for _, _, mid in handled}) == n
    assert len(bed.returns()) == delays and len({row for row, _, _ in bed.returns()}) == delays
    assert bed.count("INBOX") == 0 and bed.count(DONE) == n


def test_a_read_killed_mid_way_is_finished_by_the_next_and_nothing_is_handled_twice(bed: InboxBed) -> None:
    n = 200
    bed.append(*(question(i) if i % 2 else delayed(i) for i in range(n)))
    proc = _cli(bed)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    killed = message_lines(first + rest)
    assert 1 <= len(killed) < n, "the kill came after the read had finished"
    rerun = _cli(bed)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    again = message_lines(out)
    assert not {uid_of(x) for x in killed} & {uid_of(x) for x in again}
    assert len(killed) + len(again) <= n  # one killed between commit and print is handled, not printed twice
    _all_handled_once(bed, n, n // 2)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_bed(request: pytest.FixtureRequest, write_config: Callable[..., Path], dovecot: IMAPServer,
               tmp_path: Path) -> Iterator[InboxBed]:
    url = f"sqlite:///{tmp_path / 'subscribers.db'}" if request.param == "sqlite" else request.getfixturevalue("fresh_postgres")
    made = make_bed(write_config, dovecot, store_url=url)
    yield made
    made.store.close()


def test_two_readers_at_once_split_the_work(shared_bed: InboxBed) -> None:
    bed, n = shared_bed, 300
    bed.append(*(question(i) if i % 2 else delayed(i) for i in range(n)))
    procs = [_cli(bed), _cli(bed)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    a, b = ({uid_of(x) for x in message_lines(out)} for out, _ in outs)
    assert not a & b and a | b == set(range(1, n + 1))
    assert a and b, "one reader did all the work: they did not run at once"
    _all_handled_once(bed, n, n // 2)


class CuttingProxy:
    """A TCP proxy to Dovecot that closes both sides once the server has sent `limit` bytes."""

    def __init__(self, port: int, limit: int) -> None:
        self.target, self.limit = port, limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            sent = [0]
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, sent), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counted: list[int] | None) -> None:
        with closing(src), closing(dst):
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if counted is not None:
                    counted[0] += len(data)
                    if counted[0] > self.limit:
                        dst.sendall(data[: max(0, len(data) - (counted[0] - self.limit))])
                        for sock in (src, dst):
                            sock.shutdown(socket.SHUT_RDWR)
                        return
                try:
                    dst.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self.listener.close()


def test_a_connection_lost_mid_read_is_one_line_and_the_next_read_finishes(bed: InboxBed, env: dict[str, str],
                                                                          run_cli: Callable[..., Run]) -> None:
    n = 250
    bed.append(*(question(i, size=2000) if i % 2 else delayed(i) for i in range(n)))
    proxy = CuttingProxy(bed.server.imaps_port, limit=300_000)
    try:
        bed.path.write_text(bed.path.read_text().replace(f"port = {bed.server.imaps_port}", f"port = {proxy.port}"))
        result = run_cli("inbox", "--config", bed.path)
    finally:
        proxy.close()
    assert result.code == 9
    assert re.fullmatch(rf"Error: IMAP 127\.0\.0\.1:{proxy.port}: the connection was lost while (reading|moving) .* "
                        r"\(nothing is lost: run digest inbox again\)\n", result.err), result.err
    cut_short = message_lines(result.out)
    assert 0 < len(cut_short) < n
    bed.path.write_text(bed.path.read_text().replace(f"port = {proxy.port}", f"port = {bed.server.imaps_port}"))
    again = run_cli("inbox", "--config", bed.path)
    assert again.code == 0, again.err
    assert not {uid_of(x) for x in cut_short} & {uid_of(x) for x in message_lines(again.out)}
    _all_handled_once(bed, n, n // 2)
    status = run_cli("status", "--config", bed.path).out
    assert f"({n - len(cut_short)} handled" in status


def test_serve_reads_the_inbox_every_poll_minutes(bed: InboxBed) -> None:
    from browser import digest_process
    from mailserver import free_port

    bed.append(question(1), fixture("unsubscribe.eml"))
    port = free_port()
    with digest_process("serve", "--config", str(bed.path), "--port", str(port), env=bed.env,
                        health=f"http://127.0.0.1:{port}/healthz") as proc:
        deadline = time.monotonic() + 30
        while bed.count(DONE) < 2:
            assert time.monotonic() < deadline, "serve did not read the inbox"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert "inbox read every 10 min" in out
    assert "#2 unsubscribe (mail to unsubscribe@example.com): from subscriber 9 via its signed unsubscribe token; subscriber 9 unsubscribed (mail)" in out
    assert "inbox INBOX: 2 handled (1 unsorted, 1 unsubscribe), 2 moved to Digest Done" in out


def test_the_serve_scheduler_reads_again_every_interval_one_read_at_a_time() -> None:
    from digest.adapters.scheduler import WeeklySender
    from digest.core.config import ScheduleConfig

    runs: list[float] = []
    running = threading.Lock()
    overlapped = threading.Event()

    def read() -> None:
        if not running.acquire(blocking=False):
            overlapped.set()
            return
        try:
            runs.append(time.monotonic())
            time.sleep(0.5)  # longer than the interval: the next run must wait, not overlap
        finally:
            running.release()

    sender = WeeklySender(ScheduleConfig(), lambda: None)
    sender.read_inbox_every(0.2 / 60, read)
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while len(runs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sender.next_run_time() is not None  # the weekly send is still scheduled beside it
    finally:
        sender.shutdown()
    assert len(runs) >= 3 and not overlapped.is_set()


@pytest.mark.parametrize(("change", "error"), [
    ("folder", r"cannot open the folder 'Nope': .* \(check \[inbox\] folder\)"),
    ("refused", r"cannot connect: Connection refused \(check \[inbox\] host, port and security\)"),
    ("plain to tls", r"no answer within 1 s while connecting \(check \[inbox\] host, port and security\)"),
    ("tls to plain", r"TLS failed: .* \(check \[inbox\] security and port: 993 is \"ssl\", 143 \"starttls\"\)"),
])
def test_a_wrong_folder_port_or_security_is_one_line_naming_the_keys(bed: InboxBed, env: dict[str, str], change: str,
                                                                    error: str, run_cli: Callable[..., Run]) -> None:
    text = bed.path.read_text().replace("timeout_seconds = 10", "timeout_seconds = 1")
    port = f"port = {bed.server.imaps_port}"
    if change == "folder":
        text = text.replace(f'done_folder = "{DONE}"', f'done_folder = "{DONE}"\nfolder = "Nope"')
    elif change == "refused":
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            text = text.replace(port, f"port = {sock.getsockname()[1]}")
    elif change == "plain to tls":  # STARTTLS waits for a greeting the implicit-TLS port never sends
        text = text.replace('security = "ssl"', 'security = "starttls"')
    else:  # a TLS handshake against the plain port
        text = text.replace(port, f"port = {bed.server.imap_port}")
    bed.path.write_text(text)
    result = run_cli("inbox", "--config", bed.path)
    assert result.code == 9 and result.out == "" and result.err.count("\n") == 1
    assert re.fullmatch(r"Error: IMAP 127\.0\.0\.1:\d+: " + error + "\n", result.err), result.err


def test_the_same_message_put_back_under_a_new_uid_is_not_handled_twice(bed: InboxBed) -> None:
    bed.append(fixture("unsubscribe.eml"))
    assert bed.read().lines == ["#1 unsubscribe (mail to unsubscribe@example.com): from subscriber 9 via its signed unsubscribe token; "
                                "subscriber 9 unsubscribed (mail)"]
    bed.append(fixture("unsubscribe.eml"))  # moved back by hand, or a new UIDVALIDITY: same Message-ID
    assert bed.read().lines == ["#2 unsubscribe (mail to unsubscribe@example.com): handled before under another UID: "
                                "nothing done"]
    assert len(bed.returns()) == 1 and bed.count("INBOX") == 0 and bed.count(DONE) == 2


def test_a_not_spam_report_unsubscribes_no_one(bed: InboxBed) -> None:
    bed.append(fixture("arf_complaint.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam"))
    assert bed.read().lines == ["#1 complaint (ARF not-spam report): not a complaint about our mail: nothing to do"]
    assert bed.status(8) == "confirmed" and bed.returns() == []


def test_a_mail_whose_headers_the_email_package_refuses_stops_nothing(bed: InboxBed) -> None:
    """A From with an encoded CR/LF made the Contact-form parser raise: every read stopped
    at that message, and the unsubscribe behind it was never handled."""
    poison = (b"From: =?utf-8?q?Eve=0D=0ABcc:_x@evil.example?= <eve@example.net>\r\nTo: questions@example.com\r\n"
              b"Subject: Message from a reader\r\nMessage-ID: <poison-1@example.net>\r\n\r\nName: Eve\r\n"
              b"Email: eve@example.net\r\nMessage: a question\r\n")
    mangled_to = (b"From: reader@example.org\r\nTo: =?utf-8?b?AAAA?= <\r\nSubject: A question\r\n"
                  b"Message-ID: <poison-2@example.org>\r\n\r\nHow do I ask for a raise?\r\n")
    bed.append(poison, mangled_to, fixture("unsubscribe.eml"))
    lines = bed.read().lines
    assert len(lines) == 3 and lines[0].startswith("#1 unsorted") and lines[1].startswith("#2 unsorted")
    assert "subscriber 9 unsubscribed" in lines[2]
    assert bed.status(9) == "unsubscribed" and bed.count("INBOX") == 0


def test_whatever_the_questions_loop_trips_on_the_read_goes_on(bed: InboxBed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three parser crashes reached read_inbox through the questions hook, each stopping every
    later read at its message; the next one the email package finds stays one message's problem."""
    import digest.jobs.inbox as inbox

    def trips(*args: object, **kw: object) -> str:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(inbox, "take_mailed_question", trips)
    bed.append(question(1), fixture("unsubscribe.eml"))
    lines = bed.read().lines
    assert lines[0].startswith("#1 unsorted") and "RecursionError" in lines[0] and lines[0].endswith("kept unsorted")
    assert "subscriber 9 unsubscribed" in lines[1] and bed.count("INBOX") == 0
    monkeypatch.undo()
    assert bed.read().lines == []  # handled: never read again, so never acknowledged later


def test_a_complaint_about_an_acknowledgement_or_a_notice_stops_all_mail_to_its_asker(bed: InboxBed) -> None:
    """Complaints were matched to newsletter deliveries only: an asker who marked our
    acknowledgement as spam still got the answer notice (never mail at all to an
    address that complained). The report quotes our Message-ID; its To is redacted."""
    from digest.adapters.questions import QuestionStore
    from digest.core.answers import AnswerLink
    from digest.core.message import acknowledgement_message_id
    from digest.core.models import Post
    from digest.core.questions import new_question

    qs = QuestionStore(bed.store)
    now = datetime.now(UTC)
    acked, _ = qs.record(new_question(email="acked@yahoo.com", name="", text="One?", source="web"), now)
    assert qs.claim_acknowledgement(acked, now, timedelta(hours=24))
    told, _ = qs.record(new_question(email="told@yahoo.com", name="", text="Two?", source="web"), now)
    qs.move(told.id, "accept", now)
    post = Post(id="p1", title="Answer", link="https://blog.example.com/1.html", published=now, updated=None)
    qs.mark_answered([AnswerLink(told.id, post, "label")], now, lambda i: f"<answer.{i}.abcdef012345@example.com>")
    arf = fixture("arf_complaint.eml")
    acked_id = acknowledgement_message_id("example.com", acked.id, qs.require(acked.id).dup_key)  # as its mail carried it
    bed.append(arf.replace(issue_id_of(8).encode(), acked_id.encode())
                  .replace(b"<1700813702.98765.arf@", b"<ack-report@"),
               arf.replace(issue_id_of(8).encode(), f"<answer.{told.id}.abcdef012345@example.com>".encode())
                  .replace(b"<1700813702.98765.arf@", b"<answer-report@"))
    bed.read()
    assert qs.blocked("acked@yahoo.com") == qs.blocked("told@yahoo.com") == "the address complained (marked our mail as spam)"
    assert bed.status(8) == "confirmed"  # the subscriber the fixture is about otherwise: untouched
