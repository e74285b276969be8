"""Reading what a bounce or a complaint reports: the failed recipients and their status
codes, the Message-IDs and envelope senders of the mail it is about. Pure core: no
network, no database, no clock, no file writes; a parsed message in, records out.

RFC 3464 delivery reports (multipart/report; report-type=delivery-status) are read from
their own per-recipient fields (Final-Recipient, preferred to Original-Recipient, which
names the address before forwarding; Action, Status, Diagnostic-Code). Everything else
that looks like a bounce (qmail's QSBMF, Exim's text, Yahoo's, old Exchange's) goes to
flufl.bounce's detectors, and each address it finds gets the enhanced status code
written near it in the text ("550 5.1.1", "(#5.1.1)"), or only its class.

An enhanced status code (RFC 3463) counts only where mail systems write one: a report's
Status field, after an RFC 5321 reply code ("550 5.1.1"), or in qmail's "(#5.1.1)"; a
"2.0.0" in a sentence is not one. Whether a failure is hard (the address is bad for
good) is judged as the send path judges an SMTP refusal (core/classify.py): RFC 3463's
5.1.x and 5.2.1 blame the address; 5.2.2 (mailbox full), 5.2.3 and 5.3.4 (message too
large) and every 4.x.x do not. Where the code says no more than "permanent" (a bare
5.0.0, a 5.7.x policy refusal, a reply code alone) the diagnostic text decides: a full
mailbox, a message too large, a spam, policy or block refusal, a whitelist or challenge,
an expired retry are soft; an unknown user or a domain that does not exist is hard; a
text that says neither leaves the failure permanent (hard).

Work per message is bounded: at most MAX_FAILURES recipients are read from one report
(we mail one recipient per message), and the text is lower-cased once.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Where mail systems write an enhanced code in text: after a reply code (RFC 3463 section
# 2, "550 5.1.1"; Postfix "said: 550-5.1.1"), after "#" (qmail's QSBMF, Exchange's "#5.1.1"),
# after "Status:" or at the start of a line (sendmail's transcript). The start of a line
# takes blanks, not \s: "^\s*" ran from every line start across all the blank lines below
# it, and 50,000 characters of "\r\n " (the human text read) took 9 s.
_STATUS_IN_TEXT = re.compile(r"(?:\b[245]\d\d[ -]|#|\bstatus:\s*|^[ \t]*)([245])\.(\d{1,3})\.(\d{1,3})\b", re.I | re.M)
_BASIC = re.compile(r"(?<![\d.])([45])\d\d(?=[ -])(?![\d.])")
MAX_FAILURES = 50
# What flufl.bounce's detectors read of a message: its notice and the start of what it
# returns. They test every line against every pattern in Python: 2 MB of short lines
# ([inbox] max_message_bytes) took 30 to 55 s, the GIL held by `digest serve`'s web pages
# meanwhile; a sender of such mail could keep the inbox and a core busy for as long as
# they liked. The failures a non-standard bounce lists come before the message it returns.
FLUFL_BYTES = 50_000  # as much as human_text reads of the notice
# What the diagnostic text says, where the code does not (RFC 3463 names the same causes).
_SOFT_TEXT = re.compile(
    r"mailbox (is )?full|(mailbox|disk|storage) (space|quota)|quota|over ?quota|insufficient (disk )?space|"
    r"exceed\w* (the )?(storage|(max\w* )?(message )?size)|max\w* (\w+ )?(message )?size|too (large|big|long)|"
    r"size (limit|exceeds)|"
    r"spam|junk|blocked|block ?list|black ?list|dnsbl|\brbl\b|spamhaus|reputation|content (filter|rejected)|"
    r"polic(y|ies)|not accepting mail with|attachments? (are )?not allowed|virus|"
    r"white ?list|challenge|requires? (a )?confirmation|not on the approved|"
    r"expired|retry (time(out)?|period) (exceeded|expired)|(have|has) been failing for a long time|"
    r"temporar(y|ily)|try again later|greylist|service (currently )?unavailable|"
    r"too many (messages|connections)|rate limit|spf|dmarc|dkim|"
    # the same causes in the languages Exchange, Postfix and the big European providers write NDRs in
    r"postfach (ist )?voll|speicher(platz|grenze)|zu gro(ß|ss)|blockiert|abgelehnt wegen|"
    r"bo[iî]te (aux lettres )?(est )?pleine|quota (est )?d[ée]pass[ée]|trop volumineux|bloqu[ée]|"
    r"buz[oó]n (est[aá] )?lleno|demasiado grande|bloqueado|casella (di posta )?(è )?piena|troppo grande|bloccat[oa]",
    re.I)
_HARD_TEXT = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address|account|domain)|"
    r"(user|mailbox|recipient|address|account|domain) (does not|doesn't|did not) exist|"
    r"(unknown|invalid|unrouteable|unroutable) (recipient|address|mailbox|local part)|recipient (unknown|not found)|"
    r"no mailbox|mailbox (unavailable|not found|disabled)|account (has been |is )?(disabled|closed|deleted|deactivated)|"
    r"host (or domain name )?not found|domain (name )?not found|no (mx|mail exchanger)|"
    r"address rejected|not (a )?(valid|known) (user|recipient|address)|is not a valid mailbox|"
    r"not listed in (the )?(domino |public )*directory|"  # Lotus Domino's "not listed in Domino Directory"
    r"(empf[äa]nger|benutzer|adresse|postfach) (ist )?(unbekannt|existiert nicht)|"
    r"(destinataire|utilisateur|adresse) (est )?(inconnu|introuvable)|n'existe pas|"
    r"(destinatario|usuario|direcci[oó]n) (es )?(desconocid[oa]|inexistente|no existe)|"
    r"(destinatario|utente|indirizzo) (è )?(sconosciuto|inesistente)", re.I)
_NEAR = 400  # characters after an address in which its status code is looked for
# A delay warning, not a failure. flufl.bounce's SimpleMatch runs before SimpleWarning and
# takes Exim's "has not yet been delivered ... after more than 24 hours" for a failure.
_WARNING = re.compile(r"has not yet been delivered|this is a warning only|still being retried|"
                      r"delivery attempts will continue|will be retried|^subject: (warning|delayed)", re.I | re.M)


@dataclass(frozen=True)
class Failure:
    """One recipient a report says could not be reached, with its status code."""

    address: str  # lower-cased; "" when the report is too garbled to name one
    status: str   # "5.1.1"; "5.0.0" or "4.0.0" when only permanent or transient is known
    also: str = field(default="", compare=False)  # the Original-Recipient, when it differs: we may have mailed that
    said: str = field(default="", compare=False)  # what the diagnostic text says, where the code does not: "soft", "hard" or ""

    @property
    def hard(self) -> bool:
        """Permanent and the address is to blame (the module's docstring says how that is read)."""
        return judge(self.status, self.said)


def judge(status: str, said: str = "") -> bool:
    """True when a failure with enhanced code `status` and diagnostic verdict `said` is hard."""
    if not status.startswith("5."):
        return False
    if status.startswith(("5.1.", "5.2.1")):
        return True
    if status.startswith(("5.2.2", "5.2.3", "5.3.4")):
        return False
    if said:
        return said == "hard"
    return not status.startswith("5.7.")


def read_diagnostic(text: str) -> str:
    """"soft" or "hard" when the diagnostic text names a cause, else "" (the docstring's lists)."""
    text = text[:20_000]
    if _SOFT_TEXT.search(text):
        return "soft"
    if _HARD_TEXT.search(text):
        return "hard"
    return ""


def text_of(part: Message) -> str:
    """A leaf part's payload as text, whatever its transfer encoding or (wrong) charset."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken encoding: the raw payload will do
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except (LookupError, ValueError):  # an unknown or unusable charset name
        return data.decode("latin-1")


def whole_text(msg: Message) -> str:
    """Every header and every text payload of the message and of the messages it carries."""
    out: list[str] = []
    for part in msg.walk():
        out.extend(f"{k}: {v}" for k, v in part.raw_items())
        if not part.is_multipart():
            out.append(text_of(part))
    return "\n".join(out)


def human_text(msg: Message, limit: int = 50_000) -> str:
    """The report's own readable text: its text parts, not those of the message it returns."""
    out: list[str] = []
    stack: list[Message] = [msg]
    while stack and sum(map(len, out)) < limit:
        part = stack.pop(0)
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/delivery-status",
                    "message/global-delivery-status", "message/feedback-report"):
            continue
        if part.is_multipart():
            payload = part.get_payload()
            stack[:0] = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
        elif part.get_content_maintype() in ("text", "multipart"):  # a multipart whose boundary never comes: its text
            out.append(text_of(part))
    return "\n".join(out)[:limit]


def quoted_message_ids(msg: Message) -> tuple[str, ...]:
    """The Message-IDs of the messages a report returns or quotes (its message/rfc822 or
    text/rfc822-headers part), lower-cased: the mail it says is ours."""
    found: list[str] = []
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            original = _original_headers(part)
            value = str(original.get("Message-ID") or "") if original is not None else ""
            found += [m.lower() for m in re.findall(r"<[^<>\s]{1,250}>", value)[:1]]
    return tuple(dict.fromkeys(found))


def status_code(text: str) -> str | None:
    """The enhanced status code of a report's Status field (or a reply written alone)."""
    m = _STATUS.search(text)
    return ".".join(m.groups()) if m else None


def status_in_text(text: str) -> str | None:
    """The first enhanced status code written where mail systems write one in prose."""
    m = _STATUS_IN_TEXT.search(text)
    return ".".join(m.groups()) if m else None


def _address(value: str) -> str:
    """The address of a report field: "rfc822; <a@b.c>" -> "a@b.c"."""
    value = value.rpartition(";")[2] if ";" in value else value
    return value.strip().strip("<>").strip().lower()


def _field(block: Message, name: str) -> str:
    """A report field as text: 8-bit bytes (an NDR in another language) read as UTF-8."""
    raw = next((v for k, v in block.raw_items() if k.lower() == name.lower()), None)
    if not isinstance(raw, str):  # absent, or a Header the parser made: its text as it gives it
        return str(raw or "")
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _typed_address(value: object) -> str:
    """The address of a Final- or Original-Recipient field whose address type is rfc822 or
    utf-8 (RFC 3464 2.3.1, RFC 6533), or "" (x400, unknown, absent)."""
    text = str(value or "")
    kind, semi, _ = text.partition(";")
    if semi and kind.strip().lower() not in ("rfc822", "utf-8"):
        return ""
    address = _address(text)
    return address if "@" in address else ""


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # not parsed into blocks: parse each paragraph
        return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\s*\r?\n", payload) if block.strip()]
    return []


def dsn_failures(msg: Message, human: str = "") -> list[Failure]:
    """The failed and delayed recipients of an RFC 3464 report; `human` is its readable
    text, read for the cause where a block's own Diagnostic-Code names none."""
    failures: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _blocks(part)[:MAX_FAILURES + 1]:
            # RFC 3464 2.3.2: Final-Recipient is the address the reporting system tried;
            # Original-Recipient (2.3.1) the one we sent to before any forwarding.
            final, original = _typed_address(block.get("Final-Recipient")), _typed_address(block.get("Original-Recipient"))
            recipient = final or original  # a Final-Recipient in x400 or another address type: the original one
            if not recipient:
                continue
            action = str(block.get("Action") or "").strip().lower()
            if action in ("delivered", "relayed", "expanded"):
                continue
            diagnostic = _field(block, "Diagnostic-Code")
            written = _field(block, "Status")
            status = status_code(written) or status_in_text(diagnostic)
            if status is None and (basic := _BASIC.search(written + " " + diagnostic + " ")):
                status = f"{basic.group(1)}.0.0"  # a bare reply code where the enhanced one belongs
            if action == "delayed":
                status = "4" + (status or "4.0.0")[1:]
            elif status is None:
                status = "5.0.0" if action.startswith("fail") else "4.0.0"
            if status.startswith(("4", "5")):
                said = read_diagnostic(f"{diagnostic}\n{written}") or read_diagnostic(human)
                failures.append(Failure(recipient, status, also=original if original != recipient else "", said=said))
            if len(failures) >= MAX_FAILURES:
                break
    return failures


def heuristic_failures(raw: bytes, text: str, human: str = "") -> list[Failure]:
    """The failed recipients flufl.bounce's detectors find in a non-standard bounce."""
    try:
        temporary, permanent = all_failures(_for_flufl(raw))
    except Exception:  # noqa: BLE001 - third-party heuristics on hostile input: finding nothing is the answer
        return []
    found: dict[str, Failure] = {}
    warning = bool(_WARNING.search(text))
    lower = text.lower()  # once: a bounce naming 25,000 addresses is read in one pass each, not 25,000
    overall = read_diagnostic(human)
    human_lower = human.lower()
    for addresses, permanent_class in ((permanent, True), (temporary, False)):
        for raw_address in sorted(addresses)[:MAX_FAILURES]:
            address = _address(raw_address.decode("ascii", "replace"))
            if "@" not in address or address in found:
                continue
            # the report's own words about the address first, then anywhere (the returned headers)
            near, window = _status_near(human, human_lower, address) if address in human_lower else (None, "")
            if near is None:
                near, anywhere = _status_near(text, lower, address)
                window = window or anywhere
            paragraph = re.split(r"\n\s*\n", window, maxsplit=1)[0]  # the address's own lines, not the headers below
            said = read_diagnostic(paragraph) or overall
            # a "warning" (a delay notice) that names an unknown user is MDaemon's failure notice, not a delay
            cls = "5" if permanent_class and (not warning or said == "hard") else "4"
            found[address] = Failure(address, cls + (near[1:] if near else ".0.0"), said=said)
            if len(found) >= MAX_FAILURES:
                return list(found.values())
    return list(found.values())


# A sentence that introduces a list of failed addresses: Novell GroupWise ("undeliverable to
# the following"), Lotus Domino ("was not delivered to"), and the many gateways that say
# "could not be delivered to ... recipients:" or "The following address(es) failed".
_LIST_INTRO = re.compile(r"undeliverable to the following|(could not|was not|cannot) be delivered to|"
                         r"following (recipients?|address(es|\(es\))?)\b.*(failed|undeliverable|rejected)|"
                         r"delivery to the following recipients? failed", re.I)
_LISTED = re.compile(r"^[ \t>*-]*<?([\w.+%'-]+@[\w-]+(?:\.[\w-]+)+)>?[ \t:,;]*(.*)$")


def listed_failures(human: str) -> list[Failure]:
    """The addresses a report lists, one a line, under a sentence that says they failed,
    with a code written on their line (else 5.0.0) and the cause their line names."""
    lines = human[:50_000].splitlines()
    found: dict[str, Failure] = {}
    for i, line in enumerate(lines):
        if not _LIST_INTRO.search(line):
            continue
        for following in lines[i + 1:i + 12]:
            m = _LISTED.match(following)
            if m and m.group(1).lower() not in found:
                rest = m.group(2)
                code = status_in_text(rest) or (f"{b.group(1)}.0.0" if (b := _BASIC.search(rest + " ")) else "5.0.0")
                found[m.group(1).lower()] = Failure(m.group(1).lower(), code, said=read_diagnostic(rest))
            if len(found) >= MAX_FAILURES:
                return list(found.values())
    return list(found.values())


def _for_flufl(raw: bytes) -> Message:
    """The message as flufl.bounce's detectors can read it: parsed from text (bytes that are
    not UTF-8 in a header would make it a Header object, which some call .lower() on), with
    a From they can parse (Yale's takes the first address of it unguarded), and no more of
    it than FLUFL_BYTES."""
    if len(raw) > FLUFL_BYTES:
        raw = raw[:FLUFL_BYTES].rpartition(b"\n")[0] or raw[:FLUFL_BYTES]
    msg = email.message_from_string(raw.decode("utf-8", "replace"))
    if not getaddresses([str(msg.get("From", ""))]):
        del msg["From"]
        msg["From"] = "unknown@invalid"
    return msg


def _status_near(text: str, lower: str, address: str) -> tuple[str | None, str]:
    """The status code written after the address (its first mention that has one), and the
    text around that mention, for the cause."""
    start = lower.find(address)
    first_window = ""
    for _ in range(20):  # bounded: an address repeated all over a huge text is read 20 times at most
        if start < 0:
            break
        window = text[start + len(address): start + len(address) + _NEAR]
        first_window = first_window or window
        code = status_in_text(window)
        if code:
            return code, window
        basic = _BASIC.search(window)
        if basic:
            return f"{basic.group(1)}.0.0", window
        start = lower.find(address, start + 1)
    return None, first_window


@dataclass(frozen=True)
class Feedback:
    """What an ARF complaint (RFC 5965) says about the message complained of."""

    feedback_type: str
    recipients: tuple[str, ...]   # Original-Rcpt-To, else the original's To (often redacted)


def arf_feedback(msg: Message) -> Feedback:
    feedback_type, recipients = "", []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/feedback-report":
            for block in _blocks(part):
                feedback_type = feedback_type or str(block.get("Feedback-Type") or "").strip().lower()
                recipients += [_address(str(v)) for v in block.get_all("Original-Rcpt-To") or []]
        elif kind in ("message/rfc822", "text/rfc822-headers") and not recipients:
            original = _original_headers(part)
            if original is not None:
                recipients += [a.lower() for _, a in getaddresses([str(v) for v in original.get_all("To") or []]) if "@" in a]
    return Feedback(feedback_type or "abuse", tuple(dict.fromkeys(r for r in recipients if "@" in r)))


def _original_headers(part: Message) -> Message | None:
    if part.get_content_type() in ("text/rfc822-headers", "message/rfc822-headers"):
        return HeaderParser().parsestr(text_of(part))
    payload = part.get_payload()
    return payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
