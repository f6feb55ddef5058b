"""The UI's shared views: one computation per key and version, whoever asks and however many at
once; an expensive answer held for its cost; a bounded number of entries."""

from __future__ import annotations

import threading

from baton.server.ui.views import COST_SHARE, TIMELINE_MIN_S, Views, hold_for_cost


def test_an_answer_is_computed_once_per_version() -> None:
    views, calls = Views(), []

    def compute() -> str:
        calls.append(1)
        return f"answer {len(calls)}"

    assert views.get("k", "v1", compute) == "answer 1"
    assert views.get("k", "v1", compute) == "answer 1"
    assert views.get("k", "v2", compute) == "answer 2"
    assert views.get("other", "v2", compute) == "answer 3"
    assert len(calls) == 3 == views.computed


def test_callers_asking_at_once_wait_for_one_computation() -> None:
    views, started, release = Views(), threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        return 42

    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(views.get("k", "v", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    assert started.wait(10)
    release.set()
    for t in threads:
        t.join(10)
    assert answers == [42] * 8 and len(calls) == 1


def test_an_expensive_answer_is_held_for_its_cost_whatever_the_version() -> None:
    now = [100.0]
    views, calls = Views(clock=lambda: now[0]), []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    def held(cost_s: float) -> float:
        return 30.0

    assert views.get("timeline", "v1", compute, hold=held) == 1
    now[0] += 29
    assert views.get("timeline", "v2", compute, hold=held) == 1  # moved, but held
    now[0] += 2
    assert views.get("timeline", "v3", compute, hold=held) == 2  # the hold ended
    assert views.get("timeline", "v3", compute) == 2  # same version: kept
    assert views.get("timeline", "v4", compute, hold=held) == 2  # held again
    assert views.get("timeline", "v4", compute) == 3  # no hold asked (the event ended): its version's


def test_the_hold_keeps_a_costly_answer_to_a_share_of_a_core() -> None:
    assert hold_for_cost(0.001) == TIMELINE_MIN_S
    assert hold_for_cost(0.07) == COST_SHARE * 0.07  # 60,000 tasks on SQLite: 28 s
    assert 0.07 / hold_for_cost(0.07) <= 0.0025


def test_entries_are_bounded_least_recently_used_first_out() -> None:
    views = Views(max_entries=3)
    for key in "abc":
        views.get(key, 1, lambda key=key: key)  # type: ignore[misc]
    views.get("a", 1, lambda: "recomputed")  # touched: now the most recent
    views.get("d", 1, lambda: "d")  # b falls out
    assert views.get("a", 1, lambda: "recomputed") == "a"
    assert views.get("b", 1, lambda: "recomputed") == "recomputed"
