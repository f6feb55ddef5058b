"""``baton bench --remote``: the bench's event run by remote task servers through a ``baton server``.

The server (a process of its own, plain HTTP on loopback) holds the database; the workers hold
its URL and a worker token, nothing else (their environment has no settings and no database
URL). The controller runs in the bench process, as in the direct bench, so the two figures differ
by the workers' link alone. Besides the direct bench's figures this adds:

- ``http_requests_per_task``: requests the server answered on ``/worker/v1`` (claims, reports,
  heartbeats, long polls, graphs) from the event's submission to its end, by the server's own
  ``baton_http_requests_total``, divided by the tasks;
- ``claim_p50_ms`` … ``report_p99_ms``: each request's round trip as the workers timed it
  (``baton worker --stats-file``), over the whole run;
- ``server_peak_rss_mb``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from baton.access import Role, new_token, token_digest
from baton.errors import BackendError
from baton.local.workers import STOP_SLACK_S, stop_processes, worker_command
from baton.settings import Settings, child_env, without_settings
from baton.store.protocol import Store

HOST = "127.0.0.1"
START_S = 60.0
WORKER_ROUTES = "/worker/v1/"
TIMED = {"claim": "POST /worker/v1/claim", "report": "POST /worker/v1/report"}


class RemoteFleet:
    """A ``baton server`` and N remote workers on this host, started and stopped together; the
    same face as :class:`~baton.local.workers.LocalWorkers` (``processes`` are the workers)."""

    def __init__(self, settings: Settings, store: Store, workers: int, slots: int, log_dir: Path) -> None:
        self.settings = settings
        self.count = workers
        self.slots = slots
        self.log_dir = log_dir
        self.worker_token = _mint(store, Role.WORKER, "bench remote workers")
        self.viewer_token = _mint(store, Role.VIEWER, "bench metrics")
        self.url = f"http://{HOST}:{_free_port()}"
        self.server: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self.marks: list[dict[str, float]] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        port = self.url.rsplit(":", 1)[1]
        argv = [sys.executable, "-m", "baton", "server", "--host", HOST, "--port", port]
        self.server = self._spawn(argv, child_env(self.settings, os.environ), "server.log")
        self._wait_healthy()
        env = {**without_settings(os.environ), "BATON_TOKEN": self.worker_token, "PYTHONUNBUFFERED": "1"}
        for i in range(self.count):
            extra = ["--server", self.url, "--stats-file", str(self._stats_file(i))]
            argv = worker_command({"slots": self.slots}, name=f"remote{i + 1}", extra=extra)
            self.processes.append(self._spawn(argv, env, f"remote-{i + 1}.log"))

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.processes)

    def mark(self) -> None:
        """Note the server's request counts now (at submission, and at the event's end)."""
        self.marks.append(self._requests())

    def stop(self) -> None:
        """Workers first (each writes its stats file as it exits), then the server."""
        stop_processes(self.processes, self.settings.drain_s + STOP_SLACK_S)
        if self.server is not None:
            stop_processes([self.server], 15.0)

    def figures(self, tasks: int, server_peak_rss_mb: float) -> dict[str, Any]:
        """The remote figures, once stopped (the workers' stats files are written at exit)."""
        out: dict[str, Any] = {"server_peak_rss_mb": server_peak_rss_mb}
        if len(self.marks) >= 2 and tasks:
            before, after = self.marks[0], self.marks[-1]
            sent = {r: after[r] - before.get(r, 0.0) for r in sorted(after) if r.startswith(WORKER_ROUTES)}
            out["http_requests_per_task"] = round(sum(sent.values()) / tasks, 3)
            out["http_requests"] = {r.removeprefix(WORKER_ROUTES): int(n) for r, n in sent.items() if n}
        samples: dict[str, list[float]] = {}
        for i in range(self.count):
            try:
                stats = json.loads(self._stats_file(i).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a worker that was killed wrote none: its samples are missing, not made up
            for route, seconds in stats.get("seconds", {}).items():
                samples.setdefault(route, []).extend(seconds)
        for name, route in TIMED.items():
            ordered = sorted(samples.get(route, []))
            out[f"{name}_requests"] = len(ordered)
            out[f"{name}_p50_ms"] = round(1000 * statistics.median(ordered), 2) if ordered else None
            out[f"{name}_p99_ms"] = round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 2) if ordered else None
        return out

    # --- plumbing --------------------------------------------------------------------------

    def _spawn(self, argv: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
        with open(self.log_dir / log_name, "ab") as log:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)

    def _stats_file(self, i: int) -> Path:
        return self.log_dir / f"remote-{i + 1}.stats.json"

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.server is None or self.server.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise BackendError(f"baton server did not start; see {self.log_dir / 'server.log'}")

    def _requests(self) -> dict[str, float]:
        """``baton_http_requests_total`` by route (all status classes), as the server counts it."""
        headers = {"Authorization": f"Bearer {self.viewer_token}"}
        text = httpx.get(f"{self.url}/metrics", headers=headers, timeout=30.0).raise_for_status().text
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "baton_http_requests":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    route = sample.labels.get("route", "")
                    counts[route] = counts.get(route, 0.0) + sample.value
        return counts


def _mint(store: Store, role: Role, name: str) -> str:
    token = new_token(role)
    store.create_token(token_digest(token), role, name)
    return token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port
