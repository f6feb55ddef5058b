"""Load of an idle Baton cluster: CPU of its processes and, on PostgreSQL, statements and transactions per second.

    python bench/idle_load.py --db postgresql://postgres@127.0.0.1:5432/baton --workers 3 --seconds 60
    python bench/idle_load.py --db sqlite:////tmp/idle/baton.db --workers 3 --seconds 60
    python bench/idle_load.py --db sqlite:////tmp/idle/baton.db --workers 3 --seconds 60 --remote

Starts one ``baton controller`` and N ``baton worker`` processes with default settings, lets them
settle, then counts what reaches the database over the window: statements from
``pg_stat_statements`` (when the server preloads it) and committed transactions from
``pg_stat_database``. With ``--remote`` the workers are remote ones behind a ``baton server`` (in
the CPU figure too), and the server's own count of each ``/worker/v1`` route over the window is
printed per worker and minute. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

from baton.bench.remote import WORKER_ROUTES, RemoteFleet
from baton.settings import Settings
from baton.store import open_store


def _counts(dsn: str) -> dict[str, float]:
    if not dsn.startswith(("postgresql://", "postgres://")):
        return {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        xacts = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        out = {"transactions": float(xacts[0]) if xacts else 0.0}
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = current_database()"
            ).fetchone()
            out["statements"] = float(row[0]) if row else 0.0
        except psycopg.Error:
            pass
    return out


def measure(db: str, workers: int, seconds: float, settle_s: float, remote: bool = False) -> dict[str, Any]:
    base = [sys.executable, "-m", "baton"]
    procs = [subprocess.Popen([*base, "controller", "--db", db], stderr=subprocess.DEVNULL)]
    fleet = None
    if remote:
        store = open_store(db)
        fleet = RemoteFleet(Settings(db=db), store, workers, 4, Path(tempfile.mkdtemp(prefix="baton-idle-")))
        store.close()
        fleet.start()
        procs += [*fleet.processes, *([fleet.server] if fleet.server else [])]
    else:
        procs += [subprocess.Popen([*base, "worker", "--db", db], stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        time.sleep(settle_s)
        before, started = _counts(db), time.monotonic()
        cpu_before = sum(_cpu(p.pid) for p in procs)
        if fleet:
            fleet.mark()
        time.sleep(seconds)
        if fleet:
            fleet.mark()
        after, elapsed = _counts(db), time.monotonic() - started
        cpu = (sum(_cpu(p.pid) for p in procs) - cpu_before) / elapsed
    finally:
        if fleet:
            fleet.stop()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
    rates = {f"{k}_per_s": round((after[k] - before[k]) / elapsed, 2) for k in after if k in before}
    # the two counting queries themselves are included: 2 transactions, up to 3 statements
    out = {"workers": workers, "seconds": round(elapsed, 1), **rates, "baton_cpu_fraction_of_a_core": round(cpu, 4)}
    if fleet:
        first, last = fleet.marks[0], fleet.marks[-1]
        per = 60.0 / elapsed / workers
        out["requests_per_worker_per_minute"] = {
            r.removeprefix(WORKER_ROUTES): round((last[r] - first.get(r, 0.0)) * per, 2)
            for r in sorted(last)
            if r.startswith(WORKER_ROUTES) and last[r] > first.get(r, 0.0)
        }
    return out


def _cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants so far."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--settle-s", type=float, default=5)
    parser.add_argument("--remote", action="store_true", help="remote workers behind a baton server")
    args = parser.parse_args()
    print(json.dumps(measure(args.db, args.workers, args.seconds, args.settle_s, args.remote)))


if __name__ == "__main__":
    main()
