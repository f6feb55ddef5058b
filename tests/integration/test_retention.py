"""Retention on both stores: finished events past their graph's age go, a batch of rows per
transaction; running ones, and ones a rerun reopened, stay; a dry run removes nothing."""

from __future__ import annotations

import time

import pytest

from baton.clock import FakeClock
from baton.controller.duties import Expand, Prune
from baton.engine.states import EventState, Outcome
from baton.graphs.params import validate_params
from baton.graphs.spec import load_graph_text
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, PruneRequest, Report
from baton.store.retention import DAY_S

KEPT_A_DAY = """
graph: daily
retention: {succeeded_days: 1, failed_days: 3}
partitions: {values: [a, b, c, d, e]}
nodes:
  one: {run: "m:f"}
  two: {run: "m:f", after: [one]}
"""


def raise_event(backend: Store, graph: str = "daily") -> int:
    record = backend.latest_graph(graph)
    event, _ = backend.submit(record.id, validate_params(backend.graph_of(record.id), {}))
    Expand(10).run(backend, 0.0)
    return event.id


def run_ready(backend: Store, outcome: Outcome) -> int:
    claims = backend.claim(ClaimRequest("w", {"slots": 100}, frozenset(), 100, 60.0)).claims
    now = time.time()
    reports = tuple(Report(c.task_id, c.attempt, outcome, now, now) for c in claims)
    backend.claim(ClaimRequest("w", {"slots": 0}, frozenset(), 0, 60.0, reports=reports))
    return len(claims)


def finish(backend: Store, outcome: Outcome) -> None:
    while run_ready(backend, outcome):
        pass


def test_events_past_retention_go_in_batches_and_the_rest_stay(backend: Store) -> None:
    backend.register_graph(load_graph_text(KEPT_A_DAY))
    done = raise_event(backend)
    finish(backend, Outcome.SUCCEEDED)
    running = raise_event(backend)
    run_ready(backend, Outcome.SUCCEEDED)  # its first nodes end; it runs on
    assert backend.event_state(done) is EventState.SUCCEEDED
    assert backend.event_state(running) is EventState.RUNNING
    now = time.time()
    assert backend.prune(PruneRequest(now + 0.5 * DAY_S, batch=4)).events == 0  # not a day old yet

    later = PruneRequest(now + 2 * DAY_S, batch=4)
    assert backend.prune(PruneRequest(later.now, dry_run=True)).events == 1
    removed, calls = 0, 0
    while True:
        step = backend.prune(later)
        assert step.tasks + step.audit <= 4  # the batch is honoured
        removed, calls = removed + step.tasks, calls + 1
        if not step.more:
            break
    assert removed == 10 and calls >= 3
    assert [e.id for e in backend.events(limit=10)] == [running]
    assert len(backend.tasks(running)) == 10
    assert backend.audit(event_id=done) == []


def test_failed_events_are_kept_longer_and_days_overrides_every_graph(backend: Store) -> None:
    backend.register_graph(load_graph_text(KEPT_A_DAY))
    failed = raise_event(backend)
    finish(backend, Outcome.FAILED)
    assert backend.event_state(failed) is EventState.FAILED
    two_days = time.time() + 2 * DAY_S
    assert backend.prune(PruneRequest(two_days, dry_run=True)).events == 0  # kept 3 days
    assert backend.prune(PruneRequest(two_days, days=1, dry_run=True)).events == 1


def test_a_graph_without_retention_keeps_its_events_unless_a_default_is_set(backend: Store) -> None:
    backend.register_graph(load_graph_text(KEPT_A_DAY.replace("retention: {succeeded_days: 1, failed_days: 3}\n", "")))
    raise_event(backend)
    finish(backend, Outcome.SUCCEEDED)
    far = time.time() + 3650 * DAY_S
    assert backend.prune(PruneRequest(far, dry_run=True)).events == 0
    assert backend.prune(PruneRequest(far, default_days=30, dry_run=True)).events == 1


def test_an_event_reopened_by_a_rerun_is_not_pruned(backend: Store) -> None:
    backend.register_graph(load_graph_text(KEPT_A_DAY))
    event = raise_event(backend)
    finish(backend, Outcome.FAILED)
    backend.rerun(event)
    assert backend.event_state(event) is EventState.RUNNING
    assert backend.prune(PruneRequest(time.time() + 10 * DAY_S, batch=1000)).events == 0
    assert backend.tasks(event)


def test_the_controller_prunes_at_its_pace_by_its_own_clock(backend: Store) -> None:
    backend.register_graph(load_graph_text(KEPT_A_DAY))
    raise_event(backend)
    finish(backend, Outcome.SUCCEEDED)
    clock = FakeClock(wall_start=time.time() + 2 * DAY_S)
    duty = Prune(every_s=60.0, batch=3, default_days=None, notice_keep_s=DAY_S, clock=clock)
    now = clock.now()
    assert duty.run(backend, now) > 0
    assert duty.next_due(now) == now + Prune.MIN_PAUSE_S  # a full batch: soon again, not at once
    while duty.run(backend, now):
        pass
    assert backend.events(limit=10) == []
    assert duty.next_due(now) == now + 60.0


def test_a_backlog_is_pruned_a_twentieth_of_the_time(backend: Store) -> None:
    """The pause after a full batch is nineteen times what the batch took, by the clock."""
    backend.register_graph(load_graph_text(KEPT_A_DAY))
    raise_event(backend)
    finish(backend, Outcome.SUCCEEDED)
    clock = FakeClock(wall_start=time.time() + 2 * DAY_S)

    class Slow:
        """The store, with each prune taking 0.2 s on the fake clock."""

        def prune(self, asked: PruneRequest) -> object:
            clock.advance(0.2)
            return backend.prune(asked)

    duty = Prune(every_s=60.0, batch=3, default_days=None, notice_keep_s=DAY_S, clock=clock)
    start = clock.now()
    duty.run(Slow(), start)  # type: ignore[arg-type]
    assert duty.next_due(start) == pytest.approx(start + 0.2 + 0.2 * 19)
