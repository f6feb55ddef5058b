"""What a page may show: every object is reached through its event, and the event's type is
checked against the viewer's token before anything of it is read (as the API does)."""

from __future__ import annotations

from fastapi import Request

from baton.access import TokenRecord
from baton.errors import NotFound
from baton.server.auth import token_of, visible
from baton.server.state import reads_of
from baton.store.records import EventRecord, GraphRecord, TaskRecord

MAX_ID = 2**62


def checked_id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no object {value}")
    return value


def seen_event(request: Request, event_id: int) -> EventRecord:
    event = reads_of(request).event(checked_id(event_id))
    visible(token_of(request), event.type)
    return event


def seen_task(request: Request, task_id: int) -> tuple[TaskRecord, EventRecord]:
    task = reads_of(request).task(checked_id(task_id))
    return task, seen_event(request, task.event_id)


def seen_graph(request: Request, graph_id: int) -> GraphRecord:
    """A graph version, when the token may see its event type: to a token limited to other
    types it does not exist (404), as on the graphs list."""
    record = reads_of(request).graph(checked_id(graph_id))
    if not token_of(request).sees_type(record.event_type):
        raise NotFound(f"no graph {graph_id}")
    return record


def type_filter(token: TokenRecord) -> list[str] | None:
    """The event types a token's lists are limited to (None: all)."""
    return None if token.event_types is None else sorted(token.event_types)
