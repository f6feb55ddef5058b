"""The reads behind status, logs, audit and the API: the SQL side of :class:`~baton.store.protocol.ReadStore`.

Each is one read transaction; none changes anything. Lists are keyset-paginated: a page ends
with an id and the next one starts after it, so a page costs the same at any depth and no
request counts a whole table. Every row is read by name: each ``SELECT`` list is built from the
row type that receives it, so the two cannot drift.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Unpack

from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import NotFound, UsageError
from baton.store.records import (
    AttemptRecord,
    AuditFilter,
    AuditRecord,
    EventFilter,
    EventRecord,
    LogChunk,
    NodeProgress,
    TaskFilter,
    TaskRecord,
    WorkerRecord,
)
from baton.store.retry import retried
from baton.store.tx import Tx, in_list, read_one, read_rows, select_list

STREAMS = ("stdout", "stderr")


class EventRow(NamedTuple):
    id: int
    type: str
    graph_id: int
    graph_name: str
    graph_version: int
    idem_key: str | None
    params: str
    state: str
    cancel_requested: int
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    tasks_total: int
    tasks_active: int
    error: str | None
    schedule_id: int | None
    scheduled_for: float | None
    backfill_id: int | None
    source_event_id: int | None
    deadline_at: float | None
    predicted_end_at: float | None
    at_risk_at: float | None
    missed_at: float | None
    paused: int  # the pauses holding it: its graph's, its own, its nodes'
    priority: int

    def record(self) -> EventRecord:
        return EventRecord(
            id=self.id, type=self.type, graph_id=self.graph_id, graph_name=self.graph_name,
            graph_version=self.graph_version, key=self.idem_key, params=json.loads(self.params),
            state=EventState(self.state), cancel_requested=bool(self.cancel_requested),
            submitted_at=self.submitted_at, started_at=self.started_at, finished_at=self.finished_at,
            tasks_total=self.tasks_total, tasks_active=self.tasks_active, error=self.error,
            schedule_id=self.schedule_id, scheduled_for=self.scheduled_for, backfill_id=self.backfill_id,
            source_event_id=self.source_event_id, deadline_at=self.deadline_at,
            predicted_end_at=self.predicted_end_at, at_risk_at=self.at_risk_at, missed_at=self.missed_at,
            paused=self.paused,
            priority=self.priority,
        )  # fmt: skip


_PAUSED = "(SELECT COUNT(*) FROM pauses p WHERE p.event_id = e.id OR (p.event_id IS NULL AND p.graph = g.name))"
EVENTS_FROM = (
    f"SELECT {select_list(EventRow, 'e.', graph_name='g.name', graph_version='g.version', paused=_PAUSED)} "
    "FROM events e JOIN graphs g ON g.id = e.graph_id"
)


class TaskRow(NamedTuple):
    id: int
    event_id: int
    node: str
    partition: str
    state: str
    pending: int
    attempt: int
    failures: int
    worker_id: str | None
    ready_at: float | None
    started_at: float | None
    finished_at: float | None
    result: str | None
    error: str | None
    priority: int

    def record(self) -> TaskRecord:
        return TaskRecord(
            id=self.id, event_id=self.event_id, node=self.node, partition=self.partition,
            state=TaskState(self.state), pending=self.pending, attempt=self.attempt, failures=self.failures,
            worker_id=self.worker_id, ready_at=self.ready_at, started_at=self.started_at,
            finished_at=self.finished_at, result_json=self.result, error=self.error, priority=self.priority,
        )  # fmt: skip


class AttemptRow(NamedTuple):
    task_id: int
    attempt: int
    worker_id: str | None
    outcome: str
    started_at: float | None
    finished_at: float
    exit_code: int | None
    error: str | None
    stdout: str
    stderr: str

    def record(self) -> AttemptRecord:
        return AttemptRecord(**{**self._asdict(), "outcome": Outcome(self.outcome)})


class AuditRow(NamedTuple):
    id: int
    at: float
    event_id: int | None
    task_id: int | None
    actor: str
    action: str
    cause: str
    detail: str

    def record(self) -> AuditRecord:
        return AuditRecord(**{**self._asdict(), "detail": json.loads(self.detail)})


class WorkerRow(NamedTuple):
    id: str
    name: str
    host: str
    pid: int
    capacity: str
    labels: str
    started_at: float
    last_seen: float
    state: str

    def record(self, running: Sequence[int]) -> WorkerRecord:
        return WorkerRecord(
            id=self.id, name=self.name, host=self.host, pid=self.pid, capacity=json.loads(self.capacity),
            labels=frozenset(json.loads(self.labels)), started_at=self.started_at, last_seen=self.last_seen,
            state=self.state, running=tuple(running),
        )  # fmt: skip


class CountRow(NamedTuple):
    node: str
    state: str
    n: int


class OrderedCountRow(NamedTuple):
    k: int
    node: str
    state: str
    n: int


# The counted states, each node's total and remaining (totals first: their rows come before the
# remaining ones), and the running tasks: MATERIALIZED reads the running tasks of every event
# first (the partial index holds only those, so they are few), never all of this event's tasks.
_NODE_COUNTS = (
    "WITH running AS MATERIALIZED (SELECT event_id, node FROM tasks WHERE state = 'running' "
    "AND lease_expires_at IS NOT NULL) "
    "SELECT * FROM (SELECT 1 AS k, node, 'total' AS state, total AS n FROM event_nodes WHERE event_id = ? "
    "UNION ALL SELECT 2, node, 'remaining', remaining FROM event_nodes WHERE event_id = ? "
    "UNION ALL SELECT 3, node, state, n FROM event_node_states WHERE event_id = ? AND n <> 0 "
    "UNION ALL SELECT 4, node, 'running', COUNT(*) FROM running WHERE event_id = ? GROUP BY node) AS c ORDER BY k"
)


class NodeRow(NamedTuple):
    node: str
    total: int
    remaining: int


class HeldRow(NamedTuple):
    worker_id: str
    id: int


class LogRow(NamedTuple):
    text: str
    size: int
    live: int  # 1: a running attempt's live log


# A finished attempt's output, else (it runs) its live log: one statement, so one snapshot sees
# the attempt either finished or running, never neither in between (the transaction that writes
# the attempt row deletes the live log). A running attempt that wrote nothing yet reads empty.
_LOG = (
    "SELECT substr({stream}, ?, ?) AS text, length({stream}) AS size, 0 AS live FROM attempts "
    "WHERE task_id = ? AND attempt = ? "
    "UNION ALL SELECT COALESCE(substr(l.text, ?, ?), '') AS text, COALESCE(length(l.text), 0) AS size, 1 AS live "
    "FROM tasks t LEFT JOIN live_logs l ON l.task_id = t.id AND l.attempt = t.attempt AND l.stream = ? "
    "WHERE t.id = ? AND t.attempt = ? AND t.state = 'running'"
)


class StateRow(NamedTuple):
    state: str


class Where:
    """A ``WHERE`` clause built from the filters a caller gave (None: no filter)."""

    def __init__(self) -> None:
        self.terms: list[str] = []
        self.params: list[Any] = []

    def add(self, term: str, value: object) -> None:
        if value is not None:
            self.terms.append(term)
            self.params.append(value)

    def add_if(self, term: str, wanted: bool | None) -> None:
        """A condition without parameters, when ``wanted``."""
        if wanted:
            self.terms.append(term)

    def add_in(self, column: str, values: Sequence[Any] | None) -> None:
        """``column IN (values)``; an empty list matches nothing."""
        if values is not None:
            self.terms.append(f"{column} IN ({in_list(values)})" if values else "1 = 0")
            self.params.extend(values)

    @property
    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.terms) if self.terms else ""


def _page_limit(limit: int | None) -> int | None:
    if limit is not None and limit < 1:
        raise UsageError(f"a page holds at least one item (limit {limit})")
    return limit


class SqlReads(ABC):
    reconnect_s = 0.0

    @abstractmethod
    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]: ...

    @retried
    def event(self, event_id: int) -> EventRecord:
        with self.transaction(write=False) as tx:
            row = read_one(tx, EventRow, f"{EVENTS_FROM} WHERE e.id = ?", (event_id,))
        if row is None:
            raise NotFound(f"no event {event_id}")
        return row.record()

    @retried
    def event_state(self, event_id: int) -> EventState:
        with self.transaction(write=False) as tx:
            row = read_one(tx, StateRow, "SELECT state FROM events WHERE id = ?", (event_id,))
        if row is None:
            raise NotFound(f"no event {event_id}")
        return EventState(row.state)

    @retried
    def events(self, **asked: Unpack[EventFilter]) -> list[EventRecord]:
        where, types, state = Where(), asked.get("event_types"), asked.get("state")
        where.add("e.type = ?", asked.get("event_type"))
        where.add_in("e.type", None if types is None else sorted(types))
        where.add("e.state = ?", state.value if state is not None else None)
        where.add("e.submitted_at >= ?", asked.get("since"))
        where.add("e.submitted_at < ?", asked.get("until"))
        where.add("e.finished_at >= ?", asked.get("ended_since"))
        where.add("e.backfill_id = ?", asked.get("backfill_id"))
        where.add_if("e.deadline_at IS NOT NULL AND e.finished_at IS NULL AND e.at_risk_at IS NOT NULL",
                     asked.get("at_risk"))  # fmt: skip
        where.add("e.id < ?", asked.get("before"))
        sql = f"{EVENTS_FROM}{where.sql} ORDER BY e.id DESC LIMIT ?"
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, EventRow, sql, [*where.params, _page_limit(asked.get("limit", 20))])
        return [r.record() for r in rows]

    @retried
    def tasks(self, event_id: int, **asked: Unpack[TaskFilter]) -> list[TaskRecord]:
        where, state, limit = Where(), asked.get("state"), asked.get("limit")
        where.add("event_id = ?", event_id)
        where.add("node = ?", asked.get("node"))
        where.add("partition = ?", asked.get("partition"))
        where.add("state = ?", state.value if state is not None else None)
        where.add("id > ?", asked.get("after"))
        sql = f"SELECT {select_list(TaskRow)} FROM tasks{where.sql} ORDER BY id"
        params = where.params
        if _page_limit(limit) is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        with self.transaction(write=False) as tx:
            return [r.record() for r in read_rows(tx, TaskRow, sql, params)]

    @retried
    def task(self, task_id: int) -> TaskRecord:
        with self.transaction(write=False) as tx:
            row = read_one(tx, TaskRow, f"SELECT {select_list(TaskRow)} FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            raise NotFound(f"no task {task_id}")
        return row.record()

    @retried
    def node_counts(self, event_id: int) -> dict[str, dict[str, int]]:
        """By node name; O(nodes + running tasks), whatever the event's size: the counted states as kept, the
        succeeded from each node's remaining count, the running from the running tasks (read
        through the partial index that holds only them), and the ready as what is left."""
        with self.transaction(write=False) as tx:  # one statement: one snapshot on every database
            rows = read_rows(tx, OrderedCountRow, _NODE_COUNTS, (event_id,) * 4)
        out: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for r in rows:
            if r.state == "total":
                totals[r.node] = r.n
            elif r.state == "remaining":
                out.setdefault(r.node, {})[TaskState.SUCCEEDED.value] = totals.get(r.node, 0) - r.n
            else:
                out.setdefault(r.node, {})[r.state] = r.n
        for node, total in totals.items():
            counts = out.setdefault(node, {})
            counts[TaskState.READY.value] = total - sum(counts.values())
        return {
            node: {s: n for s, n in counts.items() if n} for node, counts in sorted(out.items()) if any(counts.values())
        }

    @retried
    def node_progress(self, event_id: int) -> list[NodeProgress]:
        sql = f"SELECT {select_list(NodeRow)} FROM event_nodes WHERE event_id = ? ORDER BY node"
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, NodeRow, sql, (event_id,))
        return [NodeProgress(r.node, r.total, r.remaining) for r in rows]

    @retried
    def attempts(self, task_ids: Sequence[int]) -> list[AttemptRecord]:
        if not task_ids:
            return []
        sql = (
            f"SELECT {select_list(AttemptRow)} FROM attempts WHERE task_id IN ({in_list(task_ids)}) "
            "ORDER BY task_id, attempt"
        )
        with self.transaction(write=False) as tx:
            return [r.record() for r in read_rows(tx, AttemptRow, sql, list(task_ids))]

    @retried
    def attempt_log(
        self, task_id: int, attempt: int, stream: str = "stdout", offset: int = 0, limit: int = 65_536
    ) -> LogChunk:
        if stream not in STREAMS:
            raise UsageError(f"no log stream {stream!r} (known: {', '.join(STREAMS)})")
        if offset < 0 or limit < 1:
            raise UsageError(f"a log slice needs offset >= 0 and limit >= 1 (got {offset}, {limit})")
        slice_, where = (offset + 1, limit), (task_id, attempt)
        with self.transaction(write=False) as tx:
            row = read_one(tx, LogRow, _LOG.format(stream=stream), (*slice_, *where, *slice_, stream, *where))
        if row is None:
            raise NotFound(f"no attempt {attempt} of task {task_id}")
        return LogChunk(task_id, attempt, stream, offset, row.text, row.size, live=bool(row.live))

    @retried
    def audit(self, **asked: Unpack[AuditFilter]) -> list[AuditRecord]:
        where, limit = Where(), asked.get("limit")
        where.add("event_id = ?", asked.get("event_id"))
        where.add("task_id = ?", asked.get("task_id"))
        where.add("id > ?", asked.get("after"))
        sql, params = f"SELECT {select_list(AuditRow)} FROM audit{where.sql} ORDER BY id", where.params
        if _page_limit(limit) is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        with self.transaction(write=False) as tx:
            return [r.record() for r in read_rows(tx, AuditRow, sql, params)]

    @retried
    def workers(self) -> list[WorkerRecord]:
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, WorkerRow, f"SELECT {select_list(WorkerRow)} FROM workers ORDER BY id")
            # through tasks_lease: only running tasks are in that index
            held = read_rows(
                tx, HeldRow,
                "SELECT worker_id, id FROM tasks WHERE state = 'running' AND lease_expires_at IS NOT NULL ORDER BY +id",
            )  # fmt: skip
        running: dict[str, list[int]] = {}
        for h in held:
            running.setdefault(h.worker_id, []).append(h.id)
        return [r.record(running.get(r.id, ())) for r in rows]
