"""GET/POST /preferences/{token}: a reader's topics, name and choices (how often, a pause,
"I got the job!", a new address: web/choices.py); POST
/preferences/{token}/renew: a fresh link by mail when theirs has expired. A front door: HTTP
in, the store out; the mail goes only through the hook `digest serve` hands the app
(jobs/mail.py preferences_link_mailer).

The link in each issue works for [web] preferences_days: a newsletter passed on keeps
letting its new reader change the settings (the name greets the subscriber in every
issue) for that long, not for ever. Past it, the page asks for the subscriber's address
and mails a fresh link there when the typed address is the one the link was made for,
and the subscriber is confirmed; the page answers the same, byte for byte, whatever is
typed. Each client address may ask [web] ip_limit_per_hour times an hour, and each
subscriber gets at most one fresh link per [web] confirm_resend_minutes. A link made
before the subscription moved to a new address answers as an expired one: it came to the
old address.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..adapters.store import Store
from ..core.address import email_key
from ..core.audience import PAUSE_WEEKS, pause_label
from ..core.config import Config
from ..core.errors import InputError, TokenError
from ..core.models import Subscriber
from ..core.subscriptions import clean_name, normalise_email, parse_topics, topic_names
from ..core.tokens import Links, TokenData, read_token
from .choices import ChoiceMailer, apply_choice, made_before_a_move

Page = Callable[..., HTMLResponse]
LinkMailer = Callable[[Subscriber, datetime], None]


def preferences_routes(config: Config, store: Store, links: Links, *, page: Page, invalid_link: Callable[[], Response],
                       origin_ok: Callable[[Request], bool], client_key: Callable[[Request], str],
                       clock: Callable[[], datetime], send_link: LinkMailer | None,
                       mail_choice: ChoiceMailer | None = None) -> list[Route]:
    """The settings routes; `send_link(subscriber, now)` mails a fresh link (None: no mail);
    `mail_choice` the mails of readers' choices (web/choices.py)."""
    topics = topic_names(config.topics)
    max_age = timedelta(days=config.web.preferences_days)

    def refused() -> Response:
        return page("message.html.j2", 403, heading="Not allowed", text="This form cannot be sent from another site.")

    def token(request: Request, *, expired_ok: bool = False) -> tuple[TokenData, bool]:
        """The link's data and whether it has expired; TokenError when it is not ours."""
        raw = request.path_params["token"]
        try:
            return read_token(links.secret, raw, "preferences", now=clock(), max_age=max_age), False
        except TokenError:
            if not expired_ok:
                raise
        return read_token(links.secret, raw, "preferences", now=clock()), True  # authentic, only old

    async def preferences(request: Request) -> Response:
        try:
            data, expired = token(request, expired_ok=True)
        except TokenError:
            return invalid_link()
        sub = None if expired else await run_in_threadpool(store.get, data.subscriber_id)
        if expired or (sub is not None and await run_in_threadpool(made_before_a_move, store, sub.id, data)):
            return page("preferences_expired.html.j2", 410, action=f"{request.url.path}/renew",
                        days=f"{config.web.preferences_days:g}")
        if sub is None or sub.status not in ("pending", "confirmed"):
            return invalid_link()
        saved, said, background = False, "", None
        if request.method == "POST":
            if not origin_ok(request):
                return refused()
            form = await request.form()
            now = clock()
            if str(form.get("do", "save")) == "save":
                try:
                    chosen = parse_topics([str(t) for t in form.getlist("topics")], config.topics)
                except InputError:
                    chosen = sub.topics
                await run_in_threadpool(store.set_preferences, sub.id, name=clean_name(str(form.get("name", ""))),
                                        topics=chosen, now=now)
                if str(form.get("frequency", sub.frequency)) != sub.frequency:
                    outcome = await run_in_threadpool(apply_choice, config, store, sub, {"do": "frequency",
                                                      "frequency": str(form.get("frequency"))}, how="web", now=now)
                    said = outcome.said if outcome else ""
            elif sub.status == "confirmed":
                outcome = await run_in_threadpool(apply_choice, config, store, sub, form, how="web", now=now)
                said = outcome.said if outcome else ""
                if outcome is not None and outcome.mail is not None and mail_choice is not None:
                    background = BackgroundTask(mail_choice, *outcome.mail)
            sub = await run_in_threadpool(store.get, sub.id) or sub
            saved = True
        now = clock()
        # No topic ticked means every topic, as the hint says: an all-topics reader sees none ticked.
        response = page("preferences.html.j2", action=str(request.url.path), name=sub.name, email=sub.email,
                        topics=topics, chosen=sub.topics, saved=saved, said=said,
                        unsubscribe_url=links.unsubscribe(sub.id, now), frequency=sub.frequency,
                        frequencies=config.newsletter.frequencies, pause_weeks=PAUSE_WEEKS,
                        paused=_sentence(pause_label(sub, now, config.schedule.timezone)))
        response.background = background
        return response

    async def renew(request: Request) -> Response:
        try:
            data, _ = token(request, expired_ok=True)
        except TokenError:
            return invalid_link()
        if not origin_ok(request):
            return refused()
        now = clock()
        if not await run_in_threadpool(store.hit_rate, "renew", client_key(request), now=now,
                                       window=timedelta(hours=1), limit=config.web.ip_limit_per_hour):
            return page("message.html.j2", 429, heading="Too many attempts", text="Please wait an hour and try again.")
        form = await request.form()
        done = page("message.html.j2", heading="Check your inbox",
                    text="If that is the address this newsletter goes to, a fresh settings link is on its way to it.")
        try:
            _, key = normalise_email(str(form.get("email", ""))[:320])
        except InputError:
            return done  # the same page: it tells nothing of the list
        sub = await run_in_threadpool(store.get, data.subscriber_id)
        if sub is None or sub.status != "confirmed" or email_key(sub.email) != key or send_link is None:
            return done
        if await _once_per_window(store, sub, now, config.web.confirm_resend_minutes):
            done.background = BackgroundTask(send_link, sub, now)
        return done

    return [Route("/preferences/{token}", preferences, methods=["GET", "POST"]),
            Route("/preferences/{token}/renew", renew, methods=["POST"])]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


async def _once_per_window(store: Store, sub: Subscriber, now: datetime, minutes: float) -> bool:
    if minutes <= 0:
        return True
    return bool(await run_in_threadpool(store.hit_rate, "renew-to", str(sub.id), now=now,
                                        window=timedelta(minutes=minutes), limit=1))
