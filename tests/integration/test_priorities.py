"""Priorities on both stores, driven in-process: an event's priority orders its tasks' claims;
a small event submitted after a big one interleaves with it; a stream of new events does not
starve the big one; ageing (on a fake clock) lets a low-priority task through a continuous
stream of high-priority ones within its bound, and leaves tasks of the top priority alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import cast

import pytest
from prioritised import claim, raise_event, ranks, report, single, wide

from baton.clock import FakeClock
from baton.controller.duties import Ageing
from baton.controller.loop import Controller
from baton.controller.schedules import Backfiller, Ticker
from baton.engine.priorities import ageing_bound_steps
from baton.engine.states import EventState, Outcome
from baton.errors import UsageError
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import BackfillRequest, ClaimRequest
from baton.store.sql import SqlStore

STEP_S = 60.0


def test_a_higher_priority_event_is_claimed_first_and_its_tasks_add_the_node_priority(backend: Store) -> None:
    low = raise_event(backend, wide("low", 3, chained=False), priority=-5)
    high = raise_event(backend, single("high", priority=2), priority=5)
    assert backend.event(high).priority == 5 and backend.event(low).priority == -5
    assert [r.priority for r in ranks(backend, high)] == [7]
    assert {r.priority for r in ranks(backend, low)} == {-5}
    got = claim(backend, slots=2)
    assert [c.event_id for c in got] == [high, low]


def test_an_events_priority_out_of_bounds_is_refused(backend: Store) -> None:
    graph = single()
    record = backend.register_graph(graph)
    with pytest.raises(UsageError, match="-1000 to 1000"):
        backend.submit(record.id, validate_params(graph, {}), priority=1001)


def test_a_small_event_after_a_big_one_is_claimed_within_the_next_claims(backend: Store) -> None:
    big = raise_event(backend, wide("big", 2_000))
    done: list = []
    for _ in range(40):  # the big event is well under way: 320 tasks claimed, depth first
        done = [report(c) for c in claim(backend, reports=done)]
    small = raise_event(backend, wide("small", 4))
    seen = []
    for _ in range(4):
        got = claim(backend, reports=done)
        done = [report(c) for c in got]
        seen += [c.event_id for c in got]
    # the small event's roots alternate with the big one's from the turn after the head, and
    # their second stage follows as they end (depth first): the whole small event within four
    # claims of eight, not after 3,680 other tasks
    assert seen[:8].count(small) == 3, seen
    assert seen.count(small) == 8, seen
    assert seen.count(big) == 24  # and the big one goes on beside it


def test_a_stream_of_small_events_does_not_starve_a_big_one(backend: Store) -> None:
    big = raise_event(backend, wide("big", 300, chained=False))
    stream = wide("stream", 2, chained=False)
    done: list = []
    claimed_big = 0
    for _ in range(30):
        raise_event(backend, stream)  # two new tasks before every claim of four
        got = claim(backend, slots=4, reports=done)
        done = [report(c) for c in got]
        claimed_big += sum(c.event_id == big for c in got)
    assert claimed_big >= 45  # about half of the 120 claims, though new work always waits


def test_ageing_lets_a_low_task_through_a_continuous_high_stream_within_its_bound(backend: Store) -> None:
    low, high = 0, 3
    waiting = raise_event(backend, single("background"), priority=low)
    clock = FakeClock(wall_start=time.time() + 1.0)  # the controller's clock, driven by the test
    ageing = Ageing(STEP_S, clock)
    stream = single("urgent")
    done: list = []
    started_at_step = None
    for step in range(1, 20):
        for _ in range(2):  # the stream outgrows the one claim per step: never empty
            raise_event(backend, stream, priority=high)
        clock.advance(STEP_S)
        ageing.run(backend, clock.now())
        got = claim(backend, slots=1, reports=done)
        done = [report(c) for c in got]
        if any(c.event_id == waiting for c in got):
            started_at_step = step
            break
    assert started_at_step is not None
    assert started_at_step <= ageing_bound_steps(low, high)
    assert started_at_step == high - low  # raised once per step, never more
    assert ageing.raised == high - low


def test_ageing_leaves_tasks_of_the_top_priority_alone_so_fairness_holds(backend: Store) -> None:
    big = raise_event(backend, wide("big", 50, chained=False))
    clock = FakeClock(wall_start=time.time() + 1.0)
    clock.advance(10 * STEP_S)
    small = raise_event(backend, wide("small", 2, chained=False))
    assert Ageing(STEP_S, clock).run(backend, clock.now()) == 0  # nobody waits below the head
    assert {r.priority for r in ranks(backend, big)} == {0}
    seen = [c.event_id for c in claim(backend, slots=5)]
    assert seen == [big, big, small, big, small]  # one in two from the turn after the head's


def test_ageing_raises_a_task_once_per_step_and_counts_it_for_the_metrics(backend: Store) -> None:
    before = backend.metrics_sample(None, None, 100, 60.0).audit_id
    low = raise_event(backend, wide("low", 3, chained=False), priority=-2)
    raise_event(backend, single("top"), priority=4)
    clock = FakeClock(wall_start=time.time() + 1.0)
    ageing = Ageing(STEP_S, clock)
    clock.advance(STEP_S)
    assert ageing.run(backend, clock.now()) == 3
    clock.advance(STEP_S / 2)
    assert ageing.run(backend, clock.now()) == 0  # half a step since the last raise: not yet
    clock.advance(STEP_S / 2)
    assert ageing.run(backend, clock.now()) == 3
    assert {r.priority for r in ranks(backend, low)} == {0}
    through = backend.metrics_sample(None, None, 100, 60.0).audit_id
    assert backend.metrics_sample(before, through, 1000, 60.0).activity.tasks_aged == 6


def test_a_schedules_priority_is_its_events_fired_by_hand_by_the_ticker_or_backfilled(backend: Store) -> None:
    g = GraphBuilder("nightly", defaults={"retries": 0}).python("a", "m:f", priority=1)
    g.schedule("urgent", cron="0 2 * * *", timezone="UTC", overlap="allow", priority=7)
    backend.register_graph(g.build())
    event = backend.trigger_schedule("urgent")
    assert event.priority == 7
    clock = FakeClock(wall_start=backend.schedule("urgent").handled_through)
    clock.advance(86_400.0)
    Ticker(every_s=30.0, clock=clock).run(backend, clock.now())  # its nightly fire
    fired = [e for e in backend.events(limit=100) if e.scheduled_for is not None and e.id != event.id]
    assert len(fired) == 1 and fired[0].priority == 7
    day = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    backend.start_backfill(BackfillRequest("urgent", day, day + 3 * 86_400 - 1, max_running=5), actor="ops")
    Backfiller(every_s=1.0, clock=FakeClock(wall_start=time.time())).run(backend, 0.0)
    backfilled = [e for e in backend.events(limit=100) if e.backfill_id is not None]
    assert len(backfilled) == 3 and {e.priority for e in backfilled} == {7}
    Controller(cast(SqlStore, backend)).expand()
    assert {r.priority for e in backfilled for r in ranks(backend, e.id)} == {8}  # its node's 1, plus 7


def test_aged_tasks_join_the_higher_line_in_their_order_and_new_events_still_interleave(backend: Store) -> None:
    low = raise_event(backend, wide("low", 20, chained=False), priority=0)
    top = raise_event(backend, wide("top", 20, chained=False), priority=1)
    assert {c.event_id for c in claim(backend, slots=5)} == {top}  # its turns 0 to 4
    clock = FakeClock(wall_start=time.time() + 1.0)
    clock.advance(STEP_S)
    assert Ageing(STEP_S, clock).run(backend, clock.now()) == 20
    assert sorted(r.turn for r in ranks(backend, low)) == list(range(5, 25))  # the head's turn on, in order
    late = raise_event(backend, wide("late", 2, chained=False), priority=1)
    seen = [c.event_id for c in claim(backend, slots=9)]
    # turn 5: the aged task (the oldest), then top's; turn 6: low, top and late's first; turn 7 ...
    assert seen == [low, top, low, top, late, low, top, late, low]


def test_a_rerun_task_queues_as_if_its_event_were_planned_now(backend: Store) -> None:
    failing = raise_event(backend, wide("flaky", 3, chained=False), priority=2)
    got = claim(backend, slots=3)
    backend.claim(ClaimRequest("w1", {"slots": 0}, frozenset(), 0, 30.0,
                               tuple(report(c, Outcome.FAILED) for c in got)))  # fmt: skip
    assert backend.event(failing).state is EventState.FAILED
    with cast(SqlStore, backend).transaction() as tx:  # as if ageing had raised them while they waited
        tx.q("UPDATE tasks SET priority = 40, turn = 0, aged_at = 1.0 WHERE event_id = ?", (failing,))
    other = raise_event(backend, wide("other", 4, chained=False), priority=2)  # turns 0 to 3 at priority 2
    assert backend.rerun(failing) == 3
    rerun = ranks(backend, failing)
    assert {(r.priority, r.aged_at) for r in rerun} == {(2, None)}  # what ageing added is dropped
    assert sorted(r.turn for r in rerun) == [1, 2, 3]  # just after the head's turn, 0, in partition order
    seen = [c.event_id for c in claim(backend, slots=7)]
    assert seen == [other, other, failing, other, failing, other, failing]
