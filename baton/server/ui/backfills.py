"""The backfills pages (``/ui/backfills``, ``/ui/backfills/{id}``), the form that starts one (on
the schedules page) and its cancel.

The form sends dates as typed; they are read in the schedule's zone, as ``baton backfill`` reads
them (:func:`baton.engine.upcoming.range_bound`: a "from" date is the start of that day, a "to"
date its end), then the backfill goes through the API's own path
(:func:`baton.server.centre.start_backfill`), so a dry run previews exactly what starting would
raise and a refusal carries the API's message. A backfill's page lists its events, newest first,
a keyset page at a time (events know the backfill that raised them).
"""

from __future__ import annotations

import time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator, Field, ValidationError

from baton.access import Action
from baton.engine.fires import Fire
from baton.engine.upcoming import range_bound, wall_text
from baton.errors import UsageError
from baton.server.auth import needs, token_of
from baton.server.centre import seen_backfill, seen_backfills, seen_schedule, start_backfill
from baton.server.door import GuardedRoute, ObjectId
from baton.server.state import operator_of, reads_of
from baton.server.ui.render import html
from baton.store.protocol import ReadStore
from baton.store.records import MAX_MAX_RUNNING, ScheduleRecord
from baton.wire.api import BackfillIn, ItemName, Strict
from baton.wire.workers import integral

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)
LISTED = 100
EVENTS_PAGE = 50


class BackfillForm(Strict):
    """What the schedules page's backfill form posts: dates as typed, in the schedule's zone."""

    schedule: ItemName
    start: str = Field(min_length=1, max_length=64, description="the first day (or a time)")
    end: str = Field(min_length=1, max_length=64, description="the last day, included (or a time)")
    max_running: Annotated[int, Field(ge=1, le=MAX_MAX_RUNNING), BeforeValidator(integral)] = 1
    rerun: bool = False
    dry_run: bool = False


def zone_of(record: ScheduleRecord) -> str:
    return str(record.spec.get("timezone", "UTC"))


def _asked(form: BackfillForm, zone: str) -> BackfillIn:
    """The API's body for the form, its dates read in ``zone``; refusals name what was wrong."""
    try:
        from_at = range_bound(form.start, ZoneInfo(zone), end=False)
        to_at = range_bound(form.end, ZoneInfo(zone), end=True)
        return BackfillIn.model_validate({"schedule": form.schedule, "from": from_at, "to": to_at,
                                          "max_running": form.max_running, "rerun": form.rerun,
                                          "dry_run": form.dry_run})  # fmt: skip
    except ValidationError as exc:
        raise UsageError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@router.post("/backfills", **needs(Action.SUBMIT))
def start(request: Request, form: BackfillForm) -> JSONResponse:
    """Start a backfill (201, with its page's URL), or preview it (``dry_run``: its fires, those
    that already have an event, the first and last few, in the schedule's zone)."""
    record, _ = seen_schedule(request, form.schedule)
    zone = zone_of(record)
    started, preview = start_backfill(request, _asked(form, zone), actor=f"ui:token:{token_of(request).id}")
    if preview is None:
        return JSONResponse({"backfill_id": started.id, "url": f"/ui/backfills/{started.id}",
                             "message": f"backfill {started.id} started: {started.total} fire(s)"},
                            status_code=201)  # fmt: skip
    first, last = preview
    span = f"{wall_text(started.from_at, zone)} to {wall_text(started.to_at, zone)}"
    having = "each raised again (rerun)" if started.rerun else f"{started.skipped} already have an event"
    message = f"{started.total} fire(s) of {form.schedule} from {span}; {having}"
    return JSONResponse({"dry_run": True, "total": started.total, "skipped": started.skipped, "message": message,
                         "first": _walls(first, zone), "last": _walls(last, zone)})  # fmt: skip


def _walls(fires: tuple[Fire, ...], zone: str) -> list[str]:
    return [wall_text(f.at, zone) for f in fires]


@router.post("/backfills/{backfill_id}/cancel", **needs(Action.STEER))
def cancel(request: Request, backfill_id: ObjectId) -> JSONResponse:
    seen_backfill(request, backfill_id)
    done = operator_of(request).cancel_backfill(backfill_id, actor=f"ui:token:{token_of(request).id}")
    return JSONResponse({"backfill_id": done.id, "state": done.state,
                         "message": f"backfill {done.id} cancelled: no more of its fires are raised"})  # fmt: skip


def _zones(reads: ReadStore) -> dict[str, str]:
    return {s.name: zone_of(s) for s in reads.schedules()}


@router.get("/backfills", **needs(Action.READ))
def backfills_page(request: Request, fragment: bool = False) -> Response:
    """Backfills, newest first: progress, running now, state, range in the schedule's zone."""
    found = seen_backfills(request, LISTED)
    zones = _zones(reads_of(request)) if found else {}
    return html(request, "backfills_rows.html" if fragment else "backfills.html", backfills=found, zones=zones)


@router.get("/backfills/{backfill_id}", **needs(Action.READ))
def backfill_page(request: Request, backfill_id: ObjectId, before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                  fragment: bool = False) -> Response:  # fmt: skip
    """One backfill: its progress as a meter, its events (a keyset page), cancel for ``steer``."""
    b = seen_backfill(request, backfill_id)
    reads = reads_of(request)
    events = reads.events(backfill_id=b.id, before=before, limit=EVENTS_PAGE + 1)
    more = len(events) > EVENTS_PAGE
    events = events[:EVENTS_PAGE]
    zone = zone_of(reads.schedule(b.schedule))
    return html(request, "backfill_body.html" if fragment else "backfill.html", b=b, zone=zone, events=events,
                next_before=events[-1].id if more and events else None, first=before is None, before=before,
                now=time.time())  # fmt: skip
