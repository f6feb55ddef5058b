"""Re-running an event: reset failed and cancelled tasks and what they blocked, keep successes.

Scoped by partition and/or node: only the unfinished tasks there are re-run, plus the tasks
downstream of them that were blocked. A reset task whose upstream is still unfinished (outside
the scope) stays blocked, so a scoped re-run can never leave a task waiting forever.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import NamedTuple

from baton.engine.planner import awaiting, blocked_by, unsatisfied_edges
from baton.engine.priorities import ordinals, task_priority, turn
from baton.engine.states import UNFINISHED, EventState, TaskState
from baton.errors import Conflict, NotFound
from baton.graphs.model import DepMode, Graph
from baton.graphs.params import partition_keys
from baton.store import pauses
from baton.store.priorities import start_turns
from baton.store.tx import Tx, read_one, read_rows, select_list


class EventHead(NamedTuple):
    """An event's state and graph, read (and locked) before it is planned or re-run."""

    state: str
    graph_id: int


class TaskPlace(NamedTuple):
    id: int
    node: str
    partition: str
    state: str


class NodeName(NamedTuple):
    node: str


class EventPlace(NamedTuple):
    params: str
    priority: int


def event_head(tx: Tx, event_id: int, event_lock: str = "") -> EventHead | None:
    """The event's state and graph (None: no such event), locked by ``event_lock`` if given."""
    sql = f"SELECT {select_list(EventHead)} FROM events WHERE id = ? {event_lock}"
    return read_one(tx, EventHead, sql, (event_id,))


def reset_for_rerun(
    tx: Tx, event_id: int, partition: str | None, node: str | None, actor: str, event_lock: str = ""
) -> int:
    head = event_head(tx, event_id, event_lock)
    if head is None:
        raise NotFound(f"no event {event_id}")
    state = EventState(head.state)
    if state not in (EventState.FAILED, EventState.CANCELLED):
        raise Conflict(f"event {event_id} is {state}; only a failed or cancelled event can be re-run")
    graph = tx.graph_of(head.graph_id)
    if node is not None and node not in {n.name for n in graph.nodes}:
        raise NotFound(f"graph {graph.name} has no node {node!r}")
    rows = read_rows(tx, TaskPlace, f"SELECT {select_list(TaskPlace)} FROM tasks WHERE event_id = ?", (event_id,))
    unfinished = {(r.node, r.partition): (r.id, TaskState(r.state)) for r in rows if TaskState(r.state) in UNFINISHED}
    succeeded = {(r.node, r.partition) for r in rows if r.state == TaskState.SUCCEEDED}
    again = _rediscovery(graph, rows, partition, node)
    if again is not None:  # it runs again, and counts as not succeeded from now on
        unfinished[(again.node, again.partition)] = (again.id, TaskState.SUCCEEDED)
        succeeded.discard((again.node, again.partition))
        tx.q("UPDATE event_nodes SET remaining = remaining + 1 WHERE event_id = ? AND node = ?", (event_id, again.node))
    targets = _targets(graph, unfinished, partition, node)
    if not targets:
        scope = " ".join(
            x for x in (f"node {node}" if node else "", f"partition {partition}" if partition else "") if x
        )
        raise Conflict(f"event {event_id} has no failed or cancelled tasks to re-run{' in ' + scope if scope else ''}")
    sql = f"SELECT {select_list(NodeName)} FROM event_nodes WHERE event_id = ? AND remaining = 0"
    complete = {r.node for r in read_rows(tx, NodeName, sql, (event_id,))} - awaiting(graph, succeeded)
    complete -= {again.node} if again is not None else set()
    resets = _resets(graph, targets, unfinished, succeeded, complete)
    places = _queue_places(tx, event_id, graph, resets)
    paused = pauses.covered_nodes(tx, event_id, graph.name, [n.name for n in graph.nodes])
    for (task_node, task_part), pending in resets.items():
        task_id, old = unfinished[(task_node, task_part)]
        new = TaskState.READY if pending == 0 else TaskState.PENDING
        priority, task_turn = places[(task_node, task_part)]
        tx.q(
            "UPDATE tasks SET state = ?, pending = ?, failures = 0, error = NULL, result = NULL, "
            "finished_at = NULL, cancel_requested = 0, parked = ?, available_at = ?, ready_at = ?, "
            "priority = ?, turn = ?, aged_at = NULL WHERE id = ? AND state = ?",
            (new.value, pending, pauses.PAUSED if task_node in paused else 0, tx.now,
             tx.now if pending == 0 else None, priority, task_turn, task_id, old.value),
        )  # fmt: skip
        tx.moved(event_id, task_node, old.value, new.value)
    tx.q(
        "UPDATE events SET state = 'running', cancel_requested = 0, finished_at = NULL, "
        "tasks_active = tasks_active + ? WHERE id = ?",
        (len(resets), event_id),
    )
    tx.changed()
    tx.audit(actor, "event.rerun", "operator asked to re-run", event_id, tasks=len(resets), partition=partition,
             node=node, rediscovery=again is not None)  # fmt: skip
    return len(resets)


def _queue_places(
    tx: Tx, event_id: int, graph: Graph, resets: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], tuple[int, int]]:
    """Each reset task's priority and turn, as if its event were planned now: its node's priority
    plus its event's (what ageing added is dropped), and a turn just after the one being served
    (baton.engine.priorities), so a re-run queues fairly beside the events submitted since."""
    found = read_one(tx, EventPlace, "SELECT params, priority FROM events WHERE id = ?", (event_id,))
    assert found is not None  # the caller has read (and locked) the event
    places = ordinals(partition_keys(graph, json.loads(found.params)))
    priorities = {(n, p): task_priority(graph.node(n).priority, found.priority) for n, p in resets}
    starts = start_turns(tx, priorities.values())
    out = {}
    for n, p in resets:
        ordinal = places.get(p, 0) if graph.node(n).partitioned else 0
        out[(n, p)] = (priorities[(n, p)], turn(starts[priorities[(n, p)]], ordinal))
    return out


def _rediscovery(graph: Graph, rows: list[TaskPlace], partition: str | None, node: str | None) -> TaskPlace | None:
    """The task of a discovery node (``partitions_from`` of others) that succeeded, when the
    re-run names that node: it runs again, and its new result's new keys are planned (the keys
    planned before keep their tasks, finished ones stay finished)."""
    if node is None or node not in graph.discoveries or partition not in (None, ""):
        return None
    return next((r for r in rows if r.node == node and r.state == TaskState.SUCCEEDED), None)


def _targets(
    graph: Graph, unfinished: Mapping[tuple[str, str], object], partition: str | None, node: str | None
) -> set[tuple[str, str]]:
    """The unfinished tasks in scope, plus everything they blocked."""
    by_node: dict[str, set[str]] = defaultdict(set)
    for key_node, key_part in unfinished:
        by_node[key_node].add(key_part)
    seeds = {(n, p) for n, p in unfinished if (partition is None or p == partition) and (node is None or n == node)}
    out = set(seeds)
    for seed_node, seed_part in seeds:
        for scope in blocked_by(graph, seed_node, seed_part):
            parts = by_node.get(scope.node, set())
            if scope.partition is None:
                out |= {(scope.node, p) for p in parts}
            elif scope.partition in parts:
                out.add((scope.node, scope.partition))
    return out


def _resets(
    graph: Graph,
    targets: set[tuple[str, str]],
    unfinished: Mapping[tuple[str, str], object],
    succeeded: set[tuple[str, str]],
    complete: set[str],
) -> dict[tuple[str, str], int]:
    """Pending counts of the targets that can run again, in topological order."""
    stuck_nodes: dict[str, set[str]] = defaultdict(set)  # node -> partitions left unfinished
    for stuck_node, stuck_part in unfinished.keys() - targets:
        stuck_nodes[stuck_node].add(stuck_part)
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    resets: dict[tuple[str, str], int] = {}
    for _, task_node, task_part in sorted((order[n], n, p) for n, p in targets):  # topological, then partition
        key = (task_node, task_part)
        if _still_blocked(graph, task_node, task_part, stuck_nodes):
            stuck_nodes[task_node].add(task_part)
            continue
        resets[key] = unsatisfied_edges(graph, task_node, task_part, succeeded, complete)
    return resets


def _still_blocked(graph: Graph, node: str, partition: str, stuck: dict[str, set[str]]) -> bool:
    for dep in graph.node(node).edges():
        left = stuck.get(dep.upstream, set())
        if left and (dep.mode is not DepMode.SAME or partition in left):
            return True
    return False
