"""Concurrency keys on both stores, driven in-process: a key's limit holds for every claim,
however many workers claim at once; a slot comes free when its attempt ends, by a report or by
its lease running out; parked tasks go back to the queue as slots free, and the sweep returns
any that nobody came back for."""

from __future__ import annotations

import threading
import time

from limited import OVER, claim, key_state, limited, report, sql, start

from baton.engine.states import EventState
from baton.graphs.builder import GraphBuilder
from baton.store import limits
from baton.store.protocol import Store


def test_a_claim_takes_no_more_than_the_keys_limit_and_parks_the_rest(backend: Store) -> None:
    event_id = start(backend, limited())
    got = claim(backend)
    extracts = [c for c in got if c.node == "extract"]
    assert len(extracts) == 3 and len(got) == 8  # the free tasks filled the other slots
    state = key_state(backend)
    assert (state.max_running, state.running, state.ready + state.parked) == (3, 3, 7)
    assert state.parked >= 1  # those the claim saw; the others are parked when a claim sees them
    done = extracts[0]
    more = claim(backend, slots=1, reports=(report(done),))  # its slot frees: one parked task is back
    assert [c.node for c in more] == ["extract"]
    assert key_state(backend).running == 3
    assert backend.event(event_id).state is EventState.RUNNING


def test_an_event_runs_to_its_end_with_never_more_than_the_limit_running(backend: Store) -> None:
    event_id = start(backend, limited(limit=2))
    pending: tuple = ()
    most = 0
    while True:
        got = claim(backend, reports=pending)
        most = max(most, key_state(backend).running)
        pending = tuple(report(c) for c in got)
        if not got:
            break
    assert most == 2
    assert backend.event(event_id).state is EventState.SUCCEEDED
    assert key_state(backend) == limits.KeyState("erp", 2, 0, 0, 0)


def test_a_dead_workers_slots_come_free_when_its_leases_run_out(backend: Store) -> None:
    start(backend, limited(retries=1))
    lost = [c for c in claim(backend, "dead", lease_s=OVER) if c.node == "extract"]
    assert len(lost) == 3
    assert backend.expire_leases() == 8  # every task the dead worker held
    state = key_state(backend)
    assert state.running == 0 and state.ready + state.parked == 10
    again = [c for c in claim(backend, "alive") if c.node == "extract"]
    assert len(again) == 3 and key_state(backend).running == 3


def test_a_templated_key_limits_each_partition_apart(backend: Store) -> None:
    g = GraphBuilder("per_dept", defaults={"retries": 0})
    g.param("departments", "list", default=["A", "B"]).partitions(param="departments")
    for name in ("finance", "erp", "crm"):
        g.python(name, "m:f", concurrency={"key": "dept:{partition}", "limit": 1})
    start(backend, g.build())
    got = claim(backend)
    assert sorted(c.partition for c in got) == ["A", "B"]  # one per department, not one overall
    assert key_state(backend, "dept:A").parked == 2 and key_state(backend, "dept:B").parked == 2


def test_the_sweep_returns_parked_tasks_to_a_key_nobody_holds(backend: Store) -> None:
    start(backend, limited())
    with sql(backend).transaction() as tx:  # as if the tasks returned for the free slots were lost
        tx.q("UPDATE tasks SET parked = 1 WHERE limit_key = 'erp' AND state = 'ready'")
    assert key_state(backend).parked == 10
    backend.sweep(100, time.time())
    state = key_state(backend)
    assert (state.ready, state.parked) == (3, 7)
    assert len([c for c in claim(backend) if c.node == "extract"]) == 3


def test_workers_claiming_at_once_never_run_more_than_the_limit(backend: Store) -> None:
    """Four workers claim and report as fast as they can while a sampler reads the key's
    running count; on PostgreSQL their transactions overlap, so only the key's row lock keeps
    them within the limit."""
    parts = [f"p{i:03}" for i in range(120)]
    event_id = start(backend, limited(limit=3, parts=parts))
    seen: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            pending: tuple = ()
            while not stop.is_set():
                got = claim(backend, name, slots=2, reports=pending)
                pending = tuple(report(c) for c in got)
                if not got and backend.event(event_id).state is not EventState.RUNNING:
                    return
        except BaseException as exc:
            errors.append(exc)

    def sample() -> None:
        while not stop.is_set():
            seen.append(key_state(backend).running)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)] + [threading.Thread(target=sample)]
    for t in threads:
        t.start()
    for t in threads[:4]:
        t.join(timeout=120)
    stop.set()
    threads[4].join()
    assert not errors, errors
    assert backend.event(event_id).state is EventState.SUCCEEDED
    assert seen and max(seen) <= 3
