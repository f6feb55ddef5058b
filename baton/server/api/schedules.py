"""``/api/v1/calendars`` and ``/api/v1/schedules``: business calendars, and the schedules graphs
declare, with their next fires; pause, resume and fire now.

Roles: reading needs ``read``; registering a calendar ``register_graph`` (admin), as a graph does,
since it changes when every schedule naming it fires. Pausing and resuming need ``steer``, as
cancelling does (they change how what exists runs); firing now needs ``submit``, as raising an
event does (it raises one, as ``POST /api/v1/events`` would). A token limited to event types
sees and acts on only the schedules raising events of its types (:mod:`baton.server.centre`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from baton.access import Action
from baton.engine.upcoming import MAX_NEXT_FIRES, NEXT_FIRES
from baton.errors import NotFound, UsageError
from baton.graphs.calendars import load_calendar_text
from baton.server.auth import needs, token_of
from baton.server.centre import schedule_view, schedule_views, seen_schedule
from baton.server.door import GuardedRoute
from baton.server.problems import responses
from baton.server.state import operator_of, reads_of
from baton.wire.api import ITEM_PATTERN, CalendarIn, CalendarOut, EventOut, PauseIn, ScheduleOut

router = APIRouter(prefix="/api/v1", tags=["schedules and calendars"], route_class=GuardedRoute)
ItemPath = Annotated[str, Path(min_length=1, max_length=100, pattern=ITEM_PATTERN)]
NextFires = Annotated[int, Query(ge=0, le=MAX_NEXT_FIRES, description="how many next fires to show")]


# --- calendars ---------------------------------------------------------------------------------


@router.get("/calendars", response_model=list[CalendarOut], **needs(Action.READ))
def list_calendars(request: Request) -> list[CalendarOut]:
    """Every registered business calendar, by name."""
    return [CalendarOut.of(c) for c in reads_of(request).calendars()]


@router.get("/calendars/{name}", response_model=CalendarOut, **needs(Action.READ))
def show_calendar(request: Request, name: ItemPath) -> CalendarOut:
    """One calendar with its canonical form and the text it was registered from."""
    for record in reads_of(request).calendars():
        if record.name == name:
            return CalendarOut.of(record)
    raise NotFound(f"no calendar {name!r}")


@router.put("/calendars/{name}", response_model=CalendarOut, responses=responses(400),
            **needs(Action.REGISTER_GRAPH, body="api"))  # fmt: skip
def register_calendar(request: Request, name: ItemPath, body: CalendarIn) -> CalendarOut:
    """Register (or replace) a calendar from its YAML text: validated first (422 naming each
    problem with its line); the name in the path must be the document's ``calendar``. Every
    schedule naming it works out its next fire again."""
    calendar = load_calendar_text(body.source, source=body.filename)
    if calendar.name != name:
        raise UsageError(f"the path names calendar {name!r} but the document is calendar {calendar.name!r}")
    return CalendarOut.of(operator_of(request).register_calendar(calendar, source=body.source))


# --- schedules ---------------------------------------------------------------------------------


@router.get("/schedules", response_model=list[ScheduleOut], **needs(Action.READ))
def list_schedules(request: Request, next: NextFires = NEXT_FIRES) -> list[ScheduleOut]:
    """Every schedule (retired ones too), by name, each with its next fires in its zone."""
    views = schedule_views(reads_of(request), token_of(request), next)
    return [ScheduleOut.of(v.record, v.event_type, v.coming) for v in views]


@router.get("/schedules/{name}", response_model=ScheduleOut, **needs(Action.READ))
def show_schedule(request: Request, name: ItemPath, next: NextFires = NEXT_FIRES) -> ScheduleOut:
    """One schedule with its next fires."""
    view = schedule_view(request, name, next)
    return ScheduleOut.of(view.record, view.event_type, view.coming)


@router.post("/schedules/{name}/pause", response_model=ScheduleOut, responses=responses(409),
             **needs(Action.STEER))  # fmt: skip
def pause(request: Request, name: ItemPath, body: PauseIn | None = None) -> ScheduleOut:
    """Raise none of its fires until it is resumed; those of the pause are never raised (not
    caught up). Pausing a paused schedule again replaces its note."""
    seen_schedule(request, name)
    note = (body or PauseIn()).note
    operator_of(request).pause_schedule(name, note=note, actor=f"token:{token_of(request).id}")
    return _shown(request, name)


@router.post("/schedules/{name}/resume", response_model=ScheduleOut, responses=responses(409),
             **needs(Action.STEER))  # fmt: skip
def resume(request: Request, name: ItemPath) -> ScheduleOut:
    """Raise its fires again, from now on (409 when it is not paused)."""
    seen_schedule(request, name)
    operator_of(request).resume_schedule(name, actor=f"token:{token_of(request).id}")
    return _shown(request, name)


@router.post("/schedules/{name}/trigger", status_code=201, response_model=EventOut, responses=responses(409),
             **needs(Action.SUBMIT))  # fmt: skip
def trigger(request: Request, response: Response, name: ItemPath) -> EventOut:
    """Fire now: raise the schedule's event as a fire at this instant would (its parameters'
    templates rendered for now), under a key of its own; its own fires are untouched."""
    seen_schedule(request, name)
    event = operator_of(request).trigger_schedule(name, actor=f"token:{token_of(request).id}")
    response.headers["Location"] = f"/api/v1/events/{event.id}"
    return EventOut.of(event)


def _shown(request: Request, name: str) -> ScheduleOut:
    view = schedule_view(request, name)
    return ScheduleOut.of(view.record, view.event_type, view.coming)
