"""Held tasks on both stores, driven in-process: a hold takes a ready task out of the queue
without running it or using an attempt; a start moves it to running only while its worker still
holds it; holds come back to the queue when given back, when their worker leaves or stops
renewing them, and are asked back for a pause, a higher priority or an idle worker; limits are
never bypassed."""

from __future__ import annotations

import time

from limited import OVER, PARTS, chain, limited, report, sql, start

from baton.engine.states import EventState
from baton.graphs.builder import GraphBuilder
from baton.store import holds
from baton.store.protocol import Store
from baton.store.records import STOP_HOLD_LOST, Claim, ClaimRequest, ClaimResult, PauseTarget, Report

HOLD_S = 10.0


def ask(
    backend: Store,
    worker: str = "w1",
    hold: int = 0,
    limit: int = 0,
    starts: tuple[tuple[int, int], ...] = (),
    reports: tuple[Report, ...] = (),
    releases: tuple[int, ...] = (),
    idle: int = 0,
    hold_s: float = HOLD_S,
    claim_id: str | None = None,
) -> ClaimResult:
    return backend.claim(ClaimRequest(worker, {"slots": limit}, frozenset(), limit, 30.0, reports, hold=hold,
                                      hold_s=hold_s, capacity={"slots": 4}, starts=starts, releases=releases,
                                      idle=idle, claim_id=claim_id))  # fmt: skip


def rows(backend: Store, task_ids: list[int]) -> list[tuple]:
    with sql(backend).transaction(write=False) as tx:
        marks = ", ".join("?" for _ in task_ids)
        return list(
            tx.q(
                f"SELECT state, attempt, parked, held_by, hold_losses FROM tasks WHERE id IN ({marks}) ORDER BY id",
                task_ids,
            ).fetchall()
        )


def ids(claims: list[Claim]) -> list[int]:
    return sorted(c.task_id for c in claims)


def test_a_hold_takes_tasks_out_of_the_queue_without_running_them(backend: Store) -> None:
    start(backend, chain())
    held = ask(backend, hold=5).holds
    assert len(held) == 5 and all(c.attempt == 1 for c in held)  # the attempt each will be
    assert {tuple(r) for r in rows(backend, ids(held))} == {("ready", 0, holds.HELD, "w1", 0)}
    other = ask(backend, "w2", limit=8).claims
    assert not set(ids(other)) & set(ids(held))  # nobody else takes them
    assert len(other) == 5  # the rest of the ten extracts


def test_a_start_runs_a_held_task_and_its_report_rides_beside_it(backend: Store) -> None:
    event_id = start(backend, chain())
    held = ask(backend, hold=10).holds
    first = held[0]
    got = ask(backend, starts=((first.task_id, 1),), reports=(report(first),), hold=1)
    assert got.refused_starts == [] and got.rejected == []
    assert rows(backend, [first.task_id])[0][:2] == ("succeeded", 1)
    assert [c.node for c in got.holds] == ["load"]  # what the report released is held at once
    started = [(c.task_id, c.attempt) for c in [*held[1:], *got.holds]]
    ask(backend, starts=tuple(started), reports=tuple(report(c) for c in [*held[1:], *got.holds]))
    left = ask(backend, hold=20)
    ask(backend, starts=tuple((c.task_id, c.attempt) for c in left.holds), reports=tuple(map(report, left.holds)))
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_a_start_of_a_lost_hold_is_refused_and_its_report_is_stale(backend: Store) -> None:
    start(backend, chain())
    (lost,) = ask(backend, hold=1, hold_s=OVER).holds
    assert backend.sweep(100, time.time())[0] == 1  # the hold ran out: back to the queue
    (again,) = ask(backend, "w2", limit=1).claims
    assert again.task_id == lost.task_id and again.attempt == 1  # the lost hold used no attempt
    late = ask(backend, starts=((lost.task_id, lost.attempt),), reports=(report(lost),))
    assert late.refused_starts == [(lost.task_id, 1)] and late.rejected == [(lost.task_id, 1)]
    assert rows(backend, [lost.task_id])[0][:4] == ("running", 1, 0, None)  # w2's attempt, untouched


def test_a_start_sent_twice_is_recorded_once(backend: Store) -> None:
    start(backend, chain())
    (held,) = ask(backend, hold=1).holds
    pair = ((held.task_id, held.attempt),)
    assert ask(backend, starts=pair).refused_starts == []
    assert ask(backend, starts=pair).refused_starts == []  # the same start again: no refusal
    assert rows(backend, [held.task_id])[0][:2] == ("running", 1)


def test_a_task_whose_holds_ran_out_twice_is_no_longer_held(backend: Store) -> None:
    start(backend, chain())
    for _ in range(holds.MAX_HOLD_LOSSES):
        ask(backend, hold=10, hold_s=OVER)
        backend.sweep(100, time.time())
    assert ask(backend, hold=10).holds == []  # every extract lost its holds twice
    claimed = ask(backend, limit=4).claims
    assert len(claimed) == 4 and all(c.attempt == 1 for c in claimed)  # claimed to run, as ever


def test_tasks_under_a_concurrency_key_are_never_held(backend: Store) -> None:
    start(backend, limited())
    held = ask(backend, hold=30).holds
    assert {c.node for c in held} == {"free"} and len(held) == len(PARTS)


def test_a_pause_asks_holds_back_and_they_return_paused(backend: Store) -> None:
    event_id = start(backend, chain())
    held = ask(backend, hold=4).holds
    backend.pause(PauseTarget(event_id=event_id), "maintenance", "ops")
    asked = ask(backend)
    assert sorted(asked.recalled) == ids(held)
    first, *rest = held
    ask(backend, starts=((first.task_id, first.attempt),), releases=tuple(ids(rest)))  # one had started
    assert [r[:3] for r in rows(backend, ids(held))] == [("running", 1, 2)] + [("ready", 0, 2)] * 3
    assert ask(backend, "w2", limit=8).claims == []  # paused: nothing to take
    backend.resume(PauseTarget(event_id=event_id), "ops")
    assert len(ask(backend, "w2", limit=8).claims) == 8


def test_an_idle_worker_gets_other_workers_holds_back(backend: Store) -> None:
    start(backend, chain())
    held = ask(backend, hold=10).holds
    assert len(held) == 10
    hungry = ask(backend, "w2", limit=2, idle=2)
    assert hungry.claims == [] and hungry.holds == []
    asked = ask(backend).recalled
    assert len(asked) == 2
    ask(backend, releases=tuple(asked))
    assert ids(ask(backend, "w2", limit=2).claims) == sorted(asked)


def test_holds_below_a_waiting_higher_priority_are_asked_back(backend: Store) -> None:
    start(backend, chain())
    held = ask(backend, hold=10).holds
    g = GraphBuilder("urgent", defaults={"retries": 0})
    g.python("now", "m:f", priority=50)
    start(backend, g.build())
    backend.sweep(100, time.time())
    asked = ask(backend).recalled
    assert len(asked) == 1 and asked[0] in ids(held)


def test_a_heartbeat_renews_listed_holds_and_gives_back_unlisted_old_ones(backend: Store) -> None:
    start(backend, chain())
    held = ask(backend, hold=3).holds
    kept, forgotten, _ = held
    with sql(backend).transaction() as tx:  # taken long ago, and about to run out
        tx.q("UPDATE tasks SET held_at = held_at - 100, hold_expires_at = ? WHERE parked = 4", (time.time() + 1,))
    stops = backend.heartbeat("w1", [], 30.0, [(kept.task_id, 1), (999_999, 1)], HOLD_S)
    assert [(s.task_id, s.reason) for s in stops] == [(999_999, STOP_HOLD_LOST)]
    state = {r[0]: r for r in rows_by_id(backend, ids(held))}
    assert state[kept.task_id][3] == holds.HELD and state[forgotten.task_id][3] == 0
    assert backend.sweep(100, time.time() + 5)[0] == 0  # renewed for HOLD_S: nothing runs out yet


def rows_by_id(backend: Store, task_ids: list[int]) -> list[tuple]:
    with sql(backend).transaction(write=False) as tx:
        marks = ", ".join("?" for _ in task_ids)
        return list(tx.q(f"SELECT id, state, attempt, parked FROM tasks WHERE id IN ({marks})", task_ids).fetchall())


def test_a_worker_that_leaves_gives_its_holds_back(backend: Store) -> None:
    start(backend, chain())
    held = ask(backend, hold=4).holds
    backend.deregister_worker("w1")
    assert {r[:4] for r in rows(backend, ids(held))} == {("ready", 0, 0, None)}


def test_a_claim_retried_after_a_lost_answer_gets_the_same_holds(backend: Store) -> None:
    start(backend, chain())
    first = ask(backend, hold=3, claim_id="c1").holds
    again = ask(backend, hold=3, claim_id="c1").holds
    assert ids(again) == ids(first) and [c.attempt for c in again] == [1, 1, 1]


def test_held_tasks_are_a_waiting_reason_of_their_event(backend: Store) -> None:
    event_id = start(backend, chain())
    ask(backend, hold=3)
    ask(backend, "w2", hold=2)
    assert [(w.node, w.worker_id, w.tasks) for w in backend.held_waits(event_id)] == [
        ("extract", "w1", 3),
        ("extract", "w2", 2),
    ]
    held = [g for g in backend.waiting(event_id) if g.reason == "held"]
    assert [(g.node, g.count) for g in held] == [("extract", 5)]
