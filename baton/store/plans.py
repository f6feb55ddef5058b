"""Planned tasks in the store: an event's plan when it is expanded, and the dynamic partitions
a discovery task lists, planned inside the transaction that records its success.

:func:`insert_tasks` writes planned tasks as the controller's ``save_plan`` does: each in the
first state its wait count gives, parked while a pause covers its node, its concurrency key
declared. :func:`plan_partitions` adds the dynamic nodes' tasks for the keys a discovery
returned that have no task yet (a re-run's discovery adds new keys and leaves the others as they
are), so:

- the node-level edges into the new tasks are counted against the rows of ``event_nodes`` of
  their upstream nodes, read locked (``Tx.key_lock``): a report completing one of those nodes
  concurrently either commits first (and is seen complete) or waits, then releases the new tasks;
  the new tasks' concurrency keys are declared before (their rows locked first, as every
  transaction that ends attempts locks them: one order, fewer deadlocks);
- the discovery's own edges are counted as unsatisfied: its success's count-down, later in the
  same transaction, releases them;
- a dynamic node left with nothing to run (an empty list) is complete at once: the caller
  releases its node-level edges downstream;
- the event's task counts grow by what was planned (the caller's :class:`~baton.store.advance.Tally`
  writes them with its other event counters, in their one order).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from baton.engine.planner import PlannedTask, awaiting, plan_discovered
from baton.engine.priorities import turn
from baton.graphs.model import Graph
from baton.store import claims, limits, pauses, priorities, rates
from baton.store.tx import Tx, in_list, read_one, read_rows


def insert_tasks(
    tx: Tx, event_id: int, graph: Graph, tasks: Sequence[PlannedTask], nodes: Sequence[str] | None = None
) -> None:
    """Insert planned tasks: ready when they wait for nothing, parked while a pause covers their
    node; their concurrency keys' limits are declared. ``nodes``: those whose requirements to
    intern (default: the tasks')."""
    nodes = sorted({t.node for t in tasks}) if nodes is None else nodes
    req = claims.intern_requirements(tx, graph, nodes)
    paused = pauses.covered_nodes(tx, event_id, graph.name, nodes)
    starts = priorities.start_turns(tx, (t.priority for t in tasks))
    tx.many(
        "INSERT INTO tasks (event_id, node, partition, state, pending, priority, stage, req_id, "
        "available_at, ready_at, limit_key, rate_key, parked, turn) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                event_id,
                t.node,
                t.partition,
                "ready" if t.pending == 0 else "pending",
                t.pending,
                t.priority,
                t.stage,
                req[t.node],
                tx.now,
                tx.now if t.pending == 0 else None,
                t.key,
                t.rate_key,
                pauses.PAUSED if t.node in paused else 0,
                turn(starts[t.priority], t.ordinal),
            )
            for t in tasks
        ],
    )
    _declare(tx, graph, tasks)
    for t in tasks:
        if t.pending:
            tx.moved(event_id, t.node, None, "pending")
    ready = sum(1 for t in tasks if t.pending == 0)
    if ready:
        tx.made_ready(ready)


class NodeLeft(NamedTuple):
    node: str
    remaining: int


class PartitionOnly(NamedTuple):
    partition: str


class NodeOnly(NamedTuple):
    node: str


class EventInputs(NamedTuple):
    params: str
    priority: int


@dataclass(frozen=True)
class Planned:
    """What a discovery's success planned: ``tasks`` new tasks (``cancelled`` of them at once,
    the event being cancelled), and the dynamic nodes left ``complete`` with nothing to run."""

    tasks: int
    cancelled: int
    complete: tuple[str, ...]


def plan_partitions(
    tx: Tx, event_id: int, graph: Graph, discovery: str, keys: Sequence[str], cancelling: bool, actor: str
) -> Planned:
    """Plan the tasks of ``discovery``'s dynamic nodes for the keys that have none yet."""
    nodes = graph.discoveries[discovery]
    names = [n.name for n in nodes]
    sql = "SELECT partition FROM tasks WHERE event_id = ? AND node = ?"
    first, *_ = names  # every dynamic node of the discovery has a task per key planned
    known = {r.partition for r in read_rows(tx, PartitionOnly, sql, (event_id, first))}
    new = [k for k in keys if k not in known]
    params, priority = _event_inputs(tx, event_id) if new else ({}, 0)
    draft = plan_discovered(graph, params, discovery, new, set(), priority)
    # the keys' rows first, then the nodes' (the order of every transaction that ends attempts)
    _declare(tx, graph, draft.tasks)
    watched = sorted({d.upstream for n in nodes for d in n.edges() if d.mode.node_level} | set(names))
    sql = (f"SELECT node, remaining FROM event_nodes WHERE event_id = ? AND node IN ({in_list(watched)}) "
           f"ORDER BY node {tx.key_lock}")  # fmt: skip
    left = {r.node: r.remaining for r in read_rows(tx, NodeLeft, sql, (event_id, *watched))}
    complete = _complete(tx, event_id, graph, discovery, {n for n, r in left.items() if r == 0})
    plan = plan_discovered(graph, params, discovery, new, complete, priority).tasks if complete else draft.tasks
    if plan:
        insert_tasks(tx, event_id, graph, plan)
        tx.many("UPDATE event_nodes SET total = total + ?, remaining = remaining + ? WHERE event_id = ? AND node = ?",
                [(len(new), len(new), event_id, name) for name in names])  # fmt: skip
    cancelled = _cancel_new(tx, event_id, names) if cancelling and plan else 0
    tx.audit(actor, "partitions.planned", f"discovery {discovery} succeeded", event_id, node=discovery,
             partitions=len(keys), new=len(new), tasks=len(plan), nodes=names)  # fmt: skip
    done = tuple(name for name in names if not new and left.get(name) == 0)
    return Planned(len(plan), cancelled, done)


def _event_inputs(tx: Tx, event_id: int) -> tuple[dict[str, Any], int]:
    """The event's parameters (a concurrency or rate key may use them) and priority."""
    row = read_one(tx, EventInputs, "SELECT params, priority FROM events WHERE id = ?", (event_id,))
    return ({}, 0) if row is None else (dict(json.loads(row.params)), row.priority)


def _declare(tx: Tx, graph: Graph, tasks: Sequence[PlannedTask]) -> None:
    """Write the limits of the tasks' concurrency keys and rate keys."""
    declared = {t.key: graph.node(t.node).concurrency for t in tasks if t.key is not None}
    limits.declare(tx, {key: c.limit for key, c in declared.items() if c is not None})
    rated = {t.rate_key: graph.node(t.node).rate_limit for t in tasks if t.rate_key is not None}
    rates.declare(tx, {key: (r.limit, r.period_s) for key, r in rated.items() if r is not None})


def _complete(tx: Tx, event_id: int, graph: Graph, discovery: str, done: Iterable[str]) -> set[str]:
    """The nodes of ``done`` (no task left to succeed) that are complete: a dynamic node only
    once its discovery has succeeded (this one's success is being recorded: it is not, yet)."""
    out = set(done) - {discovery}
    others = sorted({d for n in out if (d := graph.node(n).partitions_from) is not None} - {discovery})
    succeeded: set[tuple[str, str]] = set()
    if others:
        sql = (f"SELECT node FROM tasks WHERE event_id = ? AND partition = '' AND state = 'succeeded' "
               f"AND node IN ({in_list(others)})")  # fmt: skip
        succeeded = {(r.node, "") for r in read_rows(tx, NodeOnly, sql, (event_id, *others))}
    succeeded.add((discovery, ""))  # its own nodes are getting tasks (or none: planner.plan_discovered)
    return out - awaiting(graph, succeeded)


def _cancel_new(tx: Tx, event_id: int, names: Sequence[str]) -> int:
    """The event is being cancelled: its waiting tasks were cancelled, and so are these."""
    sql = (f"UPDATE tasks SET state = 'cancelled', finished_at = ?, parked = 0 WHERE event_id = ? "
           f"AND node IN ({in_list(names)}) AND state = ? RETURNING node")  # fmt: skip
    n = 0
    for old in ("pending", "ready"):
        for r in read_rows(tx, NodeOnly, sql, (tx.now, event_id, *names, old)):
            tx.moved(event_id, r.node, old, "cancelled")
            n += 1
    return n
