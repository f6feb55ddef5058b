"""``/metrics`` with a big store: scrape latency, and what the background read costs.

    python bench/metrics_latency.py --db sqlite:////tmp/metrics/baton.db
    python bench/metrics_latency.py --db postgresql://postgres@127.0.0.1:5432/metrics

Seeds an empty store with a 60,002-task event (the year-end shape at P = 10,000, expanded: 30,000
tasks ready, the rest pending), ``--past-events`` finished events beside it, and runs
``--drive`` of its tasks to their end in this process (so the audit has rows to count). Then:

- times ``metrics_sample`` — the one read the server's metrics thread makes every
  ``metrics_refresh_s`` — for the gauges alone, and counting the audit rows the driven tasks left
  (at most the server's 20,000 per read);
- starts ``baton server`` over the store and times ``--scrapes`` sequential ``GET /metrics``
  (keep-alive, a viewer token) after a warm-up.

Prints one JSON object (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from make_noop_graph import graph_yaml
from serving import Served, mint

from baton.access import Role
from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.params import validate_params
from baton.graphs.spec import load_graph_text
from baton.server.metrics import REFRESH_ROWS
from baton.store import open_store
from baton.store.records import ClaimRequest, Report
from baton.store.sql import SqlStore

STALE_S = 30.0


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def seed(store: SqlStore, partitions: int, past_events: int) -> int:
    graph = store.register_graph(load_graph_text(graph_yaml(partitions), source="bench"))
    if past_events:  # finished events as the store keeps them: their rows and per-node counts, no tasks
        nodes = [n.name for n in store.graph_of(graph.id).nodes]
        now = time.time()
        rows = [(graph.event_type, graph.id, "{}", "succeeded", now - 3600, now - 3600, now - 3500, len(nodes), 0)
                for _ in range(past_events)]  # fmt: skip
        with store.transaction() as tx:
            tx.many(
                "INSERT INTO events (type, graph_id, params, state, submitted_at, started_at, finished_at, "
                "tasks_total, tasks_active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        with store.transaction() as tx:
            tx.many(
                "INSERT INTO event_node_states (event_id, node, state, n) "
                "SELECT id, ?, 'succeeded', 1 FROM events WHERE state = 'succeeded'",
                [(node,) for node in nodes],
            )
    event, _ = store.submit(graph.id, validate_params(store.graph_of(graph.id), {}))
    Controller(store).expand()
    return event.id


def drive(store: SqlStore, tasks: int) -> int:
    """Claim and succeed ``tasks`` tasks, 64 at a time, as a database-connected worker would."""
    done, reports = 0, []
    while done < tasks:
        got = store.claim(
            ClaimRequest("bench", {"slots": 64}, frozenset(), min(64, tasks - done), 30.0, reports)
        ).claims
        if not got:
            break
        now = time.time()
        reports = [Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now, now, result_json="null") for c in got]
        done += len(got)
    store.report("bench", reports)
    return done


def time_reads(store: SqlStore, after: int, through: int, rounds: int) -> dict[str, Any]:
    gauges, counting = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        store.metrics_sample(through, through, REFRESH_ROWS, STALE_S)
        gauges.append(time.perf_counter() - started)
        started = time.perf_counter()
        counted = store.metrics_sample(after, through, REFRESH_ROWS, STALE_S).activity
        counting.append(time.perf_counter() - started)
    rows = counted.through - after
    return {"gauges_read": _ms(gauges), "counting_read": {**_ms(counting), "audit_ids_counted": rows,
            "task_ends": len(counted.queue_wait_s)}}  # fmt: skip


def time_scrapes(store: SqlStore, folder: Path, scrapes: int) -> dict[str, Any]:
    server = Served(store.url, folder).start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {mint(store, Role.VIEWER)}"}) as http:
            deadline = time.monotonic() + 60
            while "baton_metrics_refreshed_timestamp_seconds" not in http.get("/metrics").text:
                assert time.monotonic() < deadline, "the server's first metrics read did not finish in 60 s"
                time.sleep(0.05)
            for _ in range(50):
                http.get("/metrics")
            times, size, series = [], 0, 0
            for _ in range(scrapes):
                started = time.perf_counter()
                answer = http.get("/metrics")
                times.append(time.perf_counter() - started)
                assert answer.status_code == 200
                size = len(answer.content)
                series = sum(1 for line in answer.text.splitlines() if line and not line.startswith("#"))
        return {"scrape": _ms(times), "scrapes": scrapes, "bytes": size, "series": series}
    finally:
        server.stop()


def seed_arguments(parser: argparse.ArgumentParser, past_events: int) -> None:
    """The options of :func:`seeded_store` (shared with bench/api_latency.py)."""
    parser.add_argument("--db", required=True)
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--past-events", type=int, default=past_events)
    parser.add_argument("--drive", type=int, default=20_000, help="tasks run to their end before measuring")


def seeded_store(args: argparse.Namespace) -> tuple[SqlStore, int]:
    """The empty store at ``args.db``, migrated and seeded: the big event's id."""
    store = open_store(args.db)
    assert isinstance(store, SqlStore)
    store.migrate()
    assert not store.events(limit=1), "use an empty store: this script seeds its own"
    event_id = seed(store, args.partitions, args.past_events)
    assert store.event(event_id).tasks_total == 6 * args.partitions + 2, store.event(event_id).error
    return store, event_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    seed_arguments(parser, past_events=100_000)
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    store, _ = seeded_store(args)
    after = store.metrics_sample(None, None, REFRESH_ROWS, STALE_S).audit_id
    driven = drive(store, args.drive)
    through = store.metrics_sample(None, None, REFRESH_ROWS, STALE_S).audit_id
    folder = Path(args.db.removeprefix("sqlite:///")).parent if args.db.startswith("sqlite") else Path("/tmp")
    result = {"db": args.db.split(":")[0], "tasks": 6 * args.partitions + 2, "past_events": args.past_events,
              "driven": driven, **time_reads(store, after, through, args.reads),
              **time_scrapes(store, folder, args.scrapes)}  # fmt: skip
    store.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
