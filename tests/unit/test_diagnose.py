"""Pure checks for tasks that no live worker could ever take."""

from __future__ import annotations

from baton.engine.diagnose import live_workers, unplaceable
from baton.graphs.builder import GraphBuilder
from baton.store.records import WorkerRecord

GRAPH = (
    GraphBuilder("d")
    .python("plain", "m:f")
    .python("gpu", "m:f", labels=["gpu"])
    .python("big", "m:f", cost={"slots": 8, "mem_mb": 64000})
    .build()
)


def worker(name: str, capacity: dict[str, int], labels: frozenset[str] = frozenset(), **seen: object) -> WorkerRecord:
    fields: dict[str, object] = {"state": "active", "last_seen": 1000.0, **seen}
    return WorkerRecord(name, name, "host", 1, capacity, labels, 0.0, **fields)  # type: ignore[arg-type]


SMALL = worker("small", {"slots": 4, "mem_mb": 16000})
GPU = worker("gpu-box", {"slots": 2}, frozenset({"gpu"}))


def test_tasks_some_worker_can_take_are_not_reported() -> None:
    assert unplaceable(GRAPH, {"plain": 3, "gpu": 1}, [SMALL, GPU]) == []


def test_missing_labels_and_too_large_costs_are_named_with_what_workers_offer() -> None:
    notes = unplaceable(GRAPH, {"plain": 2, "gpu": 1, "big": 2}, [SMALL])
    assert len(notes) == 2
    gpu, big = sorted(notes, key=lambda n: "gpu" not in n.split(" need ")[0])
    assert gpu.startswith("1 ready task(s) of gpu need labels ['gpu']") and "small:" in gpu
    assert big.startswith("2 ready task(s) of big need capacity {'slots': 8, 'mem_mb': 64000}")


def test_no_live_workers_at_all_is_said_plainly() -> None:
    assert unplaceable(GRAPH, {"plain": 1}, []) == [
        "1 ready task(s) of plain need capacity {'slots': 1}; no live worker fits (no live workers)"
    ]


def test_only_active_recently_seen_workers_count() -> None:
    workers = [
        worker("a", {"slots": 1}),
        worker("gone", {"slots": 1}, state="stopped"),
        worker("silent", {"slots": 1}, last_seen=100.0),
    ]
    assert [w.name for w in live_workers(workers, now=1010.0)] == ["a"]
