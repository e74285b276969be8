"""Readers' choices on the web: what the preferences page and the unsubscribe page do with a
choice (frequency, a pause, "I got the job!", coming back, a new address), and the two
pages its mails link to: GET/POST /address/{token} (a new address confirms the move) and
GET/POST /comeback/{token} (the end of "I got the job!"). A front door: HTTP in, the store
out; mail goes only through the hook `digest serve` hands the app (jobs/mail.py
choice_mailer). GET changes nothing: each link opens a page with one button.

A new address: the reader's page answers the same whether or not that address is on the
list. The new address gets either the link that moves the subscription, or, when it is
already on the list, a word saying so (core/choice_mail.py); once per [web]
confirm_resend_minutes per mailbox, and per subscriber. The old address gets one notice,
when the move is done. "I got the job!" mails its congratulation once per [web]
confirm_resend_minutes too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..adapters.choices import Choices
from ..adapters.store import Store
from ..core.address import email_key, mailbox_key
from ..core.audience import JOB, PAUSE_WEEKS
from ..core.config import Config
from ..core.errors import InputError, TokenError
from ..core.models import Subscriber
from ..core.subscriptions import normalise_email
from ..core.tokens import Links, TokenData, read_token

Page = Callable[..., HTMLResponse]
ChoiceMailer = Callable[[str, Subscriber, str, datetime, str], None]


@dataclass(frozen=True)
class Outcome:
    """What a choice did: the line the page shows, and a mail to send after answering."""

    said: str
    mail: tuple[Any, ...] | None = None  # the choice mailer's arguments


def apply_choice(config: Config, store: Store, sub: Subscriber, form: Any, *, how: str, now: datetime) -> Outcome | None:
    """Apply the choice the form names in "do" (frequency, pause, job, resume, address); None
    when it names none. Runs in a worker thread."""
    choices = Choices(store)
    action = str(form.get("do", ""))
    if action == "frequency" or action == "monthly":
        frequency = "monthly" if action == "monthly" else str(form.get("frequency", ""))
        if frequency not in config.newsletter.frequencies:
            return Outcome("That choice is not offered.")
        choices.set_frequency(sub.id, frequency, how=how, now=now)
        return Outcome("You will get one issue a month, with every post since your last." if frequency == "monthly"
                       else "You will get every weekly issue.")
    if action == "pause":
        try:
            weeks = int(str(form.get("weeks", "")))
        except ValueError:
            weeks = 0
        if weeks not in PAUSE_WEEKS:
            return Outcome("That pause is not offered.")
        paused = choices.pause(sub.id, weeks=weeks, how=how, now=now)
        until = paused.paused_until if paused and paused.paused_until else now
        return Outcome(f"Paused for {weeks} weeks: your next issue is the first after {until.day} {until:%B}. "
                       "It will say what you missed.")
    if action == "job":
        already = sub.pause_reason == JOB  # pressed twice: one congratulation is enough
        paused = sub if already else choices.pause(sub.id, weeks=None, how=how, now=now)
        # And one per window, however often job and resume are pressed in turn: the first
        # mail's link (it never expires) still brings the reader back.
        minutes = config.web.confirm_resend_minutes
        mail = ("job", paused, paused.email, now, "") if paused is not None and not already and (
            minutes <= 0 or store.hit_rate("job-mail", str(sub.id), now=now, window=timedelta(minutes=minutes),
                                           limit=1)) else None
        return Outcome("Congratulations on the new job! Nothing more comes from us until you come back: "
                       "the link to do that is in the mail we just sent you.", mail)
    if action == "resume":
        choices.resume(sub.id, how=how, now=now)
        return Outcome("Welcome back: your newsletter starts again with the next issue.")
    if action == "address":
        return _new_address(config, store, sub, str(form.get("email", ""))[:320], now)
    return None


def _new_address(config: Config, store: Store, sub: Subscriber, typed: str, now: datetime) -> Outcome:
    try:
        address, key = normalise_email(typed)
    except InputError:
        return Outcome("Please enter a valid email address.")
    if key == email_key(sub.email):
        return Outcome("That is the address your newsletter goes to now.")
    said = (f"We sent a message to {address}. Open the link in it to move your subscription there; "
            "until then nothing changes.")
    minutes = config.web.confirm_resend_minutes
    if minutes > 0 and not (store.hit_rate("address", str(sub.id), now=now, window=timedelta(minutes=minutes), limit=1)
                            and store.hit_rate("mailbox", mailbox_key(address), now=now,
                                               window=timedelta(minutes=minutes), limit=1)):
        return Outcome(said)  # the same words: one mail per window, and the page tells nothing of the list
    if store.find(key) is not None:
        return Outcome(said, ("address-taken", sub, address, now, ""))
    requested = Choices(store).request_address(sub.id, address, now=now)
    if requested is None:
        return Outcome("Only a confirmed subscription can move to a new address.")
    moved, nonce = requested
    return Outcome(said, ("address", moved, address, now, nonce))


def made_before_a_move(store: Store, subscriber_id: int, data: TokenData) -> bool:
    """Whether the link was made before the subscription last moved to a new address: it
    came in a mail to the old one, whose mailbox must neither see nor change the new one's."""
    moves = [c.at for c in Choices(store).trail(subscriber_id) if c.kind == "address"]
    return bool(moves) and data.issued_at <= max(moves).timestamp()


def choice_routes(config: Config, store: Store, links: Links, *, page: Page, invalid_link: Callable[[], Response],
                  origin_ok: Callable[[Request], bool], clock: Callable[[], datetime],
                  mail: ChoiceMailer | None) -> list[Route]:
    """The pages a choice's mail links to: a new address's confirmation, and coming back."""

    def refused() -> Response:
        return page("message.html.j2", 403, heading="Not allowed", text="This form cannot be sent from another site.")

    async def one_button(request: Request, purpose: str, act: Callable[[TokenData], Awaitable[Response]], *,
                         heading: str, text: str, button: str, max_age: timedelta | None = None) -> Response:
        """A choice's link: a page with one button (GET changes nothing: mail scanners open
        links), whose POST, from this site, does `act` with the link's signed data."""
        try:
            data = read_token(links.secret, request.path_params["token"], purpose, now=clock(), max_age=max_age)
        except TokenError:
            return invalid_link()
        if request.method != "POST":
            return page("choice.html.j2", action=str(request.url.path), heading=heading, text=text, button=button)
        if not origin_ok(request):
            return refused()
        return await act(data)

    async def move_address(data: TokenData) -> Response:
        sub = await run_in_threadpool(store.get, data.subscriber_id)
        if sub is None or not sub.new_email:
            return invalid_link()
        now = clock()
        done = await run_in_threadpool(Choices(store).confirm_address, sub.id, data.nonce, email_key(sub.new_email),
                                       now=now)
        if done.taken:
            return page("message.html.j2", heading="Nothing was moved",
                        text="This address is already on our list, so the other subscription was not moved here.")
        if not done.moved or done.sub is None:
            return invalid_link()
        response = page("message.html.j2", heading="Done",
                        text=f"The newsletter of {config.blog.name} now comes to this address.")
        if mail is not None:
            response.background = BackgroundTask(mail, "address-moved", done.sub, done.old_email, now, "")
        return response

    async def resume(data: TokenData) -> Response:
        sub = await run_in_threadpool(Choices(store).resume, data.subscriber_id, how="web", now=clock())
        if sub is None:
            return invalid_link()
        return page("message.html.j2", heading="Welcome back", text="Your newsletter starts again with the next issue.")

    async def address(request: Request) -> Response:
        return await one_button(
            request, "address", move_address, max_age=timedelta(hours=config.web.confirm_hours),
            heading="Move your subscription here?", button="Move my subscription here",
            text="Press the button and the newsletter, with your topics and other choices, comes to this address "
                 "from now on.")

    async def comeback(request: Request) -> Response:
        return await one_button(
            request, "comeback", resume, heading="Welcome back!", button="Start my newsletter again",
            text="Press the button and your newsletter starts again with the next issue, with the topics you had "
                 "chosen.")

    return [Route("/address/{token}", address, methods=["GET", "POST"]),
            Route("/comeback/{token}", comeback, methods=["GET", "POST"])]
