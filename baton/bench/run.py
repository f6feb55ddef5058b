"""``baton bench``: Baton's own overhead on this machine, on the year-end-report shape.

For P departments: extract_finance/erp/crm[p] → process[p] → summarize[p] → dept_report[p], and
hq_summary after every summarize[*] → hq_report: 6P + 2 tasks, no-op or 20 ms bodies. Workers are
started and registered before the clock starts (start-up is reported apart); the makespan runs from
the event's submission to its end, both by the database clock. Dispatch latency is, per task that
had to wait, the time from the end of its last dependency's body to the start of its own, as the
workers timed them: reporting, deciding readiness, claiming and handing over all count.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from baton.bench.remote import RemoteFleet
from baton.bench.tasks import SLEEP_S
from baton.controller.loop import Controller, ControllerConfig
from baton.engine.planner import UNPARTITIONED, critical_path
from baton.engine.states import Outcome
from baton.errors import BackendError
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import DepMode, Graph
from baton.local.workers import LocalWorkers
from baton.settings import Settings, child_env
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import TaskRecord

EXTRACTS = ("extract_finance", "extract_erp", "extract_crm")


# The bench's controller looks at the store every 50 ms where nothing wakes it (poll_s is 0.25 s
# by default): the figures in docs/benchmarks.md were measured so. Where the store wakes it
# (PostgreSQL, SQLite on Linux) the settings' idle_poll_s applies, as everywhere.
CONTROLLER_POLL_S = 0.05


@dataclass(frozen=True)
class BenchConfig:
    """The measured run's shape (the command line's flags give every field)."""

    partitions: int
    variant: str  # "noop" or "sleep"
    workers: int
    slots: int
    remote: bool = False  # through a baton server (see baton.bench.remote)
    limit: int | None = None  # every node's own concurrency key, with this limit
    rtt_ms: float = 0.0  # remote only: added in each direction by a delay proxy (see baton.bench.delay)
    hold: str = "auto"  # the workers' --hold


def bench_graph(partitions: int, variant: str, limit: int | None = None) -> Graph:
    body = f"baton.bench.tasks:{variant}"
    options = {} if limit is None else {"concurrency": {"key": "bench:{node}", "limit": limit}}
    g = GraphBuilder(f"bench_{variant}", defaults=options)
    g.param("departments", "list", default=[f"d{i}" for i in range(partitions)]).partitions(param="departments")
    for name in EXTRACTS:
        g.python(name, body)
    g.python("process", body, after=list(EXTRACTS))
    g.python("summarize", body, after=["process"])
    g.python("dept_report", body, after=["summarize"])
    g.python("hq_summary", body, after=["summarize"], partitioned=False)
    g.python("hq_report", body, after=["hq_summary"], partitioned=False)
    return g.build()


def run_once(settings: Settings, config: BenchConfig, log_dir: Path) -> dict[str, Any]:
    """One measured event on a fresh set of workers; returns the figures."""
    graph = bench_graph(config.partitions, config.variant, config.limit)
    _upgrade_schema(settings)
    backend = open_store(settings.db, settings)
    record = backend.register_graph(graph, source="baton bench")
    statements_before = backend.statements_executed()
    fleet: LocalWorkers | RemoteFleet
    if config.remote:
        fleet = RemoteFleet(settings, backend, config.workers, config.slots, log_dir, rtt_ms=config.rtt_ms,
                            hold=config.hold)  # fmt: skip
    else:
        fleet = LocalWorkers(settings, config.workers, {"slots": config.slots}, log_dir, hold=config.hold)
    began = time.monotonic()
    fleet.start()
    try:
        _wait_registered(backend, fleet, config.workers)
        startup_s = time.monotonic() - began
        remote = fleet if isinstance(fleet, RemoteFleet) else None
        if remote:
            remote.mark()
        event, _ = backend.submit(record.id, {"departments": [f"d{i}" for i in range(config.partitions)]})
        _drive(backend, settings, event.id)
        if remote:
            remote.mark()
        worker_rss = _worker_peaks(fleet.processes)
        server_rss = _worker_peaks([remote.server] if remote and remote.server else [])
    finally:
        fleet.stop()
    figures = _figures(backend, event.id, graph, config)
    statements = backend.statements_executed()
    if statements is not None and statements_before is not None:
        figures["db_statements_per_task"] = round((statements - statements_before) / figures["tasks"], 2)
    if remote:
        figures.update(remote.figures(figures["tasks"], server_rss[0] if server_rss else 0.0))
    backend.close()
    return {
        **figures,
        "startup_s": round(startup_s, 3),
        "controller_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mb": worker_rss,
    }


def _upgrade_schema(settings: Settings) -> None:
    """Migrate the database in a process of its own, as a deployment does once (``baton db
    upgrade``): migrating a new file loads SQLAlchemy and Alembic (~24 MB), which a controller
    on a migrated database never does, and the controller's figure is this process's peak."""
    done = subprocess.run([sys.executable, "-m", "baton", "db", "upgrade"], env=child_env(settings, os.environ),
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise BackendError(f"cannot upgrade the schema of {settings.db}: {done.stderr.strip()}")


def _wait_registered(backend: Store, workers: LocalWorkers | RemoteFleet, count: int) -> None:
    pids = {p.pid for p in workers.processes}
    deadline = time.monotonic() + 60
    while sum(w.pid in pids and w.state == "active" for w in backend.workers()) < count:
        if time.monotonic() > deadline or workers.alive() < count:
            raise BackendError(f"workers did not start; see {workers.log_dir}")
        time.sleep(0.05)
    time.sleep(0.3)  # let their executors finish booting: start-up is not what we measure


def _drive(backend: Store, settings: Settings, event_id: int) -> None:
    stop = threading.Event()
    controller = Controller(backend, ControllerConfig.from_settings(settings, poll_s=CONTROLLER_POLL_S))
    try:
        controller.run_until_finished(event_id, stop)
    finally:
        stop.set()
        backend.resign("controller", controller.id)


def _figures(backend: Store, event_id: int, graph: Graph, config: BenchConfig) -> dict[str, Any]:
    event = backend.event(event_id)
    tasks = backend.tasks(event_id)
    latencies = sorted(_dispatch_latencies_ms(backend, tasks, graph))
    makespan = (event.finished_at or 0) - event.submitted_at
    out: dict[str, Any] = {
        "backend": backend.__class__.__name__.removesuffix("Store").lower(),
        "variant": config.variant,
        "partitions": config.partitions,
        "workers": config.workers,
        "slots": config.slots,
        "link": "remote" if config.remote else "direct",
        "limit": config.limit,
        "rtt_ms": config.rtt_ms,
        "hold": config.hold,
        "state": event.state.value,
        "tasks": len(tasks),
        "makespan_s": round(makespan, 3),
        "tasks_per_s": round(len(tasks) / makespan, 1) if makespan > 0 else None,
        "dispatch_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "dispatch_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 2) if latencies else None,
    }
    if config.variant == "sleep":
        ideal = max(len(critical_path(graph)) * SLEEP_S, len(tasks) * SLEEP_S / (config.workers * config.slots))
        out["ideal_s"] = round(ideal, 3)
        out["parallel_efficiency"] = round(ideal / makespan, 3) if makespan > 0 else None
    return out


def _dispatch_latencies_ms(backend: Store, tasks: list[TaskRecord], graph: Graph) -> list[float]:
    """Per task with dependencies: from the end of the body of its last dependency to the start
    of its own body (both as the workers timed them), so reporting, deciding readiness, claiming
    and handing the task to an executor all count."""
    attempts = {a.task_id: a for a in backend.attempts([t.id for t in tasks]) if a.outcome is Outcome.SUCCEEDED}
    ended: dict[tuple[str, str], float] = {}
    for t in tasks:
        if t.id in attempts:
            ended[(t.node, t.partition)] = attempts[t.id].finished_at
    node_ended: dict[str, float] = {}
    for (node, _), at in ended.items():
        node_ended[node] = max(at, node_ended.get(node, at))
    out = []
    for t in tasks:
        edges = graph.node(t.node).edges()
        run = attempts.get(t.id)
        if not edges or run is None or run.started_at is None:
            continue
        last = max(
            node_ended.get(d.upstream, 0.0)
            if d.mode is DepMode.ALL
            else ended.get((d.upstream, t.partition if d.mode is DepMode.SAME else UNPARTITIONED), 0.0)
            for d in edges
        )
        out.append(1000 * (run.started_at - last))
    return out


def _worker_peaks(processes: Sequence[subprocess.Popen[bytes]]) -> list[float]:
    """Peak RSS (VmHWM) of each process, with its descendants (a worker's executors), in MB."""
    peaks = []
    for proc in processes:
        total = 0
        try:
            root = psutil.Process(proc.pid)
            for p in [root, *root.children(recursive=True)]:
                total += _vm_hwm_kb(p.pid)
        except psutil.Error:
            pass
        peaks.append(round(total / 1024, 1))
    return peaks


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fresh_sqlite_url() -> tuple[str, Path]:
    folder = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    return f"sqlite:///{folder / 'bench.db'}", folder


def dumps(figures: dict[str, Any]) -> str:
    return json.dumps(figures)


def describe(f: dict[str, Any]) -> str:
    line = (f"{f['backend']} {f['variant']} P={f['partitions']} {f['tasks']} tasks: {f['makespan_s']:.2f}s, "
            f"{f['tasks_per_s']:,.0f} tasks/s, dispatch p50 {f['dispatch_p50_ms']} ms p99 {f['dispatch_p99_ms']} ms, "
            f"start-up {f['startup_s']}s, controller {f['controller_peak_rss_mb']} MB, "
            f"workers {f['worker_peak_rss_mb']} MB")  # fmt: skip
    if "parallel_efficiency" in f:
        line += f", efficiency {f['parallel_efficiency']}"
    if f.get("limit") is not None:
        line += f", every node limited to {f['limit']} running"
    if "db_statements_per_task" in f:
        line += f", {f['db_statements_per_task']} statements/task"
    if f.get("link") == "remote":
        line += (f"; remote: {f.get('http_requests_per_task')} requests/task, claim p50 {f.get('claim_p50_ms')} ms "
                 f"p99 {f.get('claim_p99_ms')} ms, report p50 {f.get('report_p50_ms')} ms p99 "
                 f"{f.get('report_p99_ms')} ms, server {f.get('server_peak_rss_mb')} MB")  # fmt: skip
        if f.get("rtt_ms"):
            line += (f"; delay proxy: {f['rtt_ms']} ms each way, {f.get('proxy_cpu_s')} s CPU, chunks late by "
                     f"p50 {f.get('proxy_late_p50_ms')} ms p99 {f.get('proxy_late_p99_ms')} ms")  # fmt: skip
    return line
