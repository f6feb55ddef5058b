"""What the UI changes: raise an event from a graph's page; cancel an event, rerun its failed
tasks (all, one partition or one node); pause and resume an event or a graph. The same roles as
the API (``submit``, ``steer``), a confirmation in the page for steering, and the session's CSRF
token in ``X-CSRF-Token`` on every post (checked with the session in
:func:`baton.server.auth.check`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from baton.access import Action
from baton.graphs.model import MAX_EVENT_PRIORITY, MIN_EVENT_PRIORITY
from baton.server.auth import needs, token_of
from baton.server.bodies import BODIES
from baton.server.door import GuardedRoute
from baton.server.state import operator_of, reads_of
from baton.server.submits import submit_event
from baton.server.ui.access import seen_event, seen_graph
from baton.server.ui.event_page import views_of
from baton.server.ui.params_form import typed_params
from baton.store.records import PauseTarget
from baton.wire.api import Name, PauseIn, RerunIn, Strict, SubmitIn

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)
SUBMIT_BODY = "api"  # a form holds what an API body may: its caps, in bytes and JSON values


class SubmitForm(Strict):
    """What the "Raise event" form posts: each parameter's field as typed (a checkbox as true or
    false), the idempotency key if one was given, and the event's priority."""

    values: dict[Name, str | bool] = Field(default_factory=dict)
    idempotency_key: Name | None = None
    priority: Annotated[int, Field(ge=MIN_EVENT_PRIORITY, le=MAX_EVENT_PRIORITY)] = 0


@router.post("/graphs/{graph_id}/submit", **needs(Action.SUBMIT, body=SUBMIT_BODY))
def submit(request: Request, graph_id: int, form: SubmitForm) -> JSONResponse:
    """Raise an event of this graph version: the fields typed by :func:`typed_params`, then
    the API's own submit, so refusals carry the API's problems (422 naming each parameter, 409
    for a key that names another event). 201 with the new event's page; 200 when the key
    already names an event, which is returned (no new one is raised)."""
    record = seen_graph(request, graph_id)
    params = typed_params(reads_of(request).graph_of(record.id), form.values, BODIES[SUBMIT_BODY].max_json_values)
    asked = SubmitIn(type=record.event_type, params=params, idempotency_key=form.idempotency_key,
                     graph_version=record.version, priority=form.priority)  # fmt: skip
    event, created = submit_event(request, asked)
    if created:
        message = f"event {event.id} raised"
    else:
        message = (f"the idempotency key {form.idempotency_key!r} already names event {event.id}: "
                   "that event was returned, and no new one raised")  # fmt: skip
    body = {"event_id": event.id, "created": created, "url": f"/ui/events/{event.id}", "message": message}
    return JSONResponse(body, status_code=201 if created else 200)


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


def _paused(target: PauseTarget, request: Request, note: str) -> JSONResponse:
    answer = operator_of(request).pause(target, note, actor=f"ui:token:{token_of(request).id}")
    held = answer.held
    message = f"{answer.pause.target} was paused already"
    if answer.created:
        message = (f"{answer.pause.target} paused: {held.ready} ready task(s) out of the queue, {held.pending} "
                   f"pending will wait, {held.running} running finish")  # fmt: skip
    return JSONResponse({"target": answer.pause.target, "created": answer.created, "message": message})


def _resumed(target: PauseTarget, request: Request) -> JSONResponse:
    answer = operator_of(request).resume(target, actor=f"ui:token:{token_of(request).id}")
    r = answer.released
    message = (f"{answer.target} resumed: {r.ready} ready task(s) may start now, {r.pending} pending start when "
               "their upstream is done")  # fmt: skip
    if answer.still_paused:
        message += f"; still paused by {', '.join(answer.still_paused)}"
    return JSONResponse({"target": answer.target, "message": message})


@router.post("/events/{event_id}/pause", **needs(Action.STEER))
def pause_event(request: Request, event_id: int, body: PauseIn | None = None) -> JSONResponse:
    """Pause an event, with the note the page asked for as its reason."""
    seen_event(request, event_id)
    answer = _paused(PauseTarget(event_id=event_id), request, (body or PauseIn()).note)
    views_of(request).forget(event_id)
    return answer


@router.post("/events/{event_id}/resume", **needs(Action.STEER))
def resume_event(request: Request, event_id: int) -> JSONResponse:
    seen_event(request, event_id)
    answer = _resumed(PauseTarget(event_id=event_id), request)
    views_of(request).forget(event_id)
    return answer


@router.post("/graphs/{graph_id}/pause", **needs(Action.STEER))
def pause_graph(request: Request, graph_id: int, body: PauseIn | None = None) -> JSONResponse:
    """Pause the graph (every version's events, and those raised while it is paused)."""
    record = seen_graph(request, graph_id)
    return _paused(PauseTarget(graph=record.name), request, (body or PauseIn()).note)


@router.post("/graphs/{graph_id}/resume", **needs(Action.STEER))
def resume_graph(request: Request, graph_id: int) -> JSONResponse:
    record = seen_graph(request, graph_id)
    return _resumed(PauseTarget(graph=record.name), request)
