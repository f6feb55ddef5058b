"""Pure planning: an event's graph and parameters in, every task and its wait counts out.

Readiness is tracked with counters, never by rescanning tasks. A task's ``pending`` is the
number of its incoming edges not yet satisfied: one per ``same`` edge (satisfied when the
upstream task of the same partition succeeds) and one per node-level edge (``all`` or
``broadcast``, satisfied once, when the whole upstream node has succeeded). The backend
decrements counters as reports arrive; a task whose counter reaches zero is ready.

A dynamic node (``partitions_from``) has no task when the event is planned: its tasks are
planned by :func:`plan_discovered` when its discovery task succeeds, one per key of that task's
result. Its node-level edges downstream are counted from the start like any other, so a fan-in
waits for tasks that do not exist yet; and until its discovery has succeeded such a node is
never complete, whatever its (zero) remaining count says (:func:`awaiting`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from baton.engine.limits import render_key
from baton.engine.priorities import ordinals, task_priority
from baton.graphs.model import DepMode, Graph, Node
from baton.graphs.params import checked_keys, partition_keys

UNPARTITIONED = ""  # the partition key of an unpartitioned node's single task


@dataclass(frozen=True)
class PlannedTask:
    node: str
    partition: str
    pending: int
    priority: int
    stage: int = 0  # the node's longest path from a root: deeper stages are claimed first
    key: str | None = None  # its concurrency key, rendered (baton.engine.limits)
    rate_key: str | None = None  # its rate limit's key, rendered (baton.engine.rates)
    ordinal: int = 0  # its partition's place in the event's list: its turn's offset (baton.engine.priorities)


@dataclass(frozen=True)
class Plan:
    tasks: tuple[PlannedTask, ...]
    node_totals: Mapping[str, int]

    def counts(self) -> dict[str, int]:
        return dict(self.node_totals)


def node_partitions(node: Node, partitions: tuple[str, ...]) -> tuple[str, ...]:
    if node.dynamic:
        return ()  # planned when its discovery succeeds
    return partitions if node.partitioned else (UNPARTITIONED,)


def plan(graph: Graph, params: Mapping[str, Any], event_priority: int = 0) -> Plan:
    """Every task of the event; params must be validated. Each task's priority is its node's plus
    ``event_priority`` (:func:`baton.engine.priorities.task_priority`).

    Tasks come partition by partition (each partition's nodes in topological order), then the
    unpartitioned ones: a partition's tasks sit side by side in the store, so the transactions
    that move one partition along touch few pages."""
    keys = partition_keys(graph, params)
    stages = node_stages(graph)
    partitioned = [n for n in graph.nodes if n.partitioned and not n.dynamic]
    places = ordinals(keys)

    def task(node: Node, partition: str) -> PlannedTask:
        ordinal = places[partition] if node.partitioned else 0
        return _task(graph, params, stages, node, partition, len(node.edges()), event_priority, ordinal)

    tasks = [task(node, p) for p in (keys if partitioned else ()) for node in partitioned]
    tasks += [task(node, UNPARTITIONED) for node in graph.nodes if not node.partitioned]
    totals = {node.name: len(node_partitions(node, keys)) for node in graph.nodes}
    return Plan(tuple(tasks), totals)


def _task(
    graph: Graph,
    params: Mapping[str, Any],
    stages: Mapping[str, int],
    node: Node,
    partition: str,
    pending: int,
    event_priority: int = 0,
    ordinal: int = 0,
) -> PlannedTask:
    key = rate_key = None
    if node.concurrency is not None:
        key = render_key(node.concurrency.key, node=node.name, partition=partition, event_type=graph.event_type,
                         params=params)  # fmt: skip
    if node.rate_limit is not None:
        rate_key = render_key(node.rate_limit.key, node=node.name, partition=partition, event_type=graph.event_type,
                              params=params)  # fmt: skip
    priority = task_priority(node.priority, event_priority)
    return PlannedTask(node.name, partition, pending, priority, stages[node.name], key, rate_key, ordinal)


def discovered_keys(graph: Graph, discovery: str, result_json: str | None) -> tuple[tuple[str, ...], str | None]:
    """The partitions a discovery task's result lists, or why the result cannot be planned.

    The result is a JSON list of keys, or an object whose ``partitions`` is one (so a discovery
    may return more); the keys follow the rules of static partitions, and there may be at most
    as many as the smallest ``max_partitions`` of the nodes planned from it."""
    found = json.loads(result_json) if result_json is not None else None
    if isinstance(found, dict):
        found = found.get("partitions")
    if not isinstance(found, list):
        return (), "a discovery's result must be a JSON list of partition keys, or an object whose 'partitions' is one"
    cap, capped_by = min((n.max_partitions, n.name) for n in graph.discoveries[discovery])
    if len(found) > cap:
        return (), f"returned {len(found):,} partitions, over the cap of {cap:,} (max_partitions of node {capped_by})"
    keys, problem = checked_keys(found)
    return keys, None if problem is None else f"its partitions: {problem}"


def plan_discovered(
    graph: Graph,
    params: Mapping[str, Any],
    discovery: str,
    keys: Iterable[str],
    complete: Collection[str],
    event_priority: int = 0,
) -> Plan:
    """The tasks of the dynamic nodes of ``discovery`` for new partition ``keys`` (none of their
    tasks exist yet), partition by partition as :func:`plan` lays them out, each partition's
    ordinal its place among the new keys. ``complete``: the nodes complete now (the discovery
    itself is not yet: its edges are released after)."""
    stages = node_stages(graph)
    nodes = graph.discoveries[discovery]
    complete = set(complete) - {n.name for n in nodes}  # each gets a task per key
    tasks = []
    for ordinal, key in enumerate(keys):
        for node in nodes:
            pending = unsatisfied_edges(graph, node.name, key, set(), complete)
            tasks.append(_task(graph, params, stages, node, key, pending, event_priority, ordinal))
    totals = {node.name: len(tasks) // len(nodes) for node in nodes}
    return Plan(tuple(tasks), totals)


def awaiting(graph: Graph, succeeded: Collection[tuple[str, str]]) -> set[str]:
    """The dynamic nodes whose discovery has not succeeded: never complete, though they have no
    task left to run (``succeeded``: the event's succeeded tasks, or at least its discoveries)."""
    return {n.name for n in graph.nodes if n.dynamic and (n.partitions_from, UNPARTITIONED) not in succeeded}


def node_stages(graph: Graph) -> dict[str, int]:
    """Each node's longest path from a root (roots are stage 0); nodes are in topological order."""
    stages: dict[str, int] = {}
    for node in graph.nodes:
        stages[node.name] = max((stages[d.upstream] + 1 for d in node.edges()), default=0)
    return stages


@dataclass(frozen=True)
class Scope:
    """A set of tasks: one node, one partition of it or (partition None) all of them."""

    node: str
    partition: str | None


def blocked_by(graph: Graph, node: str, partition: str) -> list[Scope]:
    """Everything downstream of a failed task that can now never run, in topological order.

    ``same`` edges carry the failure to the same partition; node-level edges carry it to the
    whole downstream node (which then blocks everything below it).
    """
    whole: set[str] = set()
    parts: dict[str, set[str]] = {}
    frontier: list[Scope] = [Scope(node, partition)]
    while frontier:
        scope = frontier.pop()
        for down, mode in graph.downstream[scope.node]:
            if down.name in whole:
                continue
            if mode is DepMode.SAME and scope.partition is not None:
                if scope.partition not in parts.setdefault(down.name, set()):
                    parts[down.name].add(scope.partition)
                    frontier.append(Scope(down.name, scope.partition))
            else:
                whole.add(down.name)
                frontier.append(Scope(down.name, None))
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    out = [Scope(n, None) for n in whole]
    out += [Scope(n, p) for n, ps in parts.items() if n not in whole for p in sorted(ps)]
    return sorted(out, key=lambda s: order[s.node])


def unsatisfied_edges(
    graph: Graph, node: str, partition: str, succeeded: set[tuple[str, str]], complete_nodes: set[str]
) -> int:
    """How many of a task's incoming edges are not yet satisfied (used when re-running)."""
    count = 0
    for dep in graph.node(node).edges():
        if dep.mode is DepMode.SAME:
            count += (dep.upstream, partition) not in succeeded
        else:
            count += dep.upstream not in complete_nodes
    return count


def critical_path(graph: Graph) -> list[str]:
    """The longest chain of nodes: the minimum number of task waves an event needs."""
    best: dict[str, list[str]] = {}
    for node in graph.nodes:
        ups = [best[d.upstream] for d in node.after]
        longest = max(ups, key=len, default=[])
        best[node.name] = [*longest, node.name]
    return max(best.values(), key=len, default=[])


def upstream_nodes(graph: Graph, names: Iterable[str]) -> set[str]:
    """The given nodes and every node they transitively depend on."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(d.upstream for d in graph.node(name).after)
    return seen
