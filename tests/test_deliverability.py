"""The pure judgement of an issue's headers, size, links and images, SpamAssassin's report
and the relay as probed."""

from __future__ import annotations

import pytest

from digest.core.deliverability import (
    Fetched,
    find_links,
    is_loopback,
    judge_headers,
    judge_images,
    judge_links,
    judge_size,
    judge_spam,
    parse_spamassassin,
)
from digest.core.relay import RelayProbe, judge_relay
from digest.core.verdict import Level

HEAD = ("From: Blog <news@example.com>\r\nTo: a@example.org\r\nDate: Mon, 07 Dec 2026 07:00:00 +0000\r\n"
        "Message-ID: <1.2.abc@example.com>\r\n")


def levels(message: str, **kw: str) -> dict[str, Level]:
    return {c.name: c.level for c in judge_headers(message.encode() + b"\r\nbody\r\n", "example.com", **kw)}


def test_headers_of_a_good_message() -> None:
    good = HEAD + ("List-Unsubscribe: <https://news.example.com/unsubscribe/t>, <mailto:u@example.com?subject=unsubscribe>\r\n"
                   "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    assert set(levels(good, mailto="u@example.com").values()) == {Level.OK}


@pytest.mark.parametrize(("message", "name", "level"), [
    (HEAD + "List-Unsubscribe: <http://news.example.com/u/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
     "List-Unsubscribe", Level.PROBLEM),
    (HEAD + "List-Unsubscribe: <http://127.0.0.1:8000/u/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
     "List-Unsubscribe", Level.WARNING),
    (HEAD + "List-Unsubscribe: <http://localhost:8000/u/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
     "List-Unsubscribe", Level.WARNING),
    (HEAD + "List-Unsubscribe: <https://news.example.com/u/t>\r\n", "List-Unsubscribe-Post", Level.PROBLEM),
    (HEAD + "List-Unsubscribe: <mailto:u@example.com>\r\n", "List-Unsubscribe", Level.PROBLEM),
    (HEAD.replace("news@example.com", "news@gmail.com"), "From", Level.PROBLEM),
    (HEAD.replace("Message-ID: <1.2.abc@example.com>", "Message-ID: 12"), "Message-ID", Level.PROBLEM),
    (HEAD.replace("Date: Mon, 07 Dec 2026 07:00:00 +0000", "Date: soon"), "Date", Level.PROBLEM),
])
def test_header_faults(message: str, name: str, level: Level) -> None:
    assert levels(message)[name] is level


def test_the_configured_mailto_must_be_there() -> None:
    message = HEAD + "List-Unsubscribe: <https://news.example.com/u/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    assert levels(message, mailto="u@example.com")["List-Unsubscribe"] is Level.PROBLEM


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("news.example.com") and not is_loopback("192.0.2.1") and not is_loopback("127.example.com")


def test_size() -> None:
    assert judge_size(101_000).level is Level.OK
    clipped = judge_size(130_000)
    assert clipped.level is Level.WARNING and "Gmail clips" in clipped.finding


def test_find_links_keeps_web_links_once() -> None:
    html = ('<a href="https://a.example/x">1</a><a href="mailto:q@example.com">2</a><a href="https://a.example/x">3</a>'
            '<a href="#top">4</a><img src="https://img.example/p.png"><img src="data:image/png;base64,AA"><a href=" http://b.example/ ">5</a>')
    assert find_links(html) == (["https://a.example/x", "http://b.example/"], ["https://img.example/p.png"])


def test_judge_links() -> None:
    personal = frozenset({"https://n.example/unsubscribe/preview"})
    checks = judge_links([
        Fetched("https://a.example/", 200), Fetched("https://n.example/unsubscribe/preview", 400),
        Fetched("https://a.example/gone", 404, "https://a.example/gone"), Fetched("https://a.example/x", 400),
        Fetched("https://slow.example/", error="no answer within 2 s", timed_out=True),
        Fetched("https://nowhere.example/", error="connection refused"),
        Fetched("https://walled.example/", 403),
    ], personal)
    assert [(c.name, c.level) for c in checks] == [("links", Level.OK), ("link", Level.PROBLEM), ("link", Level.PROBLEM),
                                                   ("link", Level.WARNING), ("link", Level.PROBLEM), ("link", Level.WARNING)]
    assert checks[0].finding == "2 of 7 links answer"
    assert "refuse programs" in checks[-1].finding


def test_judge_images() -> None:
    checks = judge_images([Fetched("https://i/1.png", 200, content_type="image/png", size=50_000),
                           Fetched("https://i/2.png", 200, content_type="image/png", size=3_000_000),
                           Fetched("https://i/3.png", 200, content_type="text/html", size=500),
                           Fetched("https://i/4.png", 404)])
    assert [c.level for c in checks] == [Level.OK, Level.WARNING, Level.PROBLEM, Level.PROBLEM]
    assert "3.0 MB" in checks[1].finding


REPORT = """Content analysis details:   (5.9 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 2.5 URIBL_SAMPLE           Contains a sample URI
                            [URI: example.com]
 3.4 HTML_FONT_LOW_CONTRAST HTML font color similar or identical to
                            background
-0.0 NO_RELAYS              Informational: message was not relayed via SMTP
"""


def test_spamassassin_report() -> None:
    report = parse_spamassassin(REPORT)
    assert report is not None and report.score == 5.9 and report.required == 5.0
    assert [r[1] for r in report.rules] == ["URIBL_SAMPLE", "HTML_FONT_LOW_CONTRAST", "NO_RELAYS"]
    check = judge_spam(report)
    assert check.level is Level.PROBLEM and "HTML_FONT_LOW_CONTRAST (+3.4" in check.finding
    assert "NO_RELAYS" not in check.finding  # only the rules that add points
    low = parse_spamassassin(REPORT.replace("(5.9 points", "(3 points"))
    assert judge_spam(low).level is Level.WARNING
    assert judge_spam(parse_spamassassin(REPORT.replace("(5.9 points", "(-0.3 points"))).level is Level.OK
    assert parse_spamassassin("no report here") is None


def test_relay_judgement() -> None:
    def names(probe: RelayProbe) -> dict[str, Level]:
        return {c.name: c.level for c in judge_relay(probe)}

    assert names(RelayProbe("smtp.example.com", 25, "none", login="ok"))["relay TLS"] is Level.PROBLEM
    assert names(RelayProbe("127.0.0.1", 25, "none"))["relay TLS"] is Level.WARNING
    plain = judge_relay(RelayProbe("smtp.example.com", 25, "none", starttls_offered=True, login="ok"))
    assert 'security = "starttls"' in plain[1].fix
    assert names(RelayProbe("smtp.example.com", 587, "starttls", tls_version="TLSv1.3")) == {
        "relay": Level.OK, "relay TLS": Level.OK, "relay login": Level.WARNING}
    assert names(RelayProbe("smtp.example.com", 587, "starttls", error="no answer within 5 s", stage="connect")) == {
        "relay": Level.PROBLEM}
    bad_cert = names(RelayProbe("smtp.example.com", 587, "starttls", error="TLS certificate not trusted", stage="tls"))
    assert bad_cert == {"relay": Level.OK, "relay TLS": Level.PROBLEM}
    refused = names(RelayProbe("smtp.example.com", 587, "starttls", tls_version="TLSv1.3", login="login refused: 535"))
    assert refused["relay login"] is Level.PROBLEM
