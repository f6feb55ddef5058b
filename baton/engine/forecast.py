"""When will a running event end? A forecast from its graph's earlier runs, along its critical
path, for deadlines (pure: data in, an instant out).

From each earlier successful run of the graph, each node gives its *lag*: how long after the
last of its upstream nodes ended it ended (after the run's first start, for a node with no
upstream). :func:`history` takes the median over the runs, so one odd run moves nothing. Lags
chain along the graph, which is what makes pipelining come out right: a node pipelined behind
its upstream (``same`` edges) ends soon after it, however long it ran beside it.

For the running event (:func:`forecast`), a node that has ended ended when it did. Any other
node ends at the later of: the latest forecast end of its upstream nodes plus its lag, and now
plus the share of its lag its unfinished tasks stand for (so a node running slower than its
history keeps pushing its forecast out, instead of being forecast in the past). The event ends
when its last node does. A node with no history has no forecast, and then neither has the event:
a guess without data would raise false alarms.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from baton.graphs.model import Graph


@dataclass(frozen=True)
class NodeRun:
    """One node in one earlier run: when its first task started and its last one ended."""

    started_at: float
    ended_at: float


@dataclass(frozen=True)
class Typical:
    """A node's median lag over earlier runs, in seconds, and how many runs had it."""

    lag_s: float
    runs: int


@dataclass(frozen=True)
class NodeNow:
    """A node of the running event: how many tasks, how many have not succeeded, and when the
    last one ended if all have."""

    total: int
    remaining: int
    ended_at: float | None = None


def history(graph: Graph, runs: Sequence[Mapping[str, NodeRun]]) -> dict[str, Typical]:
    """Each node's typical lag over ``runs`` (each maps node names to its figures)."""
    lags: dict[str, list[float]] = {n.name: [] for n in graph.nodes}
    for run in runs:
        if not run:
            continue
        first = min(r.started_at for r in run.values())
        for node in graph.nodes:
            mine = run.get(node.name)
            ups = [run[d.upstream].ended_at for d in node.after if d.upstream in run]
            if mine is None or len(ups) != len(node.after):
                continue  # a run that did not have this node end (an older version): no figure
            lags[node.name].append(max(0.0, mine.ended_at - max(ups, default=first)))
    return {name: Typical(statistics.median(found), len(found)) for name, found in lags.items() if found}


def forecast(graph: Graph, typical: Mapping[str, Typical], nodes: Mapping[str, NodeNow], started_at: float,
             now: float) -> float | None:  # fmt: skip
    """The instant the event is forecast to end, or None when some unfinished node has no history."""
    ends: dict[str, float] = {}
    for node in graph.nodes:  # topological order: upstream nodes first
        state = nodes.get(node.name, NodeNow(0, 0))
        if state.ended_at is not None and state.remaining == 0:
            ends[node.name] = state.ended_at
            continue
        seen = typical.get(node.name)
        if seen is None:
            return None
        base = max((ends[d.upstream] for d in node.after), default=started_at)
        left = seen.lag_s * (state.remaining / state.total if state.total else 1.0)
        ends[node.name] = max(base + seen.lag_s, now + left)
    return max(ends.values(), default=started_at)
