"""Helpers for tests that run ``baton controller`` and ``baton worker`` as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from baton.engine.states import EventState
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import TaskRecord
from baton.testing import check_invariants

GRAPHS = str(Path(__file__).resolve().parent / "graphs")
FAST = ["--lease-s", "2", "--heartbeat-s", "0.3", "--poll-s", "0.05"]
# the controller looks for expired leases and ended backoffs every 0.2 s (1 s by default), so
# that a test of a lost worker waits for the lease, not for the next look after it
CONTROLLER_ENV = {"BATON_SWEEP_S": "0.2"}


class Cluster:
    """A controller and workers as real processes on one SQLite file."""

    def __init__(self, db_url: str, tmp: Path) -> None:
        self.db_url = db_url
        self.tmp = tmp
        self.backend: Store = open_store(db_url)
        self.backend.debug.record_moves()
        self.controller: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.controllers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{args[0]}-{time.monotonic_ns()}.log", "wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "baton", *args, "--db", self.db_url],
                stdout=log,
                stderr=log,
                env={**os.environ, **(env or {})},
            )

    def start_controller(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.controller = self._spawn(["controller", "--poll-s", "0.05"], {**CONTROLLER_ENV, **(env or {})})
        self.controllers.append(self.controller)
        return self.controller

    def start_worker(self, slots: int = 2, *extra: str) -> subprocess.Popen[bytes]:
        proc = self._spawn(["worker", "--slots", str(slots), *FAST, *extra])
        self.workers.append(proc)
        return proc

    def submit(self, graph: Graph, params: dict[str, Any] | None = None) -> int:
        record = self.backend.register_graph(graph)
        event, _ = self.backend.submit(record.id, validate_params(graph, params or {}))
        return event.id

    def wait(self, event_id: int, timeout_s: float = 90) -> EventState:
        deadline = time.monotonic() + timeout_s
        while not (state := self.backend.event(event_id).state).terminal:
            assert time.monotonic() < deadline, f"event {event_id} still {state} after {timeout_s}s"
            time.sleep(0.05)
        return state

    def stop(self) -> None:
        procs = [*self.controllers, *self.workers]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def ledger_rows(path: Path, what: str = "start") -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]  # a task may be writing the last line right now
    return [r for r in map(json.loads, complete.splitlines()) if r["what"] == what]


def wait_for(predicate: Any, timeout_s: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def shape(name: str, parts: list[str], body: str = "fault_tasks:slow", **defaults: Any) -> GraphBuilder:
    g = GraphBuilder(name, python_path=[GRAPHS], defaults=defaults or None)
    g.param("departments", "list", default=parts).partitions(param="departments")
    g.param("ledger", "string", default="").param("sleep_s", "number", default=0.0)
    g.param("release", "string", default="")  # fault_tasks:slow: sleeps end once this file exists
    for p in parts:
        g.param(f"slow_{p}_s", "number", default=0.0)
    for extract in ("extract_finance", "extract_erp", "extract_crm"):
        g.python(extract, body)
    g.python("process", body, after=["extract_finance", "extract_erp", "extract_crm"])
    g.python("summarize", body, after=["process"])
    g.python("dept_report", body, after=["summarize"])
    g.python("hq_summary", body, after=["summarize"], partitioned=False)
    g.python("hq_report", body, after=["hq_summary"], partitioned=False)
    return g


def by_key(tasks: list[TaskRecord]) -> dict[tuple[str, str], TaskRecord]:
    return {(t.node, t.partition): t for t in tasks}


def running_cluster(url: str, tmp: Path) -> Iterator[Cluster]:
    """Fixture body: a cluster on ``url``, stopped and checked for broken invariants afterwards."""
    cluster = Cluster(url, tmp)
    yield cluster
    cluster.stop()
    assert check_invariants(cluster.backend) == []
    cluster.backend.close()
