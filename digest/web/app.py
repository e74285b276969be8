"""The web endpoints of `digest serve` (Starlette). A front door: HTTP in, the store out;
mail goes out only through the hooks `digest serve` hands it (send_confirmation, send_welcome).

No page tells whether an address is on the list: POST /subscribe answers the same page,
byte for byte, whatever the address's state, and mails (when it does) after answering.
The confirmation mail carries nothing the form's user typed but the address itself, and
goes at most once per [web] confirm_resend_minutes to one mailbox (plus and Gmail dot
variants counted as one: core/address.py mailbox_key) and [web] confirm_per_hour times an
hour to all addresses together. GET (and HEAD) changes nothing: GET /confirm shows a page
with one button, and its POST confirms (link scanners fetch links; they do not press
buttons). Forms from other origins are refused unless listed in [web] allowed_origins; the
RFC 8058 one-click POST needs none. Bodies are capped and every response carries the
security headers (middleware.py). Settings links: preferences.py.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..adapters.ledger import Ledger
from ..adapters.questions import QuestionStore
from ..adapters.rates import release_rates
from ..adapters.secret import load_or_create_secret
from ..adapters.store import Store
from ..core.address import mailbox_key
from ..core.archive import archive_feed as archive_feed_xml
from ..core.config import Config
from ..core.desk import DeskHooks
from ..core.errors import DigestError, InputError, TokenError
from ..core.models import Consent, Subscriber
from ..core.render import make_environment
from ..core.subscriptions import clean_name, normalise_email, parse_topics, topic_names
from ..core.tokens import Links, read_token
from .ask import ask_routes
from .choices import ChoiceMailer, apply_choice, choice_routes, made_before_a_move
from .desk import desk_routes
from .desk_pages import desk_pages
from .middleware import SECURITY_HEADERS, BodyLimit, SecurityHeaders, slash_redirect
from .preferences import preferences_routes

log = logging.getLogger("digest.web")
# What the unsubscribe page offers beside its button. Its link never expires (RFC 8058), so it
# must not reach the settings page's other choices: a new address, above all.
UNSUBSCRIBE_PAGE_CHOICES = ("monthly", "pause", "job")
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_app(config: Config, store: Store, *, send_confirmation: Callable[[Subscriber, datetime], bool | None],
               send_welcome: Callable[[Subscriber, datetime], None] | None = None,
               clock: Clock = _utcnow, lifespan: Any = None,
               acknowledge_question: Callable[[int, datetime], None] | None = None,
               send_preferences_link: Callable[[Subscriber, datetime], None] | None = None, secret: str | None = None,
               ledger: Ledger | None = None, questions: QuestionStore | None = None,
               send_choice_mail: ChoiceMailer | None = None, desk: DeskHooks | None = None) -> Starlette:
    """The Starlette app. `send_confirmation(subscriber, now)` mails a double opt-in link
    (jobs/mail.py's confirmation_mailer; False: it never left), `send_welcome(subscriber, now)` the welcome mail
    once a subscription is confirmed (welcome_mailer; None: no welcome mail),
    `acknowledge_question(question_id, now)` tells an asker their question arrived
    (jobs/questions.py's question_acknowledger), `send_preferences_link(subscriber, now)`
    mails a fresh settings link (preferences_link_mailer), `send_choice_mail(kind, subscriber,
    to, now, nonce)` the mails of readers' choices (jobs/choices.py choice_mailer); `clock` gives
    the time (tests pass their own). `desk` is what the author's desk asks of the jobs
    (core/desk.py: DeskHooks; None: every /desk/ route answers 404). `digest serve` hands it the secret, the ledger and the
    questions its wiring built (cli/wiring.py); without them the app makes its own."""
    secret = secret if secret is not None else load_or_create_secret(config)
    links = Links(config.web.base_url, secret)
    env = make_environment(config.newsletter.templates_dir)
    topics = topic_names(config.topics)
    zone = ZoneInfo(config.schedule.timezone)  # the times a person reads, in the log too
    base_origin = _origin(config.web.base_url)
    allowed = {base_origin} | {_origin(o) for o in config.web.allowed_origins}

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(blog=config.blog, base_url=config.web.base_url, **context)
        return HTMLResponse(html, status_code=status)  # the SecurityHeaders middleware adds them

    def invalid_link() -> HTMLResponse:
        return page("message.html.j2", 400, heading="This link does not work",
                    text="It may have expired, or been cut short by your mail program. Copy the whole link from the "
                         "email into your browser, or subscribe again.")

    def origin_ok(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin.lower() in allowed:
            return True
        # The page's own address, whatever it was opened at (127.0.0.1 or localhost, a proxy's
        # name): a browser sets Origin itself, so another site cannot claim ours.
        return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower() != ""  # "null" is refused

    def client_ip(request: Request) -> str:
        """The client's address: the last entry of [web] trusted_proxy_header, the one the
        proxy wrote, over all its lines (a proxy may add a line after the client's own)."""
        header = config.web.trusted_proxy_header
        lines = request.headers.getlist(header) if header else []
        if any(line.strip() for line in lines):
            return proxy_address(",".join(lines).split(",")[-1].strip())[:64]
        return request.client.host if request.client else ""

    def client_key(request: Request) -> str:
        """Whom the per-client limits count: an IPv4 address, or an IPv6 address's /64 (every
        IPv6 line holds a whole /64, so per address there would be no limit at all)."""
        return rate_key(client_ip(request))

    async def home(request: Request) -> Response:
        return RedirectResponse("/subscribe", status_code=303)  # relative: wherever the page was opened

    async def subscribe_form(request: Request) -> Response:
        return page("subscribe.html.j2", topics=topics, consent_text=config.web.consent_text, error="", email="", name="")

    async def subscribe(request: Request) -> Response:
        if not origin_ok(request):
            return page("message.html.j2", 403, heading="Not allowed", text="This form cannot be sent from another site.")
        form = await request.form()
        now = clock()
        if not await run_in_threadpool(store.hit_rate, "ip", client_key(request), now=now, window=timedelta(hours=1),
                                       limit=config.web.ip_limit_per_hour):
            return page("message.html.j2", 429, heading="Too many attempts", text="Please wait an hour and try again.")
        raw_email, name = str(form.get("email", ""))[:320], clean_name(str(form.get("name", "")))
        done = page("check_inbox.html.j2")
        if str(form.get("website", "")):
            return done  # the honeypot: a bot filled the hidden field
        try:
            email, key = normalise_email(raw_email)
        except InputError:
            return page("subscribe.html.j2", 400, topics=topics, consent_text=config.web.consent_text,
                        error="Please enter a valid email address.", email=raw_email, name=name)
        try:
            chosen = parse_topics([str(t) for t in form.getlist("topics")], config.topics)
        except InputError:
            chosen = ()
        consent = Consent(at=now, method="web", ip=client_ip(request),
                          user_agent=request.headers.get("user-agent", "")[:300], version=config.web.consent_version)
        sub, decision = await run_in_threadpool(store.subscribe, email, key, name, chosen, consent, now=now,
                                        resend_after=timedelta(minutes=config.web.confirm_resend_minutes))
        log.info("subscriber %s asked to subscribe (%s)", sub.id, sub.status)
        if decision.send_confirmation:
            if await run_in_threadpool(confirmation_allowed, email, now):
                done.background = BackgroundTask(confirm_mail, sub, email, now)
            else:  # not mailed: the address may be mailed once the limits allow it again
                await run_in_threadpool(store.release_confirmation, sub.id, now=now)
        elif sub.status == "pending":
            sent = sub.confirm_sent_at.astimezone(zone).strftime("%H:%M %Z") if sub.confirm_sent_at else "?"
            log.info("confirmation mail to subscriber %s held back: one went at %s, less than [web] "
                     "confirm_resend_minutes (%g) ago", sub.id, sent, config.web.confirm_resend_minutes)
        return done

    def confirm_mail(sub: Subscriber, email: str, now: datetime) -> None:
        if send_confirmation(sub, now) is False:  # it never left: it holds nothing back, in no count
            store.release_confirmation(sub.id, now=now)
            release_rates(store, [("mailbox", mailbox_key(email)), ("confirm", "all")], at=now)

    def confirmation_allowed(email: str, now: datetime) -> bool:
        """Count one confirmation mail against the limits of its mailbox, then of the hour."""
        minutes = config.web.confirm_resend_minutes
        if minutes > 0 and not store.hit_rate("mailbox", mailbox_key(email), now=now,
                                              window=timedelta(minutes=minutes), limit=1):
            log.info("confirmation mail not sent: its mailbox had one in the last %g minutes "
                     "([web] confirm_resend_minutes)", minutes)
            return False
        if not store.hit_rate("confirm", "all", now=now, window=timedelta(hours=1), limit=config.web.confirm_per_hour):
            log.warning("confirmation mail not sent: %d went out in the last hour ([web] confirm_per_hour)",
                        config.web.confirm_per_hour)
            return False
        return True

    def token_of(request: Request, purpose: str, max_age: timedelta | None = None) -> Any:
        return read_token(secret, request.path_params["token"], purpose, now=clock(), max_age=max_age)

    async def confirm(request: Request) -> Response:
        try:
            data = token_of(request, "confirm", timedelta(hours=config.web.confirm_hours))
        except TokenError:
            return invalid_link()
        if request.method != "POST":  # GET and HEAD (link scanners send both) change nothing
            pending = await run_in_threadpool(store.get, data.subscriber_id)
            ask_name = pending is not None and pending.status == "pending"
            # The name typed with the address shows here first, in a field its owner can
            # change or clear, before it greets anyone in a mail (the welcome, the issues).
            return page("confirm.html.j2", action=str(request.url.path), ask_name=ask_name,
                        name=pending.name if pending is not None and ask_name else "")
        if not origin_ok(request):
            return page("message.html.j2", 403, heading="Not allowed", text="This form cannot be sent from another site.")
        form = await request.form()
        name = clean_name(str(form["name"])) if "name" in form else None
        now = clock()
        sub = await run_in_threadpool(store.confirm, data.subscriber_id, data.nonce, now=now, name=name)
        welcome = send_welcome if sub is not None else None  # only the click that confirmed: one welcome
        if sub is None:
            current = await run_in_threadpool(store.get, data.subscriber_id)
            if current is None or current.status != "confirmed":
                return invalid_link()
            sub = current  # a second click on a used link: already confirmed
        done = page("confirmed.html.j2", name=sub.name, preferences_url=links.preferences(sub.id, now))
        if welcome is not None:
            log.info("subscriber %s confirmed", sub.id)
            done.background = BackgroundTask(welcome, sub, now)
        return done

    async def unsubscribe(request: Request) -> Response:
        try:
            data = token_of(request, "unsubscribe")
        except TokenError:
            return invalid_link()
        # A link of an address the subscription has since moved from: that address is on the
        # list no more, and its mailbox must not change the subscription that left it.
        moved_away = await run_in_threadpool(made_before_a_move, store, data.subscriber_id, data)
        if request.method != "POST":  # GET and HEAD (link scanners send both) change nothing
            sub = await run_in_threadpool(store.get, data.subscriber_id)
            staying = sub is not None and sub.status == "confirmed" and not moved_away
            return page("unsubscribe.html.j2", action=str(request.url.path), alternatives=staying,
                        offer_monthly=staying and sub is not None and sub.frequency == "weekly"
                        and "monthly" in config.newsletter.frequencies)
        if moved_away:
            log.info("subscriber %s: an unsubscribe link of an address it moved from changed nothing",
                     data.subscriber_id)
            return page("unsubscribed.html.j2")
        one_click = await _is_one_click(request)
        if not one_click and origin_ok(request):  # the alternatives beside the button: monthly, a pause
            form = await request.form()
            sub = await run_in_threadpool(store.get, data.subscriber_id)
            if "do" in form and str(form["do"]) not in UNSUBSCRIBE_PAGE_CHOICES:  # not a form of this page
                return page("message.html.j2", 400, heading="Not done", text="That choice is not offered here.")
            if "do" in form and sub is not None and sub.status == "confirmed":
                outcome = await run_in_threadpool(apply_choice, config, store, sub, form, how="unsubscribe-page",
                                                  now=clock())
                if outcome is not None:
                    response = page("message.html.j2", heading="You are still subscribed", text=outcome.said)
                    if outcome.mail is not None and send_choice_mail is not None:
                        response.background = BackgroundTask(send_choice_mail, *outcome.mail)
                    return response
        how = "one-click" if one_click else "web"
        await run_in_threadpool(store.unsubscribe, data.subscriber_id, how=how, now=clock())
        log.info("subscriber %s unsubscribed (%s)", data.subscriber_id, how)
        return page("unsubscribed.html.j2")

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(store.count)
        except DigestError as exc:  # why goes to the log: the driver's words name hosts, ports, users
            log.error("/healthz: %s", exc)
            return JSONResponse({"status": "error"}, status_code=503)
        return JSONResponse({"status": "ok"})

    issues_ledger = ledger if ledger is not None else Ledger(store)

    async def archive_list(request: Request) -> Response:
        issues = [i for i, _ in await run_in_threadpool(issues_ledger.history) if i.status == "done"]
        return page("archive.html.j2", issues=issues, zone=config.schedule.timezone)

    async def archive_feed(request: Request) -> Response:
        issues = await run_in_threadpool(issues_ledger.done_issues)
        return Response(archive_feed_xml(config.publication, issues, now=clock()), media_type="application/atom+xml",
                        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"})

    async def archive_issue(request: Request) -> Response:
        issue = await run_in_threadpool(issues_ledger.get_issue, request.path_params["issue"])
        if issue is None or issue.status != "done":
            return page("message.html.j2", 404, heading="No such issue", text="It may not have been sent yet.")
        return HTMLResponse(issue.html)

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/archive/", archive_list, methods=["GET"]),
        Route("/archive/feed.xml", archive_feed, methods=["GET"]),
        Route("/archive/{issue:int}", archive_issue, methods=["GET"]),
        Route("/subscribe", subscribe_form, methods=["GET"]),
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/confirm/{token}", confirm, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        *preferences_routes(config, store, links, page=page, invalid_link=invalid_link, origin_ok=origin_ok,
                            client_key=client_key, clock=clock, send_link=send_preferences_link,
                            mail_choice=send_choice_mail),
        *choice_routes(config, store, links, page=page, invalid_link=invalid_link, origin_ok=origin_ok, clock=clock,
                       mail=send_choice_mail),
        Route("/healthz", healthz, methods=["GET"]),
        *ask_routes(config, store, page=page, origin_ok=origin_ok, client_key=client_key, clock=clock,
                    acknowledge=acknowledge_question, questions=questions),
        *desk_routes(config, page=page, secret=secret, origin_ok=origin_ok, clock=clock,
                     act=desk.act if desk else None, note_of=desk.note_of if desk else None),
        *desk_pages(config, store, desk, env=env, secret=secret, origin_ok=origin_ok, client_key=client_key,
                    clock=clock, ledger=issues_ledger, questions=questions),
    ]
    async def server_error(request: Request, exc: Exception) -> Response:
        # Starlette answers a 500 outside every middleware: this page sets the headers itself.
        response = page("message.html.j2", 500, heading="Something went wrong", text="Please try again in a while.")
        response.headers.update(SECURITY_HEADERS)
        return response

    # SecurityHeaders outermost, so that BodyLimit's 413 carries them too.
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders), Middleware(BodyLimit)],
                    exception_handlers={Exception: server_error})
    app.router.redirect_slashes = False  # its redirects name the request's Host: ours are relative
    app.router.default = slash_redirect(app.router)
    app.state.links = links
    return app


async def _is_one_click(request: Request) -> bool:
    body = (await request.body())[:200]
    return b"List-Unsubscribe=One-Click" in body


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


_PORTED = re.compile(r"\[([0-9A-Fa-f:.]{2,45})\](?::\d{1,5})?|(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")


def proxy_address(entry: str) -> str:
    """An entry of the proxy's header as an address: some proxies add the client's port
    ("192.0.2.7:40001", "[2001:db8::7]:40001"), a new one per connection, which would make
    each connection a client of its own for the per-client limits."""
    ported = _PORTED.fullmatch(entry)
    return (ported.group(1) or ported.group(2)) if ported else entry


def rate_key(ip: str) -> str:
    """An address as the per-client limits count it: IPv4 (or IPv4-mapped) as it is, IPv6 as its /64."""
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)
