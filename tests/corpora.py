"""Real mail written by other people (../shared/corpora, beside the clone): every file run
through the entry points `digest inbox` uses, and the figures issue 20 sets goals for.
Shared by tests/test_corpora.py (which asserts the goals) and bench/corpora.py (which
prints them). The files are read where they are, never copied: see that folder's README
for their sources and licences.

The labels are each project's own (expected.json). Reading them:
- bounceparser: kind, addresses, hard (True/False; None when not a bounce);
- flufl-bounce: kind, addresses, transient (True: a delay or soft failure);
- the reply parsers: the visible reply text their library returns. The reader's own words
  are that text without its ">"-quoted lines and the "... wrote:" line above them (the
  github library keeps an interleaved quote visible; the reader did not write it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from digest.core.returns import Kind, Ours, Sorted, sort_message

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
BOUNCE_SETS = ("bounceparser", "flufl-bounce")
REPLY_SETS = ("github-email_reply_parser", "zapier-email-reply-parser")
OURS = Ours("newsletter.example", "", "")
Judge = Callable[[Sorted], str]           # "hard" or "soft": what the inbox makes of a bounce
Trim = Callable[[bytes], str]             # the question text the intake keeps of a mail


def corpora_root(start: Path | None = None) -> Path | None:
    """The shared corpora beside the clone (CI puts shared/ there too), or None."""
    root = CORPORA if start is None else start
    return root if (root / "README.md").is_file() else None


@dataclass
class Figures:
    """The counts behind each goal; `misses` names the files behind each shortfall."""

    bounces: int = 0
    bounces_seen: int = 0
    with_recipient: int = 0
    recipient_found: int = 0
    soft: int = 0
    soft_as_hard: int = 0
    labelled: int = 0
    agreeing: int = 0
    auto: int = 0
    auto_seen: int = 0
    auto_as_question: int = 0
    ordinary: int = 0
    ordinary_as_bounce: int = 0
    replies: int = 0
    words_kept: int = 0
    exact: int = 0
    emptied: int = 0
    misses: dict[str, list[str]] = field(default_factory=dict)

    def miss(self, what: str, name: str) -> None:
        self.misses.setdefault(what, []).append(name)

    def lines(self) -> list[str]:
        def pct(n: int, of: int) -> str:
            return f"{n}/{of} ({100 * n / of:.1f}%)" if of else "0/0"

        return [
            f"bounce recognised as one         {pct(self.bounces_seen, self.bounces)}   goal >= 99%",
            f"its failed recipient found       {pct(self.recipient_found, self.with_recipient)}   goal >= 95%",
            f"soft taken as hard               {pct(self.soft_as_hard, self.soft)}   goal <= 5%",
            f"hard/soft agreeing with corpus   {pct(self.agreeing, self.labelled)}   goal >= 90%",
            f"auto-replies recognised          {pct(self.auto_seen, self.auto)}   goal >= 95%",
            f"auto-replies taken as questions  {pct(self.auto_as_question, self.auto)}   goal 0",
            f"ordinary mail taken as bounce    {pct(self.ordinary_as_bounce, self.ordinary)}   goal 0",
            f"replies: reader's words all kept {pct(self.words_kept, self.replies)}   goal >= 98%",
            f"replies: exactly reader's words  {pct(self.exact, self.replies)}   goal >= 80%",
            f"replies emptied                  {pct(self.emptied, self.replies)}   goal 0",
        ]


def _labels(root: Path, name: str) -> list[dict[str, object]]:
    data = json.loads((root / name / "expected.json").read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def _soft_label(name: str, label: dict[str, object]) -> bool | None:
    """True: the corpus calls the failure soft; False: hard; None: it does not say."""
    if name == "bounceparser":
        return None if label.get("hard") is None else not label["hard"]
    return None if label.get("transient") is None else bool(label["transient"])


def _as_mail(body: str) -> bytes:
    """A reply corpus file (a body only) as the mail a reader sends to the questions address."""
    head = ("From: A Reader <reader@readers.example>\nTo: questions@newsletter.example\n"
            "Subject: Re: The Wise Job Search\nMessage-ID: <reply@readers.example>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
    return (head + body).encode("utf-8")


def _words(text: str) -> list[str]:
    return text.split()


def _readers_words(expected: str) -> str:
    """The visible text without what the reader's mail program wrote for them: the quoted
    lines and the "... wrote:" line that introduces them."""
    return "\n".join(line for line in expected.splitlines()
                     if not line.lstrip().startswith(">") and not line.rstrip().endswith("wrote:"))


def measure(root: Path, judge: Judge, trim: Trim, sort: Callable[[bytes, Ours], Sorted] = sort_message) -> Figures:
    """Every corpus file through `sort` (and `judge`, `trim`): the figures."""
    fig = Figures()
    for name in BOUNCE_SETS:
        for label in _labels(root, name):
            file = f"{name}/{label['file']}"
            found = sort((root / name / str(label["file"])).read_bytes(), OURS)
            kind = label.get("kind")
            if kind == "bounce":
                fig.bounces += 1
                if found.kind is not Kind.BOUNCE:
                    fig.miss("bounce not recognised", file)
                    continue
                fig.bounces_seen += 1
                wanted = {str(a).lower() for a in label.get("addresses") or [] if "@" in str(a)}
                if wanted:
                    fig.with_recipient += 1
                    if wanted <= {a for f in found.failures for a in (f.address, f.also) if a}:
                        fig.recipient_found += 1
                    else:
                        fig.miss("recipient not found", file)
                soft = _soft_label(name, label)
                if soft is not None:
                    fig.labelled += 1
                    hard = judge(found) == "hard"
                    fig.agreeing += hard != soft
                    if hard == soft:
                        fig.miss("hard/soft disagrees", file)
                    if soft:
                        fig.soft += 1
                        fig.soft_as_hard += hard
            elif kind in ("auto-reply", "challenge"):
                # a challenge (Boxbe, Bluebottle: "confirm you are human") is an automatic reply too
                fig.auto += 1
                fig.auto_seen += found.kind is Kind.AUTO_REPLY
                fig.auto_as_question += found.kind is Kind.UNSORTED
                if found.kind is not Kind.AUTO_REPLY:
                    fig.miss("auto-reply not recognised", file)
            elif kind == "not-bounce":
                fig.ordinary += 1
                if found.kind is Kind.BOUNCE and found.failures:
                    fig.ordinary_as_bounce += 1
                    fig.miss("ordinary mail taken as a bounce", file)
    for name in REPLY_SETS:
        for label in _labels(root, name):
            file = f"{name}/{label['file']}"
            raw = _as_mail((root / name / str(label["file"])).read_text(encoding="utf-8", errors="replace"))
            fig.ordinary += 1
            found = sort(raw, OURS)
            if found.kind is Kind.BOUNCE:
                fig.ordinary_as_bounce += 1
                fig.miss("ordinary mail taken as a bounce", file)
            fig.replies += 1
            got = trim(raw)
            wanted = _readers_words(str(label["expected"]))
            if not got.strip():
                fig.emptied += 1
                fig.miss("reply emptied", file)
            rest = _words(got)
            kept = True
            for word in _words(wanted):
                if word in rest:
                    rest.remove(word)
                else:
                    kept = False
            fig.words_kept += kept
            if not kept:
                fig.miss("reader's words lost", file)
            if re.sub(r"\s+", " ", got).strip() == re.sub(r"\s+", " ", wanted).strip():
                fig.exact += 1
            else:
                fig.miss("not exactly the reader's words", file)
    return fig


def inbox_judge(found: Sorted) -> str:
    """What the inbox makes of a bounce: "hard" (bounced at once) or "soft" (counted)."""
    return "hard" if found.hard else "soft"


def inbox_trim(raw: bytes) -> str:
    """The question text the intake keeps of a reader's mail (jobs/intake.py's path)."""
    from digest.core.mailview import view_message
    from digest.core.questions import clean_question_text

    view = view_message(raw)
    return clean_question_text(view.text) if view.text.strip() else clean_question_text(view.html, is_html=True)
