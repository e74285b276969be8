"""Will the newsletter land in the inbox? The job of `digest doctor`. Layer 3: looks up DNS,
probes the relay, builds the next issue as `digest preview` does and fetches its links,
through the DoctorParts it is handed (ports.py); the judgement is core's (core/dnsrecords.py, dkimkey.py, relay.py,
deliverability.py); prints nothing. The checks that need no network are preflight.py's,
which `digest send` runs too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..core.compose import preview_recipient
from ..core.config import NewsletterConfig, Publication
from ..core.deliverability import find_links, judge_images, judge_links
from ..core.dkimkey import judge_dkim
from ..core.dnsrecords import (
    DMARC,
    MAX_SPF_LOOKUPS,
    dkim_name,
    dkim_off,
    dmarc_records,
    judge_accepts_mail,
    judge_alignment,
    judge_dmarc,
    judge_from_domain,
    judge_spf,
    parse_spf,
    spf_records,
)
from ..core.errors import ConfigError, DigestError, DNSError
from ..core.message import MessageTemplate, personalise, sender_address, sender_domain
from ..core.relay import judge_relay
from ..core.sign import Signer
from ..core.verdict import Check, problem, problems
from .ports import DoctorParts, Resolver
from .preflight import offline_checks

MAX_SPF_DEPTH = 10


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()  # what was not checked, and why

    @property
    def problems(self) -> list[Check]:
        return problems(self.checks)


def run_doctor(pub: Publication, parts: DoctorParts, *, now: datetime,
               nameserver: str | None = None, dns_timeout: float = 10.0, offline: bool = False,
               feed: str | None = None) -> DoctorReport:
    """Every check (`offline`: only those that need no network), in the order printed;
    DNS answers are waited for `dns_timeout` seconds."""
    checks: list[Check] = []
    notes: list[str] = []
    if offline:
        notes.append("DNS, the relay and the issue's links and images were not checked (--offline)")
    else:
        try:
            resolver = parts.resolver(nameserver, dns_timeout)
        except DNSError as exc:
            checks.append(problem("DNS", str(exc), "pass --nameserver HOST[:PORT]"))
        else:
            checks += dns_checks(pub.newsletter, resolver)
        checks += judge_relay(parts.probe_relay())
    source = feed or pub.feed.url
    if offline and source.startswith(("http://", "https://")):
        notes.append(f"the next issue was not built: its feed {source} is on the network")
        return DoctorReport(tuple(checks), tuple(notes))
    try:
        built = _next_issue(pub, parts, now, feed, notes)
    except DigestError as exc:  # the feed or a template: the checks so far still stand
        checks.append(problem("next issue", f"it cannot be built: {exc}", "digest preview shows the same error"))
        built = None
    if built is not None:
        template, number = built
        signer, unreadable = _signer(parts)
        if unreadable is not None and offline:  # online, the DKIM line has said so
            checks.append(unreadable)
        checks += offline_checks(pub, template, number, now, signer=signer, spam=parts.spamassassin)
        if not offline:
            checks += link_checks(pub, parts, template)
    return DoctorReport(tuple(checks), tuple(notes))


def _signer(parts: DoctorParts) -> tuple[Signer | None, Check | None]:
    """The send's DKIM signer (None when DKIM is off), or why its key file cannot be read."""
    try:
        return parts.signer, None
    except ConfigError as exc:
        return None, problem("DKIM key", exc.message, "check [newsletter] dkim_key_file")


def _next_issue(pub: Publication, parts: DoctorParts, now: datetime, feed: str | None,
                notes: list[str]) -> tuple[MessageTemplate, int] | None:
    from .preview import build_preview, preview_history

    stored = parts.store_exists()  # as a preview: a doctor never makes a store
    history = preview_history(parts.ledger if stored else None)
    questions = parts.questions if stored else None
    issue = build_preview(pub, parts.fetch, now=now, feed=feed, history=history, questions=questions)
    if issue is None:
        notes.append("no post is new: the issue's checks ran on every post of the feed")
        issue = build_preview(pub, parts.fetch, now=now, feed=feed, every_post=True, history=history,
                              questions=questions)
    if issue is None:
        notes.append("the feed holds no posts: the issue was not checked")
        return None
    return issue.template, issue.composer.number or history.next_number


def link_checks(pub: Publication, parts: DoctorParts, template: MessageTemplate) -> list[Check]:
    """Every link and image of the issue, fetched; the reader's own links once, on the template.
    The issue's "view in browser" link is checked as the archive's index: the issue's own
    page exists only once it is sent."""
    recipient = preview_recipient(pub, sender_address(pub.newsletter.from_), None)
    links, images = find_links(personalise(template.html, recipient, as_html=True))
    timeout, agent = pub.feed.timeout_seconds, pub.feed.user_agent
    personal = frozenset({recipient.unsubscribe_url, recipient.preferences_url})
    return (judge_links(parts.fetch_all(links, timeout=timeout, user_agent=agent), personal)
            + judge_images(parts.fetch_all(images, timeout=timeout, user_agent=agent, images=True)))


# ---- DNS ----

def dns_checks(n: NewsletterConfig, resolver: Resolver) -> list[Check]:
    """SPF, DKIM and DMARC of the From domain; SPF of the return path's domain when it is
    another; that both receive mail; and the return path's alignment."""
    domain = sender_domain(n.from_)
    bounce_domain = n.return_path.rpartition("@")[2].lower() if n.return_path else domain
    own = judge_from_domain(domain)
    checks = [own] if own is not None else []
    checks.append(_asking(f"SPF {domain}", lambda: _spf(resolver, domain)))
    if bounce_domain != domain:
        checks.append(_asking(f"SPF {bounce_domain}", lambda: _spf(resolver, bounce_domain)))
    if not n.dkim_selector:
        checks.append(dkim_off())
    else:
        checks.append(_asking(f"DKIM {dkim_name(n.dkim_selector, domain)}", lambda: judge_dkim(
            n.dkim_selector, domain, resolver.txt(dkim_name(n.dkim_selector, domain)), _read(n.dkim_key_file),
            n.dkim_key_file)))
    found: list[DMARC | None] = [None]

    def dmarc() -> Check:
        check, found[0] = _dmarc(resolver, domain)
        return check

    checks.append(_asking(f"DMARC {domain}", dmarc))
    checks.append(_asking(f"mail to {domain}", lambda: judge_accepts_mail(
        domain, "From", resolver.mx(domain), resolver.addresses(domain))))
    if bounce_domain != domain:
        checks.append(_asking(f"mail to {bounce_domain}", lambda: judge_accepts_mail(
            bounce_domain, "return path", resolver.mx(bounce_domain), resolver.addresses(bounce_domain))))
    checks.append(judge_alignment(domain, bounce_domain, found[0]))
    return checks


def _asking(name: str, check: Callable[[], Check]) -> Check:
    """The check, or a problem saying the DNS server did not answer for it."""
    try:
        return check()
    except DigestError as exc:
        return problem(name, str(exc), "check --nameserver, or this machine's network and DNS")


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _spf(resolver: Resolver, domain: str) -> Check:
    txts = resolver.txt(domain)
    found = spf_records(txts)
    if len(found) != 1 or parse_spf(found[0]).errors:
        return judge_spf(domain, txts, None)
    faults: list[str] = []
    total = _spf_lookups(resolver, found[0], {domain}, faults, 0, [0])
    return judge_spf(domain, txts, total, faults)


def _spf_lookups(resolver: Resolver, record: str, seen: set[str], faults: list[str], depth: int,
                 asked: list[int]) -> int:
    """The DNS lookups one record takes, its includes' and redirect's counted in (RFC 7208 4.6.4).
    `asked` counts the includes read so far, across the whole tree: past MAX_SPF_LOOKUPS
    the total is over the limit whatever the rest holds (each include is itself a lookup),
    and a web of includes (each including several others) would otherwise be read path by
    path, thousands of queries and more."""
    spf = parse_spf(record)
    total = spf.lookups
    for target in (*spf.includes, *([spf.redirect] if spf.redirect else [])):
        if "%" in target:  # a macro: expanded per message, not countable here
            continue
        if target.lower() in seen or depth >= MAX_SPF_DEPTH:
            faults.append(f"the includes loop back to {target}")
            continue
        if asked[0] >= MAX_SPF_LOOKUPS:  # already over: judge_spf says so
            continue
        asked[0] += 1
        inner = spf_records(resolver.txt(target))
        if len(inner) != 1:
            faults.append(f"{target} (included) has {'no' if not inner else len(inner)} SPF record"
                          f"{'s' if len(inner) > 1 else ''}, which fails SPF")
            continue
        total += _spf_lookups(resolver, inner[0], seen | {target.lower()}, faults, depth + 1, asked)
    return total


def _dmarc(resolver: Resolver, domain: str) -> tuple[Check, DMARC | None]:
    """The DMARC record at _dmarc.DOMAIN, else at a parent's (it covers subdomains: sp=)."""
    labels = domain.split(".")
    for i in range(len(labels) - 1):
        where = "_dmarc." + ".".join(labels[i:])
        txts = resolver.txt(where)
        if dmarc_records(txts):
            return judge_dmarc(domain, where, txts)
    return judge_dmarc(domain, f"_dmarc.{domain}", [])
