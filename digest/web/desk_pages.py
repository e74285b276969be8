"""/desk/: the author's desk on `digest serve`. A front door: HTTP in, the store and the
desk's hooks (core/desk.py: DeskHooks, the jobs' work) out.

Sign-in is by a link mailed to [author] email only: the form answers the same page
whatever address is typed, and mails nothing for any other. The link works once, for
SIGNIN_MINUTES, and opens a page with one button (link scanners follow links); its POST
sets the session cookie (HttpOnly, SameSite=Strict, Secure when [web] base_url is https,
expiring after SESSION_HOURS; signing out ends it, and every other session made before,
copies of the cookie included). Every POST carries a CSRF token (the session's, or, for
the sign-in form, a signed form token), is refused from another site, and the sign-in
form counts against [web] ip_limit_per_hour; at most one sign-in link is mailed per
SIGNIN_MAIL_MINUTES, however many clients ask (each IPv6 /64 is a client of its own).
Without a session every page but sign-in answers 401 with the sign-in form. With [author]
email empty (no hooks), every route answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..adapters.author import AuthorLedger
from ..adapters.ledger import Ledger
from ..adapters.questions import QuestionStore
from ..adapters.store import Store
from ..core.config import Config
from ..core.desk import DeskHooks, desk_on
from ..core.errors import DigestError, InputError, TokenError
from ..core.subscriptions import normalise_email
from ..core.tokens import make_token, read_token
from .middleware import SECURITY_HEADERS

COOKIE = "digest_desk"
SESSION_HOURS = 12
SIGNIN_MINUTES = 30
SIGNIN_MAIL_MINUTES = 5  # one sign-in mail per this many minutes, whoever asks: the last one is in the author's inbox
SIGNOUT = "signout"  # the sign-outs' kind in the author's ledger: each ends the sessions made before it
FORM_HOURS = 2
_NEXT = re.compile(r"/desk/(questions/\d{1,10}|subscriber)?")
SUBSCRIBER_STATES = ("pending", "confirmed", "unsubscribed", "bounced")
LIST_MAX = 500  # addresses one state's page lists; `digest subscribers list` has them all
_DESK_POLICY = SECURITY_HEADERS["Content-Security-Policy"].replace("default-src 'none';", "default-src 'none'; frame-src 'self';")
# The issue in its frame: the mail as readers get it, no scripts, no forms, nothing fetched but images.
_ISSUE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src * data:; base-uri 'self'; form-action 'none'; "
                 "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox")


def safe_next(path: str) -> str:
    """Where to go after signing in: a desk page of this site, never another site."""
    return path if _NEXT.fullmatch(path) else "/desk/"


def csrf_of(secret: str, session: str) -> str:
    """The CSRF token of a session: an HMAC of its cookie, never stored."""
    return hmac.new(secret.encode(), b"desk-csrf:" + session.encode(), hashlib.sha256).hexdigest()[:40]


def desk_pages(config: Config, store: Store, hooks: DeskHooks | None, *, env: jinja2.Environment, secret: str,
               origin_ok: Callable[[Request], bool], client_key: Callable[[Request], str], clock: Callable[[], datetime],
               ledger: Ledger, questions: QuestionStore | None) -> list[Route]:
    """The desk's routes (none but 404s when `hooks` is None or [author] email is empty)."""
    book = questions if questions is not None else QuestionStore(store)
    author_book = AuthorLedger(store)  # records each sign-in link used: it works once
    secure = config.web.base_url.startswith("https://")
    author_key = normalise_email(config.author.email)[1] if config.author.email else ""

    def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(blog=config.blog, base_url=config.web.base_url, **context)
        return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, "Content-Security-Policy": _DESK_POLICY})

    def message(status: int, heading: str, text: str) -> HTMLResponse:
        return render("message.html.j2", status, heading=heading, text=text)

    async def session_of(request: Request) -> str | None:
        """The session cookie when it is good: signed, younger than SESSION_HOURS, and made
        after the last sign-out (a session is a signed token, not a stored one: signing out
        ends every session made before it)."""
        token = request.cookies.get(COOKIE, "")
        if not token:
            return None
        try:
            data = read_token(secret, token, "desk-session", now=clock(), max_age=timedelta(hours=SESSION_HOURS))
        except TokenError:
            return None
        signed_out = await run_in_threadpool(author_book.last_mail, SIGNOUT)
        if signed_out is not None and data.issued_at <= signed_out.timestamp():
            return None
        return token

    def signin_page(status: int = 200, sent: bool = False, then: str = "/desk/") -> HTMLResponse:
        form = make_token(secret, "desk-form", 0, now=clock(), nonce=secrets.token_urlsafe(8))
        return render("desk_signin.html.j2", status, csrf=form, sent=sent, then=safe_next(then))

    def guarded(handler: Callable[[Request, str], Any], *, post: bool = False) -> Callable[[Request], Any]:
        """A desk page: 404 with no desk, 401 (the sign-in form) with no session; a POST
        from another site or without the session's CSRF token is refused."""
        async def route(request: Request) -> Response:
            if hooks is None or not desk_on(config.author):
                return message(404, "Not found", "There is no such page.")
            session = await session_of(request)
            if session is None:
                return signin_page(401, then=request.url.path if request.method == "GET" else "/desk/")
            if post:
                if not origin_ok(request):
                    return message(403, "Not allowed", "This form cannot be sent from another site.")
                form = await request.form()
                if not hmac.compare_digest(str(form.get("csrf", "")), csrf_of(secret, session)):
                    return message(403, "Not allowed", "This form has expired: reload the desk and try again.")
                request.state.form = form
            try:
                result: Response = await handler(request, session)
            except DigestError as exc:
                return message(400, "Not done", str(exc))
            return result
        return route

    # ---- sign-in ----

    async def desk_home(request: Request) -> Response:
        if hooks is None or not desk_on(config.author):
            return message(404, "Not found", "There is no such page.")
        session = await session_of(request)
        if session is None:
            return signin_page()
        return await home(request, session, notice=request.query_params.get("done", "")[:300])

    async def signin(request: Request) -> Response:
        if hooks is None or not desk_on(config.author):
            return message(404, "Not found", "There is no such page.")
        if not origin_ok(request):
            return message(403, "Not allowed", "This form cannot be sent from another site.")
        now = clock()
        if not await run_in_threadpool(store.hit_rate, "desk-signin", client_key(request), now=now,
                                       window=timedelta(hours=1), limit=config.web.ip_limit_per_hour):
            return message(429, "Too many attempts", "Please wait an hour and try again.")
        form = await request.form()
        try:
            read_token(secret, str(form.get("csrf", "")), "desk-form", now=now, max_age=timedelta(hours=FORM_HOURS))
        except TokenError:
            return message(403, "Not allowed", "This form has expired: reload the page and try again.")
        page = signin_page(sent=True)  # the same page whatever was typed
        try:
            typed = normalise_email(str(form.get("email", ""))[:320])[1]
        except InputError:
            return page
        if typed == author_key:
            token = make_token(secret, "desk-signin", 0, now=now, nonce=secrets.token_urlsafe(8))
            then = safe_next(str(form.get("next", "")))
            url = f"{config.web.base_url}/desk/signin/{token}" + (f"?next={quote(then)}" if then != "/desk/" else "")
            page.background = BackgroundTask(send_signin, url, now)  # after the answer: the same time for any address
        return page

    def send_signin(url: str, now: datetime) -> None:
        """Mail the sign-in link, unless one went less than SIGNIN_MAIL_MINUTES ago."""
        assert hooks is not None
        if store.hit_rate("desk-signin-mail", "author", now=now, window=timedelta(minutes=SIGNIN_MAIL_MINUTES), limit=1):
            hooks.send_signin(url)

    def signin_nonce(request: Request) -> str | None:
        """The nonce of a good sign-in link, else None."""
        try:
            data = read_token(secret, request.path_params["token"], "desk-signin", now=clock(),
                              max_age=timedelta(minutes=SIGNIN_MINUTES))
        except TokenError:
            return None
        return data.nonce or None

    async def signin_link(request: Request) -> Response:
        if hooks is None or not desk_on(config.author):
            return message(404, "Not found", "There is no such page.")
        nonce = signin_nonce(request)
        if nonce is None:
            return message(400, "This link does not work", "It may have expired (it works for 30 minutes). "
                                                           "Ask for a new one on the desk's sign-in page.")
        then = safe_next(request.query_params.get("next", ""))
        if request.method != "POST":  # GET and HEAD (link scanners send both): one button, no one signed in
            return render("desk_action.html.j2", heading="Sign in to the desk", text="", button="Sign in",
                          action=request.url.path + (f"?next={quote(then)}" if then != "/desk/" else ""),
                          note_field=False, note="")
        if not origin_ok(request):
            return message(403, "Not allowed", "This form cannot be sent from another site.")
        if not await run_in_threadpool(author_book.claim_mail, "signin", nonce[:40], clock()):
            return message(400, "This link does not work", "It was used already: each sign-in link works once. "
                                                           "Ask for a new one on the desk's sign-in page.")
        session = make_token(secret, "desk-session", 0, now=clock(), nonce=secrets.token_urlsafe(16))
        response = RedirectResponse(then, status_code=303)
        response.set_cookie(COOKIE, session, max_age=SESSION_HOURS * 3600, path="/desk/", httponly=True,
                            samesite="strict", secure=secure)
        return response

    async def signout(request: Request, session: str) -> Response:
        nonce = read_token(secret, session, "desk-session", now=clock()).nonce
        await run_in_threadpool(author_book.claim_mail, SIGNOUT, nonce[:40], clock())  # session_of reads its time
        response = RedirectResponse("/desk/", status_code=303)
        response.delete_cookie(COOKIE, path="/desk/", httponly=True, samesite="strict", secure=secure)
        return response

    # ---- the desk ----

    async def home(request: Request, session: str, notice: str = "") -> Response:
        assert hooks is not None
        status = await run_in_threadpool(hooks.status)
        note = await run_in_threadpool(hooks.note_of)
        waiting = await run_in_threadpool(book.listed, "new")
        accepted = await run_in_threadpool(book.listed, "accepted")
        counts = {state: await run_in_threadpool(store.count, state) for state in SUBSCRIBER_STATES}
        history = await run_in_threadpool(ledger.history)
        sent = [(issue, {status: n for status, n in c.items() if n}) for issue, c in reversed(history)]
        return render("desk.html.j2", csrf=csrf_of(secret, session), next_status=status, note=note, waiting=waiting,
                      accepted=accepted, counts=counts, sent=sent[:20], notice=notice, record=None, looked_up="")

    async def issue_frame(request: Request, session: str) -> Response:
        assert hooks is not None
        html = await run_in_threadpool(hooks.next_issue_html)
        body = html if html is not None else "<p>No new posts since the last issue: nothing would go out now.</p>"
        return HTMLResponse(body, headers={**SECURITY_HEADERS, "Content-Security-Policy": _ISSUE_POLICY})

    def done(text: str) -> Response:
        return RedirectResponse(f"/desk/?done={quote(text[:300])}", status_code=303)

    async def decide(request: Request, session: str) -> Response:
        assert hooks is not None
        form = request.state.form
        action = {"hold": "desk-hold", "approve": "desk-approve", "note": "desk-note"}.get(str(form.get("action", "")))
        if action is None:
            return message(400, "Not done", "No such action.")
        return done(await run_in_threadpool(hooks.act, action, str(form.get("note", ""))[:20_000], None))

    async def question_page(request: Request, session: str) -> Response:
        q = await run_in_threadpool(book.get, request.path_params["qid"])
        if q is None:
            return message(404, "No such question", "It may have been deleted.")
        return render("desk_question.html.j2", csrf=csrf_of(secret, session), q=q,
                      asker=(q.name.split() or ["a reader"])[0])

    async def moderate(request: Request, session: str) -> Response:
        assert hooks is not None
        form = request.state.form
        action = str(form.get("action", ""))
        if action not in ("accept", "decline", "answer", "forget"):
            return message(400, "Not done", "No such action.")
        return done(await run_in_threadpool(hooks.moderate, action, request.path_params["qid"],
                                            str(form.get("value", ""))[:2000]))

    async def subscriber(request: Request, session: str) -> Response:
        typed = request.query_params.get("email", "")[:320]
        state = request.query_params.get("status", "")
        if state in SUBSCRIBER_STATES and not typed:
            def first() -> list[Any]:
                found = []
                for sub in store.iter_subscribers(state):
                    found.append(sub)
                    if len(found) == LIST_MAX:
                        break
                return found
            listed = await run_in_threadpool(first)
            return render("desk_subscribers.html.j2", state=state, listed=listed, total=await run_in_threadpool(
                store.count, state), shown=LIST_MAX)
        record = None
        if typed:
            try:
                record = await run_in_threadpool(store.find, normalise_email(typed)[1])
            except InputError:
                record = None
        return render("desk_subscriber.html.j2", csrf=csrf_of(secret, session), record=record, looked_up=typed)

    async def remove(request: Request, session: str) -> Response:
        typed = str(request.state.form.get("email", ""))[:320]
        removed = await run_in_threadpool(store.remove, normalise_email(typed)[1])
        return done(f"Removed {removed} and everything kept with it." if removed else "No such subscriber.")

    return [
        Route("/desk/", desk_home, methods=["GET"]),
        Route("/desk/signin", signin, methods=["POST"]),
        Route("/desk/signin/{token}", signin_link, methods=["GET", "POST"]),
        Route("/desk/signout", guarded(signout, post=True), methods=["POST"]),
        Route("/desk/issue.html", guarded(issue_frame), methods=["GET"]),
        Route("/desk/decide", guarded(decide, post=True), methods=["POST"]),
        Route("/desk/questions/{qid:int}", guarded(question_page), methods=["GET"]),
        Route("/desk/questions/{qid:int}", guarded(moderate, post=True), methods=["POST"]),
        Route("/desk/subscriber", guarded(subscriber), methods=["GET"]),
        Route("/desk/subscriber/remove", guarded(remove, post=True), methods=["POST"]),
    ]
