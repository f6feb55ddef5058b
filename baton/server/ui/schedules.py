"""The schedules page (``/ui/schedules``) and a calendar's page (``/ui/calendars/{name}``), with
what they change: pause (with a note), resume, fire now.

The schedules page reads the schedules, the graph versions and the calendars (three reads,
:func:`baton.server.centre.schedule_views`) and works out each schedule's next fires in its own
zone. Its rows are a fragment the page fetches again when the store changes; the form that starts
a backfill sits outside them (:mod:`baton.server.ui.backfills`), so a refresh never clears what
is being typed. Roles and scope are the API's: ``steer`` pauses and resumes, ``submit`` fires
now and starts backfills, and a token limited to event types sees only its schedules.
"""

from __future__ import annotations

import calendar as months
import time
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from baton.access import Action
from baton.engine.fires import BusinessDays
from baton.engine.upcoming import Day, DayKind, calendar_year
from baton.errors import NotFound
from baton.graphs.calendars import calendar_from_dict
from baton.server.auth import needs, token_of
from baton.server.centre import schedule_views, seen_schedule
from baton.server.door import GuardedRoute
from baton.server.state import operator_of, reads_of
from baton.server.ui.render import can_submit, html
from baton.wire.api import ITEM_PATTERN, PauseIn

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)
FIRES_SHOWN = 3
ItemPath = Annotated[str, Path(min_length=1, max_length=100, pattern=ITEM_PATTERN)]


@router.get("/schedules", **needs(Action.READ))
def schedules_page(request: Request, fragment: bool = False) -> Response:
    """Every schedule the token may see with its state, next fires, last fire and calendar; the
    calendars; and, for a token that may submit, the form that starts a backfill."""
    reads = reads_of(request)
    views = schedule_views(reads, token_of(request), FIRES_SHOWN)
    calendars = reads.calendars()
    missing = sorted({v.calendar for v in views if v.calendar} - {c.name for c in calendars})
    startable = [v.record.name for v in views if v.record.state in ("active", "paused") and v.graph is not None]
    return html(request, "schedules_rows.html" if fragment else "schedules.html", views=views, calendars=calendars,
                missing=missing, startable=startable, can_submit=can_submit(request), now=time.time())  # fmt: skip


def _actor(request: Request) -> str:
    return f"ui:token:{token_of(request).id}"


@router.post("/schedules/{name}/pause", **needs(Action.STEER))
def pause(request: Request, name: ItemPath, body: PauseIn | None = None) -> JSONResponse:
    """Pause a schedule, keeping the note the page asked for."""
    seen_schedule(request, name)
    record = operator_of(request).pause_schedule(name, note=(body or PauseIn()).note, actor=_actor(request))
    return JSONResponse({"schedule": name, "state": record.state, "message": f"schedule {name} paused"})


@router.post("/schedules/{name}/resume", **needs(Action.STEER))
def resume(request: Request, name: ItemPath) -> JSONResponse:
    seen_schedule(request, name)
    record = operator_of(request).resume_schedule(name, actor=_actor(request))
    return JSONResponse({"schedule": name, "state": record.state, "message": f"schedule {name} resumed"})


@router.post("/schedules/{name}/trigger", **needs(Action.SUBMIT))
def trigger(request: Request, name: ItemPath) -> JSONResponse:
    """Fire now: the API's own verb, so the event is the one ``POST .../trigger`` would raise."""
    seen_schedule(request, name)
    event = operator_of(request).trigger_schedule(name, actor=_actor(request))
    return JSONResponse({"event_id": event.id, "url": f"/ui/events/{event.id}",
                         "message": f"schedule {name} fired: event {event.id} raised"}, status_code=201)  # fmt: skip


# --- a calendar's page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    """One month of a calendar's year as a grid: weeks of seven places, Monday first (None: a
    day of another month)."""

    name: str
    weeks: list[list[Day | None]]
    business: int


def month_grids(days: list[Day]) -> list[Month]:
    grids = []
    for month in range(1, 13):
        in_month = [d for d in days if d.day.month == month]
        places: list[Day | None] = [None] * in_month[0].day.weekday() + list(in_month)
        places += [None] * (-len(places) % 7)
        weeks = [places[i : i + 7] for i in range(0, len(places), 7)]
        grids.append(Month(months.month_name[month], weeks, sum(d.business for d in in_month)))
    return grids


@router.get("/calendars/{name}", **needs(Action.READ))
def calendar_page(request: Request, name: ItemPath, year: Annotated[int | None, Query(ge=1900, le=2999)] = None,
                  ) -> Response:  # fmt: skip
    """A calendar's year: every month as a grid of business days, weekends, holidays (named) and
    working days moved onto a weekend, the list of its days off, and the schedules that use it."""
    reads = reads_of(request)
    record = next((c for c in reads.calendars() if c.name == name), None)
    if record is None:
        raise NotFound(f"no calendar {name!r}")
    shown = year or date.today().year
    days = calendar_year(BusinessDays(calendar_from_dict(record.spec, source=f"calendar {name}")), shown)
    using = [v for v in schedule_views(reads, token_of(request), 0) if v.calendar == name]
    off = [d for d in days if d.kind in (DayKind.HOLIDAY, DayKind.WORKING_WEEKEND)]
    return html(request, "calendar.html", calendar=record, year=shown, months=month_grids(days), off=off,
                business=sum(d.business for d in days), total=len(days), using=using)  # fmt: skip
