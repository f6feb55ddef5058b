"""Pausing and resuming an event, a graph or one node of an event, inside the operator's
transactions, and what planning and re-running read of the pauses in force.

A pause is a row in ``pauses``; while it lasts, the unfinished tasks of its scope carry
``parked = PAUSED``, which keeps them out of the claims' queue (the ``tasks_ready`` index holds
only ``parked = 0``) whatever moves them meanwhile: a pending task released by its upstream, a
running one retried or whose lease expires, stays out. Running tasks are not stopped: they finish,
and their reports are recorded as ever. So the mark is written once, when pausing, on every task
not finished, and cleared once, when resuming, on the unfinished tasks no other pause still
covers (a finished task's mark means nothing: a re-run writes it again); the
planner (:func:`covered_nodes`) marks an event's new tasks if their graph, event or node is
paused, and a re-run marks what it resets the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from baton.errors import Conflict, NotFound
from baton.store.records import (
    MAX_PAUSE_REASON_CHARS,
    PauseAnswer,
    PauseRecord,
    PauseTarget,
    ResumeAnswer,
    TaskCounts,
)
from baton.store.tx import Tx, read_one, read_rows, select_list

PAUSED = 2  # tasks.parked while a pause covers the task (1: its concurrency key is full)
HELD = 4  # tasks.parked while a worker holds it (baton.store.holds): a pause asks it back

_UNFINISHED = "('pending', 'ready', 'running')"
# The tasks of a graph's unfinished events, by the graph's name (all its versions).
_GRAPH_TASKS = ("event_id IN (SELECT e.id FROM events e JOIN graphs g ON g.id = e.graph_id "
                "WHERE g.name = ? AND e.state IN ('submitted', 'running'))")  # fmt: skip
# A task no pause of its own event or node covers (graph pauses are checked apart).
_NO_EVENT_PAUSE = ("NOT EXISTS (SELECT 1 FROM pauses p WHERE p.event_id = tasks.event_id "
                   "AND (p.node IS NULL OR p.node = tasks.node))")  # fmt: skip


class PauseRow(NamedTuple):
    id: int
    target: str
    graph: str
    event_id: int | None
    node: str | None
    reason: str
    paused_by: str
    paused_at: float

    def record(self) -> PauseRecord:
        return PauseRecord(*self)


class EventOfGraph(NamedTuple):
    state: str
    name: str
    graph_id: int


class StateOnly(NamedTuple):
    state: str


_PAUSES_FROM = f"SELECT {select_list(PauseRow)} FROM pauses"


def _scope(target: PauseTarget) -> tuple[str, tuple[object, ...]]:
    """The SQL condition on ``tasks`` for the target's scope, with its parameters."""
    if target.graph is not None:
        return _GRAPH_TASKS, (target.graph,)
    if target.node is not None:
        return "event_id = ? AND node = ?", (target.event_id, target.node)
    return "event_id = ?", (target.event_id,)


def _counts(rows: Sequence[StateOnly]) -> TaskCounts:
    states = [r.state for r in rows]
    return TaskCounts(states.count("ready"), states.count("pending"), states.count("running"))


def _graph_name(tx: Tx, target: PauseTarget, lock: str) -> str:
    """The graph the target concerns, checking that it exists and can be paused."""
    if target.graph is not None:
        if read_one(tx, StateOnly, "SELECT 'known' AS state FROM graphs WHERE name = ? LIMIT 1", (target.graph,)):
            return target.graph
        raise NotFound(f"no graph named {target.graph!r}")
    sql = (f"SELECT e.state, g.name, e.graph_id FROM events e JOIN graphs g ON g.id = e.graph_id "
           f"WHERE e.id = ? {lock}")  # fmt: skip
    row = read_one(tx, EventOfGraph, sql, (target.event_id,))
    if row is None:
        raise NotFound(f"no event {target.event_id}")
    if row.state not in ("submitted", "running"):
        raise Conflict(f"event {target.event_id} is {row.state}: only an unfinished event can be paused")
    if target.node is not None and target.node not in {n.name for n in tx.graph_of(row.graph_id).nodes}:
        raise NotFound(f"graph {row.name} has no node {target.node!r}")
    return row.name


def pause(tx: Tx, target: PauseTarget, reason: str, actor: str, lock: str = "") -> PauseAnswer:
    """Record the pause (an existing one is kept, and answered) and take the scope's unfinished
    tasks out of the queue. ``lock``: the clause that locks an event's row (a pause and a cancel
    or re-run of the event in turn)."""
    if len(reason) > MAX_PAUSE_REASON_CHARS:
        raise Conflict(f"a pause's reason is at most {MAX_PAUSE_REASON_CHARS} characters")
    graph = _graph_name(tx, target, lock if target.event_id is not None and target.node is None else "")
    row = read_one(tx, PauseRow, f"{_PAUSES_FROM} WHERE target = ?", (target.name,))
    created = row is None
    if row is None:
        row = read_one(
            tx,
            PauseRow,
            "INSERT INTO pauses (target, graph, event_id, node, reason, paused_by, paused_at) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {select_list(PauseRow)}",
            (target.name, graph, target.event_id, target.node, reason, actor, tx.now),
        )
        assert row is not None
    where, params = _scope(target)
    sql = (f"UPDATE tasks SET parked = {PAUSED} WHERE {where} AND state IN {_UNFINISHED} "
           f"AND parked NOT IN ({PAUSED}, {HELD}) RETURNING state")  # fmt: skip
    held = _counts(read_rows(tx, StateOnly, sql, params))
    # a task a worker holds stays its worker's until given back (then it comes back paused): ask for it
    asked = tx.q(f"UPDATE tasks SET hold_recall = 1 WHERE {where} AND parked = {HELD} AND hold_recall = 0",
                 params).rowcount  # fmt: skip
    if asked > 0:
        tx.audit(actor, "hold.recalled", "paused", target.event_id, count=asked)
    if created:
        tx.changed()
        tx.audit(actor, "paused", reason or "operator paused", target.event_id, target=target.name,
                 ready=held.ready, pending=held.pending, running=held.running)  # fmt: skip
    return PauseAnswer(row.record(), created, held)


def resume(tx: Tx, target: PauseTarget, actor: str) -> ResumeAnswer:
    """Remove the pause and return to the queue the scope's tasks no other pause covers."""
    row = read_one(tx, PauseRow, f"DELETE FROM pauses WHERE target = ? RETURNING {select_list(PauseRow)}",
                   (target.name,))  # fmt: skip
    if row is None:
        raise Conflict(f"{_spoken(target)} is not paused")
    still = _still_paused(tx, target, row.graph)
    where, params = _scope(target)
    released = TaskCounts()
    if not any(s.startswith("graph:") or (target.node is not None and s == f"event:{target.event_id}")
               for s in still):  # fmt: skip
        sql = (f"UPDATE tasks SET parked = 0 WHERE {where} AND state IN {_UNFINISHED} AND parked = {PAUSED} "
               f"AND {_NO_EVENT_PAUSE} RETURNING state")  # fmt: skip
        released = _counts(read_rows(tx, StateOnly, sql, params))
    if released.ready:
        tx.made_ready(released.ready)
    tx.changed()
    tx.audit(actor, "resumed", "operator resumed", target.event_id, target=target.name,
             ready=released.ready, pending=released.pending, still_paused=list(still))  # fmt: skip
    return ResumeAnswer(target.name, released, still)


def _spoken(target: PauseTarget) -> str:
    if target.graph is not None:
        return f"graph {target.graph}"
    return f"event {target.event_id}" + (f" node {target.node}" if target.node is not None else "")


class TargetOnly(NamedTuple):
    target: str


def _still_paused(tx: Tx, target: PauseTarget, graph: str) -> tuple[str, ...]:
    """The other pauses that cover part or all of the target's scope: broader ones (its graph's,
    its event's) and narrower ones (an event of the graph, a node of the event)."""
    if target.graph is not None:
        sql = f"SELECT target FROM pauses WHERE {_GRAPH_TASKS} ORDER BY id"
        return tuple(r.target for r in read_rows(tx, TargetOnly, sql, (target.graph,)))
    same_event = "node IS NULL" if target.node is not None else "TRUE"  # an event's: its nodes' too
    sql = (f"SELECT target FROM pauses WHERE (event_id IS NULL AND graph = ?) "
           f"OR (event_id = ? AND {same_event}) ORDER BY id")  # fmt: skip
    return tuple(r.target for r in read_rows(tx, TargetOnly, sql, (graph, target.event_id)))


class NodeOnly(NamedTuple):
    node: str | None


def covered_nodes(tx: Tx, event_id: int, graph: str, nodes: Sequence[str]) -> frozenset[str]:
    """The nodes of the event that a pause covers: all of them while its graph or the event is
    paused, else those paused one by one."""
    sql = "SELECT node FROM pauses WHERE (event_id IS NULL AND graph = ?) OR event_id = ?"
    found = read_rows(tx, NodeOnly, sql, (graph, event_id))
    if any(r.node is None for r in found):
        return frozenset(nodes)
    return frozenset(r.node for r in found if r.node is not None)


def in_force(tx: Tx, event_id: int | None = None, graph: str | None = None) -> list[PauseRecord]:
    """The pauses in force, oldest first: all of them, or those covering an event of ``graph``
    (its graph's, the event's own, and its nodes')."""
    if event_id is None:
        return [r.record() for r in read_rows(tx, PauseRow, f"{_PAUSES_FROM} ORDER BY id")]
    sql = f"{_PAUSES_FROM} WHERE (event_id IS NULL AND graph = ?) OR event_id = ? ORDER BY id"
    return [r.record() for r in read_rows(tx, PauseRow, sql, (graph, event_id))]


# Unfinished tasks whose mark disagrees with the pauses: marked but covered by none, or covered
# and not marked (see baton.testing.check_invariants). A finished task's mark means nothing: a
# re-run sets it again.
_COVERED = (
    "EXISTS (SELECT 1 FROM pauses p WHERE (p.event_id = t.event_id AND (p.node IS NULL OR p.node = t.node)) "
    "OR (p.event_id IS NULL AND p.graph = (SELECT g.name FROM events e JOIN graphs g ON g.id = e.graph_id "
    "WHERE e.id = t.event_id)))"
)
# The same for a row of ``tasks`` named by the table (in its own UPDATE).
COVERED_TASK = _COVERED.replace("= t.", "= tasks.")
STRAY_PAUSED = (
    f"SELECT t.id FROM tasks t WHERE t.state IN {_UNFINISHED} AND ((t.parked = {PAUSED} AND NOT {_COVERED}) "
    f"OR (t.parked NOT IN ({PAUSED}, {HELD}) AND {_COVERED})) ORDER BY t.id"
)
