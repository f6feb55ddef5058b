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

With ``rtt_ms`` R > 0 the workers reach the server through a delay proxy (:mod:`baton.bench.delay`,
a process of its own) that holds every chunk R ms in each direction, so each of their round trips
grows by 2R; the bench's own requests (health, metrics) go to the server directly. It adds
``proxy_cpu_s`` (the proxy's CPU from the event's submission to its end) and ``proxy_late_p50_ms``,
``proxy_late_p99_ms``: how long after its due time the proxy wrote a chunk on, over the whole run.
"""

from __future__ import annotations

import json
import os
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
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

    def __init__(self, settings: Settings, store: Store, workers: int, slots: int, log_dir: Path,
                 rtt_ms: float = 0.0, hold: str = "auto") -> None:  # fmt: skip
        self.settings = settings
        self.rtt_ms = rtt_ms
        self.hold = hold  # the workers' --hold
        self.count = workers
        self.slots = slots
        self.log_dir = log_dir
        self.worker_token = _mint(store, Role.WORKER, "bench remote workers")
        self.viewer_token = _mint(store, Role.VIEWER, "bench metrics")
        self.url = f"http://{HOST}:{_free_port()}"
        self.worker_url = self.url  # the proxy's, with a delay
        self.server: subprocess.Popen[bytes] | None = None
        self.proxy: subprocess.Popen[bytes] | None = None
        self.proxy_figures: dict[str, Any] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.marks: list[dict[str, float]] = []
        self.proxy_cpu_marks: list[float | None] = []

    def start(self) -> None:
        """The server, the delay proxy (with ``rtt_ms``), then the workers; all stopped again if
        one of them cannot start."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        port = self.url.rsplit(":", 1)[1]
        argv = [sys.executable, "-m", "baton", "server", "--host", HOST, "--port", port]
        self.server = self._spawn(argv, child_env(self.settings, os.environ), "server.log")
        self._wait_healthy()
        if self.rtt_ms > 0:
            self._start_proxy()
        env = {**without_settings(os.environ), "BATON_TOKEN": self.worker_token, "PYTHONUNBUFFERED": "1"}
        for i in range(self.count):
            extra = ["--server", self.worker_url, "--stats-file", str(self._stats_file(i)), "--hold", self.hold]
            argv = worker_command({"slots": self.slots}, name=f"remote{i + 1}", extra=extra)
            self.processes.append(self._spawn(argv, env, f"remote-{i + 1}.log"))

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.processes)

    def mark(self) -> None:
        """Note the server's request counts now (at submission, and at the event's end)."""
        self.marks.append(self._requests())
        self.proxy_cpu_marks.append(_cpu_s(self.proxy))

    def stop(self) -> None:
        """Workers first (each writes its stats file as it exits), then the proxy, then the server."""
        stop_processes(self.processes, self.settings.drain_s + STOP_SLACK_S)
        if self.proxy is not None and self.proxy.returncode is None:
            stop_processes([self.proxy], 15.0)
            self.proxy_figures = _last_json_line(self.proxy)
        if self.server is not None:
            stop_processes([self.server], 15.0)

    def figures(self, tasks: int, server_peak_rss_mb: float) -> dict[str, Any]:
        """The remote figures, once stopped (the workers' stats files are written at exit)."""
        out: dict[str, Any] = {"server_peak_rss_mb": server_peak_rss_mb}
        if self.proxy is not None:
            first, last = (self.proxy_cpu_marks[0], self.proxy_cpu_marks[-1]) if self.marks else (None, None)
            out["proxy_cpu_s"] = round(last - first, 3) if first is not None and last is not None else None
            out["proxy_late_p50_ms"] = self.proxy_figures.get("late_p50_ms")
            out["proxy_late_p99_ms"] = self.proxy_figures.get("late_p99_ms")
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

    def _start_proxy(self) -> None:
        """The delay proxy, listening on a port of its choosing, which it prints when ready."""
        upstream = self.url.removeprefix("http://")
        argv = [sys.executable, "-m", "baton.bench.delay", "--listen", f"{HOST}:0", "--upstream", upstream,
                "--delay-ms", str(self.rtt_ms), "--parent-pid", str(os.getpid())]  # fmt: skip
        with open(self.log_dir / "proxy.log", "ab") as log:
            self.proxy = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        assert self.proxy.stdout is not None
        ready, _, _ = select.select([self.proxy.stdout], [], [], START_S)
        line = self.proxy.stdout.readline() if ready else b""
        try:
            port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"the delay proxy did not start; see {self.log_dir / 'proxy.log'}") from None
        self.worker_url = f"http://{HOST}:{port}"

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


def _cpu_s(process: subprocess.Popen[bytes] | None) -> float | None:
    """User and system CPU of a running process so far (None without one)."""
    if process is None:
        return None
    try:
        times = psutil.Process(process.pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def _last_json_line(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The last line a stopped process printed, read as a JSON object ({} if it is not one)."""
    assert process.stdout is not None
    with process.stdout:
        lines = process.stdout.read().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port
