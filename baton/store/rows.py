"""The rows the verbs of :mod:`baton.store.sql` read, each a NamedTuple whose fields are the
columns its query selects (``select_list`` derives the SELECT list from it)."""

from __future__ import annotations

from typing import NamedTuple

from baton.store.tx import select_list


class Running(NamedTuple):
    """A running task with what deciding its end needs (from ``tasks t JOIN events e``)."""

    id: int
    attempt: int
    event_id: int
    graph_id: int
    node: str
    partition: str
    failures: int
    worker_id: str | None
    started_at: float | None
    cancel_requested: int  # this task was asked to stop
    event_cancelling: int  # its event was asked to cancel


# Running tasks are read through the partial index that holds only them (tasks_lease). Ordered by
# ``+t.id``, not ``t.id``: without statistics SQLite would rather walk the whole table in id order
# than sort the few running rows, making a heartbeat or a retried claim cost O(all tasks).
RUNNING_FROM = (
    f"SELECT {select_list(Running, 't.', graph_id='e.graph_id', event_cancelling='e.cancel_requested')} "
    "FROM tasks t JOIN events e ON e.id = t.event_id"
)


class Fenced(NamedTuple):
    """A reported task's row, to fence the report by (state, attempt, worker)."""

    id: int
    event_id: int
    graph_id: int
    node: str
    partition: str
    failures: int
    state: str
    attempt: int
    worker_id: str | None
    event_cancelling: int


FENCED_FROM = (
    f"SELECT {select_list(Fenced, 't.', graph_id='e.graph_id', event_cancelling='e.cancel_requested')} "
    "FROM tasks t JOIN events e ON e.id = t.event_id"
)


class GraphRow(NamedTuple):
    id: int
    name: str
    version: int
    event_type: str
    digest: str
    spec: str  # JSON
    registered_at: float


class IdRow(NamedTuple):
    id: int


class SpecRow(NamedTuple):
    spec: str


class KeyedEvent(NamedTuple):
    """The event an idempotency key names, to tell a repeat from a clash."""

    id: int
    type: str
    params: str


class SinceRow(NamedTuple):
    since: float


class HolderRow(NamedTuple):
    holder: str


class AttemptEnd(NamedTuple):
    """How an attempt was recorded: to tell a report sent again from a stale one."""

    task_id: int
    attempt: int
    outcome: str
