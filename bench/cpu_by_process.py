"""CPU per task of each kind of process during one ``baton bench`` run's makespan.

Runs ``baton bench --json`` (the arguments after ``--``) and samples, every ``--every-s``, the
CPU times of its processes — the bench itself (the controller), the workers, their executors —
and of the PostgreSQL backends serving the bench's database (found by name in
``pg_stat_activity``). The window is the event's makespan (submitted → finished, read from the
database afterwards; on one host its clock is this one): the CPU each process used between the
first sample inside it and the last one. PostgreSQL only (the database must outlive the run).

    python bench/cpu_by_process.py -- --partitions 1000 --workers 2 --slots 4 \\
        --db postgresql://postgres@127.0.0.1:5432/pgspeed

Prints the bench's JSON figures with ``cpu_us_per_task`` added: {role: microseconds}.
"""

from __future__ import annotations

import argparse
import bisect
import json
import subprocess
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import psutil


def _backend_pids(dsn: str) -> set[int]:
    import psycopg

    dbname = dsn.rsplit("/", 1)[1].split("?")[0]
    try:
        with psycopg.connect(dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,)).fetchall()
    except psycopg.Error:
        return set()
    return {pid for (pid,) in rows}


def _role(proc: psutil.Process, bench_pid: int) -> str:
    if proc.pid == bench_pid:
        return "controller"
    cmdline = " ".join(proc.cmdline())
    if "executor" in cmdline:
        return "executors"
    if "postgres" in proc.name():
        return "postgres"
    return "workers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every-s", type=float, default=0.1)
    parser.add_argument("bench", nargs=argparse.REMAINDER, help="-- then baton bench's arguments")
    args = parser.parse_args()
    bench_args = [a for a in args.bench if a != "--"]
    dsn = bench_args[bench_args.index("--db") + 1] if "--db" in bench_args else None
    bench = subprocess.Popen([sys.executable, "-m", "baton", "bench", "--json", *bench_args], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    samples: list[tuple[float, dict[int, tuple[str, float]]]] = []
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(bench.pid)
        roles: dict[int, str] = {}
        procs: dict[int, psutil.Process] = {}
        last_pg = 0.0
        while not done.is_set():
            now = time.time()
            if dsn and now - last_pg > 0.5:
                last_pg = now
                for pid in _backend_pids(dsn) - procs.keys():
                    procs[pid] = psutil.Process(pid)
            try:
                for p in [root, *root.children(recursive=True)]:
                    procs.setdefault(p.pid, p)
            except psutil.Error:
                pass
            seen = {}
            for pid, p in list(procs.items()):
                try:
                    t = p.cpu_times()
                    roles.setdefault(pid, _role(p, bench.pid))
                    seen[pid] = (roles[pid], t.user + t.system)
                except psutil.Error:
                    procs.pop(pid)
            samples.append((now, seen))
            time.sleep(args.every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = bench.communicate()
    done.set()
    thread.join()
    for line in out.splitlines():
        figures: dict[str, Any] = json.loads(line)
        start, end = _makespan(dsn) if dsn else (samples[0][0], samples[-1][0])
        times = [t for t, _ in samples]
        i, j = bisect.bisect_left(times, start), max(0, bisect.bisect_right(times, end) - 1)
        first, last = samples[i][1], samples[j][1]
        scale = (end - start) / (times[j] - times[i]) if j > i else 1.0  # the samples' span, to the makespan
        per_role: dict[str, float] = defaultdict(float)
        for pid, (role, cpu) in last.items():
            per_role[role] += scale * (cpu - first.get(pid, (role, 0.0))[1])
        tasks = figures["tasks"]
        figures["cpu_us_per_task"] = {role: round(1e6 * cpu / tasks) for role, cpu in sorted(per_role.items())}
        figures["cpu_us_per_task"]["total"] = round(1e6 * sum(per_role.values()) / tasks)
        print(json.dumps(figures))


def _makespan(dsn: str) -> tuple[float, float]:
    """The bench event's submission and end, by the database's clock."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT submitted_at, finished_at FROM events ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


if __name__ == "__main__":
    main()
