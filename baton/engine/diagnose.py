"""Why is it not running? Pure checks over a snapshot of ready tasks and live workers.

A ready task that no live worker could ever take (missing labels, or a cost larger than any
worker's whole capacity) waits forever without an error. ``status`` calls :func:`unplaceable`
to say so, naming the node, what it needs and what the workers offer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from baton.graphs.model import Graph

LIVE_S = 60.0  # a worker seen within this long counts as live


class Offer(Protocol):
    """What these checks read of a worker (the store's ``WorkerRecord`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def last_seen(self) -> float: ...
    @property
    def labels(self) -> frozenset[str]: ...
    @property
    def capacity(self) -> Mapping[str, int]: ...


W = TypeVar("W", bound=Offer)


def live_workers(workers: Sequence[W], now: float) -> list[W]:
    return [w for w in workers if w.state == "active" and now - w.last_seen <= LIVE_S]


def unplaceable(graph: Graph, ready: Mapping[str, int], workers: Sequence[Offer]) -> list[str]:
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
