"""Backfills on both stores: a schedule's past fires raised in order, never more than
``max_running`` unfinished, fires that have an event skipped, resumable by another controller
without duplicates, cancellable; and "fire now"."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from baton.clock import FakeClock
from baton.controller.duties import Expand
from baton.controller.schedules import Backfiller
from baton.engine.states import EventState
from baton.errors import Conflict, UsageError
from baton.graphs.spec import load_graph_text
from baton.store.protocol import Store
from baton.store.records import BackfillRequest, EventRecord

GRAPH = """
graph: daily
params: {day: {type: string}}
schedules:
  every_day:
    cron: "0 2 * * *"
    timezone: Asia/Shanghai
    params: {day: "{fire.date}"}
nodes:
  work: {run: "m:f", partitioned: false}
"""


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


JANUARY = BackfillRequest("every_day", at("2025-01-01T00:00"), at("2025-01-10T23:59"), max_running=2)


def raised(backend: Store) -> list[EventRecord]:
    return sorted(backend.events(limit=1000), key=lambda e: e.scheduled_for or 0.0)


def finish_running(backend: Store) -> None:
    for event in backend.events(state=EventState.RUNNING, limit=100):
        backend.cancel(event.id)  # ended: room for the next ones


def drive(backend: Store, backfiller: Backfiller, clock: FakeClock, most_running: list[int]) -> None:
    """Let the backfill raise, expand what it raised, note how many run, end them; until done."""
    for _ in range(50):
        backfiller.run(backend, clock.now())
        Expand(100).run(backend, 0.0)
        most_running.append(len(backend.events(state=EventState.RUNNING, limit=100)))
        finish_running(backend)
        if backend.backfills()[0].state == "done":
            return
    raise AssertionError("the backfill did not finish")


def test_a_backfill_raises_each_fire_once_in_order_never_more_than_max_running(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    started = backend.start_backfill(JANUARY, actor="ops")
    assert (started.state, started.total, started.raised) == ("running", 10, 0)
    clock, most = FakeClock(wall_start=time.time()), []
    drive(backend, Backfiller(every_s=1.0, clock=clock), clock, most)
    events = raised(backend)
    days = [e.params["day"] for e in events]
    # 02:00 in Shanghai is 18:00 UTC the day before: the range's fires are Shanghai's 2nd to 11th
    assert days == [f"2025-01-{d:02d}" for d in range(2, 12)]
    assert max(most) <= 2 and max(most) == 2
    assert {e.backfill_id for e in events} == {started.id}
    done = backend.backfill(started.id)
    assert (done.state, done.raised, done.skipped, done.running) == ("done", 10, 0, 0)


def test_fires_that_have_an_event_are_skipped_unless_rerun(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    clock, most = FakeClock(wall_start=time.time()), []
    first = backend.start_backfill(JANUARY)
    drive(backend, Backfiller(1.0, clock), clock, most)
    assert backend.start_backfill(BackfillRequest(**{**JANUARY.__dict__, "dry_run": True})).skipped == 10
    again = backend.start_backfill(JANUARY)
    drive(backend, Backfiller(1.0, clock), clock, most)
    assert (backend.backfill(again.id).raised, backend.backfill(again.id).skipped) == (0, 10)
    rerun = backend.start_backfill(BackfillRequest(**{**JANUARY.__dict__, "rerun": True}))
    drive(backend, Backfiller(1.0, clock), clock, most)
    assert backend.backfill(rerun.id).raised == 10
    assert len(raised(backend)) == 20 and first.id != rerun.id


def test_a_new_controller_resumes_a_backfill_and_two_at_once_raise_nothing_twice(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    started = backend.start_backfill(JANUARY)
    clock = FakeClock(wall_start=time.time())
    Backfiller(1.0, clock).run(backend, clock.now())  # raises two, then its controller dies
    finish_running(backend)
    one, other = Backfiller(1.0, clock), Backfiller(1.0, clock)
    for _ in range(20):
        one.run(backend, clock.now())
        other.run(backend, clock.now())  # reads the same cursor: its write is refused
        Expand(100).run(backend, 0.0)
        finish_running(backend)
    events = raised(backend)
    assert len(events) == 10 and len({e.key for e in events}) == 10
    assert backend.backfill(started.id).state == "done"


def test_a_cancelled_backfill_raises_no_more(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    started = backend.start_backfill(JANUARY)
    clock = FakeClock(wall_start=time.time())
    Backfiller(1.0, clock).run(backend, clock.now())
    assert backend.cancel_backfill(started.id).state == "cancelled"
    finish_running(backend)
    Backfiller(1.0, clock).run(backend, clock.now())
    assert len(raised(backend)) == 2
    with pytest.raises(Conflict):
        backend.cancel_backfill(started.id)


def test_bad_backfills_are_refused(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    with pytest.raises(UsageError, match="must not end before it starts"):
        backend.start_backfill(BackfillRequest("every_day", at("2025-02-01T00:00"), at("2025-01-01T00:00")))
    with pytest.raises(UsageError, match="over 100,000 fires"):
        hourly = GRAPH.replace('"0 2 * * *"', '"* * * * *"')
        backend.register_graph(load_graph_text(hourly))
        backend.start_backfill(BackfillRequest("every_day", at("2000-01-01T00:00"), at("2025-01-01T00:00")))


def test_fire_now_raises_an_event_for_this_instant(backend: Store) -> None:
    backend.register_graph(load_graph_text(GRAPH))
    before = time.time()
    event = backend.trigger_schedule("every_day", actor="ops")
    assert event.schedule_id == backend.schedule("every_day").id
    assert event.scheduled_for is not None and event.scheduled_for >= before - 1
    assert backend.schedule("every_day").last_event_id == event.id
    assert backend.trigger_schedule("every_day").id != event.id  # each press is its own event
