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

from baton.backends.tx import Tx
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

    @property
    def task_id(self) -> int:
        return self.report.task_id

    @property
    def attempt(self) -> int:
        return self.report.attempt

    @property
    def outcome(self) -> Outcome:
        return self.report.outcome


def finish_attempts(tx: Tx, ended: list[Ended], actor: str) -> None:
    """Apply the end of each attempt; the caller has checked each is the current one."""
    if not ended:
        return
    tx.many(
        "INSERT INTO attempts (task_id, attempt, worker_id, outcome, started_at, finished_at, "
        "exit_code, error, stdout, stderr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.task_id, e.attempt, e.worker_id, e.outcome.value, *_attempt_columns(e.report)) for e in ended],
    )
    cancelling = _cancel_requested(tx, {e.event_id for e in ended})
    decided = [(e, _decide(tx, e, e.event_id in cancelling)) for e in ended]
    terminal: dict[int, int] = defaultdict(int)
    for e, d in decided:
        _move(tx, e, d, actor)
        terminal[e.event_id] += d.state.terminal
    succeeded = [e for e, d in decided if d.state is TaskState.SUCCEEDED]
    failed = [e for e, d in decided if d.state is TaskState.FAILED]
    advance(tx, succeeded)
    for event_id, count in block(tx, failed).items():
        terminal[event_id] += count
    settle(tx, terminal)


def _attempt_columns(r: Report) -> tuple[object, ...]:
    return (r.started_at, r.finished_at, r.exit_code, r.error, r.stdout, r.stderr)


def _cancel_requested(tx: Tx, event_ids: set[int]) -> set[int]:
    ids = sorted(event_ids)
    rows = tx.rows(f"SELECT id FROM events WHERE cancel_requested = 1 AND id IN ({', '.join('?' * len(ids))})", ids)
    return {r[0] for r in rows}


def _decide(tx: Tx, e: Ended, cancelling: bool) -> Decision:
    policy = tx.graph_of(e.graph_id).node(e.node).retry
    return decide(e.outcome, policy, e.failures, cancelling, _rng)


def _move(tx: Tx, e: Ended, d: Decision, actor: str) -> None:
    """Move one running task by the decision, guarded by state and attempt (the fence)."""
    fence = (e.task_id, e.attempt)
    failures = int(d.counts_as_failure)
    if d.state is TaskState.SUCCEEDED:
        tx.q(
            "UPDATE tasks SET state = 'succeeded', result = ?, finished_at = ?, error = NULL, "
            "worker_id = NULL, lease_expires_at = NULL WHERE id = ? AND attempt = ? AND state = 'running'",
            (e.report.result_json, e.report.finished_at, *fence),
        )
    elif d.state is TaskState.READY:
        at = tx.now + d.delay_s
        tx.q(
            "UPDATE tasks SET state = 'ready', failures = failures + ?, available_at = ?, ready_at = ?, "
            "error = ?, worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0 "
            "WHERE id = ? AND attempt = ? AND state = 'running'",
            (failures, at, at, e.report.error, *fence),
        )
    else:
        tx.q(
            "UPDATE tasks SET state = ?, failures = failures + ?, finished_at = ?, error = ?, "
            "worker_id = NULL, lease_expires_at = NULL WHERE id = ? AND attempt = ? AND state = 'running'",
            (d.state.value, failures, e.report.finished_at, e.report.error, *fence),
        )
    if d.state is TaskState.READY:
        tx.changed()  # claimable again (after its backoff, announced by the controller's sweep)
    action = "retry" if d.state is TaskState.READY and failures else d.state.value
    cause = f"attempt {e.attempt} {e.outcome}" + (f": {d.reason}" if d.reason else "")
    tx.audit(actor, f"task.{action}", cause, e.event_id, e.task_id, node=e.node, partition=e.partition)


def advance(tx: Tx, succeeded: list[Ended]) -> None:
    """Decrement the wait counters of the dependants of tasks that just succeeded."""
    per_node: dict[tuple[int, int, str], int] = defaultdict(int)
    # one order for every transaction (event, partition): concurrent reports lock dependants alike
    for e in sorted(succeeded, key=lambda e: (e.event_id, e.partition, e.task_id)):
        per_node[(e.event_id, e.graph_id, e.node)] += 1
        for down, mode in tx.graph_of(e.graph_id).downstream[e.node]:
            if mode is DepMode.SAME:
                cause = f"{e.node}[{e.partition}] succeeded"
                _release(tx, e.event_id, down.name, e.partition, cause)
    for (event_id, graph_id, node), count in sorted(per_node.items()):
        row = tx.one(
            "UPDATE event_nodes SET remaining = remaining - ? WHERE event_id = ? AND node = ? RETURNING remaining",
            (count, event_id, node),
        )
        if row is not None and row[0] == 0:
            tx.audit("controller", "node.succeeded", "all tasks succeeded", event_id, node=node)
            for down, mode in tx.graph_of(graph_id).downstream[node]:
                if mode.node_level:
                    _release(tx, event_id, down.name, None, f"node {node} succeeded")


def _release(tx: Tx, event_id: int, node: str, partition: str | None, cause: str) -> None:
    """Satisfy one incoming edge of the task (or of every task of the node)."""
    sql = (
        "UPDATE tasks SET pending = pending - 1, "
        "state = CASE WHEN pending = 1 THEN 'ready' ELSE state END, "
        "ready_at = CASE WHEN pending = 1 THEN ? ELSE ready_at END, "
        "available_at = CASE WHEN pending = 1 THEN ? ELSE available_at END "
        "WHERE event_id = ? AND node = ? AND state = 'pending'"
    )
    params: tuple[object, ...] = (tx.now, tx.now, event_id, node)
    if partition is not None:
        sql += " AND partition = ?"
        params += (partition,)
    rows = tx.rows(sql + " RETURNING id, state", params)
    ready = [r[0] for r in rows if r[1] == "ready"]
    if ready:
        tx.changed()
    if partition is not None and ready:
        tx.audit("controller", "task.ready", cause, event_id, ready[0], node=node, partition=partition)
    elif ready:
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
    for event_id, count in sorted(terminal.items()):
        if not count:
            continue
        row = tx.one(
            "UPDATE events SET tasks_active = tasks_active - ? WHERE id = ? "
            "RETURNING tasks_active, cancel_requested, state",
            (count, event_id),
        )
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
