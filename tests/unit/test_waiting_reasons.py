"""Why tasks are not running: one group per node and reason, with exact counts and sentences."""

from __future__ import annotations

from baton.graphs.builder import GraphBuilder
from baton.store.records import HeldWait, RetryWait, WaitingGroup, WorkerRecord
from baton.store.waiting import Snapshot, waiting_groups

NOW = 10_000.0
GRAPH = (
    GraphBuilder("w")
    .param("parts", "list", default=["p1"])
    .partitions(param="parts")
    .python("extract", "m:f")
    .python("other", "m:f")
    .python("load", "m:f", after=["extract", "other"])
    .python("gpu", "m:f", labels=["gpu"])
    .python("big", "m:f", cost={"slots": 8}, partitioned=False)
    .build()
)


def worker(
    name: str, slots: int, labels: frozenset[str] = frozenset(), running: int = 0, **seen: object
) -> WorkerRecord:
    fields: dict[str, object] = {"state": "active", "last_seen": NOW - 5, **seen}
    tasks = tuple(range(running))
    return WorkerRecord(name, name, "host", 1, {"slots": slots}, labels, 0.0, running=tasks, **fields)  # type: ignore[arg-type]


SMALL = worker("small", 2, running=2)
MEDIUM = worker("medium", 6, running=1)


def groups(
    counts: dict[str, dict[str, int]],
    remaining: dict[str, int] | None = None,
    backoffs: list[RetryWait] | None = None,
    workers: list[WorkerRecord] | None = None,
) -> list[WaitingGroup]:
    return waiting_groups(
        Snapshot(GRAPH, counts, remaining or {}, backoffs or [], [SMALL, MEDIUM] if workers is None else workers, NOW)
    )


def test_pending_tasks_name_the_upstream_nodes_not_done() -> None:
    counts = {
        "extract": {"succeeded": 688, "running": 312},
        "other": {"succeeded": 1000},
        "load": {"pending": 700, "succeeded": 300},
    }
    assert groups(counts, {"extract": 312, "other": 0, "load": 700}) == [
        WaitingGroup("load", "upstream", 700, "700 wait for extract (312 of 1000 not done)")
    ]


def test_several_upstreams_are_all_named() -> None:
    counts = {"extract": {"failed": 2, "succeeded": 8}, "other": {"ready": 1}, "load": {"pending": 1}}
    found = [g for g in groups(counts, {"extract": 2, "other": 1, "load": 1}) if g.node == "load"]
    assert found == [
        WaitingGroup("load", "upstream", 1, "1 waits for extract (2 of 10 not done) and other (1 of 1 not done)")
    ]


def test_pending_tasks_whose_upstreams_are_done_wait_to_be_marked_ready() -> None:
    [group] = groups({"load": {"pending": 3}}, {"extract": 0, "other": 0, "load": 3})
    assert (group.reason, group.count) == ("upstream", 3) and "marked ready" in group.sentence


def test_ready_tasks_in_backoff_are_apart_from_claimable_ones() -> None:
    found = groups({"extract": {"ready": 20}}, backoffs=[RetryWait("extract", 12, NOW + 35)])
    assert found == [
        WaitingGroup(
            "extract", "backoff", 12, "12 back off after a failed attempt; the first retries in 35 s", NOW + 35
        ),
        WaitingGroup("extract", "slot", 8, "8 waiting for a free slot (2 live workers fit, 3 of 8 slots busy)"),
    ]


def test_a_backoff_never_counts_more_than_the_ready_tasks() -> None:
    [group] = groups({"extract": {"ready": 2, "running": 5}}, backoffs=[RetryWait("extract", 7, NOW + 1)])
    assert (group.reason, group.count, group.until) == ("backoff", 2, NOW + 1)


def test_tasks_no_live_worker_fits_name_what_they_need_and_what_is_offered() -> None:
    [gpu, big] = groups({"gpu": {"ready": 5}, "big": {"ready": 1}})
    assert gpu == WaitingGroup(
        "gpu",
        "no_worker",
        5,
        "5 ready but no live worker can take them: they need slots 1; labels gpu; "
        "live workers offer small (slots 2), medium (slots 6)",
    )
    assert (big.reason, big.count) == ("no_worker", 1) and "they need slots 8;" in big.sentence


def test_a_worker_that_fits_but_is_not_live_does_not_count() -> None:
    gone = worker("gpu-box", 4, frozenset({"gpu"}), state="stopped")
    silent = worker("gpu-2", 4, frozenset({"gpu"}), last_seen=NOW - 3600)
    [group] = groups({"gpu": {"ready": 2}}, workers=[gone, silent])
    assert group.reason == "no_worker" and group.sentence.endswith("there is no live worker")


def test_a_fitting_worker_makes_it_a_wait_for_a_slot() -> None:
    box = worker("gpu-box", 1, frozenset({"gpu", "cuda"}), running=1)
    assert groups({"gpu": {"ready": 1}}, workers=[SMALL, box]) == [
        WaitingGroup("gpu", "slot", 1, "1 waiting for a free slot (1 live worker fits, 1 of 1 slots busy)")
    ]


def test_cancelled_tasks_are_their_own_group() -> None:
    assert groups({"other": {"cancelled": 4, "succeeded": 6}}) == [
        WaitingGroup("other", "cancelled", 4, "4 cancelled: they run again only if rerun")
    ]


def test_running_and_finished_tasks_are_not_waiting() -> None:
    counts = {"extract": {"running": 3, "succeeded": 4, "failed": 1, "upstream_failed": 2}}
    assert groups(counts, {"extract": 6}) == []


def test_groups_come_in_graph_order_then_reason() -> None:
    counts = {
        "big": {"ready": 1},
        "load": {"pending": 5, "cancelled": 1, "ready": 2},
        "extract": {"ready": 3, "cancelled": 2, "running": 1},
        "gpu": {"ready": 1},
    }
    found = groups(counts, {"extract": 6, "load": 8}, [RetryWait("extract", 1, NOW + 2), RetryWait("load", 2, NOW + 9)])
    assert [(g.node, g.reason, g.count) for g in found] == [
        ("extract", "backoff", 1),
        ("extract", "slot", 2),
        ("extract", "cancelled", 2),
        ("gpu", "no_worker", 1),
        ("big", "no_worker", 1),
        ("load", "upstream", 5),
        ("load", "backoff", 2),
        ("load", "cancelled", 1),
    ]
    assert [n.name for n in GRAPH.nodes] == ["extract", "other", "gpu", "big", "load"]  # the order followed


def test_tasks_workers_hold_are_apart_from_those_waiting_for_a_slot() -> None:
    held = [HeldWait("extract", "remote-1", 3), HeldWait("extract", "remote-2", 1)]
    seen = Snapshot(GRAPH, {"extract": {"ready": 6}}, {}, [], [SMALL, MEDIUM], NOW, held_waits=held)
    assert waiting_groups(seen) == [
        WaitingGroup("extract", "held", 4, "4 are held by remote-1 (3), remote-2 (1), to start as soon as a slot "
                                           "there frees"),
        WaitingGroup("extract", "slot", 2, "2 waiting for a free slot (2 live workers fit, 3 of 8 slots busy)"),
    ]  # fmt: skip
