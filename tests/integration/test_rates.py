"""Rate limits on both stores, driven in-process on a fake clock (the store's transactions run
at its time, so no test waits for a window to pass): two workers' starts together never exceed
the rate in any window; a task waiting for its rate holds no concurrency slot, and one refused by
its concurrency key spends no start; the sweep returns rate-parked tasks when their key's next
start is allowed, not before."""

from __future__ import annotations

import threading

from limited import claim, key_state, report, sql, start
from rated import LONG_LEASE_S, most_in_a_window, on_clock, rate_state, rated, start_times

from baton.controller import Controller, ControllerConfig
from baton.engine.states import EventState, Outcome
from baton.graphs.builder import GraphBuilder
from baton.settings import default_settings
from baton.store.protocol import Store
from baton.store.records import Claim, Report

LIMIT, PERIOD_S = 5, 10.0


def test_two_workers_together_respect_the_rate_over_ten_windows(backend: Store) -> None:
    """Every half second (so some looks fall exactly on a window's end) the controller sweeps,
    then two workers claim two tasks each and report what they claimed before. Over ten windows
    every interval of length period_s holds at most the limit of starts, and each of the ten
    windows from the first start holds exactly the limit (the rate is used, not only obeyed)."""
    clock = on_clock(backend)
    event_id = start(backend, rated(LIMIT, PERIOD_S))
    first = clock.wall()
    done: dict[str, tuple[Report, ...]] = {"w1": (), "w2": ()}
    while clock.wall() < first + 10 * PERIOD_S:
        backend.unpark_rated()
        for worker in ("w1", "w2"):
            got = claim(backend, worker, slots=2, lease_s=LONG_LEASE_S, reports=done[worker])
            done[worker] = tuple(report(c) for c in got)
        clock.advance(0.5)
    starts = start_times(backend)
    assert most_in_a_window(starts, PERIOD_S) == LIMIT
    windows = [sum(1 for s in starts if first + k * PERIOD_S <= s < first + (k + 1) * PERIOD_S) for k in range(10)]
    assert windows == [LIMIT] * 10
    assert backend.event(event_id).state is EventState.RUNNING


def test_a_rate_refused_task_is_parked_and_returns_when_the_next_start_is_allowed(backend: Store) -> None:
    clock = on_clock(backend)
    start(backend, rated(2, PERIOD_S, parts=["a", "b", "c", "d"]))
    got = claim(backend, slots=8, lease_s=LONG_LEASE_S)
    assert sorted(c.node for c in got) == ["call", "call"] + ["free"] * 4  # the free tasks took the slots
    state = rate_state(backend)
    assert (state.started, state.queued, state.parked) == (2, 0, 2)
    assert state.next_start_at == clock.wall() + PERIOD_S
    clock.advance(PERIOD_S - 0.001)
    backend.unpark_rated()
    assert rate_state(backend).parked == 2 and claim(backend, "w2", lease_s=LONG_LEASE_S) == []
    clock.advance(0.001)  # the window of the first starts has passed: two more may start
    backend.unpark_rated()
    state = rate_state(backend)
    assert (state.started, state.queued, state.parked, state.next_start_at) == (0, 2, 0, None)
    assert [c.node for c in claim(backend, "w2", lease_s=LONG_LEASE_S)] == ["call", "call"]


def test_a_task_waiting_for_its_rate_holds_no_concurrency_slot(backend: Store) -> None:
    """``call`` holds key erp (limit 1) and a rate of one start a minute; ``other`` holds erp
    only. Once call's start is spent, its tasks wait for the rate while other's run one by one."""
    on_clock(backend)
    g = GraphBuilder("both", defaults={"retries": 0})
    g.param("parts", "list", default=["a", "b", "c"]).partitions(param="parts")
    erp = {"key": "erp", "limit": 1}
    g.python("call", "m:f", concurrency=erp, rate_limit={"key": "api", "limit": 1, "period_s": 60}, priority=1)
    g.python("other", "m:f", concurrency=erp)
    start(backend, g.build())
    (first,) = claim(backend, slots=1, lease_s=LONG_LEASE_S)
    assert first.node == "call"
    ran: list[Claim] = []
    pending = (report(first),)
    for _ in range(3):
        got = claim(backend, slots=1, lease_s=LONG_LEASE_S, reports=pending)
        assert [c.node for c in got] == ["other"]
        assert key_state(backend, "erp").running == 1  # the waiting calls count for nothing
        ran += got
        pending = (report(got[0]),)
    assert rate_state(backend, "api").parked == 2
    assert claim(backend, slots=1, lease_s=LONG_LEASE_S, reports=pending) == []
    assert key_state(backend, "erp").running == 0 and key_state(backend, "erp").parked == 0


def test_a_task_its_concurrency_key_refuses_spends_no_start(backend: Store) -> None:
    """With erp held, call's tasks are parked on erp; the rate's starts are all still there."""
    on_clock(backend)
    g = GraphBuilder("both", defaults={"retries": 0})
    g.param("parts", "list", default=["a", "b", "c"]).partitions(param="parts")
    erp = {"key": "erp", "limit": 1}
    g.python("hold", "m:f", concurrency=erp, priority=2)
    g.python("call", "m:f", concurrency=erp, rate_limit={"key": "api", "limit": 3, "period_s": 60}, priority=1)
    start(backend, g.build())
    got = claim(backend, slots=8, lease_s=LONG_LEASE_S)
    assert [c.node for c in got] == ["hold"]
    state = rate_state(backend, "api")
    assert (state.started, state.parked) == (0, 0)
    assert key_state(backend, "erp").parked >= 1  # parked on the key, not on the rate
    pending = tuple(report(c) for c in got)
    calls = 0
    while pending:  # each end frees erp for one task: the calls start, spending the rate
        got = claim(backend, slots=8, lease_s=LONG_LEASE_S, reports=pending)
        calls += sum(1 for c in got if c.node == "call")
        pending = tuple(report(c) for c in got)
    assert calls == 3 and rate_state(backend, "api").started == 3


def test_claims_racing_on_one_key_never_exceed_the_rate(backend: Store) -> None:
    """Four workers claim and report as fast as they can while each moves the clock on a little
    and one also returns parked tasks; on PostgreSQL their transactions overlap and read the
    clock in any order, so only the key's row lock and its clock keep every window within the
    limit. (A failing thread stops them all.)"""
    clock = on_clock(backend)
    event_id = start(backend, rated(3, 1.0, parts=[f"p{i:02}" for i in range(40)]))
    errors: list[BaseException] = []
    stop = threading.Event()

    def work(name: str) -> None:
        try:
            pending: tuple[Report, ...] = ()
            while not stop.is_set() and backend.event(event_id).state is EventState.RUNNING:
                if name == "w0":
                    backend.unpark_rated()
                got = claim(backend, name, slots=2, lease_s=LONG_LEASE_S, reports=pending)
                pending = tuple(report(c) for c in got)
                clock.advance(0.01)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(f"w{i}",), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    assert not errors, errors
    assert backend.event(event_id).state is EventState.SUCCEEDED
    starts = start_times(backend)
    assert len(starts) == 40 and most_in_a_window(starts, 1.0) <= 3


def test_a_claim_reading_an_earlier_clock_than_the_keys_starts_nothing_of_it(backend: Store) -> None:
    """A claim whose transaction read its clock before another claim that has since recorded
    starts (PostgreSQL: both open, the later one commits first) must not record a start behind
    it: its candidates of that key stay in the queue, neither started nor parked."""
    clock = on_clock(backend)
    start(backend, rated(3, PERIOD_S, parts=["a", "b", "c", "d"]))
    earlier = clock.wall()
    clock.advance(1.0)
    assert [c.node for c in claim(backend, slots=1, lease_s=LONG_LEASE_S)] == ["call"]
    sql(backend).clock = lambda: earlier
    got = claim(backend, "w2", slots=8, lease_s=LONG_LEASE_S)
    assert [c.node for c in got] == ["free"] * 4
    state = rate_state(backend)
    assert (state.started, state.queued, state.parked) == (1, 3, 0)
    sql(backend).clock = clock.wall
    assert [c.node for c in claim(backend, "w2", slots=8, lease_s=LONG_LEASE_S)] == ["call", "call"]


def test_the_controller_returns_rate_parked_tasks_when_the_next_start_is_allowed(backend: Store) -> None:
    """The controller's duty looks when the store says the next start is allowed (10 s here),
    not only every sweep_s (30 s): one moment before, the tasks are still parked; just after,
    they are back in the queue. Both the controller's and the store's clocks are the test's."""
    clock = on_clock(backend)
    start(backend, rated(2, PERIOD_S, parts=["a", "b", "c", "d"]))
    first = clock.now()
    claim(backend, slots=8, lease_s=LONG_LEASE_S)
    long_s = {"poll_s": 100.0, "idle_poll_s": 100.0, "sweep_s": 30.0, "lead_ttl_s": 300.0, "webhook_poll_s": 300.0,
              "backfill_s": 300.0, "schedule_look_s": 300.0, "deadline_check_s": 300.0, "prune_s": 300.0,
              "dispatch_s": 300.0}  # fmt: skip
    controller = Controller(backend, ControllerConfig.from_settings(default_settings(), **long_s), clock=clock)
    assert controller.step() == 0 and rate_state(backend).parked == 2  # leads; nothing may start yet
    clock.advance(first + PERIOD_S - 0.001 - clock.now())
    assert controller.step() == 0 and rate_state(backend).parked == 2
    clock.advance(0.002)
    assert controller.step() == 2
    state = rate_state(backend)
    assert (state.queued, state.parked) == (2, 0)
    assert [c.node for c in claim(backend, "w2", lease_s=LONG_LEASE_S)] == ["call", "call"]


def test_every_attempt_is_a_start_and_a_retry_waits_for_the_rate(backend: Store) -> None:
    """A failed attempt retried at once starts again only when the rate allows: its first start
    still counts in the window."""
    clock = on_clock(backend)
    g = GraphBuilder("retried", defaults={"retries": 1, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("parts", "list", default=["a", "b"]).partitions(param="parts")
    g.python("call", "m:f", rate_limit={"key": "api", "limit": 2, "period_s": PERIOD_S})
    start(backend, g.build())
    got = claim(backend, slots=2, lease_s=LONG_LEASE_S)
    assert len(got) == 2
    failed = (report(got[0], Outcome.FAILED), report(got[1]))
    assert claim(backend, slots=2, lease_s=LONG_LEASE_S, reports=failed) == []  # the retry is parked
    assert rate_state(backend, "api").parked == 1
    clock.advance(PERIOD_S)
    backend.unpark_rated()
    (again,) = claim(backend, slots=2, lease_s=LONG_LEASE_S)
    assert (again.task_id, again.attempt) == (got[0].task_id, 2)
    claim(backend, slots=2, lease_s=LONG_LEASE_S, reports=(report(again),))


def test_cancelling_an_event_clears_its_rate_parked_tasks(backend: Store) -> None:
    on_clock(backend)
    event_id = start(backend, rated(1, PERIOD_S, parts=["a", "b", "c"]))
    claim(backend, slots=8, lease_s=LONG_LEASE_S)
    assert rate_state(backend).parked == 2
    backend.cancel(event_id)
    assert rate_state(backend).parked == 0 and backend.unpark_rated() == (0, None)


def test_the_invariant_check_flags_a_rate_parked_mark_on_a_task_without_a_rate_key(backend: Store) -> None:
    on_clock(backend)
    start(backend, rated(1, PERIOD_S, parts=["a"]))
    with sql(backend).transaction() as tx:
        tx.q("UPDATE tasks SET parked = 3 WHERE node = 'free'")
    (stray,) = backend.debug.stray_parked()
    with sql(backend).transaction() as tx:
        tx.q("UPDATE tasks SET parked = 0 WHERE id = ?", (stray,))
    assert backend.debug.stray_parked() == []
