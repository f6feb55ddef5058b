"""The controller's rule, executed inside the transaction that records an attempt's end.

When an attempt ends (a worker's report, or an expired lease) this module, in the same
transaction: writes the attempt row, moves the task by :func:`baton.states.decide`,
decrements the wait counters of exactly the tasks that depended on it (never a rescan),
marks what can no longer run as ``upstream_failed``, and settles the event when its last
active task is done. Every decision is written to the audit log with its cause.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from baton.backends.tx import Cursor, Tx, values
from baton.model import DepMode
from baton.planner import blocked_by
from baton.records import Report
from baton.states import Decision, EventState, Outcome, TaskState, decide

_rng = random.Random()


@dataclass(frozen=True)
class Ended:
    """How an attempt ended (a worker's report, or an expired lease), with its task's row."""

    report: Report
    event_id: int
    graph_id: int
    node: str
    partition: str
    failures: int
    worker_id: str | None
    cancelling: bool = False  # the event has been asked to cancel

    @property
    def task_id(self) -> int:
        return self.report.task_id

    @property
    def attempt(self) -> int:
        return self.report.attempt

    @property
    def outcome(self) -> Outcome:
        return self.report.outcome


_SUCCEEDED = (
    "UPDATE tasks SET state = 'succeeded', result = ?, finished_at = ?, error = NULL, "
    "worker_id = NULL, lease_expires_at = NULL WHERE id = ? AND attempt = ? AND state = 'running'"
)


def finish_attempts(tx: Tx, ended: list[Ended], actor: str) -> None:
    """Apply the end of each attempt; the caller has checked each is the current one and holds
    its row. A batch costs a fixed number of statements, not a few per task."""
    if not ended:
        return
    tx.many(
        "INSERT INTO attempts (task_id, attempt, worker_id, outcome, started_at, finished_at, "
        "exit_code, error, stdout, stderr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.task_id, e.attempt, e.worker_id, e.outcome.value, *_attempt_columns(e.report)) for e in ended],
    )
    succeeded = [e for e in ended if e.outcome is Outcome.SUCCEEDED]
    tx.many(_SUCCEEDED, [(e.report.result_json, e.report.finished_at, e.task_id, e.attempt) for e in succeeded])
    for e in succeeded:
        tx.audit(actor, "task.succeeded", f"attempt {e.attempt} succeeded", e.event_id, e.task_id,
                 node=e.node, partition=e.partition)  # fmt: skip
    terminal: dict[int, int] = defaultdict(int)
    for e in succeeded:
        terminal[e.event_id] += 1
    failed = []
    for e in ended:
        if e.outcome is Outcome.SUCCEEDED:
            continue
        d = decide(e.outcome, tx.graph_of(e.graph_id).node(e.node).retry, e.failures, e.cancelling, _rng)
        _move(tx, e, d, actor)
        terminal[e.event_id] += d.state.terminal
        if d.state is TaskState.FAILED:
            failed.append(e)
    for event_id, count in block(tx, failed).items():
        terminal[event_id] += count
    # the three counter updates are sent together and their answers read afterwards: on a
    # pipelined database (PostgreSQL) that is one round trip instead of three
    released = _send_release_same(tx, succeeded)
    counted = _send_count_down(tx, succeeded)
    settled = _send_settle(tx, terminal)
    _read_released(tx, released)
    _read_counted(tx, counted)
    _read_settled(tx, settled)


def _attempt_columns(r: Report) -> tuple[object, ...]:
    return (r.started_at, r.finished_at, r.exit_code, r.error, r.stdout, r.stderr)


def _move(tx: Tx, e: Ended, d: Decision, actor: str) -> None:
    """Move one running task that did not succeed, guarded by state and attempt (the fence)."""
    fence = (e.task_id, e.attempt)
    failures = int(d.counts_as_failure)
    if d.state is TaskState.READY:
        at = tx.now + d.delay_s
        tx.q(
            "UPDATE tasks SET state = 'ready', failures = failures + ?, available_at = ?, ready_at = ?, "
            "error = ?, worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0 "
            "WHERE id = ? AND attempt = ? AND state = 'running'",
            (failures, at, at, e.report.error, *fence),
        )
        tx.changed()  # claimable again (after its backoff, announced by the controller's sweep)
    else:
        tx.q(
            "UPDATE tasks SET state = ?, failures = failures + ?, finished_at = ?, error = ?, "
            "worker_id = NULL, lease_expires_at = NULL WHERE id = ? AND attempt = ? AND state = 'running'",
            (d.state.value, failures, e.report.finished_at, e.report.error, *fence),
        )
    action = "retry" if d.state is TaskState.READY and failures else d.state.value
    cause = f"attempt {e.attempt} {e.outcome}" + (f": {d.reason}" if d.reason else "")
    tx.audit(actor, f"task.{action}", cause, e.event_id, e.task_id, node=e.node, partition=e.partition)


_BECOME_READY = (
    "state = CASE WHEN tasks.pending = {n} THEN 'ready' ELSE tasks.state END, "
    "ready_at = CASE WHEN tasks.pending = {n} THEN ? ELSE tasks.ready_at END, "
    "available_at = CASE WHEN tasks.pending = {n} THEN ? ELSE tasks.available_at END"
)


Sent = tuple[Cursor, Any]  # a statement sent, and what reading its answer needs


def _send_release_same(tx: Tx, succeeded: list[Ended]) -> Sent | None:
    """Decrement each dependant's wait counter by the number of its ``same`` edges satisfied
    here (one statement for the batch)."""
    causes: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    for e in succeeded:
        for down, mode in tx.graph_of(e.graph_id).downstream[e.node]:
            if mode is DepMode.SAME:
                causes[(e.event_id, down.name, e.partition)].append(f"{e.node}[{e.partition}] succeeded")
    if not causes:
        return None
    # one order for every transaction (event, partition, node): concurrent reports lock alike
    keys = sorted(causes, key=lambda k: (k[0], k[2], k[1]))
    rows, params = values([(*k, len(causes[k])) for k in keys])
    sql = (
        f"WITH d (event_id, node, partition, n) AS (VALUES {rows}) "
        f"UPDATE tasks SET pending = tasks.pending - d.n, {_BECOME_READY.format(n='d.n')} FROM d "
        "WHERE tasks.event_id = d.event_id AND tasks.node = d.node AND tasks.partition = d.partition "
        "AND tasks.state = 'pending' RETURNING tasks.id, tasks.event_id, tasks.node, tasks.partition, tasks.state"
    )
    return tx.q(sql, (*params, tx.now, tx.now)), causes


def _read_released(tx: Tx, sent: Sent | None) -> None:
    if sent is None:
        return
    cursor, causes = sent
    ready = [r for r in cursor.fetchall() if r[4] == "ready"]
    if ready:
        tx.changed()
    for task_id, event_id, node, partition, _ in ready:
        cause = ", ".join(causes[(event_id, node, partition)])
        tx.audit("controller", "task.ready", cause, event_id, task_id, node=node, partition=partition)


def _send_count_down(tx: Tx, succeeded: list[Ended]) -> Sent | None:
    """Subtract the successes from each node's remaining count."""
    per_node: dict[tuple[int, int, str], int] = defaultdict(int)
    for e in succeeded:
        per_node[(e.event_id, e.graph_id, e.node)] += 1
    if not per_node:
        return None
    keys = sorted(per_node)
    rows, params = values([(k[0], k[2], per_node[k]) for k in keys])
    cursor = tx.q(
        f"WITH d (event_id, node, n) AS (VALUES {rows}) "
        "UPDATE event_nodes SET remaining = event_nodes.remaining - d.n FROM d "
        "WHERE event_nodes.event_id = d.event_id AND event_nodes.node = d.node "
        "RETURNING event_nodes.event_id, event_nodes.node, event_nodes.remaining",
        params,
    )
    return cursor, {(k[0], k[2]): k[1] for k in keys}


def _read_counted(tx: Tx, sent: Sent | None) -> None:
    """A node whose last task succeeded satisfies its node-level edges (``all``, ``broadcast``)."""
    if sent is None:
        return
    cursor, graph_ids = sent
    for event_id, node, left in sorted(cursor.fetchall()):
        if left != 0:
            continue
        tx.audit("controller", "node.succeeded", "all tasks succeeded", event_id, node=node)
        for down, mode in tx.graph_of(graph_ids[(event_id, node)]).downstream[node]:
            if mode.node_level:
                _release_node(tx, event_id, down.name, f"node {node} succeeded")


def _release_node(tx: Tx, event_id: int, node: str, cause: str) -> None:
    """Satisfy one node-level edge of every task of the node."""
    rows = tx.rows(
        f"UPDATE tasks SET pending = pending - 1, {_BECOME_READY.format(n='1')} "
        "WHERE event_id = ? AND node = ? AND state = 'pending' RETURNING id, state",
        (tx.now, tx.now, event_id, node),
    )
    ready = [r[0] for r in rows if r[1] == "ready"]
    if ready:
        tx.changed()
        tx.audit("controller", "task.ready", cause, event_id, node=node, tasks=len(ready))


def block(tx: Tx, failed: Iterable[Ended]) -> dict[int, int]:
    """Mark everything downstream of failed tasks upstream_failed; return counts per event."""
    counts: dict[int, int] = defaultdict(int)
    for e in failed:
        graph = tx.graph_of(e.graph_id)
        for scope in blocked_by(graph, e.node, e.partition):
            sql = (
                "UPDATE tasks SET state = 'upstream_failed', finished_at = ?, error = ? "
                "WHERE event_id = ? AND node = ? AND state = 'pending'"
            )
            params: tuple[object, ...] = (tx.now, f"upstream {e.node}[{e.partition}] failed", e.event_id, scope.node)
            if scope.partition is not None:
                sql += " AND partition = ?"
                params += (scope.partition,)
            n = tx.q(sql, params).rowcount
            if n:
                counts[e.event_id] += n
                cause = f"{e.node}[{e.partition or '-'}] failed"
                tx.audit(
                    "controller",
                    "task.upstream_failed",
                    cause,
                    e.event_id,
                    node=scope.node,
                    partition=scope.partition,
                    tasks=n,
                )
    return counts


def settle(tx: Tx, terminal: dict[int, int]) -> None:
    """Count tasks that reached a final state; finish each event whose last one did."""
    _read_settled(tx, _send_settle(tx, terminal))


def _send_settle(tx: Tx, terminal: dict[int, int]) -> list[tuple[int, Cursor]]:
    sent = []
    for event_id, count in sorted(terminal.items()):
        if count:
            cursor = tx.q(
                "UPDATE events SET tasks_active = tasks_active - ? WHERE id = ? "
                "RETURNING tasks_active, cancel_requested, state",
                (count, event_id),
            )
            sent.append((event_id, cursor))
    return sent


def _read_settled(tx: Tx, sent: list[tuple[int, Cursor]]) -> None:
    for event_id, cursor in sent:
        row = cursor.fetchone()
        if row is not None and row[0] == 0 and row[2] == EventState.RUNNING:
            finish_event(tx, event_id, bool(row[1]))


def finish_event(tx: Tx, event_id: int, cancel_requested: bool) -> EventState:
    counts = dict(tx.rows("SELECT state, COUNT(*) FROM tasks WHERE event_id = ? GROUP BY state", (event_id,)))
    if counts.get("failed") or counts.get("upstream_failed"):
        final = EventState.FAILED
    elif counts.get("cancelled") or cancel_requested:
        final = EventState.CANCELLED
    else:
        final = EventState.SUCCEEDED
    tx.q(
        "UPDATE events SET state = ?, finished_at = ? WHERE id = ? AND state = 'running'",
        (final.value, tx.now, event_id),
    )
    tx.audit("controller", f"event.{final.value}", "no active tasks left", event_id, tasks=counts)
    tx.changed()
    return final
