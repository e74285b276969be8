"""/desk/do/{action}/{token}: the pages the proof's Approve, Hold and Add a note links open.
A front door: each GET shows one button and changes nothing (link scanners follow links);
the POST, authorised by the signed link (as the RFC 8058 unsubscribe POST is) and refused
from another site, hands the decision to the hook `digest serve` gives the app
(jobs/desk.py, over the process's wiring). With [author] email empty, every /desk/ route
answers 404.

A link is signed for one action and one weekly slot; it works until the slot is past
[schedule] max_late_hours, and acts on that slot's issue only (jobs/desk.py): once it has
gone, its links decide nothing about the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..core.config import Config
from ..core.desk import ACTIONS, APPROVE, HOLD, desk_on, expires, late_slot, upcoming_slot
from ..core.errors import DigestError, TokenError
from ..core.tokens import read_token

Page = Callable[..., HTMLResponse]
DeskAct = Callable[[str, str, datetime | None], str]  # (action, note, the link's slot) -> what was done, one line

_PAGES = {
    APPROVE: ("Approve this week's issue?", "It goes out at its time (at once, if its time has passed).", "Approve"),
    HOLD: ("Hold this week's issue?", "It will not go out; its posts roll into the next issue.", "Hold"),
}
_NOTE = ("Add a note to this week's issue", "It appears at the top of the issue; a new proof follows.", "Save the note")
MAX_NOTE_FORM = 20_000


def desk_routes(config: Config, *, page: Page, secret: str, origin_ok: Callable[[Request], bool],
                clock: Callable[[], datetime], act: DeskAct | None, note_of: Callable[[], str] | None) -> list[Route]:
    """The proof's one-button pages; `act(action, note)` records the decision (None: the
    app has no desk: 404), `note_of()` the note the issue has now."""

    def not_found() -> HTMLResponse:
        return page("message.html.j2", 404, heading="Not found", text="There is no such page.")

    def check(request: Request) -> tuple[str, datetime] | None:
        """The action and slot of a valid link for the issue decided about now, else None."""
        action = request.path_params["action"]
        if action not in ACTIONS:
            return None
        now = clock()
        try:
            data = read_token(secret, request.path_params["token"], action, now=now)
        except TokenError:
            return None
        slot = datetime.fromtimestamp(data.subscriber_id, timezone.utc)
        # A passed slot's issue can only be approved late (jobs/desk.py): its Hold and its note
        # pages show no button that would fail, nor the next issue's note.
        current = {upcoming_slot(config.schedule, now), *([late_slot(config.schedule, now)] if action == APPROVE else [])}
        return (action, slot) if slot in current and now <= expires(config.schedule, slot) else None

    def expired() -> HTMLResponse:
        return page("message.html.j2", 400, heading="This link does not work",
                    text="It may be for an issue that has gone, or have been cut short by your mail program. "
                         "Use the links of the newest proof.")

    async def show(request: Request) -> Response:
        if act is None or not desk_on(config.author):
            return not_found()
        checked = check(request)
        if checked is None:
            return expired()
        action = checked[0]
        heading, text, button = _PAGES.get(action, _NOTE)
        note = await run_in_threadpool(note_of) if note_of is not None and action not in _PAGES else ""
        return page("desk_action.html.j2", heading=heading, text=text, button=button, action=request.url.path,
                    note_field=action not in _PAGES, note=note)

    async def do(request: Request) -> Response:
        if act is None or not desk_on(config.author):
            return not_found()
        if not origin_ok(request):
            return page("message.html.j2", 403, heading="Not allowed", text="This form cannot be sent from another site.")
        checked = check(request)
        if checked is None:
            return expired()
        action, slot = checked
        form: Any = await request.form(max_part_size=MAX_NOTE_FORM)
        note = str(form.get("note", ""))[:MAX_NOTE_FORM]
        try:
            done = await run_in_threadpool(act, action, note, slot)  # that slot's issue only
        except DigestError as exc:
            return page("message.html.j2", 400, heading="Not done", text=str(exc))
        return page("message.html.j2", heading="Done", text=done)

    return [Route("/desk/do/{action}/{token}", show, methods=["GET"]),
            Route("/desk/do/{action}/{token}", do, methods=["POST"])]
