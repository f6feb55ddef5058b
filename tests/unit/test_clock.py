"""The clock seam and the one backoff policy that every retry loop uses."""

from __future__ import annotations

import itertools
import threading

import pytest

from baton.client import api, worker_link
from baton.clock import Backoff, FakeClock, SystemClock
from baton.store import postgres, retry


def test_a_fake_clock_moves_only_when_told_or_when_a_wait_is_not_woken() -> None:
    clock = FakeClock(start=10.0, wall_start=1_000.0)
    assert (clock.now(), clock.wall()) == (10.0, 1_000.0)
    clock.advance(2.5)
    assert (clock.now(), clock.wall()) == (12.5, 1_002.5)
    stop = threading.Event()
    assert clock.wait(3.0, stop.wait) is False  # nothing woke it: the whole wait passed
    assert clock.now() == 15.5
    stop.set()
    assert clock.wait(3.0, stop.wait) is True  # woken at once: no time passed
    assert clock.now() == 15.5
    assert clock.wait(-1.0) is False  # a wait already over
    assert clock.now() == 15.5 and clock.waits == [3.0, 3.0, 0.0]
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)


def test_the_system_clock_waits_on_what_it_is_given() -> None:
    stop = threading.Event()
    stop.set()
    clock = SystemClock()
    before = clock.now()
    assert clock.wait(30.0, stop.wait) is True  # set already: returns at once
    assert clock.now() - before < 5.0


def test_pauses_double_from_the_first_up_to_the_cap() -> None:
    pauses = Backoff(first_s=0.1, max_s=1.0).delays()
    assert [round(p, 6) for p in itertools.islice(pauses, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_jitter_scales_each_pause_within_its_fraction() -> None:
    backoff = Backoff(first_s=1.0, max_s=1.0, jitter=0.5)
    assert next(backoff.delays(rand=lambda: 0.0)) == 0.5
    assert next(backoff.delays(rand=lambda: 0.5)) == 1.0
    assert next(backoff.delays(rand=lambda: 0.999)) == pytest.approx(1.499)


def test_the_pauses_end_after_the_tries() -> None:
    assert list(Backoff(first_s=0.2, max_s=2.0, tries=3).delays()) == [0.2, 0.4, 0.8]
    assert list(Backoff(first_s=0.2, max_s=2.0, tries=0).delays()) == []


def test_the_pauses_end_before_one_would_end_past_the_time_limit() -> None:
    clock = FakeClock()
    backoff = Backoff(first_s=1.0, max_s=8.0, within_s=10.0)
    taken = []
    for pause in backoff.delays(clock):  # each try fails at once; the loop sleeps on the clock
        taken.append(pause)
        clock.wait(pause)
    assert taken == [1.0, 2.0, 4.0]  # 7 s in; a pause of 8 would end at 15 s, past 10
    clock.advance(100)
    started = backoff.delays(clock)  # the limit counts from the call, not from the first pause
    clock.advance(9.5)
    assert list(started) == []
    assert list(Backoff(first_s=0.05, max_s=2.0, within_s=0.0).delays(clock)) == []  # reconnect_s = 0: no retry


@pytest.mark.parametrize(
    ("first_s", "max_s", "jitter", "tries", "within_s"),
    [(0, 1, 0, None, None), (2, 1, 0, None, None), (1, 1, 1.0, None, None), (1, 1, 0, -1, None), (1, 1, 0, None, -1)],
)
def test_a_backoff_that_cannot_work_is_refused(
    first_s: float, max_s: float, jitter: float, tries: int | None, within_s: float | None
) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(first_s=first_s, max_s=max_s, jitter=jitter, tries=tries, within_s=within_s)


def test_each_retry_loop_keeps_its_numbers() -> None:
    # The four loops' policies, as they were when each was written by hand; the limit of each
    # (the store's reconnect_s, the link's retry_s, the client's retries) is given where it is used.
    policies = {
        "store verbs": retry.BACKOFF,
        "worker link": worker_link.BACKOFF,
        "client": api.BACKOFF,
        "listen": postgres.LISTEN_BACKOFF,
    }
    assert policies == {
        "store verbs": Backoff(first_s=0.05, max_s=2.0, jitter=0.5),
        "worker link": Backoff(first_s=0.05, max_s=1.0),
        "client": Backoff(first_s=0.2, max_s=2.0),
        "listen": Backoff(first_s=0.1, max_s=5.0),
    }
