"""Judge a domain's mail records: SPF (RFC 7208), DMARC (RFC 7489), the DKIM key (RFC
6376), whether a domain accepts mail, and alignment. Pure core: the TXT strings and MX
hosts come in, already looked up (adapters/dns.py); no network, no database, no clock.

Hand-written rather than checkdmarc: that library asks its own resolver, which cannot be
pointed at a server on a port other than 53 (`digest doctor --nameserver HOST:PORT`, and
the tests' dnsmasq), and it brings a dozen dependencies for what is a few tag parsers here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .verdict import Check, ok, problem, warning

MAX_SPF_LOOKUPS = 10  # RFC 7208 4.6.4: more is a permanent error, and the receiver fails SPF
_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_LOOKUP_MECHANISMS = {"include", "a", "mx", "ptr", "exists"}
_TERM = re.compile(r"^(?P<q>[+?~-]?)(?P<name>[a-z0-9][a-z0-9_.-]*)(?P<rest>[:/].*)?$", re.IGNORECASE)
_MODIFIER = re.compile(r"^(?P<name>[a-z][a-z0-9_.-]*)=(?P<value>.*)$", re.IGNORECASE)
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral", "": "pass"}


def spf_records(txts: Sequence[str]) -> list[str]:
    """The SPF records among a domain's TXT strings."""
    return [t for t in txts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass(frozen=True)
class SPF:
    """One SPF record, parsed: what it says about hosts not listed, and what it looks up."""

    record: str
    all: str | None = None          # the qualifier of "all": pass, fail, softfail, neutral
    lookups: int = 0                # DNS lookups of this record itself (include, a, mx, ptr, exists, redirect)
    includes: tuple[str, ...] = ()  # domains whose SPF records count too
    redirect: str | None = None
    ptr: bool = False
    errors: tuple[str, ...] = field(default=())


def parse_spf(record: str) -> SPF:
    """Parse one record (`v=spf1 ...`); syntax faults are listed in `errors`, not raised."""
    errors: list[str] = []
    all_q: str | None = None
    lookups = 0
    includes: list[str] = []
    redirect: str | None = None
    ptr = False
    for term in record.split()[1:]:
        modifier = _MODIFIER.match(term)
        if modifier and ":" not in modifier.group("name"):
            name, value = modifier.group("name").lower(), modifier.group("value")
            if name == "redirect":
                if redirect is not None:
                    errors.append("two redirect= modifiers")
                redirect = value
                lookups += 1
            continue
        m = _TERM.match(term)
        name = m.group("name").lower() if m else ""
        if m is None or name not in _MECHANISMS:
            errors.append(f"'{term}' is not an SPF mechanism")
            continue
        rest = m.group("rest") or ""
        if name in _LOOKUP_MECHANISMS:
            lookups += 1
        if name == "all":
            if rest:
                errors.append(f"'{term}': all takes nothing after it")
            all_q = _QUALIFIERS[m.group("q")]
        elif name in ("include", "exists"):
            if not rest.startswith(":") or len(rest) < 2:
                errors.append(f"'{term}' needs a domain after the colon")
            elif name == "include":
                includes.append(rest[1:])
        elif name in ("ip4", "ip6"):
            problem_ = _ip_problem(name, rest)
            if problem_:
                errors.append(f"'{term}': {problem_}")
        elif name == "ptr":
            ptr = True
    if redirect is not None and all_q is not None:
        redirect = None  # RFC 7208 6.1: redirect is ignored when the record has "all"
    return SPF(record, all_q, lookups, tuple(includes), redirect, ptr, tuple(errors))


def _ip_problem(name: str, rest: str) -> str | None:
    if not rest.startswith(":"):
        return "needs an address after the colon"
    try:
        network = ipaddress.ip_network(rest[1:], strict=False)
    except ValueError:
        return f"'{rest[1:]}' is not an IP address or range"
    if (network.version == 4) != (name == "ip4"):
        return f"{rest[1:]} is not an IPv{name[-1]} address"
    return None


def judge_spf(domain: str, txts: Sequence[str], total_lookups: int | None, faults: Sequence[str] = ()) -> Check:
    """The SPF line for `domain`: its TXT strings, the lookups the whole tree of includes
    takes (None: not counted), and faults found down that tree (an include without SPF)."""
    name = f"SPF {domain}"
    found = spf_records(txts)
    add = (f"add a TXT record on {domain} with the value \"v=spf1 include:<your mail provider's domain> ~all\" "
           "(your provider's help page names the include)")
    if not found:
        return problem(name, "no SPF record: receivers cannot tell your relay may send for this domain", add)
    if len(found) > 1:
        return problem(name, f"{len(found)} SPF records; receivers treat that as an error and fail SPF",
                       f"merge them into one TXT record on {domain} (one v=spf1 ... line, every include in it)")
    spf = parse_spf(found[0])
    if spf.errors:
        return problem(name, f"the record has a mistake: {'; '.join(spf.errors)}",
                       f"correct the TXT record on {domain}: {found[0]!r}")
    if faults:
        return problem(name, "; ".join(faults), "correct or remove that include in the SPF record")
    if total_lookups is not None and total_lookups > MAX_SPF_LOOKUPS:
        return problem(name, f"it takes {total_lookups} DNS lookups; receivers stop at {MAX_SPF_LOOKUPS} and fail SPF",
                       "remove includes of services that do not send this mail, or replace a:/mx: with ip4: ranges")
    if spf.all == "pass":
        return problem(name, "it ends in +all: anyone may send mail as this domain",
                       f"end the SPF record on {domain} with ~all (or -all) instead of +all")
    if spf.all is None and spf.redirect is None:
        return warning(name, "it has no 'all' at its end, so mail from anywhere else is only 'neutral'",
                       "end the SPF record with ~all")
    if spf.all == "neutral":
        return warning(name, "it ends in ?all, which asks receivers to treat mail from anywhere else as neutral",
                       "end the SPF record with ~all (or -all)")
    if spf.ptr:
        return warning(name, "it uses ptr, which receivers may ignore (RFC 7208 deprecates it)",
                       "replace ptr with the sending addresses (ip4:/ip6:) or your provider's include")
    counted = f", {total_lookups} of {MAX_SPF_LOOKUPS} lookups" if total_lookups is not None else ""
    return ok(name, f"{found[0]}{counted}")


# ---- DMARC ----

@dataclass(frozen=True)
class DMARC:
    record: str
    tags: dict[str, str]

    @property
    def policy(self) -> str:
        return self.tags.get("p", "").lower()

    @property
    def strict_spf(self) -> bool:
        return self.tags.get("aspf", "r").lower() == "s"


def parse_dmarc(record: str) -> DMARC | None:
    """The tags of a DMARC record; None when it is not one (no leading v=DMARC1)."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            tags[key.strip().lower()] = value.strip()
    if tags.get("v") != "DMARC1" or not record.lstrip().startswith("v"):
        return None
    return DMARC(record, tags)


def dmarc_records(txts: Sequence[str]) -> list[str]:
    return [t for t in txts if t.replace(" ", "").upper().startswith("V=DMARC1")]


def judge_dmarc(domain: str, where: str, txts: Sequence[str]) -> tuple[Check, DMARC | None]:
    """The DMARC line for `domain`, from the TXT strings found at `where` (_dmarc.DOMAIN, or
    its parent's, which covers it), and the record parsed."""
    name = f"DMARC {domain}"
    found = dmarc_records(txts)
    if not found:
        return problem(name, f"no DMARC record at _dmarc.{domain}: Gmail and Yahoo refuse bulk mail without one",
                       f"add a TXT record named _dmarc.{domain} with the value "
                       f"\"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\" (start with p=none, read the reports, "
                       "then move to p=quarantine)"), None
    if len(found) > 1:
        return problem(name, f"{len(found)} DMARC records at {where}; receivers then ignore DMARC",
                       f"keep one TXT record at {where}"), None
    dmarc = parse_dmarc(found[0])
    if dmarc is None or dmarc.policy not in ("none", "quarantine", "reject"):
        return problem(name, f"the record at {where} has no valid p= (none, quarantine or reject): {found[0]!r}",
                       f"write the TXT record at {where} as \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\""), None
    if dmarc.tags.get("v") != "DMARC1":
        return problem(name, f"the record at {where} does not start with v=DMARC1", "make v=DMARC1 its first tag"), None
    tag, policy = "p", dmarc.policy
    if where != f"_dmarc.{domain}" and dmarc.tags.get("sp", "").lower() in ("none", "quarantine", "reject"):
        tag, policy = "sp", dmarc.tags["sp"].lower()  # a parent's record speaks for subdomains with sp=
    if policy == "none":
        return warning(name, f"{tag}=none at {where}: receivers are told to do nothing with mail that fails",
                       f"once the reports (rua=) show your mail passing, change {tag}=none to {tag}=quarantine"), dmarc
    return ok(name, f"{tag}={policy} at {where}"), dmarc


# ---- where mail goes, and alignment ----

def judge_accepts_mail(domain: str, role: str, mx: Sequence[tuple[int, str]], addresses: Sequence[str]) -> Check:
    """Whether `domain` receives mail (replies, bounces): an MX, or else an address (A/AAAA)."""
    name = f"mail to {domain}"
    if len(mx) == 1 and mx[0][1].rstrip(".") == "":
        return problem(name, f"its MX record says it accepts no mail (a null MX), yet it is the {role}",
                       f"use a {role} on a domain that receives mail, or give {domain} a real MX record")
    if mx:
        hosts = ", ".join(h.rstrip(".") for _, h in sorted(mx))
        return ok(name, f"the {role} domain has MX {hosts}")
    if addresses:
        return ok(name, f"the {role} domain has no MX; mail goes to its address {addresses[0]}")
    return problem(name, f"the {role} domain has no MX and no address: replies and bounces to it are lost",
                   f"add an MX record for {domain} (your mail provider's help page names its host)")


def is_aligned(from_domain: str, other: str, *, strict: bool) -> bool:
    """DMARC alignment of `other` (the return path's or DKIM's domain) with the From domain.
    Relaxed: one is the other or a subdomain of it, or both sit under one parent of two
    labels or more (a stand-in for the organisational domain without the public suffix list)."""
    a, b = from_domain.lower().rstrip("."), other.lower().rstrip(".")
    if a == b:
        return True
    if strict:
        return False
    if a.endswith("." + b) or b.endswith("." + a):
        return True
    return a.split(".")[-2:] == b.split(".")[-2:] and len(a.split(".")) > 2 and len(b.split(".")) > 2


def judge_alignment(from_domain: str, return_path_domain: str, dmarc: DMARC | None) -> Check:
    name = "return path alignment"
    strict = dmarc.strict_spf if dmarc is not None else False
    if is_aligned(from_domain, return_path_domain, strict=strict):
        how = "the same domain" if from_domain == return_path_domain else "aligned (relaxed)"
        return ok(name, f"bounces go to {return_path_domain}, {how} as From's {from_domain}")
    fix = (f"set [newsletter] return_path to an address on {from_domain}" if strict else
           f"set [newsletter] return_path to an address on {from_domain} or a subdomain of it")
    return warning(name, f"bounces go to {return_path_domain}, not aligned with From's {from_domain}"
                   + (" (the DMARC record asks for strict alignment, aspf=s)" if strict else "")
                   + ": SPF then does not count for DMARC", fix)


# Mailbox providers whose domains an author cannot publish records for.
FREEMAIL = frozenset({"gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "outlook.com", "hotmail.com", "live.com",
                      "msn.com", "aol.com", "icloud.com", "me.com", "gmx.com", "gmx.net", "proton.me", "protonmail.com",
                      "blogger.com", "blogspot.com"})


def judge_from_domain(domain: str) -> Check | None:
    """A warning when From is on a mailbox provider's domain; None for a domain of one's own."""
    if domain.lower() not in FREEMAIL:
        return None
    return warning("From domain", f"{domain} belongs to a mailbox provider: you cannot publish SPF, DKIM or DMARC "
                   "for it, so only that provider's own relay passes DMARC, within its daily sending limit",
                   "send from an address on a domain you own (README: \"Landing in the inbox\")")


def dkim_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def dkim_off() -> Check:
    return warning("DKIM", "digest does not sign ([newsletter] dkim_selector is empty): DMARC then rests on SPF "
                   "alone, unless your relay signs with a key for your domain",
                   "make a key pair, publish its public half as SELECTOR._domainkey.<your domain>, and set "
                   "[newsletter] dkim_selector and dkim_key_file (or check that your relay signs for your domain)")
