"""The path check over journalled task moves (pure: no database)."""

from __future__ import annotations

from baton.engine.states import TaskState
from baton.store.journal import Move
from baton.store.records import TaskRecord
from baton.testing import path_problems


def task(state: TaskState, attempt: int, task_id: int = 1) -> TaskRecord:
    return TaskRecord(task_id, 1, "n", "a", state, 0, attempt, 0, None, None, None, None, None, None)


def moves(*steps: tuple[str | None, str, int | None, int]) -> list[Move]:
    return [Move(1, *step) for step in steps]


CREATED = (None, "ready", None, 0)
CLAIMED = ("ready", "running", 0, 1)


def test_a_retried_then_successful_path_is_legal() -> None:
    retried = ("running", "ready", 1, 1), ("ready", "running", 1, 2), ("running", "succeeded", 2, 2)
    path = moves(CREATED, CLAIMED, *retried)
    assert path_problems([task(TaskState.SUCCEEDED, 2)], path) == []


def test_each_kind_of_broken_path_is_named() -> None:
    assert path_problems([task(TaskState.READY, 0)], []) == ["task 1 n[a]: its creation was not journalled"]
    assert "was created running" in path_problems([task(TaskState.RUNNING, 0)], moves((None, "running", None, 0)))[0]
    skipped = path_problems([task(TaskState.SUCCEEDED, 0)], moves(CREATED, ("ready", "succeeded", 0, 0)))
    assert skipped == ["task 1 n[a]: illegal move ready -> succeeded (not in states.TASK_MOVES)"]
    no_new_attempt = path_problems([task(TaskState.RUNNING, 0)], moves(CREATED, ("ready", "running", 0, 0)))
    assert no_new_attempt == ["task 1 n[a]: move ready -> running took attempt 0 to 0"]
    gap = path_problems([task(TaskState.SUCCEEDED, 1)], moves(CREATED, ("running", "succeeded", 1, 1)))
    assert "does not start where the last one ended (ready)" in gap[0]
    stale = path_problems([task(TaskState.FAILED, 1)], moves(CREATED, CLAIMED))
    assert stale == ["task 1 n[a] is failed at attempt 1, its path ends running"]
    assert path_problems([], moves(CREATED)) == ["task 1 has moves but no row"]
