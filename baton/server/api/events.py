"""``/api/v1`` events, tasks and logs: submit, list, show, cancel, rerun, read attempts' logs.

Every object is reached through its event, and its event's type is checked against the token's
limits before anything is read or changed (a log through its task, a task through its event).
Lists are keyset pages (``limit`` + 1 rows read to know whether more follow); nothing counts
rows on a request.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from baton.access import Action, TokenRecord
from baton.engine.states import EventState, TaskState
from baton.errors import NotFound
from baton.server.auth import needs, token_of, visible
from baton.server.door import GuardedRoute, ObjectId
from baton.server.problems import Responses, responses
from baton.server.state import operator_of, reads_of
from baton.server.submits import submit_event
from baton.store.records import EventRecord, LogChunk, TaskRecord
from baton.wire.api import (
    MAX_PAGE,
    CancelOut,
    EventOut,
    EventPage,
    LogOut,
    Name,
    RerunIn,
    RerunOut,
    SubmitIn,
    TaskOut,
    TaskPage,
    WaitingGroupOut,
    When,
)

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=GuardedRoute)
ATTEMPT_ID = re.compile(r"^([1-9][0-9]{0,17})-([1-9][0-9]{0,8})$")
# No captured stream is longer (max_log_bytes is at most 1 GiB), and past 2**31 PostgreSQL's
# substr() would be handed a bigint, which it has no form for.
MAX_LOG_OFFSET = 2**30
Cursor = Annotated[str | None, Query(max_length=40, pattern=r"^[0-9]{1,18}$", description="from next_cursor")]
REPLAYED: Responses = {200: {"model": EventOut, "description": "the event this idempotency key already names"}}


@router.post("/events", status_code=201, response_model=EventOut, responses={**REPLAYED, **responses(404, 409)},
             **needs(Action.SUBMIT, body="api"))  # fmt: skip
def submit(
    request: Request,
    response: Response,
    body: SubmitIn,
    idempotency_key: Annotated[Name | None, Header(description="makes a retried submit safe")] = None,
) -> EventOut:
    """Submit an event. The same idempotency key with the same type and parameters answers the
    same event (200, ``Idempotency-Replayed: true``); with other parameters, 409 naming it."""
    event, created = submit_event(request, body, idempotency_key)
    if not created:
        response.status_code = 200
        response.headers["Idempotency-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/events/{event.id}"
    return EventOut.of(event)


@router.get("/events", response_model=EventPage, **needs(Action.READ))
def list_events(
    request: Request,
    type: Annotated[Name | None, Query(description="only events of this type")] = None,
    state: Annotated[EventState | None, Query()] = None,
    since: Annotated[When | None, Query(description="submitted at or after (ISO 8601 or epoch seconds)")] = None,
    until: Annotated[When | None, Query(description="submitted before (ISO 8601 or epoch seconds)")] = None,
    backfill: Annotated[int | None, Query(ge=1, le=2**62, description="only events this backfill raised")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> EventPage:
    """Events, newest first, one keyset page at a time."""
    token = token_of(request)
    if type is not None:
        visible(token, type)
    rows = reads_of(request).events(
        event_type=type, event_types=None if token.event_types is None else sorted(token.event_types),
        state=state, since=since, until=until, backfill_id=backfill, before=None if cursor is None else int(cursor),
        limit=limit + 1,
    )  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(events=[EventOut.of(e) for e in rows], next_cursor=str(rows[-1].id) if more else None)


def _event(request: Request, event_id: int, token: TokenRecord) -> EventRecord:
    event = reads_of(request).event(event_id)
    visible(token, event.type)
    return event


NOT_MODIFIED: Responses = {304: {"description": "the event's version is the ETag sent in If-None-Match"}}


@router.get("/events/{event_id}", response_model=EventOut, responses=NOT_MODIFIED, **needs(Action.READ))
def show_event(request: Request, response: Response, event_id: ObjectId) -> Any:
    """One event with its tasks counted per node and state, and a ``version`` (also its ETag)
    that changes whenever the event does."""
    _check_id(event_id)
    event = _event(request, event_id, token_of(request))
    out = EventOut.of(event, reads_of(request).node_counts(event_id))
    etag = f'"{out.version}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return out


def _check_id(value: int) -> None:
    if not 1 <= value <= 2**62:
        raise NotFound(f"no object {value}")


@router.get("/events/{event_id}/tasks", response_model=TaskPage, **needs(Action.READ))
def list_tasks(
    request: Request,
    event_id: ObjectId,
    node: Annotated[Name | None, Query()] = None,
    partition: Annotated[Name | None, Query()] = None,
    state: Annotated[TaskState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Cursor = None,
) -> TaskPage:
    """An event's tasks in id order, one keyset page at a time."""
    _check_id(event_id)
    _event(request, event_id, token_of(request))
    rows = reads_of(request).tasks(
        event_id, node=node, partition=partition, state=state, after=None if cursor is None else int(cursor),
        limit=limit + 1,
    )  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    return TaskPage(tasks=[TaskOut.of(t) for t in rows], next_cursor=str(rows[-1].id) if more else None)


def _task(request: Request, task_id: int) -> TaskRecord:
    _check_id(task_id)
    task = reads_of(request).task(task_id)
    _event(request, task.event_id, token_of(request))
    return task


@router.get("/tasks/{task_id}", response_model=TaskOut, **needs(Action.READ))
def show_task(request: Request, task_id: ObjectId) -> TaskOut:
    """One task with its attempts (each with the id its log is read by)."""
    task = _task(request, task_id)
    return TaskOut.of(task, reads_of(request).attempts([task.id]))


@router.get("/attempts/{attempt_id}/log", response_model=LogOut, **needs(Action.READ))
def attempt_log(
    request: Request,
    attempt_id: Annotated[
        str, Path(pattern=ATTEMPT_ID.pattern, max_length=30, description="<task_id>-<attempt>, from a task's attempts")
    ],
    stream: Annotated[str, Query(pattern="^(stdout|stderr)$")] = "stdout",
    offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1024 * 1024)] = 65_536,
) -> LogOut:
    """A slice of one attempt's captured output, by character offset; ``next_offset`` is where
    the next slice starts (equal to ``size`` at the end). While the attempt runs, ``running`` is
    true and the slice is of its output so far, which its worker sends every few seconds; once it
    has ended, the stored output (a log over the store's cap keeps its head and tail only)."""
    found = ATTEMPT_ID.match(attempt_id)
    if found is None:
        raise NotFound(f"no attempt {attempt_id!r} (an attempt id is <task_id>-<attempt>)")
    task, attempt = _task(request, int(found.group(1))), int(found.group(2))
    try:
        chunk = reads_of(request).attempt_log(task.id, attempt, stream, offset, limit)
    except NotFound:
        if task.state is not TaskState.RUNNING or task.attempt != attempt:
            raise
        chunk = LogChunk(task.id, attempt, stream, offset, "", 0, live=True)  # nothing written yet
    return LogOut(attempt_id=attempt_id, stream=stream, offset=chunk.offset, next_offset=chunk.next_offset,
                  size=chunk.size, text=chunk.text, running=chunk.live)  # fmt: skip


@router.get("/events/{event_id}/waiting", response_model=list[WaitingGroupOut], **needs(Action.READ))
def waiting(request: Request, event_id: ObjectId) -> list[WaitingGroupOut]:
    """Why the event's tasks are not running, per node and reason, in the graph's node order: a
    pause holds them, upstream tasks are not done, a retry backs off, a concurrency key is full,
    no live worker fits them, or they wait for a free slot (none for a finished event)."""
    _check_id(event_id)
    _event(request, event_id, token_of(request))
    return [WaitingGroupOut.of(g) for g in reads_of(request).waiting(event_id)]


@router.post("/events/{event_id}/cancel", response_model=CancelOut, responses=responses(409), **needs(Action.STEER))
def cancel(request: Request, event_id: ObjectId) -> CancelOut:
    """Cancel an event: tasks not started never start; running ones are told to stop."""
    _check_id(event_id)
    token = token_of(request)
    _event(request, event_id, token)
    return CancelOut(event=EventOut.of(operator_of(request).cancel(event_id, actor=f"token:{token.id}")))


@router.post("/events/{event_id}/rerun", response_model=RerunOut, responses=responses(409), **needs(Action.STEER))
def rerun(request: Request, event_id: ObjectId, body: RerunIn | None = None) -> RerunOut:
    """Run failed and cancelled tasks again (all of them, one partition or one node) with what
    depends on them; every success is kept."""
    _check_id(event_id)
    token = token_of(request)
    _event(request, event_id, token)
    body = body or RerunIn()
    reset = operator_of(request).rerun(event_id, partition=body.partition, node=body.node, actor=f"token:{token.id}")
    return RerunOut(event_id=event_id, reset=reset)
