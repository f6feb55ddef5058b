"""API latency with a 60,002-task event stored: p50/p99/max of each route the acceptance item names.

    python bench/api_latency.py --db sqlite:////tmp/api/baton.db
    createdb -h 127.0.0.1 -U postgres api_bench
    python bench/api_latency.py --db postgresql://postgres@127.0.0.1:5432/api_bench
    dropdb -h 127.0.0.1 -U postgres api_bench

Seeds an empty store as bench/metrics_latency.py does (the year-end shape at P = 10,000, expanded,
``--drive`` of its tasks run to their end, ``--past-events`` finished events beside it), registers
a one-node graph to submit to, starts ``baton server`` over the store (plain HTTP on 127.0.0.1) and
times ``--requests`` sequential requests per route (keep-alive, a client token) after a warm-up:

- ``event``: ``GET /api/v1/events/{id}`` of the big event;
- ``tasks_page``: ``GET /api/v1/events/{id}/tasks?limit=100``. Each walk in ``WALKS`` (all tasks,
  by node, by state) is first followed from ``next_cursor`` to ``next_cursor`` to its end
  (untimed: the warm-up), then the timed requests ask for pages spread evenly from the first to
  the last, round-robin over the walks, each with the cursor the server handed out for it;
- ``metrics``: ``GET /metrics``, once the server's first metrics read has finished;
- ``submit``: ``POST /api/v1/events`` of the one-node graph, a new ``Idempotency-Key`` each (201);
- ``submit_replay``: the same, with a key already used and the same body (200, replayed).

Prints one JSON object (milliseconds), with each route's threshold and whether its p99 meets it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from metrics_latency import _ms, drive, seed_arguments, seeded_store
from serving import Served, mint

from baton.access import Role
from baton.graphs.spec import load_graph_text

SMALL_GRAPH = 'graph: bench_ping\nnodes:\n  ping: {run: "noop:noop", partitioned: false}\n'
THRESHOLDS_MS = {"event": 20.0, "tasks_page": 50.0, "metrics": 50.0, "submit": 50.0, "submit_replay": 50.0}
WALKS: dict[str, dict[str, str]] = {
    "all": {},
    "node=dept_report": {"node": "dept_report"},
    "node=hq_report": {"node": "hq_report"},
    "state=pending": {"state": "pending"},
    "state=succeeded": {"state": "succeeded"},
    "node=process,state=ready": {"node": "process", "state": "ready"},
}
PAGE = 100


def timed(send: Callable[[int], httpx.Response], requests: int, warmup: int, status: int) -> list[float]:
    """Seconds each of ``requests`` calls of ``send(i)`` took, after ``warmup`` untimed ones."""
    times = []
    for i in range(-warmup, requests):
        started = time.perf_counter()
        answer = send(i)
        elapsed = time.perf_counter() - started
        assert answer.status_code == status, (answer.status_code, answer.text[:500])
        if i >= 0:
            times.append(elapsed)
    return times


def figures(times: list[float], threshold_ms: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {**_ms(times), "count": len(times)}
    if threshold_ms is not None:
        out |= {"threshold_p99_ms": threshold_ms, "pass": out["p99_ms"] <= threshold_ms}
    return out


def cursors(http: httpx.Client, path: str, query: dict[str, str]) -> list[str | None]:
    """Every page's cursor of one walk, following ``next_cursor`` from the first page to the last."""
    found: list[str | None] = [None]
    while True:
        cursor = found[-1]
        page = http.get(path, params={**query, "limit": PAGE, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text[:500]
        if (after := page.json()["next_cursor"]) is None:
            return found
        found.append(after)


def time_pages(http: httpx.Client, event_id: int, requests: int) -> dict[str, Any]:
    path = f"/api/v1/events/{event_id}/tasks"
    walks = {name: cursors(http, path, query) for name, query in WALKS.items()}
    shares = {name: requests // len(WALKS) + (k < requests % len(WALKS)) for k, name in enumerate(WALKS)}
    plan = [(name, walks[name][j * len(walks[name]) // share])  # j-th of a walk's share: spans it evenly
            for j in range(max(shares.values())) for name, share in shares.items() if j < share]  # fmt: skip

    def send(i: int) -> httpx.Response:
        name, cursor = plan[i]
        return http.get(path, params={**WALKS[name], "limit": PAGE, **({"cursor": cursor} if cursor else {})})

    times = timed(send, len(plan), 0, 200)
    by_walk = {name: {**figures([t for t, (n, _) in zip(times, plan, strict=True) if n == name]),
               "pages_in_walk": len(walks[name])} for name in WALKS}  # fmt: skip
    return {**figures(times, THRESHOLDS_MS["tasks_page"]), "walks": by_walk}


def time_routes(http: httpx.Client, event_id: int, requests: int, warmup: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while "baton_metrics_refreshed_timestamp_seconds" not in http.get("/metrics").text:
        assert time.monotonic() < deadline, "the server's first metrics read did not finish in 60 s"
        time.sleep(0.05)
    body = {"type": "bench_ping", "params": {}}
    replayed = f"bench-replay-{uuid.uuid4().hex}"
    assert http.post("/api/v1/events", json=body, headers={"Idempotency-Key": replayed}).status_code == 201
    sends = {
        "event": (lambda i: http.get(f"/api/v1/events/{event_id}"), 200),
        "metrics": (lambda i: http.get("/metrics"), 200),
        "submit": (lambda i: http.post("/api/v1/events", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}),
                   201),
        "submit_replay": (lambda i: http.post("/api/v1/events", json=body, headers={"Idempotency-Key": replayed}),
                          200),
    }  # fmt: skip
    out = {name: figures(timed(send, requests, warmup, status), THRESHOLDS_MS[name])
           for name, (send, status) in sends.items()}  # fmt: skip
    return {"event": out["event"], "tasks_page": time_pages(http, event_id, requests), **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    seed_arguments(parser, past_events=0)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per route")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per route first")
    args = parser.parse_args()
    store, event_id = seeded_store(args)
    tasks = store.event(event_id).tasks_total
    driven = drive(store, args.drive)
    store.register_graph(load_graph_text(SMALL_GRAPH, source="bench"))
    folder = Path(args.db.removeprefix("sqlite:///")).parent if args.db.startswith("sqlite") else Path("/tmp")
    server = Served(store.url, folder).start()
    try:
        with server.client(mint(store, Role.CLIENT)) as http:
            routes = time_routes(http, event_id, args.requests, args.warmup)
    finally:
        server.stop()
        store.close()
    result = {"db": args.db.split(":")[0], "event_id": event_id, "tasks": tasks, "past_events": args.past_events,
              "driven": driven, "routes": routes, "pass": all(r["pass"] for r in routes.values())}  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
