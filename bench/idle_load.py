"""Load of an idle Baton cluster: CPU of its processes and, on PostgreSQL, statements and transactions per second.

    python bench/idle_load.py --db postgresql://postgres@127.0.0.1:5432/baton --workers 3 --seconds 60
    python bench/idle_load.py --db sqlite:////tmp/idle/baton.db --workers 3 --seconds 60

Starts one ``baton controller`` and N ``baton worker`` processes with default settings, lets them
settle, then counts what reaches the database over the window: statements from
``pg_stat_statements`` (when the server preloads it) and committed transactions from
``pg_stat_database``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import psycopg


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


def measure(db: str, workers: int, seconds: float, settle_s: float) -> dict[str, Any]:
    base = [sys.executable, "-m", "baton"]
    procs = [subprocess.Popen([*base, "controller", "--db", db], stderr=subprocess.DEVNULL)]
    procs += [subprocess.Popen([*base, "worker", "--db", db], stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        time.sleep(settle_s)
        before, started = _counts(db), time.monotonic()
        cpu_before = sum(_cpu(p.pid) for p in procs)
        time.sleep(seconds)
        after, elapsed = _counts(db), time.monotonic() - started
        cpu = (sum(_cpu(p.pid) for p in procs) - cpu_before) / elapsed
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
    rates = {f"{k}_per_s": round((after[k] - before[k]) / elapsed, 2) for k in after if k in before}
    # the two counting queries themselves are included: 2 transactions, up to 3 statements
    return {"workers": workers, "seconds": round(elapsed, 1), **rates, "baton_cpu_fraction_of_a_core": round(cpu, 4)}


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
    args = parser.parse_args()
    print(json.dumps(measure(args.db, args.workers, args.seconds, args.settle_s)))


if __name__ == "__main__":
    main()
