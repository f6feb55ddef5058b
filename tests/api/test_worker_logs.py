"""``POST /worker/v1/logs`` against a real server on both backends, through the HTTP link a
remote worker uses: live log chunks are fenced by the token's own worker and by offset, answered
in order, and cut into requests under the server's body cap."""

from __future__ import annotations

import uuid
from pathlib import Path

from relay import Relay, body_of
from serving import Served, mint

from baton.access import Role
from baton.client.session import Session
from baton.client.worker_link import HttpLink
from baton.controller.loop import Controller
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, LogTail, WorkerInfo


def test_live_logs_travel_in_requests_under_the_cap_and_are_fenced_like_reports(backend: Store, tmp_path: Path) -> None:
    """Eight tails of 240 kB of JSON each (40,000 'é', escaped to six bytes apiece) against a
    1 MiB cap: several requests, each under the cap, every tail appended once, in order."""
    cap = 1024 * 1024
    g = GraphBuilder("tails").param("parts", "list", default=[f"p{i}" for i in range(4)]).partitions(param="parts")
    graph = g.python("x", "m:f", partitioned=True).build()
    backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
    Controller(backend).expand()
    server = Served(backend.url, tmp_path, env={"BATON_MAX_WORKER_REQUEST_BYTES": str(cap)}).start()
    relay = Relay(server.port).start()
    token = mint(backend, Role.WORKER)
    link, other = HttpLink(Session(relay.url, token)), HttpLink(Session(server.url, mint(backend, Role.WORKER)))
    worker_id = f"w-{uuid.uuid4().hex[:6]}"
    try:
        for each in (link, other):
            each.register_worker(WorkerInfo(worker_id, "w", "h", 1, {"slots": 4}, frozenset()))
        claims = link.claim(ClaimRequest(worker_id, {"slots": 4}, frozenset(), 4, 30.0)).claims
        assert len(claims) == 4
        text = "é" * 40_000
        tails = [LogTail(c.task_id, c.attempt, s, 0, text) for c in claims for s in ("stdout", "stderr")]
        assert link.append_logs(worker_id, tails) == [len(text)] * len(tails)
        assert link.append_logs(worker_id, tails[:1]) == [len(text)]  # sent again: appended once
        first = claims[0]
        more = LogTail(first.task_id, first.attempt, "stdout", len(text), "next\n")
        # the same worker id under another token is another worker: its tail is dropped
        assert other.append_logs(worker_id, [more]) == [None]
        assert link.append_logs(worker_id, [more, LogTail(first.task_id, first.attempt + 1, "stdout", 0, "x")]) == [
            len(text) + 5,
            None,
        ]
    finally:
        other.deregister_worker(worker_id)
        link.deregister_worker(worker_id)
        relay.stop()
        server.stop()
    carrying = [e for e in relay.tally.exchanges if e.path == "/worker/v1/logs"]
    sizes = [len(body_of(e.request)) for e in carrying if b'"text":"\\u00e9' in e.request]
    assert len(sizes) >= 2 and max(sizes) <= cap, sizes
    assert all(e.status == 200 for e in carrying)
    for c in claims:
        chunk = backend.attempt_log(c.task_id, c.attempt, "stderr")
        assert chunk.live and chunk.text == text
    assert backend.attempt_log(first.task_id, first.attempt).text == text + "next\n"
