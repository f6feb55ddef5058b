"""Fairness under real processes, on both stores: a controller and two workers run a
10,000-partition event of no-op tasks; a 4-partition event of the same priority submitted while
it runs is done within seconds, while the big one still has thousands of tasks to go (before
turns, it queued behind every one of them); then the big one ends too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import Cluster, running_cluster, wait_for

from baton.engine.states import EventState
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph

pytestmark = pytest.mark.slow

BIG = 10_000


def noop(name: str, partitions: int) -> Graph:
    g = GraphBuilder(name, defaults={"retries": 2})  # a lease lost on a loaded machine is retried
    g.param("parts", "list", default=[f"p{i:05}" for i in range(partitions)]).partitions(param="parts")
    return g.python("work", "baton.bench.tasks:noop").build()


def under_way(cluster: Cluster, event_id: int) -> int:
    """How many of the event's tasks have ended (0 until it is expanded)."""
    event = cluster.backend.event(event_id)
    return event.tasks_total - event.tasks_active


@pytest.fixture
def cluster(store_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from running_cluster(store_url, tmp_path)


@pytest.mark.long(seconds=35)
def test_a_small_event_after_a_10000_partition_one_is_done_within_seconds(cluster: Cluster) -> None:
    cluster.start_controller()
    for _ in range(2):
        cluster.start_worker(4)
    big = cluster.submit(noop("big", BIG))
    wait_for(lambda: under_way(cluster, big) >= 200, 120, "the big event under way")
    submitted = time.monotonic()
    small = cluster.submit(noop("small", 4))
    assert cluster.wait(small, timeout_s=60) is EventState.SUCCEEDED
    took_s = time.monotonic() - submitted
    state = cluster.backend.event(big)
    left = state.tasks_active
    assert state.state is EventState.RUNNING, state.error
    print(f"small event done {took_s:.2f}s after its submit; the big one had {left} tasks to go")
    assert left >= 1_000  # it did not wait for the big one
    assert took_s < 10.0  # seconds, not the big event's remaining run
    assert cluster.wait(big, timeout_s=180) is EventState.SUCCEEDED  # and then it ends too
