"""Readers' questions: the record, its states and moves, cleaning what a reader wrote, the
duplicate key. Pure core: no network, no database, no clock (times come in as arguments),
no file writes.

States: new -> accepted -> answered, or new/accepted -> declined; answered is final (a
declined question can still be accepted: the author changed their mind). Whatever comes
in (a form, a Contact-form mail, a reply) is cleaned the same way: quoted replies and
signatures cut, HTML reduced to its text, lines kept, at most MAX_QUESTION_CHARS.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import nh3

from .depth import flatten_deep
from .errors import InputError
from .sanitize import clean_line
from .subscriptions import clean_name, normalise_email

NEW, ACCEPTED, ANSWERED, DECLINED = "new", "accepted", "answered", "declined"
QUESTION_STATUSES = (NEW, ACCEPTED, ANSWERED, DECLINED)
SOURCES = ("web", "contact-form", "mail", "reply")
# Whose acknowledgements share [question] acknowledge_per_hour. Mail from strangers (a
# Contact-form notification, a mail to [question] email, a reply no token or Message-ID ties
# to a subscriber) can be forged by anyone in any number: it gets one budget, and the /ask
# page (origin-checked, rate-limited per client) and subscribers' replies get another, so a
# flood of forged mail never holds back a real asker's acknowledgement.
BUDGETS = ("known", "strangers")
KNOWN_SOURCES = ("web",)


def acknowledgement_budget(source: str, subscriber_id: int | None) -> str:
    """Which hourly budget a question's acknowledgement counts against (BUDGETS)."""
    return "known" if subscriber_id is not None or source in KNOWN_SOURCES else "strangers"
MAX_QUESTION_CHARS = 5000
MAX_SOURCE_CHARS = 200_000  # what cleaning reads of a question's text or HTML
MAX_DISPLAY_NAME = 60
MAX_PARAPHRASE = 1000

# action -> (the states it may start from, the state it leads to)
_MOVES: dict[str, tuple[frozenset[str], str]] = {
    "accept": (frozenset({NEW, ACCEPTED, DECLINED}), ACCEPTED),
    "decline": (frozenset({NEW, ACCEPTED}), DECLINED),
    "answer": (frozenset({ACCEPTED}), ACCEPTED),  # the URL waits for its post; the send marks it answered
}


@dataclass(frozen=True, slots=True)
class NewQuestion:
    """A question as intake hands it to the store: cleaned, with its duplicate key."""

    email: str
    email_key: str
    name: str
    text: str
    source: str
    consent_to_quote: bool
    display_name: str
    dup_key: str
    message_id: str | None = None
    subscriber_id: int | None = None


@dataclass(frozen=True, slots=True)
class Question:
    """A question as kept. `text` and `name` are emptied [question] keep_days after the end."""

    id: int
    email: str
    email_key: str
    name: str
    text: str
    source: str
    status: str
    consent_to_quote: bool
    display_name: str
    created_at: datetime
    paraphrase: str = ""
    subscriber_id: int | None = None
    accepted_at: datetime | None = None
    declined_at: datetime | None = None
    answered_at: datetime | None = None
    answer_url: str = ""
    answer_post_id: str = ""
    answer_title: str = ""
    acknowledged_at: datetime | None = None
    noticed_at: datetime | None = None
    message_id: str | None = None
    featured_key: str | None = None
    dup_key: str = ""   # a hash of the asker's address and words: its acknowledgement's Message-ID derives from it


def check_move(question: Question, action: str) -> str:
    """The state `action` leads `question` to, or InputError saying why it cannot."""
    starts, ends = _MOVES[action]
    if question.status not in starts:
        why = "an answered question is final" if question.status == ANSWERED else f"it is {question.status}"
        need = " (accept it first: digest questions accept ID)" if action == "answer" and question.status != ANSWERED else ""
        done = {"accept": "accepted", "decline": "declined", "answer": "linked to an answer"}[action]
        raise InputError(f"question {question.id} cannot be {done}: {why}{need}")
    return ends


def new_question(*, email: str, name: str, text: str, source: str, consent_to_quote: bool = False,
                 display_name: str = "", is_html: bool = False, message_id: str | None = None,
                 subscriber_id: int | None = None) -> NewQuestion:
    """Check and clean one incoming question; InputError for an unusable address or an empty text."""
    if source not in SOURCES:
        raise ValueError(f"unknown question source {source!r}")
    address, key = normalise_email(email)
    cleaned = clean_question_text(text, is_html=is_html)
    if not cleaned:
        raise InputError("the question is empty (after quoted text and signatures were taken out)")
    mid = clean_line(message_id or "")[:200] or None
    return NewQuestion(email=address, email_key=key, name=clean_name(name), text=cleaned, source=source,
                       consent_to_quote=bool(consent_to_quote), display_name=clean_line(display_name)[:MAX_DISPLAY_NAME],
                       dup_key=duplicate_key(key, cleaned), message_id=mid, subscriber_id=subscriber_id)


def duplicate_key(email_key: str, text: str) -> str:
    """The same words from the same address are one question, however they were spaced or cased."""
    words = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(f"{email_key}\n{words}".encode()).hexdigest()


# ---- cleaning ----

_SIGNATURE = re.compile(r"^--\s?$")
_WROTE_START = re.compile(r"^\s*(on|le|am|el|il|op|em|den|dne|w dniu|в)\s.{0,300}$", re.I)
_WROTE_END = re.compile(r"(wrote|a écrit|schrieb|escribió|ha scritto|schreef|escreveu|skrev|napisał|kirjoitti|написал)\s*:\s*$",
                        re.I)
_CUT_HERE = re.compile(r"^\s*(-{2,}\s*(original message|forwarded message|ursprüngliche nachricht|message d'origine|"
                       r"mensaje original|messaggio originale|oorspronkelijk bericht)\s*-{2,}|_{10,}|-{10,})\s*$", re.I)
# Outlook's (and Exchange's) reply header: "From:" then "Sent:"/"Date:", "To:", "Subject:"
# lines, written bold ("*From:*") in its plain text, in the languages Outlook ships.
_OUTLOOK_FROM = re.compile(r"^\s*\*?(from|von|de|da|van|från|od|fra|lähettäjä)\s*:\*?\s", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|à|objet|enviado|fecha|"
                           r"para|asunto|inviato|oggetto|verzonden|aan|onderwerp|skickat|till|ämne|wysłano|do|temat|"
                           r"sendt|emne|lähetetty|vastaanottaja|aihe)\s*:", re.I)
# The default signatures of mobile mail programs (iOS Mail, BlackBerry, Android's), and a
# sign-off of a dash and a name: dropped when they end the mail, as email_reply_parser does.
_MOBILE = re.compile(r"^\s*(sent from my [\w ]{1,40}|get outlook for (ios|android)|sent from (mail|yahoo mail) for [\w ]{1,30})\s*$",
                     re.I)
_SIGN_OFF = re.compile(r"^\s*-\s?[A-Z][\w.' ]{0,40}$")
_BLOCKS = re.compile(r"<\s*(br|/p|/div|/li|/h[1-6]|/tr|/pre|/blockquote|p|div|li|tr)\b[^>]*>", re.I)
_BLANKS = re.compile(r"\n{3,}")


def clean_question_text(text: str, *, is_html: bool = False) -> str:
    """What the reader wrote, as plain text: HTML reduced to text, quoted replies ("> ..."
    lines, "On ... wrote:" and Outlook's "From:/Sent:/To:/Subject:" block with what
    follows them unquoted), signatures (after "-- ", a mobile program's "Sent from my ...")
    and control characters taken out, at most MAX_QUESTION_CHARS characters. Never empty
    when the mail held words: if taking the quotes out leaves nothing, the text is kept
    whole (a reply written below the quote)."""
    # A question by mail is as long as [inbox] max_message_bytes lets it be (2 MB), and
    # anyone can send one: what is read is bounded, the reader's own words come first.
    text = text[:MAX_SOURCE_CHARS]
    if is_html:
        text = html_to_text(text)
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = ["".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Cs") else c for c in line).rstrip()
             for line in text.split("\n")]
    kept = _unquoted(lines)
    worded = sum(1 for x in kept if x.strip())  # kept up to date: counting for each line popped was quadratic
    while kept and (not kept[-1].strip() or _MOBILE.match(kept[-1]) or _SIGN_OFF.match(kept[-1])):
        if kept[-1].strip():
            if worded == 1:
                break  # the only line left: the reader's words, whatever they look like
            worded -= 1
        kept.pop()
    cleaned = _BLANKS.sub("\n\n", "\n".join(kept)).strip()
    if not cleaned:  # never empty a reply: words written below a quote's header are theirs
        ended = next((n for n, x in enumerate(lines) if _SIGNATURE.match(x)), len(lines))
        cleaned = _BLANKS.sub("\n\n", "\n".join(x for x in lines[:ended] if not x.lstrip().startswith(">"))).strip()
    return cleaned[:MAX_QUESTION_CHARS].rstrip()


def _unquoted(lines: list[str]) -> list[str]:
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _SIGNATURE.match(line) or _CUT_HERE.match(line) or _outlook_header(lines, i):
            break
        intro = _quote_intro(lines, i)
        if intro:
            following = next((x for x in itertools.islice(lines, i + intro, None) if x.strip()), "")
            if not following.lstrip().startswith(">"):
                break  # an unquoted original below its "On ... wrote:" (Outlook): the rest is theirs
            i += intro
            continue
        if not line.lstrip().startswith(">"):
            kept.append(line)
        i += 1
    return kept


def _outlook_header(lines: list[str], i: int) -> bool:
    """True when line i opens Outlook's reply header: "From:" and two more of its fields."""
    if not _OUTLOOK_FROM.match(lines[i]):
        return False
    return sum(1 for x in lines[i + 1:i + 6] if _OUTLOOK_NEXT.match(x)) >= 2


def _quote_intro(lines: list[str], i: int) -> int:
    """How many lines an "On <date>, <someone> wrote:" starting at line i takes (0: none);
    mail programs wrap it over two or three lines when the name or address is long."""
    if not _WROTE_START.match(lines[i]):
        return 0
    for n in range(3):
        if i + n < len(lines) and _WROTE_END.search(lines[i + n]) and len(lines[i + n]) < 300:
            return n + 1
    return 0


def html_to_text(fragment: str) -> str:
    """The text of an HTML mail or form: blocks become lines, quoted parts (blockquote) and
    code go with their content, entities are decoded."""
    safe = nh3.clean(flatten_deep(fragment), tags={"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                                     "tr", "td", "pre"},
                     clean_content_tags={"script", "style", "blockquote", "head", "title", "template"},
                     attributes={})
    lined = _BLOCKS.sub("\n", safe)
    return html.unescape(nh3.clean(lined, tags=set()))


def scrub(text: str, *, email: str, name: str) -> str:
    """`text` with the asker's address, any other address, and the asker's name taken out:
    for quoting a question whose asker agreed to be quoted, never identified."""
    out = re.sub(r"[\w.+%'-]+@[\w-]+(?:\.[\w-]+)+", "[address]", text)
    for secret in (email, name):
        if len(secret.strip()) >= 2:
            out = re.sub(re.escape(secret.strip()), "[name]" if secret is name else "[address]", out, flags=re.I)
    return out


@dataclass(frozen=True)
class QuestionStats:
    """For `digest status`: questions kept, answered, and the median days from asking to answer."""

    received: int
    answered: int
    median_days: float | None
