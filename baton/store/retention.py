"""Retention: finished events older than their graph keeps them are removed, a few rows at a
time, so pruning never holds the claim and report paths for long.

Each graph says how long it keeps its succeeded, failed and cancelled events (``retention`` in
its newest version; :class:`~baton.graphs.model.Retention`), or an operator names an age for
every graph (``baton db prune --days``). One transaction removes at most ``batch`` rows of one
event, oldest end first: its audit rows, then its tasks with their attempts, and last, once none
is left, the event itself. The event's state is checked in that same transaction (and locked
where the database locks rows), so an event that a rerun reopened, or that never ended, is never
touched. Outbox notices and their deliveries go once they are dispatched, every delivery of them
is over, and they are older than the settings' ``notice_retention_s``.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from baton.graphs.model import Retention
from baton.store.core import SqlCore
from baton.store.records import PruneRequest, PruneResult
from baton.store.retry import retried
from baton.store.rows import IdRow
from baton.store.tx import Tx, in_list, read_one, read_rows, scalar

DAY_S = 86_400.0
END_STATES = ("succeeded", "failed", "cancelled")
EVENTS_PER_CALL = 100  # whole events removed by one call at most (each also costs a look for the next)


class Rule(NamedTuple):
    """Events of ``graph`` in ``state`` that finished before ``before`` are due to go."""

    graph: str
    state: str
    before: float


class Finished(NamedTuple):
    id: int
    finished_at: float


# Events of one graph (by name) in one state that finished before a time: what a Rule selects.
DUE_FROM = ("FROM events e JOIN graphs g ON g.id = e.graph_id WHERE g.name = ? AND e.state = ? "
            "AND e.finished_at IS NOT NULL AND e.finished_at < ?")  # fmt: skip


class Victim(NamedTuple):
    id: int
    state: str


class SpecByName(NamedTuple):
    name: str
    spec: str


def rules(tx: Tx, asked: PruneRequest) -> list[Rule]:
    """What is due to go: ``days`` for every graph and end state when given, else each graph's
    newest version's ``retention``, else ``default_days``."""
    sql = ("SELECT g.name, g.spec FROM graphs g WHERE g.version = "
           "(SELECT MAX(h.version) FROM graphs h WHERE h.name = g.name) ORDER BY g.name")  # fmt: skip
    out = []
    for row in read_rows(tx, SpecByName, sql):
        declared = json.loads(row.spec).get("retention")
        kept = Retention(**declared) if declared is not None else None
        for state in END_STATES:
            age = asked.days if asked.days is not None else kept.days(state) if kept else asked.default_days
            if age is not None:
                out.append(Rule(row.name, state, asked.now - age * DAY_S))
    return out


class RetentionVerbs(SqlCore):
    @retried
    def prune(self, asked: PruneRequest) -> PruneResult:
        """Remove up to ``asked.batch`` rows of the oldest event due to go, and outbox rows
        that are over; in a dry run, count every event and task due. One transaction."""
        with self.transaction(write=not asked.dry_run) as tx:
            due = rules(tx, asked)
            if asked.dry_run:
                return _count(tx, due)
            result = PruneResult()
            if asked.notice_before is not None:
                result = PruneResult(notices=_prune_notices(tx, asked.notice_before, asked.batch))
            room = asked.batch
            for _ in range(EVENTS_PER_CALL):  # small events go many to a transaction
                victim = self._oldest(tx, due)
                if victim is None:
                    return result
                step = _prune_event(tx, victim, room)
                result, room = result + step, room - step.tasks - step.audit - step.events
                if not step.events or room <= 0:
                    break  # the event is not gone yet, or the batch is spent: the next call goes on
            return PruneResult(result.events, result.tasks, result.audit, result.notices, more=True)

    def _oldest(self, tx: Tx, due: list[Rule]) -> Victim | None:
        found: list[tuple[float, Victim]] = []
        for rule in due:
            sql = f"SELECT e.id, e.finished_at {DUE_FROM} ORDER BY e.finished_at LIMIT 1"
            row = read_one(tx, Finished, sql, rule)
            if row is not None:
                found.append((row.finished_at, Victim(row.id, rule.state)))
        if not found:
            return None
        _, victim = min(found)
        # the same state, locked: a rerun that reopened it since the look above wins
        locked = read_one(tx, Victim, f"SELECT id, state FROM events WHERE id = ? {self.event_lock}", (victim.id,))
        return locked if locked is not None and locked.state == victim.state else None


def _count(tx: Tx, due: list[Rule]) -> PruneResult:
    events = tasks = 0
    for rule in due:
        events += scalar(tx, f"SELECT COUNT(*) {DUE_FROM}", rule)
        tasks += scalar(tx, f"SELECT COALESCE(SUM(e.tasks_total), 0) {DUE_FROM}", rule)
    return PruneResult(events=events, tasks=int(tasks), more=events > 0)


def _prune_event(tx: Tx, victim: Victim, batch: int) -> PruneResult:
    audit = tx.q(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE event_id = ? ORDER BY id LIMIT ?)",
        (victim.id, batch),
    ).rowcount
    room = batch - audit
    if room <= 0:
        return PruneResult(audit=audit, more=True)
    ids = [r.id for r in read_rows(tx, IdRow, "SELECT id FROM tasks WHERE event_id = ? ORDER BY id LIMIT ?",
                                   (victim.id, room))]  # fmt: skip
    if ids:
        marks = in_list(ids)
        for table in ("attempts", "live_logs"):
            tx.q(f"DELETE FROM {table} WHERE task_id IN ({marks})", ids)
        tx.q(f"DELETE FROM tasks WHERE id IN ({marks})", ids)
    if len(ids) == room:
        return PruneResult(tasks=len(ids), audit=audit, more=True)
    for table in ("event_node_states", "event_nodes"):
        tx.q(f"DELETE FROM {table} WHERE event_id = ?", (victim.id,))
    tx.q("DELETE FROM events WHERE id = ?", (victim.id,))
    tx.audit("controller", "event.pruned", f"{victim.state} event past its graph's retention", None, event=victim.id)
    return PruneResult(events=1, tasks=len(ids), audit=audit, more=True)


def _prune_notices(tx: Tx, before: float, batch: int) -> int:
    over = "SELECT 1 FROM deliveries d WHERE d.notice_id = n.id AND d.state = 'pending'"
    sql = (f"SELECT n.id FROM notices n WHERE n.dispatched_at IS NOT NULL AND n.at < ? AND NOT EXISTS ({over}) "
           "ORDER BY n.id LIMIT ?")  # fmt: skip
    ids = [r.id for r in read_rows(tx, IdRow, sql, (before, batch))]
    if ids:
        tx.q(f"DELETE FROM deliveries WHERE notice_id IN ({in_list(ids)})", ids)
        tx.q(f"DELETE FROM notices WHERE id IN ({in_list(ids)})", ids)
    return len(ids)
