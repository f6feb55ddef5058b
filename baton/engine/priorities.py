"""Priorities, fairness and ageing: the order of the ready queue, as pure rules.

A claim takes ready tasks in the order of :func:`queue_key`, lowest key first:

1. **priority**, highest first. A task's priority is its node's ``priority`` plus its event's
   (:func:`task_priority`), fixed when the event is planned, then raised by ageing;
2. **turn**, lowest first: fair queueing among tasks of one priority (below);
3. **stage**, deepest first: among tasks of one turn, a task further down the graph goes before
   one nearer a root, so a partition that has started finishes before new ones start;
4. **available_at**, then **id**: the oldest first.

**Fairness (start-time fair queueing).** Each event's tasks get turns when it is planned: a
partition's tasks get ``start + ordinal`` (the partition's place in the event's partition list),
an unpartitioned task gets ``start``. ``start`` is just after the turn being served at the
task's priority when the event is planned: the turn of the head of that priority's ready queue,
or, if none is ready there, the highest turn running at it; 0 when neither
(:func:`start_turn`). So a small event submitted after a 10,000-partition one alternates with
the big one's remaining partitions instead of queueing behind all of them, and new events cannot
starve the big one: each starts after the turn being served, so every new event moves that turn
on, and the big event's next partition is served within one turn (a turn holds one partition
of each event waiting in it). Every partition's tasks share a turn, so the downstream tasks of a partition
that has started come before the roots of partitions with later turns (depth first still holds).

**Ageing.** Every ``ageing_step_s`` the controller raises by 1 the priority of ready tasks that
have waited a full step since they became claimable and since they were last raised, when their
priority is below the head of the queue's (:func:`ages`). A raised task joins the head's line at
its place in its own priority's line (:func:`aged_turn`): the first in line gets the head's turn,
the others keep their order behind it, interleaved with the tasks already there as a new event's
would be. A task is never raised above the highest priority waiting (the cap), so tasks of the
top priority never age: ageing cannot undo fairness among them. Hence the bound
(:func:`ageing_bound_steps`): a task of priority ``p`` first in its line behind a continuous
stream of priority ``P > p`` is raised to ``P`` within ``P - p`` full steps, at the head's turn,
where the stream's new events (which start after the head's turn) cannot pass it; one more step
covers the phase of the controller's round, so it starts within ``(P - p + 1) * ageing_step_s``
plus the time for a slot to free. The tasks behind it in its line follow in their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from baton.graphs.model import MAX_EVENT_PRIORITY, MIN_EVENT_PRIORITY

TASK_PRIORITY_BOUND = 2**31 - 1  # a task's priority fits a 32-bit INTEGER (ageing never passes the highest waiting)


def event_priority_problem(priority: object) -> str | None:
    """Why ``priority`` is not a valid event priority, or None."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        return f"an event's priority is a whole number from {MIN_EVENT_PRIORITY} to {MAX_EVENT_PRIORITY}"
    if not MIN_EVENT_PRIORITY <= priority <= MAX_EVENT_PRIORITY:
        return (f"an event's priority is from {MIN_EVENT_PRIORITY} to {MAX_EVENT_PRIORITY} (higher runs first), "
                f"not {priority}")  # fmt: skip
    return None


def task_priority(node_priority: int, event_priority: int) -> int:
    """A task's priority when its event is planned: its node's plus its event's, kept inside the
    column's range (a node may declare any 32-bit priority, and the event's may push it past).
    A node priority outside that range (the graph language refuses one) is left as it is, for
    the store to refuse: the event then fails with the cause, as any plan the store cannot hold."""
    total = node_priority + event_priority
    if not -TASK_PRIORITY_BOUND <= node_priority <= TASK_PRIORITY_BOUND:
        return total
    return max(-TASK_PRIORITY_BOUND, min(TASK_PRIORITY_BOUND, total))


class QueueKey(NamedTuple):
    """Where a ready task stands in the claim's queue (lowest first); the store's index and every
    query that walks the queue in order say the same (``baton.store.claims.READY_ORDER``)."""

    neg_priority: int
    turn: int
    neg_stage: int
    available_at: float
    id: int


def queue_key(priority: int, turn: int, stage: int, available_at: float, task_id: int) -> QueueKey:
    return QueueKey(-priority, turn, -stage, available_at, task_id)


def start_turn(head_turn: int | None, running_turn: int | None) -> int:
    """The first turn of a new event's tasks at one priority: just after the turn at the head of
    that priority's ready queue; if none is ready, just after the highest turn running at it;
    else 0. Just after, not at: a new event never ties with the head, so each new event moves
    the turn being served on, and a stream of new events cannot hold it still."""
    if head_turn is not None:
        return head_turn + 1
    if running_turn is not None:
        return running_turn + 1
    return 0


def turn(start: int, ordinal: int) -> int:
    """A task's turn: its event's start at its priority plus its partition's ordinal (0 for an
    unpartitioned task)."""
    return start + ordinal


def ages(priority: int, head_priority: int, waited_s: float, since_raised_s: float | None, step_s: float) -> bool:
    """Whether ageing raises a ready task now: it has waited a full step since it became
    claimable and since it was last raised, and its priority is below the head's."""
    full = waited_s >= step_s and (since_raised_s is None or since_raised_s >= step_s)
    return full and priority < head_priority


def aged_turn(turn_now: int, level_head_turn: int, head_turn: int) -> int:
    """A raised task's turn: it joins the line of the queue's head at its place in its own
    priority's line (``turn_now - level_head_turn``), so the first in that line gets the head's
    turn, and the others keep their order behind it, interleaved as a new event's would be."""
    return head_turn + (turn_now - level_head_turn)


def ageing_bound_steps(low: int, high: int) -> int:
    """How many ageing steps at most before a task of priority ``low`` behind a continuous stream
    of priority ``high`` stands at the head of the queue (then it starts when a slot frees)."""
    return max(0, high - low) + 1


def ordinals(partitions: Sequence[str]) -> dict[str, int]:
    """Each partition's ordinal: its place in the event's partition list."""
    return {p: i for i, p in enumerate(partitions)}
