"""Priorities in the store: the turns a new event's tasks start at, and ageing.

The rules are :mod:`baton.engine.priorities`'; this module reads what they need through the
``tasks_ready`` index and writes what they decide:

- :func:`start_turns` (saving a plan): for each priority the new tasks have, the turn just after
  the one being served there (the head of that priority's ready queue, else the highest turn
  running at it);
- :func:`age` (the controller's ageing duty): a bounded UPDATE per priority below the head's
  that raises by 1 the priority of its ready tasks that waited a full step, and moves them into
  the head's line at their place in their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from baton.engine.priorities import aged_turn, start_turn
from baton.store.claims import READY_ORDER
from baton.store.tx import Tx, read_one, read_rows


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
_LEVELS = ("SELECT DISTINCT priority FROM tasks WHERE state = 'ready' AND parked = 0 AND priority < ? "
           "ORDER BY priority DESC LIMIT ?")  # fmt: skip
MAX_LEVELS = 50  # priorities below the head raised per round (the lower ones at the next round)


class LevelRow(NamedTuple):
    priority: int


def age(tx: Tx, now: float, step_s: float, batch: int, lock: str = "") -> int:
    """Raise by 1 the priority of up to ``batch`` ready tasks that have been claimable for
    ``step_s`` at ``now`` and not raised for as long, and whose priority is below the head of the
    queue's, best first; how many were raised. Each raised task joins the head's line at its
    place in its own priority's (:func:`~baton.engine.priorities.aged_turn`): one UPDATE per
    priority below the head, highest first, so a task is raised once per round. ``lock``: skip
    rows other transactions hold (a claim's), rather than wait for them."""
    head = read_one(tx, HeadRow, _HEAD, (now,))
    if head is None:
        return 0
    before, raised = now - step_s, 0
    levels = [r.priority for r in read_rows(tx, LevelRow, _LEVELS, (head.priority, MAX_LEVELS))]
    for level in levels:
        front = read_one(tx, TurnRow, _HEAD_TURN, (level,))
        if front is None or front.turn is None or raised >= batch:
            break
        shift = aged_turn(0, front.turn, head.turn)  # turn + shift is aged_turn(turn, front.turn, head.turn)
        raised += tx.q(
            "UPDATE tasks SET priority = priority + 1, turn = turn + ?, aged_at = ? WHERE id IN "
            "(SELECT id FROM tasks t WHERE state = 'ready' AND parked = 0 AND priority = ? AND available_at <= ? "
            f"AND (aged_at IS NULL OR aged_at <= ?) ORDER BY {READY_ORDER} LIMIT ? {lock})",
            (shift, now, level, before, before, batch - raised),
        ).rowcount
    if raised:
        tx.audit("controller", "task.aged", f"waited {step_s:g}s below priority {head.priority}", tasks=raised,
                 head_priority=head.priority)  # fmt: skip
    return raised
