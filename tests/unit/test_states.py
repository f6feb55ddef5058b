"""State tables and the retry decision."""

from __future__ import annotations

import random

import pytest

from baton.engine.states import (
    EVENT_MOVES,
    TASK_MOVES,
    EventState,
    IllegalMove,
    Outcome,
    TaskState,
    backoff_s,
    check_event_move,
    check_task_move,
    decide,
)
from baton.graphs.model import RetryPolicy

T = TaskState
E = EventState
POLICY = RetryPolicy(retries=3, delay_s=2.0, backoff=2.0, max_delay_s=300.0, jitter=0.1)


# --- tables -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (T.PENDING, T.READY),
        (T.PENDING, T.UPSTREAM_FAILED),
        (T.PENDING, T.CANCELLED),
        (T.READY, T.RUNNING),
        (T.READY, T.CANCELLED),
        (T.RUNNING, T.SUCCEEDED),
        (T.RUNNING, T.FAILED),
        (T.RUNNING, T.CANCELLED),
        (T.RUNNING, T.READY),
        (T.FAILED, T.PENDING),
        (T.FAILED, T.READY),
        (T.UPSTREAM_FAILED, T.PENDING),
        (T.CANCELLED, T.READY),
    ],
)
def test_legal_task_moves(old: TaskState, new: TaskState) -> None:
    assert (old, new) in TASK_MOVES
    check_task_move(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (T.SUCCEEDED, T.RUNNING),
        (T.SUCCEEDED, T.FAILED),
        (T.SUCCEEDED, T.PENDING),
        (T.PENDING, T.RUNNING),
        (T.PENDING, T.SUCCEEDED),
        (T.READY, T.SUCCEEDED),
        (T.FAILED, T.RUNNING),
        (T.RUNNING, T.PENDING),
        (T.RUNNING, T.RUNNING),
    ],
)
def test_illegal_task_moves_raise(old: TaskState, new: TaskState) -> None:
    with pytest.raises(IllegalMove, match=f"from {old} to {new}"):
        check_task_move(old, new)


def test_succeeded_is_final_but_for_a_discovery_run_again() -> None:
    # (baton.store.rerun: the discovery of dynamic partitions named by a re-run, its upstream done)
    assert [new for old, new in TASK_MOVES if old is T.SUCCEEDED] == [T.READY]


def test_only_running_tasks_finish() -> None:
    finishing = {old for old, new in TASK_MOVES if new in (T.SUCCEEDED, T.FAILED)}
    assert finishing == {T.RUNNING}


def test_terminal_states() -> None:
    assert {s for s in TaskState if s.terminal} == {
        T.SUCCEEDED,
        T.FAILED,
        T.UPSTREAM_FAILED,
        T.CANCELLED,
    }
    assert {s for s in EventState if s.terminal} == {E.SUCCEEDED, E.FAILED, E.CANCELLED}


def test_event_moves() -> None:
    for move in [(E.SUBMITTED, E.RUNNING), (E.RUNNING, E.SUCCEEDED), (E.FAILED, E.RUNNING)]:
        assert move in EVENT_MOVES
        check_event_move(*move)
    for old, new in [
        (E.SUCCEEDED, E.RUNNING),
        (E.RUNNING, E.SUBMITTED),
        (E.CANCELLED, E.SUCCEEDED),
    ]:
        with pytest.raises(IllegalMove):
            check_event_move(old, new)


# --- decide -------------------------------------------------------------------------------


def test_success() -> None:
    decision = decide(Outcome.SUCCEEDED, POLICY, failures_before=2, cancel_requested=False)
    assert decision.state is T.SUCCEEDED
    assert not decision.counts_as_failure
    assert decision.delay_s == 0


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.TIMEOUT, Outcome.CRASHED, Outcome.LOST])
def test_failure_with_retries_left_is_retried_after_a_delay(outcome: Outcome) -> None:
    decision = decide(outcome, POLICY, failures_before=0, cancel_requested=False, rng=random.Random(1))
    assert decision.state is T.READY
    assert decision.counts_as_failure
    assert POLICY.delay_s <= decision.delay_s < POLICY.delay_s * (1 + POLICY.jitter)
    assert "retry 1 of 3" in decision.reason


def test_delays_grow_over_successive_failures() -> None:
    policy = RetryPolicy(retries=8, delay_s=1.0, backoff=2.0, max_delay_s=1000.0, jitter=0.1)
    rng = random.Random(42)
    delays = [decide(Outcome.FAILED, policy, n, False, rng).delay_s for n in range(8)]
    assert delays == sorted(delays) and len(set(delays)) == len(delays)
    for n, delay in enumerate(delays):
        base = 2.0**n
        assert base <= delay <= base * 1.1


def test_delay_respects_max_delay_times_jitter() -> None:
    policy = RetryPolicy(retries=50, delay_s=1.0, backoff=10.0, max_delay_s=30.0, jitter=0.2)
    rng = random.Random(7)
    delays = [decide(Outcome.FAILED, policy, n, False, rng).delay_s for n in range(2, 50)]
    assert all(30.0 <= d <= 30.0 * 1.2 for d in delays)


def test_jitter_is_positive_and_seeded() -> None:
    policy = RetryPolicy(retries=5, delay_s=10.0, backoff=1.0, max_delay_s=100.0, jitter=0.5)
    first = [backoff_s(policy, 1, random.Random(3)) for _ in range(3)]
    assert len(set(first)) == 1
    spread = {backoff_s(policy, 1, random.Random(seed)) for seed in range(20)}
    assert len(spread) > 1
    assert all(10.0 <= d < 15.0 for d in spread)


def test_no_jitter_gives_exact_backoff() -> None:
    policy = RetryPolicy(retries=5, delay_s=0.5, backoff=3.0, max_delay_s=100.0, jitter=0.0)
    assert [backoff_s(policy, n, random.Random()) for n in (1, 2, 3, 4, 5)] == [
        0.5,
        1.5,
        4.5,
        13.5,
        40.5,
    ]


@pytest.mark.parametrize(("retries", "failures_before"), [(0, 0), (2, 2), (3, 7)])
def test_exhausted_retries_fail(retries: int, failures_before: int) -> None:
    policy = RetryPolicy(retries=retries)
    decision = decide(Outcome.FAILED, policy, failures_before, cancel_requested=False)
    assert decision.state is T.FAILED
    assert decision.counts_as_failure
    assert decision.delay_s == 0
    assert "no retries left" in decision.reason


def test_last_retry_is_still_granted() -> None:
    decision = decide(Outcome.FAILED, RetryPolicy(retries=2), 1, cancel_requested=False)
    assert decision.state is T.READY


def test_invalid_result_is_not_retried() -> None:
    decision = decide(Outcome.INVALID_RESULT, POLICY, failures_before=0, cancel_requested=False)
    assert decision.state is T.FAILED
    assert decision.counts_as_failure
    assert "not retryable" in decision.reason


def test_lost_lease_counts_towards_failure() -> None:
    policy = RetryPolicy(retries=1)
    assert decide(Outcome.LOST, policy, 0, False).state is T.READY
    last = decide(Outcome.LOST, policy, 1, False)
    assert last.state is T.FAILED and last.counts_as_failure


@pytest.mark.parametrize(
    ("outcome", "counts"),
    [
        (Outcome.CANCELLED, False),
        (Outcome.FAILED, True),
        (Outcome.LOST, True),
        (Outcome.RELEASED, False),
    ],
)
def test_cancel_requested_cancels(outcome: Outcome, counts: bool) -> None:
    decision = decide(outcome, POLICY, failures_before=0, cancel_requested=True)
    assert decision.state is T.CANCELLED
    assert decision.counts_as_failure is counts


def test_cancelled_outcome_cancels_without_request() -> None:
    assert decide(Outcome.CANCELLED, POLICY, 0, cancel_requested=False).state is T.CANCELLED


@pytest.mark.parametrize("failures_before", [0, 3, 10])
def test_released_is_ready_again_without_counting(failures_before: int) -> None:
    decision = decide(Outcome.RELEASED, POLICY, failures_before, cancel_requested=False)
    assert decision.state is T.READY
    assert decision.delay_s == 0
    assert not decision.counts_as_failure


def test_every_decision_is_a_legal_move_from_running() -> None:
    for outcome in Outcome:
        for cancel in (False, True):
            for failures_before in (0, 5):
                decision = decide(outcome, POLICY, failures_before, cancel, random.Random(0))
                check_task_move(T.RUNNING, decision.state)


@pytest.mark.parametrize(
    ("delay_s", "backoff", "max_delay_s", "expected"),
    [
        (1.0, 100.0, 300.0, 300.0),  # 100**999 overflows a float: the cap applies
        (float("nan"), 2.0, 60.0, 60.0),  # a policy stored before numbers were checked
        (float("nan"), 2.0, float("nan"), 300.0),
        (1.0, 2.0, float("inf"), 30 * 86_400.0),
    ],
)
def test_a_backoff_is_always_a_finite_delay(
    delay_s: float, backoff: float, max_delay_s: float, expected: float
) -> None:
    policy = RetryPolicy(retries=10_000, delay_s=delay_s, backoff=backoff, max_delay_s=max_delay_s, jitter=0.0)
    decision = decide(Outcome.FAILED, policy, failures_before=999, cancel_requested=False, rng=random.Random(0))
    assert decision.state is T.READY
    assert decision.delay_s == expected
