"""The event page and its fragments: header, graph, waiting reasons, timeline, partition table,
a node's tasks and the task drawer.

Each fragment is a few reads whose size depends on the graph (nodes, edges, time bins) or on one
page of 100, never on the event's task count, so a 60,000-task event draws as fast as a small
one. The page loads them all at once; its live stream (:mod:`baton.ui.live`) then names the ones
to fetch again, and unchanged ones answer 304 (their ETag is their content's digest).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from baton.access import Action
from baton.api.auth import needs
from baton.api.state import store_of
from baton.api.wire import Name, event_version
from baton.errors import NotFound
from baton.records import EventRecord
from baton.states import TaskState
from baton.ui.access import seen_event, seen_task
from baton.ui.drawing import graph_svg
from baton.ui.gantt import timeline_svg
from baton.ui.render import html
from baton.ui.waiting import waiting_groups

router = APIRouter(prefix="/ui", include_in_schema=False)
ROWS = 100
TIMELINE_BINS = 120
LOG_CHARS = 65_536
PARAMS_CHARS = 4000  # an event's parameters can be large (a list of 10,000 departments): shown in part
Partition = Annotated[str | None, Query(max_length=200)]
Attempt = Annotated[int, Query(ge=1, le=2**31 - 1)]  # which attempt's log, its stream, from where
Stream = Annotated[str, Query(pattern="^(stdout|stderr)$")]
Offset = Annotated[int, Query(ge=0, le=2**30)]


def _node_link(event_id: int) -> Any:
    return lambda node: f"/ui/events/{event_id}?node={node}#tasks"


def header_context(request: Request, event: EventRecord) -> dict[str, Any]:
    counts = store_of(request).node_counts(event.id)
    totals: dict[str, int] = {}
    for by_state in counts.values():
        for state, n in by_state.items():
            totals[state] = totals.get(state, 0) + n
    return {"event": event, "counts": counts, "totals": totals, "version": event_version(event, counts),
            "now": time.time()}  # fmt: skip


def graph_context(request: Request, event: EventRecord, counts: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    graph = store_of(request).graph_of(event.graph_id)
    return {"event": event, "svg": graph_svg(graph, counts, link=_node_link(event.id))}


def waiting_context(request: Request, event: EventRecord, counts: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    store = store_of(request)
    now = time.time()
    if event.finished_at is not None:
        return {"event": event, "groups": [], "now": now}
    remaining = {p.node: p.remaining for p in store.node_progress(event.id)}
    groups = waiting_groups(store.graph_of(event.graph_id), counts, remaining, store.backoffs(event.id, now),
                            store.workers(), now)  # fmt: skip
    return {"event": event, "groups": groups, "now": now}


def timeline_context(request: Request, event: EventRecord) -> dict[str, Any]:
    store = store_of(request)
    if event.tasks_total == 0:
        return {"event": event, "svg": None}
    timeline = store.timeline(event.id, TIMELINE_BINS)
    return {"event": event, "svg": timeline_svg(timeline, store.critical_path(event.id), now=time.time())}


def partitions_context(request: Request, event: EventRecord, after: str | None) -> dict[str, Any]:
    store = store_of(request)
    graph = store.graph_of(event.graph_id)
    rows = store.partition_rows(event.id, after=after, limit=ROWS + 1)
    more = len(rows) > ROWS
    rows = rows[:ROWS]
    whole = store.tasks(event.id, partition="", limit=ROWS) if after is None else []
    return {"event": event, "rows": rows, "columns": [n.name for n in graph.nodes if n.partitioned],
            "whole": whole, "after": after, "next_after": rows[-1].partition if more and rows else None}  # fmt: skip


def node_tasks_context(request: Request, event: EventRecord, node: str, state: TaskState | None,
                       after: int | None) -> dict[str, Any]:  # fmt: skip
    rows = store_of(request).tasks(event.id, node=node, state=state, after=after, limit=ROWS + 1)
    more = len(rows) > ROWS
    rows = rows[:ROWS]
    return {"event": event, "node": node, "state": state.value if state else "", "tasks": rows, "now": time.time(),
            "next_after": rows[-1].id if more and rows else None}  # fmt: skip


@router.get("/events/{event_id}", **needs(Action.READ))
def event_page(
    request: Request,
    event_id: int,
    node: Annotated[Name | None, Query()] = None,
    state: Annotated[TaskState | None, Query()] = None,
    task: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The whole page: every fragment rendered in place (the page works without script)."""
    event = seen_event(request, event_id)
    head = header_context(request, event)
    context = {**head, "graph": graph_context(request, event, head["counts"]),
               "waiting": waiting_context(request, event, head["counts"]),
               "timeline": timeline_context(request, event), "partitions": partitions_context(request, event, None),
               "node_tasks": node_tasks_context(request, event, node, state, None) if node else None,
               "drawer": drawer_context(request, task) if task else None}  # fmt: skip
    return html(request, "event.html", params_chars=PARAMS_CHARS, **context)


@router.get("/events/{event_id}/header", **needs(Action.READ))
def header_fragment(request: Request, event_id: int) -> Response:
    event = seen_event(request, event_id)
    return html(request, "event_header.html", **header_context(request, event))


@router.get("/events/{event_id}/graph", **needs(Action.READ))
def graph_fragment(request: Request, event_id: int) -> Response:
    event = seen_event(request, event_id)
    counts = store_of(request).node_counts(event.id)
    return html(request, "event_graph.html", graph=graph_context(request, event, counts))


@router.get("/events/{event_id}/waiting", **needs(Action.READ))
def waiting_fragment(request: Request, event_id: int) -> Response:
    event = seen_event(request, event_id)
    counts = store_of(request).node_counts(event.id)
    return html(request, "event_waiting.html", waiting=waiting_context(request, event, counts))


@router.get("/events/{event_id}/timeline", **needs(Action.READ))
def timeline_fragment(request: Request, event_id: int) -> Response:
    event = seen_event(request, event_id)
    return html(request, "event_timeline.html", timeline=timeline_context(request, event))


@router.get("/events/{event_id}/partitions", **needs(Action.READ))
def partitions_fragment(request: Request, event_id: int, after: Partition = None) -> Response:
    event = seen_event(request, event_id)
    context = partitions_context(request, event, after)
    shown = (event.id, context["columns"], after, context["next_after"],
             [(r.partition, sorted(r.tasks.items())) for r in context["rows"]],
             [(t.id, t.node, t.state.value) for t in context["whole"]])  # fmt: skip
    return html(request, "event_partitions.html", data=shown, partitions=context)


@router.get("/events/{event_id}/tasks", **needs(Action.READ))
def node_tasks_fragment(
    request: Request,
    event_id: int,
    node: Annotated[Name, Query()],
    state: Annotated[TaskState | None, Query()] = None,
    after: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    event = seen_event(request, event_id)
    return html(request, "event_tasks.html", node_tasks=node_tasks_context(request, event, node, state, after))


def drawer_context(request: Request, task_id: int) -> dict[str, Any]:
    task, event = seen_task(request, task_id)
    store = store_of(request)
    attempts = store.attempts([task.id])
    graph = store.graph_of(event.graph_id)
    logs = {(a.attempt, stream): store.attempt_log(task.id, a.attempt, stream, 0, LOG_CHARS)
            for a in attempts for stream in ("stdout", "stderr")}  # fmt: skip
    upstream = [(d.upstream, d.mode.value) for d in graph.node(task.node).edges()]
    return {"task": task, "event": event, "attempts": attempts, "logs": logs, "upstream": upstream,
            "now": time.time(), "log_chars": LOG_CHARS}  # fmt: skip


@router.get("/tasks/{task_id}", **needs(Action.READ))
def task_drawer(request: Request, task_id: int) -> Response:
    """A task's attempts (worker, times, exit code, outcome, cause), result, inputs and logs."""
    return html(request, "task_drawer.html", drawer=drawer_context(request, task_id))


@router.get("/tasks/{task_id}/tail", **needs(Action.READ))
def task_tail(
    request: Request,
    task_id: int,
    attempt: Attempt,
    stream: Stream = "stdout",
    offset: Offset = 0,
) -> JSONResponse:
    """What a running attempt wrote since ``offset`` (the drawer polls this while it runs):
    ``running`` turns false once the attempt has ended, and the drawer is then fetched again."""
    task, _ = seen_task(request, task_id)
    running = task.state is TaskState.RUNNING and task.attempt == attempt
    try:
        chunk = store_of(request).attempt_log(task.id, attempt, stream, offset, LOG_CHARS)
    except NotFound:  # nothing written yet
        return JSONResponse({"text": "", "next_offset": offset, "size": offset, "running": running})
    return JSONResponse({"text": chunk.text, "next_offset": chunk.next_offset, "size": chunk.size, "running": running})


@router.get("/tasks/{task_id}/log", **needs(Action.READ))
def task_log(
    request: Request,
    task_id: int,
    attempt: Attempt,
    stream: Stream = "stdout",
    offset: Offset = 0,
) -> Response:
    """More of one attempt's log, from a character offset (the drawer shows the first 64 K)."""
    task, _ = seen_task(request, task_id)
    chunk = store_of(request).attempt_log(task.id, attempt, stream, offset, LOG_CHARS)
    return html(request, "task_log.html", task=task, attempt=attempt, stream=stream, chunk=chunk)
