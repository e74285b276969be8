"""The web page of `digest mailbox --web PORT`: the caught messages, each with its text and
HTML parts decoded and its links working, the way Mailpit or MailHog show them. A front
door for developers on 127.0.0.1; reads the mailbox folder through adapters/mailbox.py.

It answers only requests addressed to its own names (127.0.0.1, localhost): through DNS
rebinding, a page the developer visits could otherwise reach 127.0.0.1 under its own host
name and read every caught mail, and the confirmation and settings tokens in them.
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..adapters.mailbox import list_messages, read_message
from ..core.mailview import date_label, received_label, text_as_html
from ..core.render import make_environment

_HEAD = re.compile(r"<head[^>]*>", re.I)
# The HTML part is the mail as received: no scripts, no forms, nothing fetched but images;
# sandboxed as its iframe is (templates/mailbox.html.j2), also when it is opened on its own.
_PART_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src * data:; base-uri 'self'; form-action 'none'; "
                "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation")


HOSTS = ("127.0.0.1", "localhost")


def create_mailbox_app(folder: Path, hosts: tuple[str, ...] = HOSTS) -> Starlette:
    """The mailbox's pages; requests whose Host header names another host get a 400."""
    env = make_environment()
    template = env.get_template("mailbox.html.j2")

    def page(status: int = 200, **context: object) -> HTMLResponse:
        values: dict[str, object] = {"folder": str(folder), "message": None, "messages": [], **context}
        return HTMLResponse(template.render(values), status_code=status,
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    def missing() -> HTMLResponse:
        return HTMLResponse("No such message", status_code=404)

    async def index(request: Request) -> Response:
        return page(messages=[(m, received_label(m.name)) for m in list_messages(folder)])

    async def message(request: Request) -> Response:
        caught = read_message(folder, request.path_params["name"])
        if caught is None:
            return missing()
        return page(message=caught, text_html=Markup(text_as_html(caught.view.text)), date=date_label(caught.view.date))

    async def html_part(request: Request) -> Response:
        caught = read_message(folder, request.path_params["name"])
        if caught is None or not caught.view.html:
            return missing()
        # Links leave the frame: a click opens the link in the mailbox's own tab.
        body = _HEAD.sub(lambda m: m.group(0) + '<base target="_top">', caught.view.html, count=1)
        if body == caught.view.html:
            body = '<base target="_top">' + body
        return HTMLResponse(body, headers={"Content-Security-Policy": _PART_POLICY, "Cache-Control": "no-store"})

    async def raw(request: Request) -> Response:
        name = request.path_params["name"]
        if read_message(folder, name) is None:
            return missing()
        return Response((folder / name).read_bytes(), media_type="text/plain; charset=utf-8",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/", index), Route("/m/{name}", message), Route("/html/{name}", html_part), Route("/raw/{name}", raw),
    ], middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts), www_redirect=False)])
