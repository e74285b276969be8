"""GET/POST /ask: a reader's question, from our own page or a form pasted into a Blogger
gadget. A front door: HTTP in, the store out; the acknowledgement goes out only through
the hook `digest serve` hands the app (jobs/questions.py question_acknowledger).

The subscribe form's abuse controls, because the address typed here is just as
unverified: forms from other origins are refused unless listed in [web] allowed_origins,
each client address may post [web] ip_limit_per_hour times an hour, a hidden field
catches bots, and every accepted post gets the same page, byte for byte, whether the
question is new, a duplicate, from a bounced address or caught by the honeypot. The
question is kept before the page is answered; the acknowledgement follows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..adapters.questions import QuestionStore
from ..adapters.store import Store
from ..core.config import Config
from ..core.errors import InputError
from ..core.questions import MAX_DISPLAY_NAME, MAX_QUESTION_CHARS, new_question
from ..core.subscriptions import MAX_NAME

log = logging.getLogger("digest.web")

Page = Callable[..., HTMLResponse]
Acknowledger = Callable[[int, datetime], None]


def ask_routes(config: Config, store: Store, *, page: Page, origin_ok: Callable[[Request], bool],
               client_key: Callable[[Request], str], clock: Callable[[], datetime],
               acknowledge: Acknowledger | None, questions: QuestionStore | None = None) -> list[Route]:
    """The /ask routes; `client_key(request)` is whom [web] ip_limit_per_hour counts;
    `acknowledge(question_id, now)` mails the asker (None: no mail); `questions` is the
    process's (cli/wiring.py), else one over `store`."""
    questions = questions if questions is not None else QuestionStore(store)
    limits = {"max_chars": MAX_QUESTION_CHARS, "max_name": MAX_NAME, "max_display": MAX_DISPLAY_NAME}

    def form_page(status: int = 200, error: str = "", **values: Any) -> HTMLResponse:
        fields = {"email": "", "name": "", "question": "", "display_name": "", "quote": False} | values
        return page("ask.html.j2", status, error=error, **limits, **fields)

    async def ask_form(request: Request) -> Response:
        return form_page()

    async def ask(request: Request) -> Response:
        if not origin_ok(request):
            return page("message.html.j2", 403, heading="Not allowed", text="This form cannot be sent from another site.")
        now = clock()
        if not await run_in_threadpool(store.hit_rate, "ask", client_key(request), now=now, window=timedelta(hours=1),
                                       limit=config.web.ip_limit_per_hour):
            return page("message.html.j2", 429, heading="Too many attempts", text="Please wait an hour and try again.")
        form = await request.form()
        email, name = str(form.get("email", ""))[:320], str(form.get("name", ""))[:MAX_NAME]
        text, display_name = str(form.get("question", "")), str(form.get("display_name", ""))[:MAX_DISPLAY_NAME]
        quote = str(form.get("quote", "")) == "yes"
        done = page("asked.html.j2")
        if str(form.get("website", "")):
            return done  # the honeypot: a bot filled the hidden field
        again = {"email": email, "name": name, "question": text[:MAX_QUESTION_CHARS], "display_name": display_name,
                 "quote": quote}
        if len(text) > MAX_QUESTION_CHARS:
            return form_page(400, f"Please keep your question under {MAX_QUESTION_CHARS:,} characters.", **again)
        try:
            new = new_question(email=email, name=name, text=text, source="web", consent_to_quote=quote,
                               display_name=display_name)
        except InputError as exc:
            why = "Please enter a valid email address." if "address" in exc.message else "Please write your question."
            return form_page(400, why, **again)
        question, created = await run_in_threadpool(questions.record, new, now)
        if created:
            log.info("question %s received through /ask", question.id)
        if created and acknowledge is not None:
            done.background = BackgroundTask(acknowledge, question.id, now)
        return done

    return [Route("/ask", ask_form, methods=["GET"]), Route("/ask", ask, methods=["POST"])]
