"""Invariant checks over a whole store, for tests (and for operators who suspect a bug).

:func:`check_invariants` recomputes from the task rows what the engine keeps incrementally
(active counts, per-node remaining counts, wait counters) and returns every disagreement.
"""

from __future__ import annotations

from collections import defaultdict

from baton.backends.sql import SqlBackend
from baton.planner import unsatisfied_edges
from baton.states import TERMINAL, EventState, TaskState


def check_invariants(backend: SqlBackend) -> list[str]:
    """Every broken invariant, as a sentence; an empty list means the store is consistent."""
    problems: list[str] = []
    for event in backend.events(limit=1_000_000):
        if event.state is EventState.SUBMITTED:
            continue
        if event.started_at is None:  # refused before it was expanded (cannot plan)
            problems += _unexpanded_problems(backend, event.id, event.state, event.error)
            continue
        problems += _event_problems(backend, event.id, event.state, event.tasks_active, event.graph_id)
    return problems


def _unexpanded_problems(backend: SqlBackend, event_id: int, state: EventState, error: str | None) -> list[str]:
    problems = []
    if state is not EventState.FAILED or not error:
        problems.append(f"event {event_id} was never expanded but is {state} (error {error!r})")
    if backend.tasks(event_id):
        problems.append(f"event {event_id} was never expanded but has tasks")
    return problems


def _event_problems(backend: SqlBackend, event_id: int, state: EventState, active: int, graph_id: int) -> list[str]:
    graph = backend.graph_of(graph_id)
    tasks = backend.tasks(event_id)
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
    with backend.transaction(write=False) as tx:
        remaining = dict(tx.rows("SELECT node, remaining FROM event_nodes WHERE event_id = ?", (event_id,)))
    for node in graph.nodes:
        if remaining.get(node.name) != not_done[node.name]:
            problems.append(
                f"event {event_id} node {node.name}: remaining {remaining.get(node.name)} "
                f"but {not_done[node.name]} tasks have not succeeded"
            )
    complete = {n for n, r in remaining.items() if r == 0}
    for t in tasks:
        expected = unsatisfied_edges(graph, t.node, t.partition, succeeded, complete)
        if t.state is TaskState.PENDING and t.pending != expected:
            problems.append(f"task {t.id} {t.node}[{t.partition}]: pending {t.pending}, expected {expected}")
        if t.state in (TaskState.READY, TaskState.RUNNING, TaskState.SUCCEEDED) and expected:
            problems.append(f"task {t.id} {t.node}[{t.partition}] is {t.state} with {expected} unmet dependencies")
        if (t.state is TaskState.RUNNING) != (t.worker_id is not None):
            problems.append(f"task {t.id} is {t.state} with worker {t.worker_id}")
    return problems
