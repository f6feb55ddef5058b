"""Priorities in the store: the turns a new event's tasks start at, and ageing.

The rules are :mod:`baton.engine.priorities`'; this module reads what they need through the
``tasks_ready`` index and writes what they decide:

- :func:`start_turns` (saving a plan): for each priority the new tasks have, the turn being
  served there (the head of that priority's ready queue, else the highest turn running at it);
- :func:`age` (the controller's ageing duty): one bounded UPDATE that raises by 1 the priority
  of ready tasks below the head's that waited a full step, and brings their turn to the head's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from baton.engine.priorities import start_turn
from baton.store.claims import READY_ORDER
from baton.store.tx import Tx, read_one


class TurnRow(NamedTuple):
    turn: int | None


class HeadRow(NamedTuple):
    priority: int
    turn: int


_HEAD_TURN = ("SELECT turn FROM tasks WHERE state = 'ready' AND parked = 0 AND priority = ? "
              "ORDER BY priority DESC, turn LIMIT 1")  # fmt: skip
_RUNNING_TURN = "SELECT MAX(turn) AS turn FROM tasks WHERE state = 'running' AND priority = ?"


def start_turns(tx: Tx, priorities: Iterable[int]) -> dict[int, int]:
    """The first turn of a new event's tasks at each of ``priorities``."""
    out = {}
    for priority in sorted(set(priorities)):
        head = read_one(tx, TurnRow, _HEAD_TURN, (priority,))
        running = None if head is not None else read_one(tx, TurnRow, _RUNNING_TURN, (priority,))
        out[priority] = start_turn(None if head is None else head.turn, None if running is None else running.turn)
    return out


_HEAD = f"SELECT priority, turn FROM tasks WHERE state = 'ready' AND parked = 0 AND available_at <= ? " \
        f"ORDER BY {READY_ORDER} LIMIT 1"  # fmt: skip


def age(tx: Tx, now: float, step_s: float, batch: int, lock: str = "") -> int:
    """Raise by 1 the priority of up to ``batch`` ready tasks (best first) that have been
    claimable for ``step_s`` at ``now`` and not raised for as long, and whose priority is below
    the head of the queue's; their turn becomes at most the head's. How many were raised.
    ``lock``: skip rows other transactions hold (a claim's), rather than wait for them."""
    head = read_one(tx, HeadRow, _HEAD, (now,))
    if head is None:
        return 0
    before = now - step_s
    raised = tx.q(
        "UPDATE tasks SET priority = priority + 1, turn = CASE WHEN turn > ? THEN ? ELSE turn END, aged_at = ? "
        "WHERE id IN (SELECT id FROM tasks t WHERE state = 'ready' AND parked = 0 AND priority < ? "
        f"AND available_at <= ? AND (aged_at IS NULL OR aged_at <= ?) ORDER BY {READY_ORDER} LIMIT ? {lock})",
        (head.turn, head.turn, now, head.priority, before, before, batch),
    ).rowcount
    if raised:
        tx.audit("controller", "task.aged", f"waited {step_s:g}s below priority {head.priority}", tasks=raised,
                 head_priority=head.priority)  # fmt: skip
    return raised
