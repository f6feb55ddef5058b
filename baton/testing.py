"""Invariant checks over a whole store, for tests (and for operators who suspect a bug).

:func:`check_invariants` recomputes from the task rows what the engine keeps incrementally
(active counts, per-node remaining counts and counts by state, wait counters) and returns every disagreement. On a
store with the move journal (``store.debug.record_moves()``, which the test suite installs on
every store it makes) it also walks each task's recorded path and checks every step
against :data:`baton.engine.states.TASK_MOVES`, so an illegal move made by the SQL fails the suite. And
only running attempts may have live logs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise

from baton.engine.planner import awaiting, unsatisfied_edges
from baton.engine.states import TASK_MOVES, TERMINAL, EventState, TaskState
from baton.store.journal import DELETED
from baton.store.protocol import ReadStore, Store
from baton.store.records import Move, TaskRecord

FIRST_STATES = frozenset({TaskState.PENDING, TaskState.READY})  # what a plan creates tasks in


def check_invariants(store: Store) -> list[str]:
    """Every broken invariant, as a sentence; an empty list means the store is consistent."""
    problems: list[str] = []
    tasks: list[TaskRecord] = []
    for event in store.events(limit=1_000_000):
        if event.state is EventState.SUBMITTED:
            continue
        if event.started_at is None:  # refused before it was expanded (cannot plan)
            problems += _unexpanded_problems(store, event.id, event.state, event.error)
            continue
        event_tasks = store.tasks(event.id)
        tasks += event_tasks
        problems += _event_problems(store, event.id, event.state, event.tasks_active, event.graph_id, event_tasks)
    moves = store.debug.recorded_moves()
    if moves is not None:
        problems += path_problems(tasks, moves)
    problems += [
        f"task {t}'s parked mark disagrees with its state, its concurrency key or rate limit, or the pauses"
        for t in store.debug.stray_parked()
    ]
    return problems + live_log_problems(store)


def live_log_problems(store: Store) -> list[str]:
    """Only running attempts have live logs: the transaction that ends an attempt deletes its."""
    stray = store.debug.live_log_orphans()
    return [f"task {r.task_id} attempt {r.attempt} is not running but has a live {r.stream} log" for r in stray]


def path_problems(tasks: Iterable[TaskRecord], moves: Iterable[Move]) -> list[str]:
    """Each task's journalled path must start where a plan starts tasks, take only legal moves
    (a new attempt exactly when it is claimed) and end in the state the task is in now."""
    paths: dict[int, list[Move]] = defaultdict(list)
    for move in moves:
        paths[move.task_id].append(move)
    problems = []
    for task in tasks:
        path = paths.pop(task.id, [])
        problems += _path_problems(task, path)
    for task_id, path in sorted(paths.items()):
        last = path[-1]
        if last.to_state != DELETED:
            problems.append(f"task {task_id} has moves but no row")
        elif last.from_state is None or TaskState(last.from_state) not in TERMINAL:
            problems.append(f"task {task_id} was deleted while {last.from_state}")
    return problems


def _path_problems(task: TaskRecord, path: list[Move]) -> list[str]:
    name = f"task {task.id} {task.node}[{task.partition}]"
    if not path or path[0].from_state is not None:
        return [f"{name}: its creation was not journalled"]
    first, problems = path[0], []
    if TaskState(first.to_state) not in FIRST_STATES or first.to_attempt != 0:
        problems.append(f"{name} was created {first.to_state} at attempt {first.to_attempt}")
    for before, move in pairwise(path):
        step = f"{move.from_state} -> {move.to_state}"
        if move.from_state != before.to_state or move.from_attempt != before.to_attempt:
            problems.append(f"{name}: move {step} does not start where the last one ended ({before.to_state})")
        if (move.from_state, move.to_state) not in TASK_MOVES:
            problems.append(f"{name}: illegal move {step} (not in states.TASK_MOVES)")
        claimed = (move.from_state, move.to_state) == (TaskState.READY, TaskState.RUNNING)
        if move.to_attempt != (move.from_attempt or 0) + claimed:  # a new attempt exactly when claimed
            problems.append(f"{name}: move {step} took attempt {move.from_attempt} to {move.to_attempt}")
    last = path[-1]
    if (last.to_state, last.to_attempt) != (task.state.value, task.attempt):
        problems.append(f"{name} is {task.state} at attempt {task.attempt}, its path ends {last.to_state}")
    return problems


def _unexpanded_problems(store: ReadStore, event_id: int, state: EventState, error: str | None) -> list[str]:
    """An event that ended before the controller expanded it: it failed to expand (and says
    why), or was cancelled while it waited (``cancel`` of a submitted event)."""
    problems = []
    if not ((state is EventState.FAILED and error) or state is EventState.CANCELLED):
        problems.append(f"event {event_id} was never expanded but is {state} (error {error!r})")
    if store.tasks(event_id, limit=1):
        problems.append(f"event {event_id} was never expanded but has tasks")
    return problems


def _event_problems(
    store: ReadStore, event_id: int, state: EventState, active: int, graph_id: int, tasks: list[TaskRecord]
) -> list[str]:
    graph = store.graph_of(graph_id)
    problems = []
    unfinished = sum(1 for t in tasks if t.state not in TERMINAL)
    if unfinished != active:
        problems.append(f"event {event_id}: tasks_active is {active} but {unfinished} tasks are not final")
    if state.terminal and unfinished:
        problems.append(f"event {event_id} is {state} with {unfinished} unfinished tasks")
    if state is EventState.SUCCEEDED and any(t.state is not TaskState.SUCCEEDED for t in tasks):
        problems.append(f"event {event_id} succeeded but not every task did")
    succeeded = {(t.node, t.partition) for t in tasks if t.state is TaskState.SUCCEEDED}
    not_done: dict[str, int] = defaultdict(int)
    for t in tasks:
        not_done[t.node] += t.state is not TaskState.SUCCEEDED
    remaining = {p.node: p.remaining for p in store.node_progress(event_id)}
    for node in graph.nodes:
        if remaining.get(node.name) != not_done[node.name]:
            problems.append(
                f"event {event_id} node {node.name}: remaining {remaining.get(node.name)} "
                f"but {not_done[node.name]} tasks have not succeeded"
            )
    counted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in tasks:
        counted[t.node][t.state.value] += 1
    kept, counted = store.node_counts(event_id), {node: dict(states) for node, states in counted.items()}
    if kept != counted:
        problems.append(f"event {event_id}: the kept counts by node and state {kept} are not the tasks' {counted}")
    complete = {n for n, r in remaining.items() if r == 0} - awaiting(graph, succeeded)
    # a task that succeeded had its edges met then; a discovery re-run since (and the nodes it
    # plans) may be incomplete again, and its earlier partitions' tasks stay succeeded
    rediscovered = {d for d in graph.discoveries if (d, "") not in succeeded}
    was_complete = complete | rediscovered | awaiting(graph, succeeded)
    was_succeeded = succeeded | {(d, "") for d in rediscovered}
    for t in tasks:
        expected = unsatisfied_edges(graph, t.node, t.partition, succeeded, complete)
        if t.state is TaskState.SUCCEEDED:
            expected = unsatisfied_edges(graph, t.node, t.partition, was_succeeded, was_complete)
        if t.state is TaskState.PENDING and t.pending != expected:
            problems.append(f"task {t.id} {t.node}[{t.partition}]: pending {t.pending}, expected {expected}")
        if t.state in (TaskState.READY, TaskState.RUNNING, TaskState.SUCCEEDED) and expected:
            problems.append(f"task {t.id} {t.node}[{t.partition}] is {t.state} with {expected} unmet dependencies")
        if (t.state is TaskState.RUNNING) != (t.worker_id is not None):
            problems.append(f"task {t.id} is {t.state} with worker {t.worker_id}")
    return problems
