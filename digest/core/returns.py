"""Sorting the mail that comes back: one message (bytes) in, what kind it is and what it
names out. Pure core: no network, no database, no clock, no file writes.

The kinds, tried in this order (each rule names the standard or mail system it follows):

- complaint: an ARF report (RFC 5965, multipart/report; report-type=feedback-report),
  acted on when its Feedback-Type is abuse or fraud (a complaint) or opt-out (a request
  to leave); Hotmail's complaint before ARF (staff@hotmail.com, X-HmXmrOriginalRecipient);
- auto-reply, first: a challenge-response system's challenge (Boxbe's is dressed as an RFC
  3464 delay; Bluebottle's is marked X-Bluebottle-Request);
- bounce: an RFC 3464 delivery report, or a message that looks like one (from
  MAILER-DAEMON or postmaster, also written "MAILER-DAEMON <>", From: <>, an empty
  Return-Path, X-Failed-Recipients, Exchange's NDR header), or any message that came to a
  VERP address of [newsletter] return_path and is not an auto-reply; Precedence: bulk
  does not hide one; a mail system's bounce subject counts when the text names a failure;
- unsubscribe: mail to [newsletter] unsubscribe_mailto (the List-Unsubscribe mailto),
  even when it is marked automatic (Apple Mail's is: Auto-Submitted, X-Apple-Unsubscribe);
  the signed token in its subject names the reader;
- auto-reply: RFC 3834 Auto-Submitted other than "no", X-Autoreply and its kin,
  Exchange's and Outlook's out-of-office (X-MS-Exchange-Inbox-Rules-Loop, "Automatic
  reply:" in Outlook's languages; they send no Auto-Submitted), Precedence bulk/list/junk,
  our own newsletter coming back, or an out-of-office subject on a reply to one of our
  Message-IDs. Never answered, so never a loop, never a soft bounce, never a question;
- unsorted: anything else, the questions loop's intake.

Which subscriber a bounce or complaint is about, and what it may do to them, is decided by
jobs/inbox.py with the store and the rules of core/policy.py: the VERP tokens, our
Message-IDs and the addresses found here are only claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from enum import Enum, StrEnum

from .reports import (
    Failure,
    arf_feedback,
    dsn_failures,
    heuristic_failures,
    human_text,
    listed_failures,
    quoted_message_ids,
    read_diagnostic,
    status_in_text,
    whole_text,
)
from .sanitize import clean_line
from .verp import token_in


class Kind(StrEnum):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto-reply"
    UNSORTED = "unsorted"


@dataclass(frozen=True)
class Ours:
    """What our own mail looks like: the domain of our Message-IDs, the addresses that
    mail comes back to."""

    message_id_domain: str
    return_path: str = ""
    unsubscribe_mailto: str = ""

    def message_ids(self) -> re.Pattern[str]:
        # core/message.issue_message_id makes them: <digest.{issue}.{subscriber}.{random}@domain>
        return re.compile(r"<digest\.\d{1,10}\.\d{1,10}\.[0-9a-z]{1,64}@" + re.escape(self.message_id_domain) + ">", re.I)

    def question_mail_ids(self) -> re.Pattern[str]:
        # core/message.make_message_id makes them: <ack.{question}.{hex}@domain>, <answer.{question}...>
        return re.compile(r"<(?:ack|answer)\.\d{1,10}\.[0-9a-f]{12,32}@" + re.escape(self.message_id_domain) + ">", re.I)


@dataclass(frozen=True)
class Sorted:
    """One message, sorted."""

    kind: Kind
    why: str                                   # what gave the kind away, for the one line per message
    message_id: str = ""
    sender: str = ""                           # the From address
    subject: str = ""
    failures: tuple[Failure, ...] = ()         # bounce: the recipients it reports, with status codes
    original_ids: tuple[str, ...] = ()         # our Message-IDs that it quotes
    question_mail_ids: tuple[str, ...] = ()    # the Message-IDs of our acknowledgements and answer notices it quotes
    tokens: tuple[str, ...] = ()               # VERP tokens of the addresses it came to or quotes
    recipients: tuple[str, ...] = field(default=())  # complaint: the complaining recipients, when not redacted
    feedback_type: str = ""                    # complaint: abuse, fraud, opt-out, not-spam, auth-failure, ...
    quoted_ids: tuple[str, ...] = ()           # the Message-IDs of the messages a report returns, ours or not
    unsubscribe_token: str = ""                # the signed token our List-Unsubscribe mailto puts in the subject
    to_verp: bool = False                      # it came to an address in the form of our VERP addresses

    @property
    def is_complaint(self) -> bool:
        """An ARF report of a reader calling our mail spam or fraud (RFC 5965), as opposed to
        a "not-spam" (RFC 6430), an authentication failure report (RFC 6591) and the like."""
        return self.kind is Kind.COMPLAINT and self.feedback_type in ("abuse", "fraud")

    @property
    def is_opt_out(self) -> bool:
        """An ARF report of a reader asking to leave (Feedback-Type opt-out or opt-out-list,
        of the ARF drafts that RFC 5965 grew from, still sent by feedback loops)."""
        return self.kind is Kind.COMPLAINT and self.feedback_type in ("opt-out", "opt-out-list")

    @property
    def hard(self) -> bool:
        """A bounce whose failures include a hard one (reports.judge)."""
        return any(f.hard for f in self.failures)

    @property
    def status(self) -> str:
        """The worst status the message reports: a hard failure's, else any failure's,
        else "4.0.0" (a bounce whose report says nothing readable counts as a delay)."""
        hard = [f.status for f in self.failures if f.hard]
        return hard[0] if hard else self.failures[0].status if self.failures else "4.0.0"


class Claimed(Enum):
    """What one reader may do with one message it listed (the inbox ledger's answer)."""

    MINE = "mine"          # handle it
    HANDLED = "handled"    # handled before, by a run that stopped before the move: move it only
    KEPT = "kept"          # handled before and left in the folder on purpose (too large)
    BUSY = "busy"          # another live reader holds it


@dataclass(frozen=True)
class Delivery:
    """One newsletter message we sent: which issue, to whom."""

    issue_id: int
    subscriber_id: int


@dataclass(frozen=True)
class Effect:
    """What handling one message does to one subscriber."""

    kind: str             # hard, soft (counted toward [inbox] bounce_after), complaint, unsubscribe,
                          # weak (tied by an address only, with VERP on: recorded, counted for nothing)
    subscriber_id: int
    issue_id: int | None = None
    status: str = ""


_BOUNCE_SENDERS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon"}
_BOUNCE_NAME = re.compile(r"\b(mailer[- ]?daemon|mail delivery (sub)?system|postmaster)\b", re.I)
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-AutoReply-From", "X-Mail-Autoreply",
                 # Exchange and Outlook mark their out-of-office and inbox-rule replies so (MS-OXCMAIL 2.2.3.2.14,
                 # 2.2.3.2.13) and send no Auto-Submitted
                 "X-MS-Exchange-Inbox-Rules-Loop", "X-MS-Exchange-Generated-Message-Source")
# Exchange's and Outlook's out-of-office subject prefix, in the languages they ship
_EXCHANGE_OOF = re.compile(
    r"^(automatic reply|réponse automatique|automatische antwort|respuesta automática|risposta automatica|"
    r"automatisch antwoord|autosvar|automatisk svar|resposta automática|automaattinen vastaus|"
    r"odpowiedź automatyczna|automatická odpověď|otomatik yanıt)\s*:", re.I)
# Any mail program's out-of-office words: only on a reply to one of our Message-IDs
_OUT_OF_OFFICE = re.compile(
    r"(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response|antwort)|autoreply|on vacation|"
    r"abwesenheit|réponse automatique|absence|respuesta automática|fuera de la oficina|^auto:)", re.I)
# Challenge-response systems (Boxbe, Bluebottle, SpamArrest, TMDA) answer every sender once
_CHALLENGE = re.compile(r"(please )?(verify|confirm) (that )?you('| a)re (a )?(human|real)|"
                        r"challenge[- ]response|approved senders? list|spamarrest", re.I)
# The subjects mail systems give their bounces (Postfix, Exim, sendmail, qmail, Exchange in
# English, French, German, Italian and Spanish, Lotus Domino, Gmail, old gateways): a sign
# only, read as a bounce when its text also names a failed recipient or a status code.
_BOUNCE_SUBJECT = re.compile(
    r"undeliver(ed|able)|returned (mail|to sender)|mail delivery fail|delivery (status notification|failure|failed|"
    r"notification)|failure notice|non-?delivery|could not be delivered|not delivered|non remis|unzustellbar|"
    r"non recapitabile|no se puede entregar|delivery problem", re.I)
_WHERE_TO = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Delivered-To")
# itsdangerous's form: URL-safe base64 payload "." signature (core/tokens.py)
_UNSUBSCRIBE_TOKEN = re.compile(r"\bunsubscribe[ :-]+([A-Za-z0-9_-]{4,200}\.[A-Za-z0-9_.-]{10,200})")


def sort_message(raw: bytes, ours: Ours) -> Sorted:
    """What kind of message `raw` is, and the addresses, codes and ids it names. Never
    raises: a message the email package cannot make sense of is unsorted (kept)."""
    try:
        return _sort(raw, ours)
    except Exception as exc:  # noqa: BLE001 - hostile bytes can trip the stdlib's header parser; nothing is lost
        return Sorted(Kind.UNSORTED, f"could not be read ({type(exc).__name__})")


def _sort(raw: bytes, ours: Ours) -> Sorted:
    # compat32: the default policy's header objects cost two thirds of the time (measured
    # with bench/inbox.py); only the headers used here are decoded, by _header.
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    text = whole_text(msg)
    came_to = [a for name in _WHERE_TO for a in _addresses(msg, name)]
    subject = clean_line(_header(msg, "Subject"))[:200]
    found = Sorted(
        Kind.UNSORTED, "for the questions loop", message_id=clean_line(_header(msg, "Message-ID"))[:500],
        sender=clean_line(_from(msg))[:254], subject=subject,
        original_ids=tuple(dict.fromkeys(m.group(0).lower() for m in ours.message_ids().finditer(text)))[:20],
        question_mail_ids=tuple(dict.fromkeys(m.group(0).lower() for m in ours.question_mail_ids().finditer(text)))[:20],
        quoted_ids=quoted_message_ids(msg)[:20],
        tokens=tuple(dict.fromkeys(t for a in came_to + _verp_addresses(text, ours) if (t := token_in(a, ours.return_path))))[:20],
        unsubscribe_token=m.group(1) if (m := _UNSUBSCRIBE_TOKEN.search(subject)) else "")
    report = msg.get_param("report-type", header="content-type") if msg.get_content_type() == "multipart/report" else None
    report = str(report).lower() if report else ""

    if report == "feedback-report":
        feedback = arf_feedback(msg)
        return replace(found, kind=Kind.COMPLAINT, why=f"ARF {feedback.feedback_type} report", recipients=feedback.recipients,
                       feedback_type=feedback.feedback_type)
    if (hotmail := _hotmail_complaint(msg, text)) is not None:
        return replace(found, kind=Kind.COMPLAINT, why="Hotmail complaint (before ARF)", recipients=hotmail,
                       feedback_type="abuse")
    if challenge := _challenge(msg, found):  # before bounces: Boxbe's challenge is dressed as an RFC 3464 delay
        return replace(found, kind=Kind.AUTO_REPLY, why=challenge)
    signs = _bounce_signs(msg)
    auto = _auto_reply(msg, ours, found)
    verp_addressed = any(token_in(a, ours.return_path) for a in came_to)
    # RFC 3834 asks auto-replies for an empty envelope sender too: that sign, and the
    # VERP address that auto-replies go back to, make a bounce only without the auto
    # signs. Precedence (RFC 2076: bulk, list, junk) is not an auto-reply sign of RFC 3834:
    # a bounce that carries it is still read as one.
    weak = _header(msg, "Return-Path").strip() == "<>" or verp_addressed
    found = replace(found, to_verp=verp_addressed)
    if report == "delivery-status" or signs or (weak and (not auto or auto.startswith("Precedence"))):
        human = human_text(msg)
        failures = dsn_failures(msg, human)  # its delivery-status part, even inside a multipart/mixed
        how = "RFC 3464 report" if failures else ""
        if not failures:
            failures = heuristic_failures(raw, text, human) or listed_failures(human)
            how = "non-standard bounce" if failures else ""
        if not failures and (code := status_in_text(human)) and code[0] in "45":
            failures = [Failure("", code, said=read_diagnostic(human))]  # garbled: a status code but no recipient
        if report == "delivery-status" or signs or failures or not auto:
            why = how or ("bounce to a VERP address, report unreadable" if verp_addressed else "bounce, report unreadable")
            signs = signs or ("empty Return-Path" if weak and not verp_addressed else "")
            return replace(found, kind=Kind.BOUNCE, why=why + (f" ({signs})" if signs and not how else ""),
                           failures=tuple(failures))
    if _BOUNCE_SUBJECT.search(subject) and not (auto and auto.startswith(("our own", "Exchange out-of-office"))):
        human = human_text(msg)
        failures = heuristic_failures(raw, text, human) or listed_failures(human)
        if not failures and (code := status_in_text(human)) and code[0] in "45":
            failures = [Failure("", code, said=read_diagnostic(human))]
        if failures:
            return replace(found, kind=Kind.BOUNCE, why="non-standard bounce (its subject and text)", failures=tuple(failures))
    if ours.unsubscribe_mailto and ours.unsubscribe_mailto.lower() in came_to:
        # RFC 2369: mail to the List-Unsubscribe mailto asks to leave, whoever or whatever
        # wrote it; Apple Mail's is sent as an auto-reply (Auto-Submitted, X-Apple-Unsubscribe).
        return replace(found, kind=Kind.UNSUBSCRIBE, why=f"mail to {ours.unsubscribe_mailto}")
    if auto:
        return replace(found, kind=Kind.AUTO_REPLY, why=auto)
    return found


def _bounce_signs(msg: Message) -> str:
    """What marks a message as a bounce by its headers, whatever else it says, or ""."""
    from_header = _header(msg, "From")
    pairs = getaddresses([from_header])
    local = pairs[0][1].partition("@")[0].lower() if pairs else ""
    # RFC 3464 bounces come from the MTA's own name: "MAILER-DAEMON@host", and also the bare
    # "MAILER-DAEMON <>" of sendmail and Exchange, whatever the Return-Path
    if local in _BOUNCE_SENDERS or _BOUNCE_NAME.search(from_header):
        return f"from {clean_line(pairs[0][1] if pairs and pairs[0][1] else from_header)[:80]}"
    if re.search(r"<\s*>", from_header):  # the null sender (RFC 5321 4.5.5) written as the From
        return "from <>"
    if msg.get("X-Failed-Recipients") is not None:
        return "X-Failed-Recipients"
    if msg.get("X-MS-Exchange-Message-Is-Ndr") is not None:
        return "Exchange NDR"
    return ""


def _hotmail_complaint(msg: Message, text: str) -> tuple[str, ...] | None:
    """Hotmail's complaint feedback loop before ARF (staff@hotmail.com forwarding the mail a
    reader called junk, with X-HmXmrOriginalRecipient naming them): its recipients, or None."""
    if "x-hmxmroriginalrecipient" not in text[:200_000].lower() and _from(msg) != "staff@hotmail.com":
        return None
    named = re.findall(r"^X-HmXmrOriginalRecipient:\s*<?([^\s<>]+@[^\s<>]+)>?", text[:200_000], re.I | re.M)
    return tuple(dict.fromkeys(a.lower() for a in named))


def _challenge(msg: Message, found: Sorted) -> str:
    """Why the message is a challenge-response system's "prove you are a sender", or "":
    Bluebottle marks its challenges with X-Bluebottle-Request, Boxbe sends its own (an RFC
    3464 report of a 4.7.0 delay) from noreply@boxbe.com; others say so in the subject."""
    if msg.get("X-Bluebottle-Request") is not None or found.sender == "noreply@boxbe.com":
        return "challenge-response"
    if _CHALLENGE.search(found.subject):
        return "challenge-response"
    return ""


def _auto_reply(msg: Message, ours: Ours, found: Sorted) -> str:
    """Why the message is an automatic one (RFC 3834 and its unofficial kin), or ""."""
    if ours.message_ids().fullmatch(found.message_id):
        return "our own newsletter came back"
    submitted = _header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in _AUTO_HEADERS:
        if msg.get(name) is not None:
            return f"{name} header"
    if _EXCHANGE_OOF.search(found.subject):
        return "Exchange out-of-office subject"
    replied_to = _header(msg, "In-Reply-To") + " " + _header(msg, "References")
    if ours.message_ids().search(replied_to) and _OUT_OF_OFFICE.search(found.subject):
        return "out-of-office reply to our newsletter"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    return ""


def _header(msg: Message, name: str) -> str:
    """A header's value as text, its RFC 2047 words decoded; as written when they cannot be."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(value)  # a Header object when the header held bytes that are not ASCII
        return str(make_header(decode_header(text))) if "=?" in text else text
    except Exception:  # noqa: BLE001 - an unknown charset, a broken encoded word: the text as written will do
        return _raw(msg, name)


def _raw(msg: Message, name: str) -> str:
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), "")
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if isinstance(raw, str) else str(raw)


def _addresses(msg: Message, name: str) -> list[str]:
    values = [str(v) for v in msg.get_all(name) or []]
    return [a.lower() for _, a in getaddresses(values) if "@" in a]


def _from(msg: Message) -> str:
    found = _addresses(msg, "From")
    return found[0] if found else ""


def _verp_addresses(text: str, ours: Ours) -> list[str]:
    """VERP addresses quoted anywhere (the original's Return-Path, X-Postfix-Sender, ...)."""
    if not ours.return_path:
        return []
    local, _, domain = ours.return_path.rpartition("@")
    pattern = re.escape(local) + r"\+[0-9a-z-]{1,40}@" + re.escape(domain)
    return [m.group(0) for m in re.finditer(pattern, text, re.I)]
