"""Why is it not running? Pure checks over a snapshot of ready tasks and live workers.

A ready task that no live worker could ever take (missing labels, or a cost larger than any
worker's whole capacity) waits forever without an error. ``status`` calls :func:`unplaceable`
to say so, naming the node, what it needs and what the workers offer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from baton.model import Graph

LIVE_S = 60.0  # a worker seen within this long counts as live


@dataclass(frozen=True)
class WorkerView:
    name: str
    capacity: Mapping[str, int]
    labels: frozenset[str]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WorkerView:
        return cls(str(row["name"]), json.loads(row["capacity"]), frozenset(json.loads(row["labels"])))


def live_workers(rows: Sequence[Mapping[str, Any]], now: float) -> list[WorkerView]:
    return [WorkerView.from_row(r) for r in rows if r["state"] == "active" and now - r["last_seen"] <= LIVE_S]


def unplaceable(graph: Graph, ready: Mapping[str, int], workers: Sequence[WorkerView]) -> list[str]:
    """One sentence per node whose ready tasks no live worker can take."""
    notes = []
    for node_name, count in ready.items():
        if not count:
            continue
        node = graph.node(node_name)
        fits = [
            w
            for w in workers
            if node.labels <= w.labels and all(w.capacity.get(k, 0) >= v for k, v in node.cost.items())
        ]
        if fits:
            continue
        needs = (
            f"labels {sorted(node.labels)} and capacity {dict(node.cost)}"
            if node.labels
            else f"capacity {dict(node.cost)}"
        )
        offer = "; ".join(f"{w.name}: {dict(w.capacity)} {sorted(w.labels)}" for w in workers) or "no live workers"
        notes.append(f"{count} ready task(s) of {node_name} need {needs}; no live worker fits ({offer})")
    return notes
