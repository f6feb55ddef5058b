"""Steering from the UI: cancel an event, rerun its failed tasks (all, one partition or one
node). The same roles as the API (``steer``), a confirmation in the page, and the session's CSRF
token in ``X-CSRF-Token`` (checked with the session in :func:`baton.server.auth.check`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from baton.access import Action
from baton.server.auth import needs, token_of
from baton.server.door import GuardedRoute
from baton.server.state import operator_of
from baton.server.ui.access import seen_event
from baton.server.ui.event_page import views_of
from baton.wire.api import RerunIn

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)


@router.post("/events/{event_id}/cancel", **needs(Action.STEER))
def cancel(request: Request, event_id: int) -> JSONResponse:
    seen_event(request, event_id)
    event = operator_of(request).cancel(event_id, actor=f"ui:token:{token_of(request).id}")
    views_of(request).forget(event_id)  # the page fetches its fragments again at once: no stale look
    return JSONResponse({"event_id": event.id, "state": event.state.value, "message": f"event {event.id} cancelled"})


@router.post("/events/{event_id}/rerun", **needs(Action.STEER))
def rerun(request: Request, event_id: int, body: RerunIn | None = None) -> JSONResponse:
    seen_event(request, event_id)
    body = body or RerunIn()
    reset = operator_of(request).rerun(event_id, partition=body.partition, node=body.node,
                                    actor=f"ui:token:{token_of(request).id}")  # fmt: skip
    views_of(request).forget(event_id)
    scope = f"partition {body.partition}" if body.partition else f"node {body.node}" if body.node else "all failed"
    message = f"{reset} task(s) reset to run again ({scope})"
    return JSONResponse({"event_id": event_id, "reset": reset, "message": message})
