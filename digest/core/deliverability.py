"""Judge the next issue as a receiving server would: its headers, its size, its links and
images as fetched, the relay as probed, SpamAssassin's report. Pure core: what was built,
fetched or probed comes in as data; no network, no database, no clock, no file writes.

`offline_checks` is the set `digest send` runs before anyone is mailed (and `digest
preview` shows): nothing in it needs the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

from .verdict import Check, ok, problem, warning

GMAIL_CLIP_BYTES = 102_000  # Gmail shows "[Message clipped]" above about 102 KB of HTML
HUGE_IMAGE_BYTES = 1_000_000
REFUSES_ROBOTS = (401, 403, 429)  # a login wall, a bot filter, a rate limit: not proof that the page is gone
SPAM_WARN_SCORE = 2.5  # half SpamAssassin's default threshold: worth a look before it is spam


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: a try-out on this machine, not the world."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- headers and size ----

def judge_headers(message: bytes, from_domain: str, *, mailto: str = "") -> list[Check]:
    """One line per header receivers require of bulk mail (Gmail's and Yahoo's 2024 rules)."""
    head = BytesHeaderParser().parsebytes(message)
    checks: list[Check] = []
    sender = parseaddr(str(head.get("From", "")))[1]
    domain = sender.rpartition("@")[2].lower()
    if not sender:
        checks.append(problem("From", "the message has no From address", "set [newsletter] from"))
    elif domain != from_domain.lower():
        checks.append(problem("From", f"{sender} is not on the checked domain {from_domain}", "set [newsletter] from"))
    else:
        checks.append(ok("From", sender))
    try:
        date = parsedate_to_datetime(str(head.get("Date", "")))
        checks.append(ok("Date", str(head["Date"])) if date else problem("Date", "missing", "report this as a bug"))
    except (TypeError, ValueError):
        checks.append(problem("Date", "missing or unreadable", "report this as a bug"))
    message_id = str(head.get("Message-ID", ""))
    if re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", message_id):
        checks.append(ok("Message-ID", f"one per message, on {message_id.rpartition('@')[2][:-1]}"))
    else:
        checks.append(problem("Message-ID", f"missing or malformed ({message_id!r}); Gmail refuses such mail",
                              "report this as a bug"))
    checks.append(_list_unsubscribe(str(head.get("List-Unsubscribe", "")), mailto))
    post = str(head.get("List-Unsubscribe-Post", "")).strip()
    if post == "List-Unsubscribe=One-Click":
        checks.append(ok("List-Unsubscribe-Post", post))
    else:
        checks.append(problem("List-Unsubscribe-Post", "missing: Gmail and Yahoo ask for one-click unsubscribe",
                              "set [web] base_url to the https address of digest serve"))
    return checks


def _list_unsubscribe(value: str, mailto: str) -> Check:
    name = "List-Unsubscribe"
    links = re.findall(r"<([^<>]+)>", value)
    web = [u for u in links if u.lower().startswith(("http://", "https://"))]
    if not web:
        return problem(name, "no web link to unsubscribe with", "set [web] base_url to the https address of digest serve")
    url = web[0]
    if mailto and not any(u.lower().startswith(f"mailto:{mailto.lower()}") for u in links):
        return problem(name, f"the mailto: {mailto} ([newsletter] unsubscribe_mailto) is missing", "report this as a bug")
    if url.lower().startswith("http://"):
        host = urlsplit(url).hostname or ""
        url = url.rsplit("/", 1)[0] + "/..."  # the token is a made-up reader's: the address is what matters
        fix = "set [web] base_url to an https address: put digest serve behind a proxy with TLS"
        if is_loopback(host):
            return warning(name, f"{url} is plain http on this machine: fine for a try-out, refused by "
                           "Gmail and Yahoo for real readers", fix)
        return problem(name, f"{url} is plain http: Gmail and Yahoo want an https one-click link", fix)
    return ok(name, f"https{' and mailto' if mailto else ''}, one-click")


def judge_size(html_bytes: int) -> Check:
    kb = html_bytes / 1000
    if html_bytes > GMAIL_CLIP_BYTES:
        return warning("size", f"the HTML is {kb:.0f} KB: Gmail clips messages above about 102 KB, hiding the "
                       "unsubscribe link", "lower [newsletter] max_posts or excerpt_chars")
    return ok("size", f"the HTML is {kb:.1f} KB, under Gmail's 102 KB clip")


# ---- links and images ----

class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        elif tag == "img" and values.get("src"):
            self.images.append(values["src"] or "")


def find_links(html: str) -> tuple[list[str], list[str]]:
    """The http(s) links and image addresses of an HTML body, each once, in order."""
    parser = _Links()
    parser.feed(html)
    parser.close()

    def web(urls: list[str]) -> list[str]:
        return list(dict.fromkeys(u.strip() for u in urls if u.strip().lower().startswith(("http://", "https://"))))

    return web(parser.links), web(parser.images)


@dataclass(frozen=True)
class Fetched:
    """What one link or image answered (adapters/links.py)."""

    url: str
    status: int | None = None     # the last answer's HTTP status, redirects followed; None: no answer
    final_url: str = ""
    error: str = ""               # why there was no answer: "no answer within 10 s", "connection refused"
    content_type: str = ""
    size: int | None = None       # bytes, when known (images)
    timed_out: bool = False


def judge_links(results: Sequence[Fetched], personal: frozenset[str] = frozenset()) -> list[Check]:
    """A line for the links that answer, and one for each that does not. `personal` links
    (the reader's unsubscribe and preferences pages, with a made-up reader's token) answer
    when the web app does: its page for a link it cannot read is a 400."""
    checks: list[Check] = []
    good = 0
    for r in results:
        if r.status is not None and (r.status < 400 or (r.url in personal and r.status == 400)):
            good += 1
        elif r.timed_out:
            checks.append(warning("link", f"{r.url} did not answer ({r.error})",
                                  "open it in a browser; if it stays slow, link elsewhere"))
        elif r.status is None:
            checks.append(problem("link", f"{r.url} does not answer: {r.error}", _link_fix(r.url, personal)))
        elif r.status in REFUSES_ROBOTS and r.url not in personal:
            checks.append(warning("link", f"{r.url} answers {r.status} to this check (some sites refuse programs "
                                  "that are not browsers)", "open it in a browser to see that it works"))
        else:
            moved = f" (after redirects, at {r.final_url})" if r.final_url and r.final_url != r.url else ""
            checks.append(problem("link", f"{r.url} answers {r.status}{moved}: a dead link", _link_fix(r.url, personal)))
    if good or not results:
        checks.insert(0, ok("links", f"{good} of {len(results)} links answer"))
    return checks


def _link_fix(url: str, personal: frozenset[str]) -> str:
    if url in personal:
        return "check that digest serve runs at [web] base_url"
    return "correct the link in the post (or the setting in config.toml that holds it)"


def judge_images(results: Sequence[Fetched]) -> list[Check]:
    checks: list[Check] = []
    good = 0
    for r in results:
        if r.status is None:
            level = warning if r.timed_out else problem
            checks.append(level("image", f"{r.url} does not load: {r.error}", "fix or remove the image in the post"))
        elif r.status >= 400:
            checks.append(problem("image", f"{r.url} answers {r.status}: readers see a broken image",
                                  "fix or remove the image in the post"))
        elif r.content_type and not r.content_type.lower().startswith("image/"):
            checks.append(problem("image", f"{r.url} is {r.content_type}, not an image", "fix the image's address"))
        elif r.size is not None and r.size > HUGE_IMAGE_BYTES:
            checks.append(warning("image", f"{r.url} is {r.size / 1_000_000:.1f} MB: slow on a phone",
                                  "upload a smaller version (under 1 MB; Blogger's /s800/ size is plenty)"))
        else:
            good += 1
    if good or not results:
        checks.insert(0, ok("images", f"{good} of {len(results)} images load"))
    return checks


# ---- SpamAssassin ----

@dataclass(frozen=True)
class SpamReport:
    score: float
    required: float
    rules: tuple[tuple[float, str, str], ...]  # (points, rule, description)


def parse_spamassassin(output: str) -> SpamReport | None:
    """The score and rules of `spamassassin -t` output; None when it holds no report."""
    head = re.search(r"Content analysis details:\s*\((-?[\d.]+) points?, (-?[\d.]+) required\)", output)
    if head is None:
        return None
    table = output[head.end():]
    rules = tuple((float(m.group(1)), m.group(2), " ".join(m.group(3).split()))
                  for m in re.finditer(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$", table, re.MULTILINE))
    return SpamReport(float(head.group(1)), float(head.group(2)), rules)


def judge_spam(report: SpamReport | None) -> Check:
    name = "SpamAssassin"
    if report is None:
        return warning(name, "it ran but gave no report", "run spamassassin -L -t < out/issue.eml by hand")
    hits = ", ".join(f"{rule} ({points:+g}: {text})" for points, rule, text in report.rules if points > 0)
    if report.score >= report.required:
        return problem(name, f"score {report.score:g} of {report.required:g}: marked as spam. Rules: {hits}",
                       "change what the rules point at (see each rule's description)")
    if report.score >= SPAM_WARN_SCORE:
        return warning(name, f"score {report.score:g} of {report.required:g}. Rules: {hits}",
                       "change what the rules point at before the score grows")
    return ok(name, f"score {report.score:g} of {report.required:g} (local rules)")
