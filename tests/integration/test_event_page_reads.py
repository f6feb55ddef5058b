"""The event page's reads on both backends: the timeline against a per-task recount, the critical
path through a ``same`` chain and an ``all`` barrier, backoffs after a failed attempt, and
partitions paged by key."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from baton.controller.loop import Controller
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import NotFound, UsageError
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import Claim, ClaimRequest, Report, TaskRecord, Timeline, WorkerInfo

PARTS = ["p0", "p1", "p2", "p3"]
Ends = Mapping[tuple[str, str], float]  # (node, partition) -> the finished_at its report gives


def submit(backend: Store, event_type: str, parts: Sequence[str] = PARTS, retries: int = 0) -> int:
    """extract -> clean (same) -> total (all, unpartitioned) -> report (broadcast), expanded."""
    g = GraphBuilder(event_type, defaults={"retries": retries, "retry_delay_s": 60.0, "retry_jitter": 0})
    g.param("parts", "list", default=list(parts)).partitions(param="parts")
    g.python("extract", "m:f").python("clean", "m:f", after=["extract"])
    g.python("total", "m:f", after=[("clean", "all")], partitioned=False)
    graph = g.python("report", "m:f", after=["total"], partitioned=False).build()
    event, _ = backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
    Controller(backend).expand()
    backend.register_worker(WorkerInfo("w", "w", "host", 1, {"slots": 100}))
    return event.id


def claim(backend: Store, event_id: int, limit: int = 100) -> list[Claim]:
    return backend.claim(ClaimRequest("w", {"slots": 100}, frozenset(), limit, 600.0, event_id=event_id)).claims


def succeed(backend: Store, claims: Sequence[Claim], ends: Ends, default_end: float) -> None:
    now = time.time()
    reports = [
        Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now, ends.get((c.node, c.partition), default_end), "null")
        for c in claims
    ]
    backend.report("w", reports)


def run_to_end(backend: Store, event_id: int, ends: Ends, default_end: float) -> None:
    while claims := claim(backend, event_id):
        succeed(backend, claims, ends, default_end)


def recount(tasks: Sequence[TaskRecord], timeline: Timeline) -> dict[str, dict[str, object]]:
    """The timeline's lanes recounted task by task, in the timeline's own window: a task counts
    as started (and ended) only when its current attempt has started, after its ready time."""
    bins = len(timeline.lanes[0].ready)

    def binned(times: Iterable[Any]) -> tuple[int, ...]:
        counts = [0] * bins
        for at in times:
            counts[min(max(math.floor((at - timeline.start) / timeline.bin_s), 0), bins - 1)] += 1
        return tuple(counts)

    lanes: dict[str, dict[str, object]] = {}
    for lane in timeline.lanes:
        ready = [t for t in tasks if t.node == lane.node and t.ready_at is not None]
        started = [t for t in ready if t.started_at is not None and t.started_at >= t.ready_at]
        ended = [t for t in started if t.finished_at is not None]
        lanes[lane.node] = {
            "tasks": sum(t.node == lane.node for t in tasks),
            "first_ready_at": min((t.ready_at for t in ready), default=None),
            "first_start_at": min((t.started_at for t in started), default=None),
            "last_end_at": max((t.finished_at for t in ended), default=None),
            "queue_s": pytest.approx(sum(t.started_at - t.ready_at for t in started)),
            "run_s": pytest.approx(sum(t.finished_at - t.started_at for t in ended)),
            "ready": binned(t.ready_at for t in ready),
            "started": binned(t.started_at for t in started),
            "ended": binned(t.finished_at for t in ended),
        }
    return lanes


def lanes_of(timeline: Timeline) -> dict[str, dict[str, object]]:
    keys = ("tasks", "first_ready_at", "first_start_at", "last_end_at", "queue_s", "run_s", "ready", "started", "ended")
    return {lane.node: {k: getattr(lane, k) for k in keys} for lane in timeline.lanes}


def test_timeline_of_a_finished_event_bins_every_task_once(backend: Store) -> None:
    event_id = submit(backend, "finished")
    base = time.time()
    run_to_end(backend, event_id, {("clean", "p2"): base + 100, ("report", ""): base + 300}, base + 10)
    assert backend.event(event_id).state is EventState.SUCCEEDED
    tasks = backend.tasks(event_id)
    timeline = backend.timeline(event_id, bins=50)
    assert [lane.node for lane in timeline.lanes] == ["extract", "clean", "total", "report"]
    assert timeline.start == min(t.ready_at for t in tasks if t.ready_at is not None)
    assert timeline.end == base + 300 == max(t.finished_at for t in tasks if t.finished_at is not None)
    assert timeline.bin_s == pytest.approx((timeline.end - timeline.start) / 50)
    for lane in timeline.lanes:
        assert sum(lane.ready) == sum(lane.started) == sum(lane.ended) == lane.tasks
    assert lanes_of(timeline) == recount(tasks, timeline)
    report = timeline.lanes[-1]
    assert report.ended[-1] == 1 and report.last_end_at == base + 300
    clean = timeline.lanes[1]
    assert clean.ended[math.floor((base + 100 - timeline.start) / timeline.bin_s)] == 1
    assert clean.last_end_at == base + 100 and clean.tasks == len(PARTS)
    assert [(s.node, s.partition) for s in backend.critical_path(event_id)][1:] == [
        ("clean", "p2"), ("total", ""), ("report", "")
    ]  # fmt: skip


def test_timeline_of_a_running_event_counts_a_retry_as_ready_again(backend: Store) -> None:
    event_id = submit(backend, "running", retries=2)
    first, *others = claim(backend, event_id, limit=3)
    before = time.time()
    backend.report("w", [Report(first.task_id, first.attempt, Outcome.FAILED, before, before, error="boom")])
    succeed(backend, others, {}, time.time())
    timeline = backend.timeline(event_id, bins=20)
    tasks = backend.tasks(event_id)
    retried = next(t for t in tasks if t.id == first.task_id)
    assert retried.state is TaskState.READY and retried.started_at is not None and retried.ready_at is not None
    assert retried.started_at < retried.ready_at  # the old attempt's start stays in the row
    assert timeline.end == retried.ready_at >= before + 60  # a running event's window reaches the retry
    assert lanes_of(timeline) == recount(tasks, timeline)
    extract = timeline.lanes[0]
    assert (sum(extract.ready), sum(extract.started), sum(extract.ended)) == (len(PARTS), 2, 2)
    assert extract.ready[-1] == 1  # the retry, at the window's end
    assert timeline.lanes[2].tasks == 1 and timeline.lanes[2].first_ready_at is None
    assert sum(timeline.lanes[2].ready) == 0
    # the retry is the latest unfinished task (ready last): the path ends there, not yet started again
    (step,) = backend.critical_path(event_id)
    assert (step.task_id, step.state, step.started_at, step.ready_at) == (first.task_id, "ready", None, timeline.end)


def test_timeline_of_an_event_not_expanded_yet_has_empty_lanes(backend: Store) -> None:
    graph = GraphBuilder("later").python("only", "m:f", partitioned=False).build()
    event, _ = backend.submit(backend.register_graph(graph).id, {})
    before = time.time()
    timeline = backend.timeline(event.id, bins=3)
    assert timeline.start == event.submitted_at and timeline.end >= before
    assert [(lane.node, lane.tasks, lane.ready) for lane in timeline.lanes] == [("only", 0, (0, 0, 0))]


def test_critical_path_follows_the_last_finisher_through_same_and_all_edges(backend: Store) -> None:
    event_id = submit(backend, "path")
    base = time.time()
    ends = {("extract", "p1"): base + 50, ("clean", "p2"): base + 100, ("total", ""): base + 200}
    run_to_end(backend, event_id, {**ends, ("report", ""): base + 300}, base + 5)
    # total waited for every clean (all): clean[p2] ended last; clean[p2] waited for extract[p2]
    # alone (same), though extract[p1] ended after it
    path = backend.critical_path(event_id)
    assert [(s.node, s.partition) for s in path] == [("extract", "p2"), ("clean", "p2"), ("total", ""), ("report", "")]
    by_id = {t.id: t for t in backend.tasks(event_id)}
    for step in path:
        task = by_id[step.task_id]
        assert (step.node, step.partition, step.state) == (task.node, task.partition, task.state.value)
        assert (step.ready_at, step.started_at, step.finished_at) == (task.ready_at, task.started_at, task.finished_at)
    assert path[2].finished_at == base + 200


def test_critical_path_of_a_running_event_ends_at_its_latest_start(backend: Store) -> None:
    event_id = submit(backend, "frontier")
    succeed(backend, claim(backend, event_id), {}, time.time())  # every extract
    first = claim(backend, event_id, limit=1)
    latest = claim(backend, event_id, limit=1)  # claimed after the first: started later
    path = backend.critical_path(event_id)
    (last,) = latest
    assert [(s.node, s.partition) for s in path] == [("extract", last.partition), ("clean", last.partition)]
    assert path[-1].task_id == last.task_id and path[-1].state == "running" and path[-1].finished_at is None
    assert first[0].task_id != last.task_id


def test_critical_path_starts_at_a_root_and_is_empty_before_expansion(backend: Store) -> None:
    graph = GraphBuilder("solo").python("only", "m:f", partitioned=False).build()
    event, _ = backend.submit(backend.register_graph(graph).id, {})
    assert backend.critical_path(event.id) == []
    Controller(backend).expand()
    (step,) = backend.critical_path(event.id)
    assert (step.node, step.partition, step.state, step.started_at) == ("only", "", "ready", None)


def test_backoffs_count_ready_tasks_waiting_out_a_retry_delay_by_node(backend: Store) -> None:
    event_id = submit(backend, "backoff", retries=2)
    other = submit(backend, "backoff_other", retries=2)
    assert backend.backoffs(event_id, time.time()) == []
    failing = claim(backend, event_id, limit=3) + claim(backend, other, limit=1)
    before = time.time()
    backend.report("w", [Report(c.task_id, c.attempt, Outcome.FAILED, before, before, error="x") for c in failing])
    after = time.time()
    (backoff,) = backend.backoffs(event_id, after)
    assert (backoff.node, backoff.tasks) == ("extract", 3)
    assert before + 60 <= backoff.until <= after + 60  # retry_delay_s, no jitter
    assert backend.backoffs(event_id, backoff.until) == []  # claimable from then on
    assert backend.backoffs(event_id, backoff.until - 0.001) == [backoff]
    assert [(b.node, b.tasks) for b in backend.backoffs(other, after)] == [("extract", 1)]
    # the fourth extract succeeds (the others may not be claimed yet); its clean task fails once
    (fourth,) = claim(backend, event_id)
    succeed(backend, [fourth], {}, time.time())
    (clean,) = claim(backend, event_id)
    backend.report("w", [Report(clean.task_id, clean.attempt, Outcome.FAILED, after, after, error="y")])
    assert [(b.node, b.tasks) for b in backend.backoffs(event_id, time.time())] == [("clean", 1), ("extract", 3)]


def test_partition_rows_page_by_key_without_gaps_or_repeats(backend: Store) -> None:
    keys = [f"k{i:03d}" for i in range(25)]
    random.Random(7).shuffle(keys)  # the planner keeps the parameter's order; pages are by key
    event_id = submit(backend, "paged", parts=keys)
    done = claim(backend, event_id, limit=1)
    succeed(backend, done, {}, time.time())
    pages, after = [], None
    while page := backend.partition_rows(event_id, after=after, limit=7):
        pages.append(page)
        after = page[-1].partition
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    rows = [row for page in pages for row in page]
    assert [r.partition for r in rows] == sorted(keys)
    tasks = {(t.node, t.partition): (t.id, t.state.value) for t in backend.tasks(event_id)}
    for row in rows:
        assert row.tasks == {node: tasks[(node, row.partition)] for node in ("extract", "clean")}
        assert list(row.tasks) == ["extract", "clean"]  # the graph's order
    assert rows[sorted(keys).index(done[0].partition)].tasks["extract"][1] == "succeeded"
    assert [r.partition for r in backend.partition_rows(event_id, after="k0105", limit=2)] == ["k011", "k012"]
    assert backend.partition_rows(event_id, after="k024") == []


def test_partition_rows_of_an_unpartitioned_graph_are_none(backend: Store) -> None:
    graph = GraphBuilder("flat").python("only", "m:f", partitioned=False).build()
    event, _ = backend.submit(backend.register_graph(graph).id, {})
    Controller(backend).expand()
    assert backend.partition_rows(event.id) == []


def test_unknown_events_and_bad_sizes_are_refused(backend: Store) -> None:
    event_id = submit(backend, "checks")
    missing = event_id + 1000
    for read in (
        lambda: backend.timeline(missing),
        lambda: backend.critical_path(missing),
        lambda: backend.backoffs(missing, time.time()),
        lambda: backend.partition_rows(missing),
    ):
        with pytest.raises(NotFound, match=f"no event {missing}"):
            read()
    for bins in (0, 1001):
        with pytest.raises(UsageError, match="1 to 1000 bins"):
            backend.timeline(event_id, bins=bins)
    for limit in (0, 1001):
        with pytest.raises(UsageError, match="1 to 1000 partitions"):
            backend.partition_rows(event_id, limit=limit)
    assert len(backend.timeline(event_id, bins=1000).lanes[0].ready) == 1000
    assert len(backend.timeline(event_id, bins=1).lanes[0].ready) == 1
