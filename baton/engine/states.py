"""State machines as tables, and the pure rules that pick the next state.

Every task change the backend makes is one of the moves in :data:`TASK_MOVES`; the SQL
guards each move with ``WHERE state = <from>``, so an illegal move changes nothing and is
reported, never silently applied.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum

from baton.errors import BatonError
from baton.graphs.model import RetryPolicy


class TaskState(StrEnum):
    PENDING = "pending"  # waiting for upstream tasks
    READY = "ready"  # may be claimed (from available_at on)
    RUNNING = "running"  # claimed under a lease by one worker, for one attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"  # can never run: something it needs failed
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED})
UNFINISHED = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED})

T = TaskState
FALLBACK_DELAY_S = 300.0  # a retry delay that is not a finite number is taken as this
LONGEST_DELAY_S = 30 * 86_400.0  # no retry waits longer (graphs cannot ask for more)
TASK_MOVES: frozenset[tuple[TaskState, TaskState]] = frozenset(
    {
        (T.PENDING, T.READY),
        (T.PENDING, T.UPSTREAM_FAILED),
        (T.PENDING, T.CANCELLED),
        (T.READY, T.RUNNING),
        (T.READY, T.CANCELLED),
        (T.RUNNING, T.SUCCEEDED),
        (T.RUNNING, T.FAILED),
        (T.RUNNING, T.CANCELLED),
        (T.RUNNING, T.READY),  # a retry after backoff, or released by a worker shutting down
        (T.FAILED, T.PENDING),
        (T.UPSTREAM_FAILED, T.PENDING),
        (T.CANCELLED, T.PENDING),  # rerun
        (T.FAILED, T.READY),
        (T.UPSTREAM_FAILED, T.READY),
        (T.CANCELLED, T.READY),  # rerun, deps met
        (T.SUCCEEDED, T.READY),  # only a discovery re-run (store.rerun): it may list new partitions
    }
)


class EventState(StrEnum):
    SUBMITTED = "submitted"  # accepted and durable; not yet expanded into tasks
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (EventState.SUCCEEDED, EventState.FAILED, EventState.CANCELLED)


E = EventState
EVENT_MOVES: frozenset[tuple[EventState, EventState]] = frozenset(
    {
        (E.SUBMITTED, E.RUNNING),
        (E.SUBMITTED, E.CANCELLED),
        (E.SUBMITTED, E.FAILED),
        (E.RUNNING, E.SUCCEEDED),
        (E.RUNNING, E.FAILED),
        (E.RUNNING, E.CANCELLED),
        (E.FAILED, E.RUNNING),
        (E.CANCELLED, E.RUNNING),  # rerun
    }
)


class IllegalMove(BatonError):
    """A state change outside the tables: a bug, never an input error."""


def check_task_move(old: TaskState, new: TaskState) -> None:
    if (old, new) not in TASK_MOVES:
        raise IllegalMove(f"task cannot move from {old} to {new}")


def check_event_move(old: EventState, new: EventState) -> None:
    if (old, new) not in EVENT_MOVES:
        raise IllegalMove(f"event cannot move from {old} to {new}")


class Outcome(StrEnum):
    """How one attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the task raised or the command exited non-zero
    TIMEOUT = "timeout"  # killed at its timeout
    CRASHED = "crashed"  # the process running it died (signal, segfault, OOM)
    LOST = "lost"  # the lease expired: the worker died or lost contact (cause worker_lost)
    INVALID_RESULT = "invalid_result"  # not JSON, or over the size cap; retrying cannot help
    CANCELLED = "cancelled"  # stopped because the event was cancelled
    RELEASED = "released"  # handed back by a worker shutting down; does not count


NOT_RETRYABLE = frozenset({Outcome.INVALID_RESULT})
FAILURES = frozenset({Outcome.FAILED, Outcome.TIMEOUT, Outcome.CRASHED, Outcome.LOST, Outcome.INVALID_RESULT})


@dataclass(frozen=True)
class Decision:
    """What becomes of a task after an attempt ended."""

    state: TaskState
    delay_s: float = 0.0
    counts_as_failure: bool = False
    reason: str = ""


def decide(
    outcome: Outcome,
    policy: RetryPolicy,
    failures_before: int,
    cancel_requested: bool,
    rng: random.Random | None = None,
) -> Decision:
    """The next state of a task whose attempt ended with ``outcome``.

    ``failures_before`` counts failed attempts since the task was last (re)started; a lost
    lease counts like any other failure, so a task that kills its workers ends ``failed``
    instead of looping.
    """
    if outcome is Outcome.SUCCEEDED:
        return Decision(TaskState.SUCCEEDED)
    if outcome is Outcome.CANCELLED or cancel_requested:
        return Decision(TaskState.CANCELLED, counts_as_failure=outcome in FAILURES, reason="event cancelled")
    if outcome is Outcome.RELEASED:
        return Decision(TaskState.READY, reason="released by a stopping worker")
    failures = failures_before + 1
    if outcome in NOT_RETRYABLE:
        return Decision(TaskState.FAILED, counts_as_failure=True, reason=f"{outcome} is not retryable")
    if failures > policy.retries:
        why = f"{outcome}; no retries left ({failures} failed attempt{'s' if failures > 1 else ''})"
        return Decision(TaskState.FAILED, counts_as_failure=True, reason=why)
    delay = backoff_s(policy, failures, rng or random.Random())
    why = f"{outcome}; retry {failures} of {policy.retries} in {delay:.2f}s"
    return Decision(TaskState.READY, delay_s=delay, counts_as_failure=True, reason=why)


def backoff_s(policy: RetryPolicy, failures: int, rng: random.Random) -> float:
    """Exponential backoff with a little positive jitter so retries do not stampede."""
    try:
        base = min(policy.delay_s * policy.backoff ** (failures - 1), policy.max_delay_s)
        delay = base * (1 + policy.jitter * rng.random())
    except OverflowError:  # a policy stored by a release with laxer ranges
        delay = policy.max_delay_s
    if math.isfinite(delay) and delay >= 0:
        return min(delay, LONGEST_DELAY_S)
    cap = policy.max_delay_s
    return cap if math.isfinite(cap) and cap >= 0 else FALLBACK_DELAY_S
