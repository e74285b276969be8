"""Pure-ASGI middleware of the web app: a cap on request bodies and the security headers
on every response. A front door: no I/O of its own beyond the HTTP messages it passes on.

The cap works before any parsing: Starlette's form parser buffers a whole urlencoded body
(3 parallel posts of 900 one-megabyte fields took the server to 2.7 GB). A declared
Content-Length over the cap is refused at once; a body without one (chunked) is counted
as it arrives and refused as soon as it passes the cap.

A path with a slash too many or too few (/desk, /confirm/TOKEN/) is led on by a relative
redirect: Starlette's own spells out the address from the request's Host and scheme.
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024  # a form, a one-click unsubscribe: a few hundred bytes

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # Tokens are in our URLs: never hand them to another site. (Not "no-referrer": with it
    # Chromium sends "Origin: null" on our own forms, and the origin check refuses them.)
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response that does not set them itself: pages,
    errors (404, 405, 413) and redirects alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(message)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(message: Message) -> None:
    """Set each security header an http.response.start message lacks."""
    headers = MutableHeaders(scope=message)
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


class _TooLargeError(Exception):
    """The body passed the cap while the app was reading it."""


class BodyLimit:
    """Answers 413 to a request whose body is larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await PlainTextResponse("Bad Content-Length.", 400, headers={"Connection": "close"})(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLargeError:
            if started:  # an app that answers before reading its body: nothing more to say
                return
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse(f"Request body too large: the limit is {self.max_bytes} bytes.", 413,
                                     headers={"Connection": "close"})
        await response(scope, receive, send)


def slash_redirect(router: Router) -> ASGIApp:
    """The router's fallback (set as `router.default`, with `router.redirect_slashes` off):
    a path that matches a route once its trailing slash is added or taken away gets a 307
    to that path, relative (the Host header and the scheme behind a proxy are never
    trusted to name this site); any other path gets the router's 404."""
    not_found = router.default

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        raw: str = scope.get("raw_path", path.encode()).decode("latin-1")
        if scope["type"] == "http" and path != "/":
            other, other_raw = (path.rstrip("/"), raw.rstrip("/")) if path.endswith("/") else (path + "/", raw + "/")
            if (other.startswith("/") and not other.startswith("//") and other_raw.startswith("/")
                    and not other_raw.startswith("//") and unquote(other_raw) == other  # /x%2F: no slash to take
                    and any(route.matches({**scope, "path": other})[0] is not Match.NONE for route in router.routes)):
                query = scope.get("query_string", b"").decode("latin-1")
                await RedirectResponse(other_raw + (f"?{query}" if query else ""), 307)(scope, receive, send)
                return
        await not_found(scope, receive, send)

    return fallback
