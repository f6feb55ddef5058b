"""The task server: pull what fits, run it, report, heartbeat; stop cleanly on SIGTERM.

One main thread talks to the backend (claims carry the finished reports, so one
transaction does both); one thread per running attempt waits on its executor or command;
one heartbeat thread extends leases and carries out stop orders. The worker never holds more
attempts than its free capacity allows: there is no prefetch, so nothing sits invisibly here.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from baton import faults
from baton.backends.protocol import WorkerLink
from baton.errors import BackendError
from baton.model import Graph
from baton.records import Claim, Report, WorkerInfo
from baton.spec import graph_from_dict
from baton.states import Outcome
from baton.worker.pool import ExecutorPool
from baton.worker.runner import STOP_LEASE_LOST, STOP_SHUTDOWN, Limits, Running, run_attempt

log = logging.getLogger("baton.worker")


@dataclass(frozen=True)
class WorkerConfig:
    capacity: Mapping[str, int] = field(default_factory=lambda: {"slots": 4})
    labels: frozenset[str] = frozenset()
    name: str = ""
    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    poll_s: float = 0.25
    idle_poll_s: float = 5.0  # the safety-net poll when the backend pushes changes
    drain_s: float = 30.0
    max_result_bytes: int = 1024 * 1024
    max_log_bytes: int = 256 * 1024
    exit_when_idle_s: float | None = None  # for tests and one-shot runs


class Worker:
    def __init__(self, link: WorkerLink, config: WorkerConfig) -> None:
        self.link = link
        self.config = config
        host = socket.gethostname()
        self.id = f"{config.name or host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.info = WorkerInfo(self.id, config.name or host, host, os.getpid(), dict(config.capacity), config.labels)
        self.limits = Limits(config.max_result_bytes, config.max_log_bytes)
        self.pool = ExecutorPool(config.capacity.get("slots", 1))
        self.threads = ThreadPoolExecutor(
            max_workers=max(1, config.capacity.get("slots", 1)), thread_name_prefix="baton-task"
        )
        self.running: dict[int, Running] = {}
        self.finished: queue.Queue[Report | None] = queue.Queue()
        self.graphs: dict[int, Graph] = {}
        self.lock = threading.Lock()
        self.draining = threading.Event()
        self.stopped = threading.Event()
        self.drain_deadline = float("inf")
        self.last_heartbeat_ok = time.monotonic()
        self.unsent: list[Report] = []

    # --- lifecycle --------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.draining.is_set():
            self.drain_deadline = 0.0  # a second signal: hand everything back now
        else:
            self.request_stop()

    def request_stop(self, drain_s: float | None = None) -> None:
        """Stop claiming; let running attempts finish for ``drain_s``, then release them."""
        grace = self.config.drain_s if drain_s is None else drain_s
        self.drain_deadline = time.monotonic() + grace
        self.draining.set()

    def run(self) -> None:
        self.link.register_worker(self.info)
        self.pool.warm(self.config.capacity.get("slots", 1))
        beat = threading.Thread(target=self._heartbeat_loop, name="baton-heartbeat", daemon=True)
        beat.start()
        watchdog = threading.Thread(target=self._watchdog_loop, name="baton-watchdog", daemon=True)
        watchdog.start()
        try:
            self._main_loop()
        finally:
            self.stopped.set()
            beat.join()  # it shares the backend: nothing may use it after run() returns
            watchdog.join()
            self.threads.shutdown(wait=True)
            self.pool.close()
            try:
                self._send(self._collect())
                self.link.deregister_worker(self.id)
            except BackendError as exc:  # their leases expire; the attempts run again elsewhere
                log.error("could not hand in the last reports: %s", exc)

    # --- main loop -------------------------------------------------------------------------

    def _main_loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            reports = self.unsent + self._collect()
            self.unsent = []
            if self.draining.is_set():
                if self._drain_step(reports):
                    return
                continue
            free = self._free()
            limit = free.get("slots", 0)
            got = []
            if limit > 0 or reports:
                try:
                    result = self.link.claim(self.id, free, self.config.labels, limit, self.config.lease_s, reports)
                except BackendError as exc:
                    self._store_unreachable(reports, exc)
                    continue
                self._log_rejected(result.rejected)
                got = result.claims
                if got:
                    faults.point("worker.after_claim")
                for claim in got:
                    self._start(claim)
            if got or self.running or reports:
                idle_since = time.monotonic()
            elif self._idle_too_long(idle_since):
                return
            if not got:
                self._wait(limit > 0)

    def _store_unreachable(self, reports: list[Report], exc: BackendError) -> None:
        """Keep the reports for the next round (a stale one is rejected then, never lost) and
        wait a little; the watchdog stops our attempts if this lasts longer than a lease."""
        log.error("the store is unreachable (%s); %d report(s) kept for later", exc, len(reports))
        self.unsent = reports
        self.draining.wait(1.0)

    def _drain_step(self, reports: list[Report]) -> bool:
        """One round of shutting down; True when nothing is left running."""
        try:
            self._send(reports)
        except BackendError as exc:
            self._store_unreachable(reports, exc)
            if time.monotonic() < self.drain_deadline + self.config.lease_s:
                return False
            log.error("giving up on %d report(s); their leases expire and the tasks run again", len(reports))
            self.unsent = []
        with self.lock:
            left = list(self.running.values())
        if not left:
            return True
        if time.monotonic() >= self.drain_deadline:
            for running in left:
                running.stop(STOP_SHUTDOWN)
        self._wait_for_finished(0.1)
        return False

    def _idle_too_long(self, idle_since: float) -> bool:
        limit = self.config.exit_when_idle_s
        return limit is not None and time.monotonic() - idle_since >= limit

    def _free(self) -> dict[str, int]:
        free = dict(self.config.capacity)
        with self.lock:
            for running in self.running.values():
                for key, amount in running.cost.items():
                    free[key] = free.get(key, 0) - amount
        return free

    def _wait(self, has_capacity: bool) -> None:
        """Sleep until an attempt finishes or, with free capacity, the store changes."""
        if not has_capacity:
            self._wait_for_finished(self.config.poll_s)
            return
        # with database push (LISTEN/NOTIFY) a change wakes us; polling is only a safety net
        idle = self.config.idle_poll_s if getattr(self.link, "pushes_changes", False) else self.config.poll_s
        deadline = time.monotonic() + idle
        step = 0.001
        while time.monotonic() < deadline and not self.draining.is_set():
            if self._wait_for_finished(step) or self.link.wait_for_change(0):
                return
            step = min(step * 2, 0.05)

    def _wait_for_finished(self, timeout_s: float) -> bool:
        try:
            report = self.finished.get(timeout=timeout_s)
        except queue.Empty:
            return False
        self.finished.put(report)
        return True

    def _collect(self) -> list[Report]:
        reports: list[Report] = []
        while True:
            try:
                report = self.finished.get_nowait()
            except queue.Empty:
                return reports
            if report is not None:
                reports.append(report)

    def _send(self, reports: list[Report]) -> None:
        if reports:
            self._log_rejected(self.link.report(self.id, reports))

    def _log_rejected(self, rejected: list[tuple[int, int]]) -> None:
        for task_id, attempt in rejected:
            log.warning("report for task %s attempt %s was rejected as stale", task_id, attempt)

    # --- running attempts -----------------------------------------------------------------

    def _graph(self, graph_id: int) -> Graph:
        graph = self.graphs.get(graph_id)
        if graph is None:
            graph = graph_from_dict(self.link.graph(graph_id).spec, source=f"graph #{graph_id}")
            self.graphs[graph_id] = graph
        return graph

    def _start(self, claim: Claim) -> None:
        graph = self._graph(claim.graph_id)
        running = Running(claim, dict(graph.node(claim.node).cost))
        with self.lock:
            self.running[claim.task_id] = running
        self.threads.submit(self._execute, running, graph)

    def _execute(self, running: Running, graph: Graph) -> None:
        report = None
        try:
            report = run_attempt(running, graph, self.limits, self.pool.borrow, self.pool.give_back)
        except Exception as exc:  # a bug of ours must not lose the attempt silently
            log.exception(
                "attempt %s of task %s failed inside the worker", running.claim.attempt, running.claim.task_id
            )
            report = Report(
                running.claim.task_id,
                running.claim.attempt,
                Outcome.CRASHED,
                running.started_at,
                time.time(),
                error=f"worker error: {exc!r}",
            )
        finally:
            with self.lock:
                self.running.pop(running.claim.task_id, None)
            self.finished.put(report)

    # --- heartbeats -----------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self.stopped.wait(self.config.heartbeat_s):
            with self.lock:
                held = {(r.claim.task_id, r.claim.attempt): r for r in self.running.values()}
            try:
                orders = self.link.heartbeat(self.id, list(held), self.config.lease_s)
            except BackendError as exc:
                log.error("heartbeat failed: %s", exc)
                continue
            self.last_heartbeat_ok = time.monotonic()
            for order in orders:
                running = held.get((order.task_id, order.attempt))
                with self.lock:
                    current = self.running.get(order.task_id)
                if running is not None and running is current:
                    log.warning("stopping task %s attempt %s: %s", order.task_id, order.attempt, order.reason)
                    running.stop(order.reason)

    def _watchdog_loop(self) -> None:
        """Out of touch for longer than a lease: another worker may already run these attempts,
        so stop ours rather than let two copies run. A thread of its own, because the heartbeat
        call itself may be stuck retrying."""
        while not self.stopped.wait(min(1.0, self.config.heartbeat_s)):
            if time.monotonic() - self.last_heartbeat_ok <= self.config.lease_s:
                continue
            with self.lock:
                cut_off = list(self.running.values())
            for running in cut_off:
                log.error("no heartbeat for over a lease: stopping task %s attempt %s",
                          running.claim.task_id, running.claim.attempt)  # fmt: skip
                running.stop(STOP_LEASE_LOST)
