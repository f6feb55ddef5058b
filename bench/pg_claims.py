"""The report-and-claim transaction alone, in one process: CPU, statements and round trips per task.

Plans the ``baton bench`` event (no-op, P partitions) in a fresh database, then plays every
worker at once from this process: claims of ``--batch`` tasks, each carrying the reports (all
succeeded) of the claim before, until the event ends. No executors, no controller loop, no
scheduling noise: what is left is what a worker's transaction costs the client (this process)
and the server (the PostgreSQL backends of this database), per task.

    python bench/pg_claims.py --db postgresql://postgres@127.0.0.1:5432/pgspeed   # a fresh database
    python bench/pg_claims.py --db sqlite:////tmp/pgc/baton.db                    # the same on SQLite

Prints one JSON object. Statements are counted at the driver (psycopg's ``execute`` and each
row of an ``executemany``), round trips as the times the client waits for the server's answers
(psycopg's pipeline fetches that had results pending), so neither needs ``pg_stat_statements``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from baton.bench.run import bench_graph
from baton.controller.duties import Expand
from baton.engine.states import Outcome
from baton.store import open_store
from baton.store.records import Claim, ClaimRequest, Report, WorkerInfo
from baton.store.sql import SqlStore


class Counts:
    def __init__(self) -> None:
        self.statements = 0
        self.calls = 0  # execute or executemany calls (an executemany of n rows is one call)
        self.waits = 0  # round trips: the client waited for answers

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.calls, self.waits


@contextmanager
def counting() -> Iterator[Counts]:
    """Count statements and round trips on psycopg connections (nothing on SQLite)."""
    counts = Counts()
    try:
        from psycopg import _pipeline_base
        from psycopg import cursor as pg_cursor
    except ImportError:
        yield counts
        return
    fetch, execute, executemany = (_pipeline_base.BasePipeline._fetch_gen, pg_cursor.Cursor.execute,
                                   pg_cursor.Cursor.executemany)  # fmt: skip

    def fetch_gen(self: Any, *, flush: bool) -> Any:
        if self.result_queue:  # answers are owed: the client waits for the server
            counts.waits += 1
        return (yield from fetch(self, flush=flush))

    def execute_(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        counts.statements += 1
        counts.calls += 1
        return execute(self, query, params, **kw)

    def executemany_(self: Any, query: Any, params_seq: Any, **kw: Any) -> Any:
        rows = list(params_seq)
        counts.statements += len(rows)
        counts.calls += 1
        return executemany(self, query, rows, **kw)

    _pipeline_base.BasePipeline._fetch_gen = fetch_gen  # type: ignore[method-assign]
    pg_cursor.Cursor.execute = execute_  # type: ignore[method-assign,assignment]
    pg_cursor.Cursor.executemany = executemany_  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        _pipeline_base.BasePipeline._fetch_gen = fetch  # type: ignore[method-assign]
        pg_cursor.Cursor.execute = execute  # type: ignore[method-assign]
        pg_cursor.Cursor.executemany = executemany  # type: ignore[method-assign]


def backend_cpu_s(store: SqlStore) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this database (0 on SQLite)."""
    if store.dialect != "postgresql":
        return 0.0
    with store.transaction() as tx:
        pids = [r[0] for r in tx.rows("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def succeeded(claims: list[Claim]) -> tuple[Report, ...]:
    now = time.time()
    return tuple(Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now, now, result_json="null") for c in claims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="a fresh database's URL")
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8, help="tasks per claim (a worker's free slots)")
    parser.add_argument("--workers", type=int, default=2, help="claimants, taking turns")
    args = parser.parse_args()
    store = open_store(args.db)
    assert isinstance(store, SqlStore)
    graph = bench_graph(args.partitions, "noop")
    record = store.register_graph(graph, source="bench/pg_claims.py")
    names = [f"pgc-{i}" for i in range(args.workers)]
    for name in names:
        store.register_worker(WorkerInfo(name, name, "localhost", 0, {"slots": args.batch}))
    event, _ = store.submit(record.id, {"departments": [f"d{i}" for i in range(args.partitions)]})
    cpu0 = time.process_time()
    Expand(1).run(store, time.time())
    plan_cpu_s = time.process_time() - cpu0
    held: dict[str, list[Claim]] = {name: [] for name in names}
    per_tx: list[tuple[int, int, int]] = []
    sizes: list[int] = []
    tasks = 0
    with counting() as counts:
        server0, client0, wall0 = backend_cpu_s(store), time.process_time(), time.monotonic()
        idle = 0
        while idle < len(names):
            idle = 0
            for name in names:
                before = counts.snapshot()
                request = ClaimRequest(name, {"slots": args.batch}, frozenset(), args.batch, 60.0,
                                       succeeded(held[name]))  # fmt: skip
                held[name] = list(store.claim(request).claims)
                after = counts.snapshot()
                per_tx.append((after[0] - before[0], after[1] - before[1], after[2] - before[2]))
                sizes.append(len(held[name]))
                tasks += len(held[name])
                idle += not held[name] and not request.reports
        client_s, wall_s = time.process_time() - client0, time.monotonic() - wall0
        server_s = backend_cpu_s(store) - server0
    final = store.event(event.id)
    busy = [t for t, s in zip(per_tx, sizes, strict=True) if s]
    print(json.dumps({
        "backend": store.dialect,
        "partitions": args.partitions,
        "batch": args.batch,
        "event_state": final.state.value,
        "tasks": tasks,
        "transactions": len(per_tx),
        "tasks_per_tx": round(tasks / len(per_tx), 2),
        "statements_per_task": round(sum(t[0] for t in per_tx) / tasks, 2),
        "statements_per_full_tx": statistics.median(t[0] for t in busy),
        "driver_calls_per_full_tx": statistics.median(t[1] for t in busy),
        "round_trips_per_full_tx": statistics.median(t[2] for t in busy),
        "round_trips_per_task": round(sum(t[2] for t in per_tx) / tasks, 2),
        "client_cpu_us_per_task": round(1e6 * client_s / tasks),
        "server_cpu_us_per_task": round(1e6 * server_s / tasks),
        "wall_us_per_task": round(1e6 * wall_s / tasks),
        "plan_client_cpu_s": round(plan_cpu_s, 3),
    }))  # fmt: skip
    store.close()


if __name__ == "__main__":
    main()
