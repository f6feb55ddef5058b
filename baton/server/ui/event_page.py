"""The event page and its fragments: header, graph, waiting reasons, timeline, partition table,
a node's tasks and the task drawer.

Each fragment is a few reads whose size depends on the graph (nodes, edges, time bins) or on one
page of 100, so a 60,000-task event draws about as fast as a small one; only the timeline reads
every task (in the database, one GROUP BY), and it is held for its cost. Every fragment but the
node's task list is computed once per version of the event and shared by all its pages
(:mod:`baton.server.ui.views`). The page loads them all at once; its live stream (:mod:`baton.server.ui.live`)
then carries the header, graph and waiting panel, and names the others to fetch again, which
answer 304 when unchanged (their ETag is their content's digest).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from baton.access import Action
from baton.engine.states import TaskState
from baton.errors import NotFound
from baton.server.auth import needs, token_of, visible
from baton.server.door import GuardedRoute
from baton.server.state import reads_of, state_of
from baton.server.ui.access import checked_id, seen_event, seen_task
from baton.server.ui.drawing import graph_svg
from baton.server.ui.gantt import timeline_svg
from baton.server.ui.invisibles import reveal
from baton.server.ui.render import Rendered, can_steer, fragment, html, qs, respond
from baton.server.ui.views import Look, Views, hold_for_cost
from baton.server.ui.waiting import Snapshot, waiting_groups
from baton.store.protocol import ReadStore
from baton.store.records import EventRecord
from baton.wire.api import Name

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)
ROWS = 100
TIMELINE_BINS = 120
LOG_CHARS = 65_536
PARAMS_CHARS = 4000  # an event's parameters can be large (a list of 10,000 departments): shown in part
Partition = Annotated[str | None, Query(max_length=200)]
Attempt = Annotated[int, Query(ge=1, le=2**31 - 1)]  # which attempt's log, its stream, from where
Stream = Annotated[str, Query(pattern="^(stdout|stderr)$")]
Offset = Annotated[int, Query(ge=0, le=2**30)]


def _node_link(event_id: int) -> Any:
    return lambda node: f"/ui/events/{event_id}{qs(node=node)}#tasks"


def views_of(request: Request) -> Views:
    views: Views = state_of(request).views
    return views


def seen_look(request: Request, event_id: int) -> Look:
    """The event's latest shared look, once the request's token may see its type."""
    look = views_of(request).look(reads_of(request), checked_id(event_id))
    visible(token_of(request), look.event.type)
    return look


def header_context(store: ReadStore, look: Look) -> dict[str, Any]:
    totals: dict[str, int] = {}
    for by_state in look.counts.values():
        for state, n in by_state.items():
            totals[state] = totals.get(state, 0) + n
    return {"event": look.event, "counts": look.counts, "totals": totals, "version": look.version, "now": time.time()}


def graph_context(store: ReadStore, look: Look) -> dict[str, Any]:
    event = look.event
    return {"graph": {"event": event, "svg": graph_svg(store.graph_of(event.graph_id), look.counts,
                                                       link=_node_link(event.id))}}  # fmt: skip


def waiting_context(store: ReadStore, look: Look) -> dict[str, Any]:
    event, now = look.event, time.time()
    if event.finished_at is not None:
        return {"waiting": {"event": event, "groups": [], "now": now}}
    remaining = {p.node: p.remaining for p in store.node_progress(event.id)}
    seen = Snapshot(store.graph_of(event.graph_id), look.counts, remaining, store.backoffs(event.id, now),
                    store.workers(), now, store.key_waits(event.id), store.rate_waits(event.id))  # fmt: skip
    groups = waiting_groups(seen)
    return {"waiting": {"event": event, "groups": groups, "now": now}}


def timeline_context(store: ReadStore, look: Look) -> dict[str, Any]:
    event = look.event
    if event.tasks_total == 0:
        return {"timeline": {"event": event, "svg": None}}
    timeline = store.timeline(event.id, TIMELINE_BINS)
    return {"timeline": {"event": event, "svg": timeline_svg(timeline, store.critical_path(event.id), now=time.time())}}


Context = Callable[[ReadStore, Look], dict[str, Any]]
# The fragments every page of an event shares (computed once per version: baton.server.ui.views), by name:
# template, context, and whether it is held for its cost (the timeline reads every task).
SHARED: dict[str, tuple[str, Context, bool]] = {
    "header": ("event_header.html", header_context, False),
    "graph": ("event_graph.html", graph_context, False),
    "waiting": ("event_waiting.html", waiting_context, False),
    "timeline": ("event_timeline.html", timeline_context, True),
}


def shared_fragment(store: ReadStore, views: Views, look: Look, name: str, steer: bool) -> Rendered:
    template, context, costly = SHARED[name]
    key = (name, look.event.id, steer and name == "header")  # only the header shows actions
    held = costly and not look.event.state.terminal  # an ended event's timeline: its final one
    return views.get(key, look.version, lambda: fragment(template, steer, **context(store, look)),
                     hold=hold_for_cost if held else None)  # fmt: skip


def _shared_response(request: Request, event_id: int, name: str) -> Response:
    look = seen_look(request, event_id)
    return respond(request, shared_fragment(reads_of(request), views_of(request), look, name, can_steer(request)))


def partitions_context(store: ReadStore, event: EventRecord, after: str | None) -> dict[str, Any]:
    graph = store.graph_of(event.graph_id)
    rows = store.partition_rows(event.id, after=after, limit=ROWS + 1)
    more = len(rows) > ROWS
    rows = rows[:ROWS]
    whole = [t for n in graph.nodes if not n.partitioned for t in store.tasks(event.id, node=n.name, partition="")]
    return {"partitions": {"event": event, "rows": rows, "columns": [n.name for n in graph.nodes if n.partitioned],
                           "whole": whole if after is None else [], "after": after,
                           "next_after": rows[-1].partition if more and rows else None}}  # fmt: skip


def partitions_page(store: ReadStore, views: Views, look: Look, after: str | None) -> Rendered:
    """One page of the partition table, shared by every viewer at the event's version (every
    task's move changes the event's counts, hence its version)."""
    compute = lambda: fragment("event_partitions.html", False, **partitions_context(store, look.event, after))  # noqa: E731
    return views.get(("partitions", look.event.id, after), look.version, compute)


def node_tasks_context(request: Request, event: EventRecord, node: str, state: TaskState | None,
                       after: int | None) -> dict[str, Any]:  # fmt: skip
    rows = reads_of(request).tasks(event.id, node=node, state=state, after=after, limit=ROWS + 1)
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
    look = seen_look(request, event_id)
    store, views, steer = reads_of(request), views_of(request), can_steer(request)
    event = look.event
    shared = {name: shared_fragment(store, views, look, name, steer).text for name in SHARED}
    context: dict[str, Any] = {"event": event, "version": look.version, "shared": shared,
               "partitions": partitions_page(store, views, look, None).text,
               "node_tasks": node_tasks_context(request, event, node, state, None) if node else None,
               "drawer": drawer_context(request, task) if task else None}  # fmt: skip
    return html(request, "event.html", params_chars=PARAMS_CHARS, **context)


def _shared_route(name: str, doc: str = "") -> None:
    """``GET /ui/events/{id}/<name>``: one shared fragment of an event's page."""

    def fragment(request: Request, event_id: int) -> Response:
        return _shared_response(request, event_id, name)

    fragment.__name__, fragment.__doc__ = f"{name}_fragment", doc or None
    router.get(f"/events/{{event_id}}/{name}", **needs(Action.READ))(fragment)


_shared_route("header")
_shared_route("graph")
_shared_route("waiting")
_shared_route("timeline", "Held for its cost (see :mod:`baton.server.ui.views`): at 60,000 tasks it reads every one.")


@router.get("/events/{event_id}/partitions", **needs(Action.READ))
def partitions_fragment(request: Request, event_id: int, after: Partition = None) -> Response:
    look = seen_look(request, event_id)
    return respond(request, partitions_page(reads_of(request), views_of(request), look, after))


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
    store = reads_of(request)
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


@dataclass(frozen=True)
class LogPlace:
    """Which attempt's log, which stream, from which character (the query of the log routes)."""

    attempt: Attempt
    stream: Stream = "stdout"
    offset: Offset = 0


Place = Annotated[LogPlace, Depends()]


@router.get("/tasks/{task_id}/tail", **needs(Action.READ))
def task_tail(request: Request, task_id: int, place: Place) -> JSONResponse:
    """What a running attempt wrote since ``offset`` (the drawer polls this while it runs):
    ``running`` turns false once the attempt has ended, and the drawer is then fetched again.
    The text is for reading: its invisible characters come as markers (offsets count the log's own)."""
    task, _ = seen_task(request, task_id)
    attempt, offset = place.attempt, place.offset
    running = task.state is TaskState.RUNNING and task.attempt == attempt
    try:
        chunk = reads_of(request).attempt_log(task.id, attempt, place.stream, offset, LOG_CHARS)
    except NotFound:  # nothing written yet
        return JSONResponse({"text": "", "next_offset": offset, "size": offset, "running": running})
    text = reveal(chunk.text)
    return JSONResponse({"text": text, "next_offset": chunk.next_offset, "size": chunk.size, "running": running})


@router.get("/tasks/{task_id}/log", **needs(Action.READ))
def task_log(request: Request, task_id: int, place: Place) -> Response:
    """More of one attempt's log, from a character offset (the drawer shows the first 64 K)."""
    task, _ = seen_task(request, task_id)
    chunk = reads_of(request).attempt_log(task.id, place.attempt, place.stream, place.offset, LOG_CHARS)
    return html(request, "task_log.html", task=task, attempt=place.attempt, stream=place.stream, chunk=chunk)
