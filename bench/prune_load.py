"""Does retention hold the hot path back? ``baton bench`` on a SQLite database that also holds
many old finished tasks, with and without those tasks past their graph's retention.

    python bench/prune_load.py --tasks 100000 --rounds 3

Builds, once, a database whose graph ``old_batch`` has ``--tasks`` succeeded tasks (100 events,
run through the store's own claim and report), finished 30 days ago. Each round copies it twice,
gives one copy a new version of ``old_batch`` that keeps succeeded events 1 day (so its
controller prunes all of them while the bench runs), and runs ``baton bench`` on each copy,
alternating which goes first. Prints each run's tasks per second, the old tasks left after the
pruning run, and the medians. ``BATON_PRUNE_BATCH`` and the other settings pass through.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baton.engine.states import Outcome
from baton.graphs.spec import load_graph_text
from baton.store import open_store
from baton.store.records import ClaimRequest, Report

EVENTS = 100
GRAPH = """
graph: old_batch
partitions: {{values: [{keys}]}}
{retention}
nodes:
  work: {{run: "m:f"}}
"""
DAY_S = 86_400.0


def graph_text(per_event: int, retention: str = "") -> str:
    return GRAPH.format(keys=", ".join(f"p{i}" for i in range(per_event)), retention=retention)


def build(path: Path, tasks: int) -> None:
    """A database holding ``tasks`` succeeded tasks of ``old_batch``, ended 30 days ago."""
    store = open_store(f"sqlite:///{path}")
    per_event = max(1, tasks // EVENTS)
    record = store.register_graph(load_graph_text(graph_text(per_event)))
    from baton.controller.duties import Expand

    for _ in range(EVENTS):
        store.submit(record.id, {})
    while Expand(50).run(store, time.time()):
        pass
    while True:
        claims = store.claim(ClaimRequest("loader", {"slots": 5000}, frozenset(), 5000, 600.0)).claims
        if not claims:
            break
        now = time.time()
        reports = tuple(Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now, now) for c in claims)
        store.claim(ClaimRequest("loader", {"slots": 0}, frozenset(), 0, 600.0, reports=reports))
    store.close()
    with sqlite3.connect(path) as conn:
        old = 30 * DAY_S
        conn.execute("UPDATE events SET finished_at = finished_at - ?, submitted_at = submitted_at - ?", (old, old))
        conn.execute("UPDATE tasks SET finished_at = finished_at - ?", (old,))


def old_tasks(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        sql = "SELECT COUNT(*) FROM tasks t JOIN events e ON e.id = t.event_id WHERE e.type = 'old_batch'"
        return int(conn.execute(sql).fetchone()[0])


def bench(path: Path, repeat: int) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "baton", "bench", "--db", f"sqlite:///{path}", "--repeat", str(repeat), "--json"],
        capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return statistics.median(r["tasks_per_s"] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--repeat", type=int, default=5, help="baton bench --repeat (its runs' median is a round's figure)"
    )
    asked = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="baton-prune-"))
    template = folder / "template.db"
    started = time.monotonic()
    build(template, asked.tasks)
    print(f"built {old_tasks(template):,} old tasks in {time.monotonic() - started:.0f} s", flush=True)
    figures: dict[str, list[float]] = {"keep": [], "prune": []}
    for n in range(asked.rounds):
        for mode in ("keep", "prune") if n % 2 == 0 else ("prune", "keep"):
            copy = folder / f"{mode}.db"
            shutil.copy(template, copy)
            if mode == "prune":
                store = open_store(f"sqlite:///{copy}")
                per_event = max(1, asked.tasks // EVENTS)
                store.register_graph(load_graph_text(graph_text(per_event, "retention: {succeeded_days: 1}")))
                store.close()
            rate = bench(copy, asked.repeat)
            figures[mode].append(rate)
            print(f"round {n + 1} {mode:5}: {rate:,.0f} tasks/s, old tasks left {old_tasks(copy):,}", flush=True)
    keep, prune = statistics.median(figures["keep"]), statistics.median(figures["prune"])
    print(json.dumps({"keep_tasks_per_s": figures["keep"], "prune_tasks_per_s": figures["prune"],
                      "keep_median": keep, "prune_median": prune, "change": prune / keep - 1}))  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
