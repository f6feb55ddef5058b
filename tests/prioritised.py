"""Graphs and helpers for the priority tests (tests/integration/test_priorities.py,
tests/acceptance/test_priorities_fairness.py): submit with a priority and expand at once, claim
one worker's capacity in-process, read tasks' priorities and turns."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import NamedTuple, cast

from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import Claim, ClaimRequest, Report
from baton.store.sql import SqlStore
from baton.store.tx import read_rows


def wide(name: str = "wide", partitions: int = 10, chained: bool = True) -> Graph:
    """``a`` on every partition, ``b`` after it on the same partition (``chained``)."""
    g = GraphBuilder(name, defaults={"retries": 0})
    g.param("parts", "list", default=[f"p{i:05}" for i in range(partitions)]).partitions(param="parts")
    g.python("a", "m:f")
    if chained:
        g.python("b", "m:f", after=["a"])
    return g.build()


def single(name: str = "single", priority: int = 0) -> Graph:
    g = GraphBuilder(name, defaults={"retries": 0})
    return g.python("only", "m:f", partitioned=False, priority=priority).build()


def raise_event(backend: Store, graph: Graph, priority: int = 0, params: dict | None = None) -> int:
    """Register ``graph``, submit an event of it with ``priority`` and expand it; its id."""
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, params or {}), priority=priority)
    Controller(cast(SqlStore, backend)).expand()
    return event.id


def report(c: Claim, outcome: Outcome = Outcome.SUCCEEDED) -> Report:
    now = time.time()
    return Report(c.task_id, c.attempt, outcome, now, now, result_json=json.dumps(None))


def claim(backend: Store, slots: int = 8, reports: Sequence[Report] = (), worker: str = "w1") -> list[Claim]:
    request = ClaimRequest(worker, {"slots": slots}, frozenset(), slots, 30.0, tuple(reports))
    return backend.claim(request).claims


class TaskRank(NamedTuple):
    event_id: int
    node: str
    partition: str
    priority: int
    turn: int
    aged_at: float | None


def ranks(backend: Store, event_id: int) -> list[TaskRank]:
    with cast(SqlStore, backend).transaction(write=False) as tx:
        sql = ("SELECT event_id, node, partition, priority, turn, aged_at FROM tasks WHERE event_id = ? "
               "ORDER BY id")  # fmt: skip
        return read_rows(tx, TaskRank, sql, (event_id,))
