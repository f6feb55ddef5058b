"""A graph whose partitions come from a discovery task, and driving it in-process
(tests/integration/test_dynamic_partitions.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from limited import claim, start

from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.store.protocol import Store
from baton.store.records import Claim, Report


def branches(cap: int = 10_000, retries: int = 0, key: str | None = None) -> Graph:
    """``discover`` lists the branches; ``fetch`` then ``build`` per branch (dynamic, same edge);
    ``summary`` waits for every build (a fan-in); ``notes`` waits for the discovery alone."""
    g = GraphBuilder("branches", defaults={"retries": retries, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.python("discover", "m:f")
    fetch: dict[str, Any] = {"concurrency": {"key": key, "limit": 2}} if key else {}
    g.python("fetch", "m:f", after=["discover"], partitions_from="discover", max_partitions=cap, **fetch)
    g.python("build", "m:f", after=["fetch"], partitions_from="discover")
    g.python("summary", "m:f", after=["build"])
    g.python("notes", "m:f", after=["discover"])
    return g.build()


def succeed(claimed: Claim, result: Any = None) -> Report:
    now = time.time()
    return Report(claimed.task_id, claimed.attempt, Outcome.SUCCEEDED, now, now, result_json=json.dumps(result))


def discover(backend: Store, graph: Graph, result: Any) -> int:
    """Start an event and run its discovery, which returns ``result``; the event's id."""
    event_id = start(backend, graph)
    (found,) = claim(backend, slots=1)
    assert found.node == "discover"
    backend.report("w1", [succeed(found, result)])
    return event_id


def run_out(backend: Store, running: tuple[Claim, ...] = ()) -> list[tuple[str, str]]:
    """Succeed the ``running`` claims, then claim and succeed until nothing is claimable; the
    (node, partition) of what ran after them, in order."""
    ran: list[tuple[str, str]] = []
    reports = tuple(succeed(c) for c in running)
    while True:
        got = claim(backend, slots=64, reports=reports)
        reports = tuple(succeed(c) for c in got)
        ran += [(c.node, c.partition) for c in got]
        if not got:
            return ran
