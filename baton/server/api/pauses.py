"""``/api/v1/pauses``: pause and resume an event, a graph or one node of an event, and list the
pauses in force (docs/limits.md). Pausing and resuming need ``steer``, as cancelling does; a
token limited to event types pauses only what it may see (a graph: every version's type)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from baton.access import Action
from baton.errors import NotFound
from baton.server.auth import needs, token_of, visible
from baton.server.door import GuardedRoute
from baton.server.problems import Responses, responses
from baton.server.state import operator_of, reads_of
from baton.wire.api import EventPause, PausedOut, PauseOut, PauseScope, PauseTargetIn, ResumedOut
from baton.wire.workers import MAX_KEY

router = APIRouter(prefix="/api/v1/pauses", tags=["pauses"], route_class=GuardedRoute)
IN_FORCE: Responses = {200: {"model": PausedOut, "description": "the target was paused already: that pause"}}


def _seen(request: Request, scope: PauseScope) -> None:
    """Refuse a target the token may not see (404 for a graph it sees no version of)."""
    token = token_of(request)
    if isinstance(scope, EventPause):
        visible(token, reads_of(request).event(scope.event_id).type)
        return
    types = {g.event_type for g in reads_of(request).graphs() if g.name == scope.graph}
    if not types or not all(token.sees_type(t) for t in types):
        raise NotFound(f"no graph named {scope.graph!r}")


@router.get("", response_model=list[PauseOut], responses=responses(404), **needs(Action.READ))
def list_pauses(
    request: Request,
    event_id: Annotated[int | None, Query(ge=1, le=MAX_KEY, description="those that hold this event")] = None,
) -> list[PauseOut]:
    """The pauses in force, oldest first: all those the token may see, or those that hold one
    event (its graph's, its own and its nodes')."""
    token = token_of(request)
    reads = reads_of(request)
    if event_id is not None:
        visible(token, reads.event(event_id).type)
        return [PauseOut.of(p) for p in reads.pauses(event_id)]
    seen = {g.name for g in reads.graphs() if token.sees_type(g.event_type)}
    return [PauseOut.of(p) for p in reads.pauses() if p.graph in seen]


@router.post("", status_code=201, response_model=PausedOut, responses={**IN_FORCE, **responses(404, 409)},
             **needs(Action.STEER))  # fmt: skip
def pause(request: Request, response: Response, body: PauseTargetIn) -> PausedOut:
    """Pause a graph, an event or a node of an event: no task of it starts until resumed; running
    ones finish (a retry of theirs waits too). Answers what it holds (201), or the pause already
    in force (200). 409 for a finished event."""
    _seen(request, body)
    answer = operator_of(request).pause(body.target(), body.reason, actor=f"token:{token_of(request).id}")
    if not answer.created:
        response.status_code = 200
    return PausedOut.of(answer)


@router.post("/resume", response_model=ResumedOut, responses=responses(404, 409), **needs(Action.STEER))
def resume(request: Request, body: PauseScope) -> ResumedOut:
    """End a pause: the tasks no other pause holds may start again. Answers how many are released
    (the ready ones start as slots allow; the pending ones when their upstream is done) and the
    pauses still holding part of the scope. 409 when the target is not paused."""
    _seen(request, body)
    return ResumedOut.of(operator_of(request).resume(body.target(), actor=f"token:{token_of(request).id}"))
