"""``/api/v1/backfills``: raise a schedule's past fires in a range, follow and cancel it.

Starting one needs ``submit`` (it raises events); cancelling it ``steer``, as cancelling an event
does. The controller raises the fires in order, at most ``max_running`` unfinished at once, and
skips those that already have an event unless ``rerun``; a dry run counts them and answers the
first and last few fire times, storing nothing. A token limited to event types sees only the
backfills of schedules it may see (:mod:`baton.server.centre`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from baton.access import Action
from baton.server.auth import needs, token_of
from baton.server.centre import seen_backfill, seen_backfills, start_backfill
from baton.server.door import GuardedRoute, ObjectId
from baton.server.problems import Responses, responses
from baton.server.state import operator_of
from baton.wire.api import BackfillIn, BackfillOut

router = APIRouter(prefix="/api/v1/backfills", tags=["backfills"], route_class=GuardedRoute)
DRY_RUN: Responses = {200: {"model": BackfillOut, "description": "a dry run: what it would raise (nothing is stored)"}}


@router.get("", response_model=list[BackfillOut], **needs(Action.READ))
def list_backfills(request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[BackfillOut]:
    """Backfills, newest first, with their progress."""
    return [BackfillOut.of(b) for b in seen_backfills(request, limit)]


@router.get("/{backfill_id}", response_model=BackfillOut, **needs(Action.READ))
def show_backfill(request: Request, backfill_id: ObjectId) -> BackfillOut:
    """One backfill: raised and skipped of its total, its events running now, its state."""
    return BackfillOut.of(seen_backfill(request, backfill_id))


@router.post("", status_code=201, response_model=BackfillOut, responses={**DRY_RUN, **responses(400, 404, 409)},
             **needs(Action.SUBMIT))  # fmt: skip
def start(request: Request, response: Response, body: BackfillIn) -> BackfillOut:
    """Start a backfill (201, ``Location`` its URL), or with ``dry_run`` count its fires, those
    that already have an event, and show the first and last few (200, ``id`` 0). 400 when the
    range holds over 100,000 fires; 409 when the schedule is retired or waits for its calendar."""
    record, shown = start_backfill(request, body, actor=f"token:{token_of(request).id}")
    if body.dry_run:
        response.status_code = 200
    else:
        response.headers["Location"] = f"/api/v1/backfills/{record.id}"
    return BackfillOut.of(record, shown)


@router.post("/{backfill_id}/cancel", response_model=BackfillOut, responses=responses(409), **needs(Action.STEER))
def cancel(request: Request, backfill_id: ObjectId) -> BackfillOut:
    """Raise no more of its fires (409 when it is not running); the events it raised run on."""
    seen_backfill(request, backfill_id)
    return BackfillOut.of(operator_of(request).cancel_backfill(backfill_id, actor=f"token:{token_of(request).id}"))
