"""Graphs with a concurrency key or to pause, and driving their claims in-process
(tests/integration/test_limits.py and test_pauses.py, tests/api/test_limits_api.py and
test_pauses_api.py)."""

from __future__ import annotations

import json
import time
from typing import cast

from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.store import limits
from baton.store.protocol import Store
from baton.store.records import Claim, ClaimRequest, Report
from baton.store.sql import SqlStore

PARTS = [f"d{i:02}" for i in range(10)]
OVER = -1.0  # a lease that has already run out by the store's clock: the next look expires it


def limited(key: str = "erp", limit: int = 3, parts: list[str] = PARTS, retries: int = 0) -> Graph:
    """``extract`` holds the key; ``free`` holds none; ``load`` waits for both."""
    g = GraphBuilder("limited", defaults={"retries": retries, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("departments", "list", default=parts).partitions(param="departments")
    g.python("extract", "m:f", concurrency={"key": key, "limit": limit})
    g.python("free", "m:f")
    g.python("load", "m:f", after=["extract", "free"])
    return g.build()


def chain(retries: int = 0) -> Graph:
    """``extract`` then ``load``, per department, without keys (tests of pauses)."""
    g = GraphBuilder("paused", defaults={"retries": retries, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("departments", "list", default=PARTS).partitions(param="departments")
    g.python("extract", "m:f")
    g.python("load", "m:f", after=["extract"])
    return g.build()


def sql(backend: Store) -> SqlStore:
    return cast(SqlStore, backend)


def start(backend: Store, graph: Graph) -> int:
    """Register, submit and expand; the event's id."""
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, {}))
    Controller(sql(backend)).expand()
    return event.id


def report(claim: Claim, outcome: Outcome = Outcome.SUCCEEDED) -> Report:
    now = time.time()
    return Report(claim.task_id, claim.attempt, outcome, now, now, result_json=json.dumps(None))


def claim(
    backend: Store, worker: str = "w1", slots: int = 8, lease_s: float = 30.0, reports: tuple[Report, ...] = ()
) -> list[Claim]:
    return backend.claim(ClaimRequest(worker, {"slots": slots}, frozenset(), slots, lease_s, reports)).claims


def key_state(backend: Store, key: str = "erp") -> limits.KeyState:
    with sql(backend).transaction(write=False) as tx:
        (state,) = limits.key_states(tx, [key])
    return state
