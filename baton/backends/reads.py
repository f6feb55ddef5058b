"""The reads behind status, logs and audit: a separate interface from the verbs that change state.

Each is one read transaction; none changes anything. :class:`SqlReads` is mixed into the SQL
backend, and an HTTP API or UI can depend on these alone.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from baton.backends.retry import retried
from baton.backends.tx import Tx, in_list
from baton.errors import NotFound
from baton.records import AttemptRecord, AuditRecord, EventRecord, TaskRecord
from baton.states import EventState, Outcome, TaskState

EVENT_COLUMNS = (
    "e.id, e.type, e.graph_id, g.name, g.version, e.idem_key, e.params, e.state, e.cancel_requested, "
    "e.submitted_at, e.started_at, e.finished_at, e.tasks_total, e.tasks_active, e.error"
)
TASK_COLUMNS = (
    "id, event_id, node, partition, state, pending, attempt, failures, worker_id, ready_at, "
    "started_at, finished_at, result, error"
)


def _event(row: Sequence[Any]) -> EventRecord:
    return EventRecord(
        id=row[0],
        type=row[1],
        graph_id=row[2],
        graph_name=row[3],
        graph_version=row[4],
        key=row[5],
        params=json.loads(row[6]),
        state=EventState(row[7]),
        cancel_requested=bool(row[8]),
        submitted_at=row[9],
        started_at=row[10],
        finished_at=row[11],
        tasks_total=row[12],
        error=row[14],
        tasks_active=row[13],
    )


def _task(row: Sequence[Any]) -> TaskRecord:
    return TaskRecord(
        id=row[0],
        event_id=row[1],
        node=row[2],
        partition=row[3],
        state=TaskState(row[4]),
        pending=row[5],
        attempt=row[6],
        failures=row[7],
        worker_id=row[8],
        ready_at=row[9],
        started_at=row[10],
        finished_at=row[11],
        result_json=row[12],
        error=row[13],
    )


class SqlReads(ABC):
    reconnect_s = 0.0

    @abstractmethod
    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]: ...

    @retried
    def event(self, event_id: int) -> EventRecord:
        with self.transaction(write=False) as tx:
            row = tx.one(
                f"SELECT {EVENT_COLUMNS} FROM events e JOIN graphs g ON g.id = e.graph_id WHERE e.id = ?", (event_id,)
            )
        if row is None:
            raise NotFound(f"no event {event_id}")
        return _event(row)

    @retried
    def event_state(self, event_id: int) -> EventState:
        """Only the state: cheap enough to poll (an event's params can be large)."""
        with self.transaction(write=False) as tx:
            row = tx.one("SELECT state FROM events WHERE id = ?", (event_id,))
        if row is None:
            raise NotFound(f"no event {event_id}")
        return EventState(row[0])

    @retried
    def events(self, limit: int = 20) -> list[EventRecord]:
        with self.transaction(write=False) as tx:
            rows = tx.rows(
                f"SELECT {EVENT_COLUMNS} FROM events e JOIN graphs g ON g.id = e.graph_id ORDER BY e.id DESC LIMIT ?",
                (limit,),
            )
        return [_event(r) for r in rows]

    @retried
    def tasks(self, event_id: int, node: str | None = None, partition: str | None = None) -> list[TaskRecord]:
        sql = f"SELECT {TASK_COLUMNS} FROM tasks WHERE event_id = ?"
        params: list[object] = [event_id]
        for column, value in (("node", node), ("partition", partition)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        with self.transaction(write=False) as tx:
            return [_task(r) for r in tx.rows(sql + " ORDER BY id", params)]

    @retried
    def node_counts(self, event_id: int) -> dict[str, dict[str, int]]:
        with self.transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT node, state, COUNT(*) FROM tasks WHERE event_id = ? GROUP BY node, state", (event_id,)
            )
        out: dict[str, dict[str, int]] = {}
        for node, state, n in rows:
            out.setdefault(node, {})[state] = n
        return out

    @retried
    def attempts(self, task_ids: Sequence[int]) -> list[AttemptRecord]:
        if not task_ids:
            return []
        with self.transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT task_id, attempt, worker_id, outcome, started_at, finished_at, exit_code, error, "
                f"stdout, stderr FROM attempts WHERE task_id IN ({in_list(task_ids)}) ORDER BY task_id, attempt",
                list(task_ids),
            )
        return [AttemptRecord(r[0], r[1], r[2], Outcome(r[3]), *r[4:]) for r in rows]

    @retried
    def audit(self, event_id: int | None = None, task_id: int | None = None) -> list[AuditRecord]:
        sql, params = "SELECT id, at, event_id, task_id, actor, action, cause, detail FROM audit WHERE 1 = 1", []
        if event_id is not None:
            sql += " AND event_id = ?"
            params.append(event_id)
        if task_id is not None:
            sql += " AND task_id = ?"
            params.append(task_id)
        with self.transaction(write=False) as tx:
            rows = tx.rows(sql + " ORDER BY id", params)
        return [AuditRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]

    @retried
    def workers(self) -> list[dict[str, Any]]:
        with self.transaction(write=False) as tx:
            rows = tx.rows("SELECT id, name, host, pid, capacity, labels, last_seen, state FROM workers ORDER BY id")
        keys = ("id", "name", "host", "pid", "capacity", "labels", "last_seen", "state")
        return [dict(zip(keys, r, strict=True)) for r in rows]
