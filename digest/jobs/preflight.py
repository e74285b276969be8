"""The checks a send runs before anyone is mailed, and `digest preview`, the author's proof
and the desk's preview show: those of `digest doctor` that need no network (the headers and
size of a made-up reader's copy).
A job (layer 3): SpamAssassin, when asked for, runs through the function it is handed
(adapters/spamassassin.py, by the wiring); prints nothing.

A problem stops the send (DeliverabilityError, exit 10) before any message goes out; a
warning is logged ("digest.send") and returned for the command to print. SpamAssassin is
left to `digest doctor`: it takes a second or two a run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..core.compose import preview_recipient
from ..core.config import Publication
from ..core.deliverability import judge_headers, judge_size, judge_spam, parse_spamassassin
from ..core.desk import check_lines
from ..core.errors import DeliverabilityError
from ..core.message import MessageTemplate, build_message, make_message_id, personalise, sender_address, sender_domain
from ..core.sign import Signer
from ..core.verdict import Check, Level, ok, problem, problems


def _probe_message(pub: Publication, template: MessageTemplate, number: int | None, now: datetime) -> tuple[bytes, str]:
    """The message a made-up reader would get, and its HTML."""
    recipient = preview_recipient(pub, sender_address(pub.newsletter.from_), number)
    message = build_message(template, recipient, message_id=make_message_id(sender_domain(pub.newsletter.from_),
                                                                             "doctor"), date=now)
    return message, personalise(template.html, recipient, as_html=True)


def offline_checks(pub: Publication, template: MessageTemplate, number: int | None, now: datetime, *,
                   signer: Signer | None = None, spam: Callable[[bytes], str | None] | None = None) -> list[Check]:
    """The checks that need no network: the headers and size of a made-up reader's copy;
    with `signer`, that the DKIM key signs it (SpamAssassin then scores the signed copy);
    SpamAssassin's local rules too with `spam`, its report of a message (None: not
    installed; a second or two)."""
    message, html = _probe_message(pub, template, number, now)
    checks = judge_headers(message, sender_domain(pub.newsletter.from_), mailto=pub.newsletter.unsubscribe_mailto)
    checks.append(judge_size(len(html.encode("utf-8"))))
    if signer is not None:
        try:
            message = signer.sign(message)
            checks.append(ok("DKIM key", f"{pub.newsletter.dkim_key_file} signs the issue"))
        except Exception as exc:  # noqa: BLE001 - dkimpy lets a broken key's errors through as they come
            checks.append(problem("DKIM key", f"{pub.newsletter.dkim_key_file} cannot sign: {exc!r}",
                                  "point [newsletter] dkim_key_file at the PEM file of the private key"))
    if spam is not None:
        output = spam(message)
        if output is not None:
            checks.append(judge_spam(parse_spamassassin(output)))
    return checks


def gate(pub: Publication, template: MessageTemplate | None, number: int | None, now: datetime, *,
         unfinished: int | None = None) -> tuple[str, ...]:
    """Before a send: DeliverabilityError naming the first problem and carrying them all
    (nobody is mailed; jobs/author_mail.py tells the author; `unfinished`: the recorded issue
    about to go on, which some readers may have already, the error says so); else the
    warnings, returned: `digest send` prints them and `digest serve` logs them with the
    send's others (desk.py), each once. (A DKIM key that cannot sign is found by the
    Deliverer's own preflight, on a made-up reader, once the issue is recorded.)"""
    if template is None:
        return ()
    checks = offline_checks(pub, template, number, now)
    found = problems(checks)
    if found:
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        stopped = "not sent, nobody was mailed" if unfinished is None else \
            f"issue {unfinished} did not go on, none of its readers still waiting for it was mailed"
        raise DeliverabilityError(f"{stopped}: {first.name}: {first.finding}{more}",
                                  hint=f"{first.fix}; digest doctor lists every check", checks=tuple(found),
                                  unfinished=unfinished)
    return tuple(f"{c.name}: {c.finding} ({c.fix})" for c in checks if c.level is Level.WARNING)


def before_it_goes(pub: Publication, template: MessageTemplate | None, number: int | None, now: datetime) -> list[str]:
    """What `gate` would find in this issue, in the author's words with each fix (core/desk.py:
    check_lines), for the proof and the desk's preview; [] when all is ok. Logs nothing."""
    return [] if template is None else check_lines(offline_checks(pub, template, number, now))
