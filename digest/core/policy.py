"""Who may move a subscriber from which state to which, and on what evidence: one table
that the store, the delivery ledger, the inbox ledger, the questions store and the
subscribe decision (core/subscriptions.py) apply (their SQL only records).
Pure core: no network, no database, no clock, no file writes.

Two tables, in the manner of GNU Mailman's bounce rules (mailman/model/bounce.py), which
keep the policy in one place and let the database only count:

- MOVES: for each kind of evidence, the states a subscriber may be in for it to act and
  the state it moves them to. Evidence is what happened: a signed link followed, the
  author's command, a hard bounce, `[inbox] bounce_after` soft ones in a row, a spam
  complaint, an unsubscribe mail.
- ATTRIBUTION: whether a report that came back by mail may act, given how it was tied to
  a reader. A report is only a claim: anyone can send mail to the bounce or questions
  address. It acts in full only on evidence an outsider cannot make: the reader's own
  signed VERP address (core/verp.py), the reader's unguessable Message-ID (random, kept in
  the delivery ledger), or the signed token of the reader's List-Unsubscribe mailto
  (core/message.py). An address it merely names is "weak": with [newsletter] return_path
  (VERP) set, every real bounce reaches a signed address (or quotes the reader's
  Message-ID), so a weak one is recorded and counts for nothing, not even as one soft
  failure of `[inbox] bounce_after` (a forger could send one every week and so remove the
  reader after bounce_after weeks); without VERP it is the best evidence there is and acts
  as it did. A report that quotes a Message-ID in our form that is not one of ours does
  nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class Evidence(StrEnum):
    """What happened, as the table knows it."""

    LINK_CONFIRM = "link-confirm"          # the reader followed the confirmation link (signed, single use)
    AUTHOR_CONFIRM = "author-confirm"      # the author confirmed them by hand (`subscribers add --confirmed`, the desk)
    LINK_UNSUBSCRIBE = "link-unsubscribe"  # the signed unsubscribe link, or its RFC 8058 one-click POST
    AUTHOR_REMOVE = "author-remove"        # the author unsubscribed them by hand
    UNSUBSCRIBE_MAIL = "unsubscribe-mail"  # mail to [newsletter] unsubscribe_mailto, an ARF opt-out
    COMPLAINT = "complaint"                # an ARF abuse or fraud report, an old Hotmail-style complaint
    HARD_BOUNCE = "hard"                   # the address is bad for good (5.1.x, 5.2.1, "no such user", ...)
    SOFT_BOUNCES = "soft"                  # [inbox] bounce_after issues in a row came back soft
    ASKER_BOUNCE = "asker-bounce"          # a question's acknowledgement or answer notice failed for good
    SMTP_REFUSAL = "smtp-refusal"          # the reader's server refused the issue for good (5.1.x, 5.2.1: core/classify.py)
    SUBSCRIBE_FORM = "subscribe-form"      # the subscribe form again: the address must confirm (again)


@dataclass(frozen=True)
class Move:
    evidence: Evidence
    sources: tuple[State, ...]
    target: State
    how: str = ""          # what subscribers.confirmed_how / unsubscribed_how records


_OPEN = (State.PENDING, State.CONFIRMED)

MOVES: tuple[Move, ...] = (
    Move(Evidence.LINK_CONFIRM, (State.PENDING,), State.CONFIRMED, "link"),
    Move(Evidence.AUTHOR_CONFIRM, (State.PENDING,), State.CONFIRMED, "author"),
    Move(Evidence.LINK_UNSUBSCRIBE, _OPEN, State.UNSUBSCRIBED, "link"),
    Move(Evidence.AUTHOR_REMOVE, _OPEN, State.UNSUBSCRIBED, "cli"),
    Move(Evidence.UNSUBSCRIBE_MAIL, _OPEN, State.UNSUBSCRIBED, "mail"),
    Move(Evidence.COMPLAINT, _OPEN, State.UNSUBSCRIBED, "complaint"),
    Move(Evidence.HARD_BOUNCE, _OPEN, State.BOUNCED),
    Move(Evidence.SOFT_BOUNCES, _OPEN, State.BOUNCED),
    # A reader who only asked a question is not pending on the list: only the confirmed
    # subscriber of an address whose question mail failed for good is bounced with it.
    Move(Evidence.ASKER_BOUNCE, (State.CONFIRMED,), State.BOUNCED),
    Move(Evidence.SMTP_REFUSAL, (State.CONFIRMED,), State.BOUNCED),
    # Double opt-in: a new address (no state yet), one that left or one that bounced
    # starts again as pending; pending and confirmed readers stay as they are.
    Move(Evidence.SUBSCRIBE_FORM, (State.UNSUBSCRIBED, State.BOUNCED), State.PENDING),
)
_BY_EVIDENCE = {m.evidence: m for m in MOVES}


def move(evidence: Evidence) -> Move:
    """The one move `evidence` may make."""
    return _BY_EVIDENCE[evidence]


def sources(evidence: Evidence) -> tuple[str, ...]:
    """The states (as stored) from which `evidence` moves a subscriber."""
    return tuple(s.value for s in _BY_EVIDENCE[evidence].sources)


def allowed(evidence: Evidence, state: str) -> bool:
    return state in sources(evidence)


# ---- reports that come back by mail ----

class Tie(StrEnum):
    """How a report was tied to one reader, strongest first."""

    VERP = "via its VERP address"                 # it came to (or quotes) the reader's signed VERP address
    MESSAGE_ID = "via the Message-ID it quotes"   # the reader's unguessable Message-ID, as kept in the ledger
    SIGNED = "via its signed unsubscribe token"   # the token of the reader's List-Unsubscribe mailto
    ADDRESS = "via the address it names"          # an address we mailed: anyone can name it


STRONG = frozenset({Tie.VERP, Tie.MESSAGE_ID, Tie.SIGNED})

# ATTRIBUTION: (the tie is one an outsider cannot make, [newsletter] return_path is set) ->
# whether a report's evidence acts. With VERP on, every real bounce reaches a signed address
# or quotes the reader's Message-ID, so a weak tie is recorded and counts for nothing (not
# even one soft failure: they add up, and a forger can send one for every issue); without
# VERP the address is the best evidence there is.
ATTRIBUTION: dict[tuple[bool, bool], bool] = {
    (True, True): True,
    (True, False): True,
    (False, True): False,
    (False, False): True,
}
# The kinds of evidence a report by mail may carry; the rest come only by link or command.
BY_MAIL = frozenset({Evidence.HARD_BOUNCE, Evidence.SOFT_BOUNCES, Evidence.COMPLAINT, Evidence.UNSUBSCRIBE_MAIL})


def attributed(evidence: Evidence, tie: Tie, *, verp: bool) -> Evidence | None:
    """What a report claiming `evidence`, tied to a reader by `tie`, may do to them: the
    evidence it counts as, or None (nothing but a record)."""
    if evidence not in BY_MAIL:
        raise ValueError(f"{evidence} never comes by mail")
    return evidence if ATTRIBUTION[(tie in STRONG, verp)] else None
