"""A graph's event limit in the store: whether a submitted event may start (inside the
transaction that saves its plan), and which submitted events the controller may plan.

At most ``max_running`` events of a graph's name (every version) run at once; an event being
cancelled holds no place. The decision is :func:`baton.engine.limits.admit_event`'s; this module
serializes it per graph (the graph's rows are locked on PostgreSQL; a SQLite transaction is the
only writer) and applies it: an event that must queue stays ``submitted``, in order of priority
then submission; one the policy refuses is cancelled with the cause; under ``cancel_oldest`` the
oldest running event is cancelled to make its place.
"""

from __future__ import annotations

from typing import NamedTuple

from baton.engine.limits import Admission, admit_event
from baton.graphs.model import Graph
from baton.store.cancel import cancel_event
from baton.store.rows import IdRow
from baton.store.tx import Tx, read_rows

# Submitted events the controller may plan now, oldest first: those of graphs without a queueing
# limit, and those of graphs with a free place (a refusing policy is applied when planning).
PLANNABLE = (
    "SELECT e.id FROM events e JOIN graphs g ON g.id = e.graph_id WHERE e.state = 'submitted' "
    "AND (g.max_running_events IS NULL OR g.event_limit_policy <> 'queue' OR g.max_running_events > "
    "(SELECT COUNT(*) FROM events r JOIN graphs rg ON rg.id = r.graph_id WHERE rg.name = g.name "
    "AND r.state = 'running' AND r.cancel_requested = 0)) "
)
_RUNNING = ("SELECT e.id FROM events e JOIN graphs g ON g.id = e.graph_id WHERE g.name = ? "
            "AND e.state = 'running' AND e.cancel_requested = 0 ORDER BY e.id")  # fmt: skip


class Place(NamedTuple):
    """Where a submitted event stands in its graph's queue."""

    running: list[int]  # the graph's running events, oldest first
    ahead: int  # submitted events of the graph before it (of a higher priority, or older)


def running_events(tx: Tx, graph_name: str) -> list[int]:
    return [r.id for r in read_rows(tx, IdRow, _RUNNING, (graph_name,))]


def place(tx: Tx, event_id: int, graph_name: str) -> Place:
    sql = ("SELECT e.id FROM events e JOIN graphs g ON g.id = e.graph_id JOIN events me ON me.id = ? "
           "WHERE g.name = ? AND e.state = 'submitted' AND e.id <> me.id "
           "AND (e.priority > me.priority OR (e.priority = me.priority AND e.id < me.id))")  # fmt: skip
    return Place(running_events(tx, graph_name), len(read_rows(tx, IdRow, sql, (event_id, graph_name))))


def admit(tx: Tx, event_id: int, graph: Graph, event_lock: str) -> bool:
    """Whether the submitted event may be planned now, its graph's policy applied."""
    limit = graph.event_limit
    if limit is None:
        return True
    if tx.key_lock:  # one decision per graph at a time
        read_rows(tx, IdRow, f"SELECT id FROM graphs WHERE name = ? ORDER BY id {tx.key_lock}", (graph.name,))
    running = running_events(tx, graph.name)
    decided = admit_event(len(running), limit)
    full = f"graph {graph.name} runs {len(running)} events, its limit (event_limit.max_running {limit.max_running})"
    if decided is Admission.QUEUE:
        return False
    if decided is Admission.REFUSE:
        cause = f"cancelled before it started: {full}, policy cancel_newest"
        cancel_event(tx, event_id, "controller", event_lock)
        tx.q("UPDATE events SET error = ? WHERE id = ?", (cause, event_id))
        tx.audit("controller", "event.refused", cause, event_id)
        return False
    if decided is Admission.DISPLACE:
        oldest, *_ = running
        cancel_event(tx, oldest, "controller", event_lock)
        tx.audit("controller", "event.displaced", f"{full}, policy cancel_oldest: event {event_id} takes its place",
                 oldest)  # fmt: skip
    return True
