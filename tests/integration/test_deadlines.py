"""Deadlines on both stores: from a recorded history, the controller marks an event at risk
before its deadline passes, and missed once it has; an event that ends late is marked missed by
the transaction that ends it. Each mark is made once, with its outbox notice."""

from __future__ import annotations

import time

from baton.clock import FakeClock
from baton.controller.duties import Deadlines, Expand
from baton.engine.states import Outcome
from baton.graphs.params import validate_params
from baton.graphs.spec import load_graph_text
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report

GRAPH = """
graph: nightly
nodes:
  extract: {run: "m:f", partitioned: false}
  load: {run: "m:f", partitioned: false, after: [extract]}
"""


def raise_event(backend: Store, deadline_at: float | None = None) -> int:
    record = backend.latest_graph("nightly")
    params = validate_params(backend.graph_of(record.id), {})
    event, _ = backend.submit(record.id, params, deadline_at=deadline_at)
    Expand(10).run(backend, 0.0)
    return event.id


def run_next(backend: Store, started_at: float, took_s: float) -> None:
    """Claim the one ready task and report it succeeded, having run from ``started_at``."""
    (claim,) = backend.claim(ClaimRequest("w", {"slots": 1}, frozenset(), 1, 60.0)).claims
    report = Report(claim.task_id, claim.attempt, Outcome.SUCCEEDED, started_at, started_at + took_s)
    backend.claim(ClaimRequest("w", {"slots": 0}, frozenset(), 0, 60.0, reports=(report,)))


def record_history(backend: Store, runs: int = 3) -> None:
    """Earlier runs: extract takes 100 s, then load 50 s."""
    for n in range(runs):
        raise_event(backend)
        start = time.time() - 10_000 + n * 1000
        run_next(backend, start, 100)
        run_next(backend, start + 100, 50)


def notices(backend: Store, event_id: int) -> list[str]:
    with backend.transaction(write=False) as tx:  # type: ignore[attr-defined]
        return [r[0] for r in tx.rows("SELECT kind FROM notices WHERE event_id = ? ORDER BY id", (event_id,))]


def test_an_event_forecast_past_its_deadline_is_at_risk_before_the_deadline(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    record_history(backend)
    started = time.time()
    event = raise_event(backend, deadline_at=started + 120)  # the history says 150 s
    clock = FakeClock(wall_start=started + 1)
    duty = Deadlines(every_s=15.0, clock=clock)
    assert duty.run(backend, clock.now()) == 1
    marked = backend.event(event)
    assert marked.at_risk_at == started + 1 and started + 1 < marked.deadline_at  # type: ignore[operator]
    assert marked.predicted_end_at is not None and marked.predicted_end_at >= started + 150 - 1
    clock.advance(15)
    assert duty.run(backend, clock.now()) == 0  # once
    assert notices(backend, event) == ["deadline.at_risk"]
    clock.advance(105)  # the deadline passed, the event still runs
    assert duty.run(backend, clock.now()) == 1
    assert backend.event(event).missed_at == started + 121
    assert notices(backend, event) == ["deadline.at_risk", "deadline.missed"]
    clock.advance(80)
    assert duty.run(backend, clock.now()) == 0


def test_an_event_on_track_is_not_marked_and_its_forecast_is_kept(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    record_history(backend)
    started = time.time()
    event = raise_event(backend, deadline_at=started + 600)
    clock = FakeClock(wall_start=started + 1)
    assert Deadlines(every_s=15.0, clock=clock).run(backend, clock.now()) == 0
    kept = backend.event(event)
    assert kept.at_risk_at is None and kept.predicted_end_at is not None
    assert started + 140 < kept.predicted_end_at < started + 160
    assert notices(backend, event) == []


def test_without_history_there_is_no_forecast_and_no_false_alarm(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    started = time.time()
    event = raise_event(backend, deadline_at=started + 60)
    clock = FakeClock(wall_start=started + 1)
    duty = Deadlines(every_s=15.0, clock=clock)
    assert duty.run(backend, clock.now()) == 0
    assert backend.event(event).predicted_end_at is None
    clock.advance(60)
    assert duty.run(backend, clock.now()) == 2  # passed: at risk and missed at once


def test_an_event_that_ends_late_is_marked_missed_as_it_ends(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    event = raise_event(backend, deadline_at=time.time() - 1)  # already past; nobody looked
    now = time.time()
    run_next(backend, now, 1)
    run_next(backend, now, 1)
    assert backend.event(event).missed_at is not None
    assert notices(backend, event) == ["event.succeeded", "deadline.missed"]
