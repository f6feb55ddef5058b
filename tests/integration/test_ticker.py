"""Schedules on both stores, on a fake clock: exactly one event per fire time whatever the
controllers do, catch-up after an outage as each policy says, and each overlap policy with a run
that outlives its interval."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from baton.clock import FakeClock
from baton.controller.duties import Expand
from baton.controller.schedules import Ticker, _written
from baton.engine.states import EventState
from baton.engine.tick import tick
from baton.graphs.spec import load_graph_text
from baton.store.protocol import Store
from baton.store.records import EventRecord

MINUTE, HOUR, DAY = 60.0, 3600.0, 86_400.0


def graph(schedule: str) -> str:
    return f"""
graph: nightly
params: {{stamp: {{type: string, default: ""}}}}
schedules:
  often:
{schedule}
nodes:
  work: {{run: "m:f", partitioned: false}}
"""


def register(backend: Store, schedule: str) -> float:
    """Register the graph; return the schedule's start: fires after it are its fires."""
    backend.register_graph(load_graph_text(graph(schedule)))
    return backend.schedule("often").handled_through


def events(backend: Store) -> list[EventRecord]:
    return sorted(backend.events(limit=10_000), key=lambda e: e.scheduled_for or 0.0)


def ticker(clock: FakeClock) -> Ticker:
    return Ticker(every_s=30.0, clock=clock)


def test_two_controllers_over_an_hour_of_a_per_minute_schedule_raise_sixty_events(backend: Store) -> None:
    start = register(backend, '    cron: "* * * * *"\n    overlap: allow\n    params: {stamp: "{fire.time}"}')
    clock = FakeClock(wall_start=start)
    first, second = ticker(clock), ticker(clock)
    for _ in range(60):
        clock.advance(MINUTE)
        first.run(backend, clock.now())
        second.run(backend, clock.now())
    raised = events(backend)
    assert len(raised) == 60
    assert len({e.key for e in raised}) == 60
    instants = [e.scheduled_for for e in raised]
    assert all(at is not None and at % 60 == 0 and start < at <= start + HOUR for at in instants)
    assert raised[0].params["stamp"] == time.strftime("%H:%M", time.gmtime(instants[0]))  # type: ignore[arg-type]


def test_two_looks_decided_at_once_write_one_event(backend: Store) -> None:
    """Both controllers read the same state and decide the same fire; the second write finds
    the schedule handled already and writes nothing."""
    start = register(backend, '    cron: "* * * * *"\n    overlap: allow')
    wall = math.floor(start / MINUTE) * MINUTE + MINUTE + 1
    (row,) = backend.due_schedules(wall, 10)
    schedule = backend.graph_of(row.graph_id).schedule("often")  # type: ignore[arg-type]
    assert schedule is not None
    decided = tick(schedule, None, row.handled_through, None, False, wall)
    assert len(decided.raised) == 1
    graph = backend.graph_of(row.graph_id)  # type: ignore[arg-type]
    assert len(backend.fire_schedule(_written(row, decided, graph))) == 1
    assert backend.fire_schedule(_written(row, decided, graph)) == []
    assert len(events(backend)) == 1


def test_a_controller_killed_across_a_fire_time_yields_one_event(
    backend: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = register(backend, '    cron: "* * * * *"\n    overlap: allow')
    clock = FakeClock(wall_start=start)
    fire = math.floor(start / MINUTE) * MINUTE + MINUTE
    clock.advance(fire + 1.0 - start)  # a second past the first fire: the next is 59 s away
    dying = ticker(clock)

    def killed(*args: Any, **kwargs: Any) -> list[int]:
        raise SystemExit("the controller died before its write committed")

    monkeypatch.setattr(backend, "fire_schedule", killed)
    with pytest.raises(SystemExit):
        dying.run(backend, clock.now())
    monkeypatch.undo()
    assert events(backend) == []
    clock.advance(5.0)  # the standby takes over and looks
    ticker(clock).run(backend, clock.now())
    ticker(clock).run(backend, clock.now())
    assert len(events(backend)) == 1


@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("latest", 1), ("all", 5)])
def test_a_week_down_raises_what_the_catch_up_policy_says(backend: Store, policy: str, expected: int) -> None:
    start = register(backend, f'    cron: "0 * * * *"\n    overlap: allow\n    catch_up: {policy}\n    max_catch_up: 5')
    clock = FakeClock(wall_start=start)
    clock.advance(7 * DAY + 30 * MINUTE)  # half past: no fire is on time
    ticker(clock).run(backend, clock.now())
    raised = events(backend)
    assert len(raised) == expected
    if raised:  # the most recent fires, oldest first
        newest = math.floor(clock.wall() / HOUR) * HOUR
        assert [e.scheduled_for for e in raised] == [newest - HOUR * i for i in reversed(range(expected))]
    fires = math.floor(clock.wall() / HOUR) - math.floor(start / HOUR)  # 168 or 169, by the minute it began
    assert backend.schedule("often").missed == fires - expected
    assert backend.schedule("often").handled_through == clock.wall()
    ticker(clock).run(backend, clock.now())
    assert len(events(backend)) == expected  # handled: nothing twice


def run_forever(backend: Store) -> None:
    """Expand what was raised: its task stays ready (no worker), so the event runs on."""
    Expand(100).run(backend, 0.0)


def looks(backend: Store, clock: FakeClock, minutes: int) -> None:
    for _ in range(minutes):
        clock.advance(MINUTE)
        ticker(clock).run(backend, clock.now())
        run_forever(backend)


def test_overlap_skip_misses_fires_while_the_previous_event_runs(backend: Store) -> None:
    start = register(backend, "    every_s: 60\n    overlap: skip")
    clock = FakeClock(wall_start=start)
    looks(backend, clock, 3)
    (only,) = events(backend)
    assert only.state is EventState.RUNNING
    assert backend.schedule("often").missed == 2


def test_overlap_queue_one_holds_one_fire_and_raises_it_when_the_previous_ends(backend: Store) -> None:
    start = register(backend, "    every_s: 60\n    overlap: queue_one")
    clock = FakeClock(wall_start=start)
    looks(backend, clock, 3)
    (first,) = events(backend)
    held = backend.schedule("often")
    assert held.queued_at is not None and held.missed == 1
    backend.cancel(first.id)  # the long run ends
    ticker(clock).run(backend, clock.now())
    raised = events(backend)
    assert len(raised) == 2 and raised[1].scheduled_for == held.queued_at
    assert backend.schedule("often").queued_at is None


def test_overlap_allow_raises_every_fire(backend: Store) -> None:
    start = register(backend, "    every_s: 60\n    overlap: allow")
    clock = FakeClock(wall_start=start)
    looks(backend, clock, 3)
    assert [e.state for e in events(backend)] == [EventState.RUNNING] * 3


def test_overlap_cancel_running_cancels_the_previous_event(backend: Store) -> None:
    start = register(backend, "    every_s: 60\n    overlap: cancel_running")
    clock = FakeClock(wall_start=start)
    looks(backend, clock, 3)
    states = [backend.event(e.id).state for e in events(backend)]
    assert states[-1] is EventState.RUNNING
    assert all(s is EventState.CANCELLED for s in states[:-1]) and len(states) == 3


def test_a_paused_schedule_raises_nothing_and_resumes_from_now(backend: Store) -> None:
    start = register(backend, "    every_s: 60\n    overlap: allow")
    clock = FakeClock(wall_start=start)
    backend.pause_schedule("often", note="month-end freeze", actor="ops")
    looks(backend, clock, 5)
    assert events(backend) == []
    assert backend.schedule("often").note == "month-end freeze"
    resumed = backend.resume_schedule("often")
    assert resumed.state == "active" and resumed.handled_through >= start
