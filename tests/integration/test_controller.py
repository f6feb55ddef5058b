"""The controller's duties on a fake clock, against real stores (SQLite and PostgreSQL).

The controller's clock decides when each duty runs; the store's clock decides whether a lease
or a role has run out. A test moves the fake clock to exactly a duty's due time and sees it run
then and not a moment before, without sleeping. Where a lease or a role must have run out by
the store's clock, it is given one that already has (``OVER``), as tests/integration/
test_live_logs.py does for leases.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from baton.clock import FakeClock
from baton.controller import Controller, ControllerConfig
from baton.controller.loop import ROLE, leader_duties
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import BackendError
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.settings import default_settings
from baton.store.protocol import ControllerStore, Store
from baton.store.records import ClaimRequest

OVER = -1.0  # a lease or a role that has already run out by the store's clock


def config(**overrides: Any) -> ControllerConfig:
    """Long timings unless a test says otherwise, so nothing is due by accident."""
    timings: dict[str, Any] = {"poll_s": 100.0, "idle_poll_s": 100.0, "sweep_s": 30.0, "lead_ttl_s": 300.0,
                               "webhook_poll_s": 300.0, "backfill_s": 300.0, "schedule_look_s": 300.0,
                               "deadline_check_s": 300.0, "prune_s": 300.0, "dispatch_s": 300.0}  # fmt: skip
    return ControllerConfig.from_settings(default_settings(), **{**timings, **overrides})


def submit(backend: Store, *nodes: str) -> int:
    """Submit an event whose nodes run independently, without retries; return its id."""
    g = GraphBuilder("duties", defaults={"retries": 0, "retry_delay_s": 0.0})
    for node in nodes or ("only",):
        g.python(node, "m:f")
    graph = g.build()
    event, _ = backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
    return event.id


def move_to(clock: FakeClock, at: float) -> None:
    """Set the clock to exactly ``at``."""
    clock.advance(at - clock.now())


def just_before(at: float) -> float:
    """The last instant before ``at`` that the clock can tell apart from it."""
    return math.nextafter(at, -math.inf)


def claim_lapsed(backend: Store, event_id: int) -> None:
    """Claim every task of the event with a lease that has already run out."""
    ready = len(backend.tasks(event_id))
    assert len(backend.claim(ClaimRequest("w1", {"slots": ready}, frozenset(), ready, OVER)).claims) == ready


class Recording:
    """The real store, noting the fake clock's time of each controller verb it is asked. Its
    change feed reports no change, so every round the loop makes is one its clock chose (on
    PostgreSQL the listener's own start counts as a change, at a moment of its choosing)."""

    def __init__(self, backend: Store, clock: FakeClock) -> None:
        self.backend = backend
        self.clock = clock
        self.calls: list[tuple[str, float]] = []

    def wait_for_change(self, timeout_s: float) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        verb = getattr(self.backend, name)
        if not callable(verb):
            return verb

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, self.clock.now()))
            return verb(*args, **kwargs)

        return call

    def times(self, verb: str, since: float) -> list[float]:
        return [round(at - since, 9) for name, at in self.calls if name == verb]


class StopAt:
    """A duty of the test's own, slotted in beside the others: due at ``at``, it stops the loop
    (and stays due, so the loop does not wait on before it sees the stop)."""

    every_round = False

    def __init__(self, at: float, stop: threading.Event) -> None:
        self.at, self.stop = at, stop

    def next_due(self, now: float) -> float:
        return self.at

    def run(self, store: ControllerStore, now: float) -> int:
        self.stop.set()
        return 0


def test_a_sweep_runs_when_the_clock_reaches_sweep_s_and_not_before(backend: Store) -> None:
    clock = FakeClock()
    controller = Controller(backend, config(sweep_s=30.0), clock=clock)
    start = clock.now()
    assert controller.step() == 0  # leads, sweeps an empty store; the next sweep is 30 s away
    event_id = submit(backend)
    assert controller.step() == 1  # expanded: a round runs the expansion whatever the time
    claim_lapsed(backend, event_id)
    move_to(clock, just_before(start + 30.0))
    assert controller.step() == 0
    assert backend.tasks(event_id)[0].state is TaskState.RUNNING  # lapsed, but not yet looked at
    move_to(clock, start + 30.0)
    assert controller.step() == 1
    (task,) = backend.tasks(event_id)
    assert task.state is TaskState.FAILED and "worker_lost" in (task.error or "")
    assert [a.outcome for a in backend.attempts([task.id])] == [Outcome.LOST]
    assert backend.event(event_id).state is EventState.FAILED
    assert controller.step() == 0  # swept: due again in 30 s


def test_a_full_sweep_is_due_again_at_once(backend: Store) -> None:
    clock = FakeClock()
    controller = Controller(backend, config(expire_batch=2), clock=clock)
    event_id = submit(backend, "a", "b", "c")
    assert controller.step() == 1  # expanded, and swept an empty store
    claim_lapsed(backend, event_id)
    clock.advance(30.0)
    assert controller.step() == 2  # a full batch: more may be waiting
    assert controller.step() == 1  # at the same instant
    assert controller.step() == 0  # not full: the next sweep is 30 s away
    assert {t.state for t in backend.tasks(event_id)} == {TaskState.FAILED}


def test_the_leader_renews_its_role_every_third_of_lead_ttl_s(backend: Store) -> None:
    clock = FakeClock()
    store = Recording(backend, clock)
    controller = Controller(store, config(lead_ttl_s=9.0), clock=clock)  # type: ignore[arg-type]
    start = clock.now()
    for at in (start, start + 1.0, just_before(start + 3.0), start + 3.0, just_before(start + 6.0), start + 6.0):
        move_to(clock, at)
        controller.step()
    assert store.times("lead", start) == [0.0, 3.0, 6.0]
    assert controller.leading and backend.leader(ROLE) == controller.id


def test_a_standby_does_nothing_until_it_takes_the_role_at_its_next_look(backend: Store) -> None:
    clock = FakeClock()
    leader = Controller(backend, config(lead_ttl_s=30.0), name="leader", clock=clock)
    standby = Controller(backend, config(lead_ttl_s=30.0), name="standby", clock=clock)
    start = clock.now()
    leader.step()
    assert standby.step() == 0 and not standby.leading
    event_id = submit(backend)
    assert standby.step() == 0  # a standby expands nothing
    assert backend.event(event_id).state is EventState.SUBMITTED
    backend.lead(ROLE, leader.id, OVER)  # the leader stops renewing and its role runs out
    move_to(clock, just_before(start + 10.0))
    assert standby.step() == 0 and not standby.leading  # it has not looked again yet
    move_to(clock, start + 10.0)  # a third of lead_ttl_s after its last look
    assert standby.step() == 1 and standby.leading
    assert backend.event(event_id).state is EventState.RUNNING
    assert backend.leader(ROLE) == standby.id
    assert any(a.actor == standby.id for a in backend.audit() if a.action == "leadership.acquired")
    assert leader.step() == 0 and not leader.leading  # at its own next renewal it finds itself replaced


def test_a_leader_that_resigns_hands_over_at_the_standbys_next_look(
    backend: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    stop = threading.Event()
    stop.set()
    leader = Controller(backend, config(lead_ttl_s=3.0), name="leader", clock=clock)
    standby = Controller(backend, config(lead_ttl_s=3.0), name="standby", clock=clock)
    start = clock.now()
    leader.step()
    standby.step()
    with caplog.at_level(logging.INFO, logger="baton.controller"):
        leader.run(stop)  # stopped at once: gives the role up on the way out
        assert backend.leader(ROLE) is None and not leader.leading
        move_to(clock, just_before(start + 1.0))
        standby.step()
        assert not standby.leading
        move_to(clock, start + 1.0)
        standby.step()
    assert standby.leading
    assert f"controller {standby.id} is now the leader" in caplog.messages


def test_the_loop_waits_until_the_earliest_duty_is_due(backend: Store) -> None:
    clock = FakeClock()
    store = Recording(backend, clock)
    stop = threading.Event()
    settings = config(sweep_s=7.0, lead_ttl_s=30.0)
    start = clock.now()
    duties = [*leader_duties(settings, clock), StopAt(start + 30.0, stop)]
    controller = Controller(store, settings, clock=clock, duties=duties)  # type: ignore[arg-type]
    controller.run(stop)
    assert clock.now() == start + 30.0
    assert store.times("lead", start) == [0.0, 10.0, 20.0, 30.0]
    assert store.times("sweep", start) == [0.0, 7.0, 14.0, 21.0, 28.0]
    assert store.calls[-1] == ("resign", start + 30.0)
    assert max(clock.waits) <= 7.0  # slept until the next duty each time, never a whole poll


def test_without_duties_due_the_loop_looks_at_the_store_every_poll(backend: Store) -> None:
    clock = FakeClock()
    store = Recording(backend, clock)
    stop = threading.Event()
    settings = config(poll_s=2.0, idle_poll_s=2.0, sweep_s=100.0, lead_ttl_s=300.0)
    start = clock.now()
    duties = [*leader_duties(settings, clock), StopAt(start + 9.0, stop)]
    Controller(store, settings, clock=clock, duties=duties).run(stop)  # type: ignore[arg-type]
    assert store.times("events_to_expand", start) == [0.0, 2.0, 4.0, 6.0, 8.0, 9.0]


class Flaky:
    """The real store, except that ``lead`` fails with a BackendError the first ``times`` times."""

    def __init__(self, backend: Store, times: int, error: Callable[[str], Exception]) -> None:
        self.backend, self.left, self.error = backend, times, error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        if self.left:
            self.left -= 1
            raise self.error("the database is away")
        return bool(self.backend.lead(role, holder, ttl_s))


def test_a_failed_round_is_tried_again_a_second_later_by_the_clock(backend: Store) -> None:
    clock = FakeClock()
    stop = threading.Event()
    start = clock.now()
    settings = config()
    duties = [*leader_duties(settings, clock), StopAt(start + 2.5, stop)]
    controller = Controller(Flaky(backend, 2, BackendError), settings, clock=clock, duties=duties)  # type: ignore[arg-type]
    controller.run(stop)
    assert clock.waits[:2] == [1.0, 1.0]  # two failed rounds, a second apart
    assert clock.now() == start + 2.5
    assert not controller.leading and backend.leader(ROLE) is None  # led from second 2; resigned on the way out
