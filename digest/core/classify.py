"""What an SMTP reply means for one delivery. Pure core: no network, no database, no
clock, no file writes.

RFC 5321 reply classes: 2xx accepted; 4xx transient; 5xx permanent, except 552 to RCPT,
which RFC 5321 says to treat as 452. Only 5.1.x (bad mailbox/address) and 5.2.1 (mailbox
disabled) blame the address; 5.7.x (policy, rate limit, authentication) is the sender's
problem and pauses the send without touching the subscriber. A connection lost after the
final dot leaves the message in doubt: it may have been delivered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .models import DeliveryStatus


class Outcome(Enum):
    SENT = "sent"
    DEFERRED = "deferred"      # try again later (this run or the next)
    FAILED = "failed"          # permanent for this message
    BOUNCED = "bounced"        # permanent, and the address is bad: the subscriber is marked bounced
    PAUSE = "pause"            # the server refuses us: stop sending, blame no one
    IN_DOUBT = "in_doubt"      # maybe delivered: never re-sent automatically


# How each outcome is recorded in the ledger. A bounce also marks the subscriber bounced;
# a pause also stops the run; a deferral past the last attempt is failed instead.
STATUS_OF: dict[Outcome, DeliveryStatus] = {
    Outcome.SENT: DeliveryStatus.SENT,
    Outcome.DEFERRED: DeliveryStatus.DEFERRED,
    Outcome.FAILED: DeliveryStatus.FAILED,
    Outcome.BOUNCED: DeliveryStatus.FAILED,
    Outcome.PAUSE: DeliveryStatus.DEFERRED,
    Outcome.IN_DOUBT: DeliveryStatus.IN_DOUBT,
}


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reconnect: bool = False   # the connection cannot be used any more


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    m = _ENHANCED.search(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def classify(code: int, text: str, *, stage: str, after_data: bool = False) -> Verdict:
    """The verdict for a reply `code`/`text` to command `stage` (MAIL, RCPT, DATA, CONNECT)."""
    if after_data:
        return Verdict(Outcome.IN_DOUBT, reconnect=True)
    if code == 250 or code == 251:
        return Verdict(Outcome.SENT)
    if code == 0:  # no reply at all: a timeout or a dropped connection before the final dot
        return Verdict(Outcome.DEFERRED, reconnect=True)
    if code == 421:
        return Verdict(Outcome.DEFERRED, reconnect=True)
    if 400 <= code < 500:
        return Verdict(Outcome.DEFERRED)
    if code == 552 and stage == "RCPT":
        return Verdict(Outcome.DEFERRED)
    if 500 <= code < 600:
        enhanced = enhanced_code(text)
        if enhanced and enhanced[1] == 7:
            return Verdict(Outcome.PAUSE)
        if enhanced and (enhanced[1] == 1 or enhanced[1:] == (2, 1)):
            return Verdict(Outcome.BOUNCED)
        if stage in ("MAIL", "CONNECT"):
            return Verdict(Outcome.PAUSE)  # the server refuses the sender, not this address
        return Verdict(Outcome.FAILED)
    return Verdict(Outcome.DEFERRED, reconnect=True)  # a reply that makes no sense
