"""Does a rate limit hold under real workers? One event of ``partitions`` no-op tasks whose node
declares ``rate_limit: {key: bench-rate, limit: N, period_s: S}``, run by worker processes and a
controller on the real clock (``bench/rates.py`` prints the figures).

The figures: the limit and period, the most starts any interval of ``period_s`` held (by the
store's record of each task's start), the starts in each window from the first start, how many
workers started tasks, the tasks run and the seconds from submission to the event's end (at
least ``(partitions / limit - 1) * period_s``: the rate, not the workers, sets the pace).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple, cast

from baton.controller.loop import Controller, ControllerConfig
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.local.workers import LocalWorkers
from baton.settings import Settings
from baton.store import open_store
from baton.store.sql import SqlStore
from baton.store.tx import read_rows

KEY = "bench-rate"


def graph(partitions: int, limit: int, period_s: float) -> Graph:
    g = GraphBuilder("rates_bench", defaults={"retries": 2, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("accounts", "list", default=[f"a{i}" for i in range(partitions)]).partitions(param="accounts")
    g.python("call", "baton.bench.tasks:noop", rate_limit={"key": KEY, "limit": limit, "period_s": period_s})
    return g.build()


class StartRow(NamedTuple):
    started_at: float
    worker_id: str


def starts(store: SqlStore, event_id: int) -> list[StartRow]:
    """Each task's start as the store recorded it (the claim's time), and the worker its
    attempt was (tasks run once here: retries would replace the task's start)."""
    with store.transaction(write=False) as tx:
        sql = ("SELECT t.started_at, a.worker_id FROM tasks t JOIN attempts a ON a.task_id = t.id "
               "AND a.attempt = t.attempt WHERE t.event_id = ? ORDER BY t.started_at")  # fmt: skip
        return read_rows(tx, StartRow, sql, (event_id,))


def most_in_a_window(times: list[float], period_s: float) -> int:
    """The most starts an interval [a, a + period_s) holds (one holding the most begins at a start)."""
    return max((sum(1 for t in times if s <= t and not s + period_s <= t) for s in times), default=0)


def measure(db: str, partitions: int, limit: int, period_s: float, workers: int, slots: int,
            log_dir: Path) -> dict[str, Any]:  # fmt: skip
    settings = Settings(db=db)
    store = cast(SqlStore, open_store(db, settings))
    planned = graph(partitions, limit, period_s)
    record = store.register_graph(planned, source="bench/rates.py")
    fleet = LocalWorkers(settings, workers, {"slots": slots}, log_dir)
    fleet.start()
    try:
        deadline = time.monotonic() + 60
        while sum(w.state == "active" for w in store.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        event, _ = store.submit(record.id, validate_params(planned, {}))
        began = time.monotonic()
        Controller(store, ControllerConfig.from_settings(settings, poll_s=0.05)).run_until_finished(event.id)
        took = time.monotonic() - began
    finally:
        fleet.stop()
    final = store.event(event.id)
    rows = starts(store, event.id)
    times = [r.started_at for r in rows]
    first = times[0] if times else 0.0
    windows = int((times[-1] - first) // period_s) + 1 if times else 0
    per_window = [
        sum(1 for t in times if first + k * period_s <= t < first + (k + 1) * period_s) for k in range(windows)
    ]
    store.close()
    return {
        "backend": store.__class__.__name__.removesuffix("Store").lower(),
        "limit": limit,
        "period_s": period_s,
        "most_in_any_window": most_in_a_window(times, period_s),
        "starts_per_window": per_window,
        "workers_that_started_tasks": len({r.worker_id for r in rows}),
        "tasks": final.tasks_total,
        "state": final.state.value,
        "seconds": round(took, 3),
        "workers": workers,
        "slots": slots,
    }
