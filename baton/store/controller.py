"""The controller's verbs over SQL (:class:`~baton.store.protocol.ControllerStore`): expand
submitted events, expire lost leases, hold a role; each verb one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from baton import faults
from baton.engine.planner import Plan
from baton.engine.states import EventState, Outcome
from baton.store import advance, event_limits, holds, limits, outbox, plans, priorities, rates
from baton.store.records import (
    EventRecord,
)
from baton.store.rerun import event_head
from baton.store.retry import retried
from baton.store.rows import (
    RUNNING_FROM,
    HolderRow,
    IdRow,
    Running,
    SinceRow,
)
from baton.store.tx import Tx, exists, read_one, read_rows

if TYPE_CHECKING:
    pass

from baton.store.core import SqlCore, ended_here


class ControllerVerbs(SqlCore):
    event: Callable[[int], EventRecord]  # a read (baton.store.reads), assembled beside these in SqlStore

    @retried
    def events_to_expand(self, limit: int, only: int | None = None) -> list[EventRecord]:
        """Submitted events, highest priority first, then oldest (``only``: that one event, if it
        is submitted), but for those that wait for a place under their graph's event limit."""
        with self.transaction(write=False) as tx:
            if only is None:
                sql, params = f"{event_limits.PLANNABLE}ORDER BY e.priority DESC, e.id LIMIT ?", (limit,)
            else:
                sql, params = f"{event_limits.PLANNABLE}AND e.id = ?", (only,)
            ids = [r.id for r in read_rows(tx, IdRow, sql, params)]
        return [self.event(i) for i in ids]

    @retried
    def save_plan(self, event_id: int, plan: Plan) -> bool:
        with self.transaction() as tx:
            head = event_head(tx, event_id, self.event_lock)
            if head is None or head.state != EventState.SUBMITTED:
                return False
            graph = tx.graph_of(head.graph_id)
            if not event_limits.admit(tx, event_id, graph, self.event_lock):
                return False  # it waits for a place (still submitted), or its graph's policy cancelled it
            tx.changed()
            plans.insert_tasks(tx, event_id, graph, plan.tasks, [n.name for n in graph.nodes])
            tx.many(
                "INSERT INTO event_nodes (event_id, node, total, remaining) VALUES (?, ?, ?, ?)",
                [(event_id, node, n, n) for node, n in plan.node_totals.items()],
            )
            total = len(plan.tasks)
            tx.q(
                "UPDATE events SET state = 'running', started_at = ?, tasks_total = ?, tasks_active = ? "
                "WHERE id = ? AND state = 'submitted'",
                (tx.now, total, total, event_id),
            )
            ready = sum(1 for t in plan.tasks if t.pending == 0)
            tx.audit(
                "controller",
                "event.expanded",
                "new event",
                event_id,
                tasks=total,
                ready=ready,
                nodes=dict(plan.node_totals),
            )
            self._after_plan(tx, total)
            faults.point("plan.before_commit")
        return True

    @retried
    def fail_event(self, event_id: int, reason: str) -> None:
        """Refuse a submitted event that cannot be expanded (its graph changed shape, or the
        store cannot hold its plan); the reason is kept as the event's error."""
        with self.transaction() as tx:
            moved = tx.q(
                "UPDATE events SET state = 'failed', finished_at = ?, error = ? WHERE id = ? AND state = 'submitted'",
                (tx.now, reason, event_id),
            ).rowcount
            if moved:
                tx.audit("controller", "event.failed", reason, event_id)
                outbox.notice(tx, outbox.Kind.EVENT_FAILED, event_id, reason=reason)
                outbox.ended_late(tx, event_id)

    @retried
    def expire_leases(self, limit: int = 500) -> int:
        with self.transaction() as tx:
            return self._expire(tx, limit)

    @retried
    def sweep(self, limit: int, since: float) -> tuple[int, float]:
        """The controller's periodic round in one transaction: expire lost leases, and wake
        workers if a retry's backoff ended after ``since``. Returns (expired, checked up to)."""
        with self.transaction() as tx:
            expired = self._expire(tx, limit)
            expired += holds.expire(tx, limit, self.skip_locked)
            holds.recall_below_head(tx, limit)
            due = ("SELECT 1 FROM tasks WHERE state = 'ready' AND parked = 0 AND available_at > ? "
                   "AND available_at <= ? LIMIT 1")  # fmt: skip
            if exists(tx, due, (since, tx.now)):
                tx.changed()
            limits.repair(tx)
            return expired, tx.now

    @retried
    def unpark_rated(self) -> tuple[int, float | None]:
        """Return tasks parked on a spent rate limit to the queue where their key allows a start
        now; how many went back, and in how many seconds the next of the others may start."""
        with self.transaction() as tx:
            return rates.release(tx)

    def _expire(self, tx: Tx, limit: int) -> int:
        rows = read_rows(
            tx,
            Running,
            f"{RUNNING_FROM} WHERE t.state = 'running' AND t.lease_expires_at < ? "
            f"ORDER BY t.lease_expires_at LIMIT ? {self.skip_locked}",
            (tx.now, limit),
        )
        ended = [ended_here(tx, r, Outcome.LOST, f"worker_lost: lease of worker {r.worker_id} expired") for r in rows]
        advance.finish_attempts(tx, ended, "controller")
        if ended:
            faults.point("expire.before_commit")
        return len(ended)

    @retried
    def age(self, now: float, step_s: float, batch: int) -> int:
        """Raise by 1 the priority of up to ``batch`` ready tasks that waited ``step_s`` at ``now``
        (the controller's clock) below the head of the queue's priority; how many were raised
        (:func:`baton.store.priorities.age`)."""
        with self.transaction() as tx:
            return priorities.age(tx, now, step_s, batch, self.skip_locked)

    @retried
    def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        """Take the role, or keep it, for ``ttl_s``; True when ``holder`` has it now. A holder
        that stops renewing loses it when the time runs out, and a standby takes over."""
        with self.transaction() as tx:
            tx.q(
                "INSERT INTO leadership (role, holder, expires_at, since) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (role) DO NOTHING",
                (role, holder, tx.now + ttl_s, tx.now),
            )
            row = read_one(
                tx,
                SinceRow,
                "UPDATE leadership SET expires_at = ?, since = CASE WHEN holder = ? THEN since ELSE ? END, "
                "holder = ? WHERE role = ? AND (holder = ? OR expires_at < ?) RETURNING since",
                (tx.now + ttl_s, holder, tx.now, holder, role, holder, tx.now),
            )
            if row is not None and row.since == tx.now:
                tx.audit(holder, "leadership.acquired", f"took the {role} role", role=role)
        return row is not None

    @retried
    def resign(self, role: str, holder: str) -> None:
        """Give the role up at once (on a clean shutdown), so a standby need not wait."""
        with self.transaction() as tx:
            tx.q("UPDATE leadership SET expires_at = 0 WHERE role = ? AND holder = ?", (role, holder))

    @retried
    def leader(self, role: str) -> str | None:
        with self.transaction(write=False) as tx:
            sql = "SELECT holder FROM leadership WHERE role = ? AND expires_at >= ?"
            row = read_one(tx, HolderRow, sql, (role, tx.now))
        return None if row is None else str(row.holder)
