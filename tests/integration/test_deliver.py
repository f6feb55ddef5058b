"""The delivery duty against real stores (SQLite and PostgreSQL) and a real receiver on a
loopback port, on a fake clock: retries come when the clock says, never after a sleep.

The duty posts from threads of its own; a test waits for those posts to be answered
(:meth:`Deliver.join`) and then runs the duty again, which records them. Nothing waits for time
to pass: the fake clock is moved to exactly when a retry is due.

The acceptance case: a receiver that refuses the first two deliveries, then is down (connection
refused), then back, gets every notification at least once, each under one id only, each
signature valid; a controller that dies between posting and recording loses nothing (the same id
is posted again once its claim's lease runs out), and its late answer changes nothing."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from hooks import SECRET, cancelled_event, dispatch, notice
from receiver import Receiver

from baton.clock import FakeClock
from baton.controller import Controller, ControllerConfig
from baton.controller.deliver import IN_FLIGHT_LOOK_S, Answer, Deliver, Terms
from baton.engine.webhooks import RETRY_MAX_S
from baton.settings import default_settings
from baton.store.outbox import Kind
from baton.store.protocol import Store
from baton.store.records import DeliveryJob

JOIN_S = 30.0
TERMS = Terms(poll_s=1.0, connect_timeout_s=2.0, read_timeout_s=5.0, horizon_s=3600.0, max_in_flight=8)
MIDDLE = 0.5  # the jitter's draw that scales a retry's pause by exactly 1


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(SECRET).start()
    try:
        yield made
    finally:
        made.stop()


def a_clock() -> FakeClock:
    """A fake clock whose wall time starts now, after the deliveries were made by the store's."""
    return FakeClock(wall_start=time.time())


def settle(duty: Deliver, backend: Store, clock: FakeClock) -> int:
    """Run the duty, wait for its posts to be answered, and run it again to record them."""
    started = duty.run(backend, clock.now())
    assert duty.join(JOIN_S), "a post was not answered"
    duty.run(backend, clock.now())
    return started


def states(backend: Store) -> list[str]:
    return sorted(d.state for d in backend.deliveries())


def test_every_notification_arrives_at_least_once_under_one_id_through_refusals_and_an_outage(
    backend: Store, receiver: Receiver
) -> None:
    backend.add_webhook("ops", receiver.url, SECRET, ["event.cancelled", "deadline.at_risk"])
    events = [cancelled_event(backend, note=str(i)) for i in range(3)]
    notice(backend, Kind.DEADLINE_AT_RISK, events[0], minutes_late=3)
    assert dispatch(backend) == 4
    clock = a_clock()
    duty = Deliver(TERMS, clock, rand=lambda: MIDDLE)

    receiver.refuse(2)  # the first two are answered 500
    assert settle(duty, backend, clock) == 4
    assert states(backend) == ["delivered", "delivered", "pending", "pending"]
    receiver.stop()  # then the receiver is down: connection refused
    clock.advance(5.0)  # the first retry, 5 s after the first try
    assert settle(duty, backend, clock) == 2
    assert states(backend) == ["delivered", "delivered", "pending", "pending"]
    assert {d.last_status for d in backend.deliveries(state="pending")} == {None}
    receiver.start()
    clock.advance(10.0 - 1e-6)
    assert duty.run(backend, clock.now()) == 0  # the second retry is 10 s after the first: not yet
    clock.advance(1e-6)
    assert duty.next_due(clock.now()) == clock.now() - 1e-6 + TERMS.poll_s  # the duty looks again a poll later
    clock.advance(TERMS.poll_s - 1e-6)
    assert settle(duty, backend, clock) == 2
    assert states(backend) == ["delivered"] * 4

    ids: dict[int, set[str]] = defaultdict(set)
    for got in receiver.got:
        assert got.verified, got
        ids[got.json["notice_id"]].add(got.delivery)
        assert got.json["id"] == got.delivery and got.kind == got.json["kind"]
    assert len(ids) == 4 and all(len(one) == 1 for one in ids.values())  # every one, under one id
    assert {got.json["notice_id"] for got in receiver.delivered()} == set(ids)
    assert len(receiver.got) == 6  # two refused, four accepted (the outage's tries never arrived)


def test_a_controller_that_dies_after_posting_loses_nothing_and_its_late_answer_changes_nothing(
    backend: Store, receiver: Receiver
) -> None:
    backend.add_webhook("ops", receiver.url, SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    clock = a_clock()
    dying = Deliver(TERMS, clock, rand=lambda: MIDDLE)
    assert dying.run(backend, clock.now()) == 1
    assert dying.join(JOIN_S)  # posted and answered; the controller dies before it records that
    (first,) = receiver.got

    heir = Deliver(TERMS, clock, rand=lambda: MIDDLE)
    assert heir.run(backend, clock.now()) == 0  # the claim's lease has not run out
    clock.advance(TERMS.lease_s)
    assert heir.run(backend, clock.now()) == 1  # taken again: posted again, the same id and body
    assert heir.join(JOIN_S)
    second = receiver.got[1]
    assert (second.delivery, second.body) == (first.delivery, first.body) and second.verified

    assert dying.run(backend, clock.now()) == 1  # the dead one's answer arrives late: fenced off
    (d,) = backend.deliveries()
    assert (d.state, d.attempts) == ("pending", 2)
    heir.run(backend, clock.now())
    (d,) = backend.deliveries()
    assert (d.state, d.attempts) == ("delivered", 2)
    for duty in (dying, heir):
        duty.close()


class Refusing:
    """A poster that never gets through, noting when (on the fake clock) each try was made."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tries: list[float] = []

    def post(self, job: DeliveryJob, timestamp: int) -> Answer:
        self.tries.append(self.clock.wall())
        return Answer(503, "HTTP 503")

    def close(self) -> None:
        pass


def test_retries_back_off_from_5_s_doubling_to_10_minutes_and_stop_at_the_horizon(backend: Store) -> None:
    backend.add_webhook("ops", "http://127.0.0.1:9/never", SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    (made,) = backend.deliveries()
    clock = a_clock()
    poster = Refusing(clock)
    duty = Deliver(TERMS, clock, poster, rand=lambda: MIDDLE)
    while backend.deliveries()[0].state == "pending":
        due = backend.deliveries()[0].next_at
        clock.advance(max(0.0, due - clock.wall()))
        settle(duty, backend, clock)
    pauses = [round(b - a, 6) for a, b in zip(poster.tries, poster.tries[1:], strict=False)]
    doubling = [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0]
    assert pauses[: len(doubling)] == doubling and set(pauses[len(doubling) :]) == {RETRY_MAX_S}
    (d,) = backend.deliveries()
    assert d.state == "expired" and d.attempts == len(poster.tries)
    assert poster.tries[-1] <= made.created_at + TERMS.horizon_s < poster.tries[-1] + RETRY_MAX_S


def test_the_jitter_spreads_retries_by_a_fifth_either_way(backend: Store) -> None:
    backend.add_webhook("ops", "http://127.0.0.1:9/never", SECRET, ["event.cancelled"])
    cancelled_event(backend)
    cancelled_event(backend)
    dispatch(backend)
    clock = a_clock()
    draws = iter([0.0, 0.999999])
    settle(Deliver(TERMS, clock, Refusing(clock), rand=lambda: next(draws)), backend, clock)
    waits = sorted(round(d.next_at - clock.wall(), 3) for d in backend.deliveries())
    assert waits == [4.0, 6.0]


def test_the_duty_is_due_every_poll_and_sooner_while_posts_are_in_flight(backend: Store, receiver: Receiver) -> None:
    clock = a_clock()
    duty = Deliver(TERMS, clock)
    assert duty.next_due(clock.now()) == -math.inf  # due at once when made
    assert duty.run(backend, clock.now()) == 0
    assert duty.next_due(clock.now()) == clock.now() + TERMS.poll_s
    backend.add_webhook("ops", receiver.url, SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    clock.advance(TERMS.poll_s)
    assert duty.run(backend, clock.now()) == 1
    assert duty.next_due(clock.now()) < clock.now() + TERMS.poll_s  # posting: looks again soon
    assert duty.join(JOIN_S)
    assert duty.run(backend, clock.now()) == 1  # recorded
    assert duty.next_due(clock.now()) == clock.now() + TERMS.poll_s
    duty.close()


class Counting:
    """The real store, counting the delivery verbs asked of it."""

    def __init__(self, backend: Store) -> None:
        self.backend = backend
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in ("claim_deliveries", "record_deliveries"):
            self.calls.append(name)
        return getattr(self.backend, name)


def test_while_every_place_is_taken_the_store_is_not_asked_and_a_freed_place_is_filled_at_once(
    backend: Store, receiver: Receiver
) -> None:
    backend.add_webhook("ops", receiver.url, SECRET, ["event.cancelled"])
    for _ in range(3):
        cancelled_event(backend)
    dispatch(backend)
    clock = a_clock()
    store = Counting(backend)
    duty = Deliver(dataclasses.replace(TERMS, max_in_flight=2), clock)
    assert duty.run(store, clock.now()) == 2  # a full claim: more may be due
    assert duty.next_due(clock.now()) == clock.now() + IN_FLIGHT_LOOK_S
    assert duty.join(JOIN_S)
    assert duty.run(store, clock.now()) == 3  # two recorded, and the third claimed at once
    assert store.calls == ["claim_deliveries", "record_deliveries", "claim_deliveries"]
    assert duty.join(JOIN_S)
    clock.advance(IN_FLIGHT_LOOK_S)
    assert duty.run(store, clock.now()) == 1
    assert store.calls[3:] == ["record_deliveries"]  # the last claim was not full: the next is a poll away
    assert duty.next_due(clock.now()) == clock.now() - IN_FLIGHT_LOOK_S + TERMS.poll_s
    assert states(backend) == ["delivered"] * 3
    duty.close()


def test_no_secret_reaches_a_log_line_an_audit_row_or_the_delivery_log(
    backend: Store, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend.add_webhook("ops", receiver.url, SECRET, ["event.cancelled"])
    backend.add_webhook("down", "http://127.0.0.1:9/down", SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    clock = a_clock()
    receiver.refuse(1)
    duty = Deliver(TERMS, clock, rand=lambda: MIDDLE)
    settle(duty, backend, clock)
    clock.advance(5.0)
    settle(duty, backend, clock)
    assert "webhook ops" in caplog.text and "webhook down" in caplog.text
    everything = caplog.text + repr(backend.audit()) + repr(backend.deliveries()) + repr(backend.webhooks())
    assert SECRET not in everything
    assert receiver.url not in caplog.text and "/down" not in caplog.text  # URLs may carry a receiver's token
    duty.close()


def test_the_leading_controller_delivers(backend: Store, receiver: Receiver) -> None:
    backend.add_webhook("ops", receiver.url, SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    clock = a_clock()
    config = ControllerConfig.from_settings(default_settings(), webhook_poll_s=1.0)
    controller = Controller(backend, config, clock=clock)
    controller.step()
    deliver = next(d for d in controller.duties if isinstance(d, Deliver))
    assert deliver.join(JOIN_S)
    clock.advance(config.webhook_poll_s)
    controller.step()
    assert states(backend) == ["delivered"] and len(receiver.delivered()) == 1
    controller.close()
