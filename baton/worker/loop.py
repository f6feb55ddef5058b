"""The task server: pull what fits, run it, report, heartbeat; stop cleanly on SIGTERM.

One main thread talks to the backend (claims carry the finished reports, so one
transaction does both) and, in the same loop, waits on the pipes of the executors running
Python attempts, their timeouts and a wake-up pipe: no thread hand-off per task. Argv commands
each wait on a thread of their own and post their report back. One heartbeat thread extends
leases and carries out stop orders; one more sends what running attempts wrote so far, for
their live logs (``tail.py``). The worker never holds more
attempts than its free capacity allows: there is no prefetch, so nothing sits invisibly here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from baton import faults
from baton.engine.planner import node_stages
from baton.engine.states import Outcome
from baton.errors import BackendError, BatonError, Forbidden, TransientError, Unauthenticated
from baton.graphs.model import Graph, PythonAction
from baton.graphs.spec import graph_from_dict
from baton.settings import Settings
from baton.store.protocol import WorkerLink
from baton.store.records import (
    STOP_HOLD_LOST,
    STOP_HOLD_WANTED,
    STOP_RECALLED,
    Claim,
    ClaimRequest,
    Report,
    StopOrder,
    WorkerInfo,
    unrecordable,
)
from baton.worker.executor import Executor
from baton.worker.holding import Book, Pace
from baton.worker.pool import ExecutorPool
from baton.worker.runner import (
    STOP_LEASE_LOST,
    STOP_SHUTDOWN,
    Limits,
    Running,
    fenced,
    finish_python,
    run_command_attempt,
    start_python,
    time_out_python,
)
from baton.worker.tail import Tailer

log = logging.getLogger("baton.worker")
REFUSALS = (Unauthenticated, Forbidden)  # a server that will not take this worker's token: retrying cannot help
GIVE_UP_S = 5.0  # how long a refused worker waits for its stopped attempts to end
# Where the store cannot wake us (no file watching): the longest step between two looks for new
# work while idle with free capacity. A look reads a counter (SQLite's data_version) in microseconds.
CHANGE_POLL_MAX_S = 0.01


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """What one worker process needs: its own shape (capacity, labels, name) and, from the
    settings, its timings and caps. The settings' fields have no default here: build it with
    :meth:`from_settings`, so each default is written once, in :class:`~baton.settings.Settings`."""

    capacity: Mapping[str, int]
    labels: frozenset[str] = frozenset()
    name: str = ""
    lease_s: float
    heartbeat_s: float
    poll_s: float
    idle_poll_s: float  # the safety-net poll when the backend pushes changes
    drain_s: float
    log_tail_s: float  # how often running attempts' new output goes to the store
    max_result_bytes: int
    max_log_bytes: int
    exit_when_idle_s: float | None = None  # for tests and one-shot runs
    event_id: int | None = None  # take only this event's tasks (baton run); None: any event
    hold: int = 0  # tasks held beyond the free slots (baton.worker.holding); 0: none, claim to run
    hold_adapts: bool = False  # hold at most ``hold``, as many as the pace asks (else ``hold`` exactly)
    hold_s: float  # how long the store keeps a hold without a heartbeat (the settings' or server's)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerConfig:
        """A worker's config from ``settings``; ``overrides`` set fields directly (``capacity`` at least)."""
        values: dict[str, Any] = {
            "lease_s": settings.lease_s,
            "heartbeat_s": settings.heartbeat_interval_s,
            "poll_s": settings.poll_s,
            "idle_poll_s": settings.idle_poll_s,
            "drain_s": settings.drain_s,
            "log_tail_s": settings.log_tail_s,
            "max_result_bytes": settings.max_result_bytes,
            "max_log_bytes": settings.max_log_bytes,
            "hold_s": settings.hold_lease_s,
        }
        return cls(**{**values, **overrides})


class Worker:
    def __init__(self, link: WorkerLink, config: WorkerConfig) -> None:
        self.link = link
        self.config = config
        host = socket.gethostname()
        self.id = f"{config.name or host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.info = WorkerInfo(self.id, config.name or host, host, os.getpid(), dict(config.capacity), config.labels)
        self.limits = Limits(config.max_result_bytes, config.max_log_bytes)
        self.tailer = Tailer(link, self.id, config.max_log_bytes)
        self.pool = ExecutorPool(config.capacity.get("slots", 1))
        self.threads = ThreadPoolExecutor(
            max_workers=max(1, config.capacity.get("slots", 1)), thread_name_prefix="baton-command"
        )
        self.running: dict[int, Running] = {}
        self.on_executors: dict[Connection, tuple[Running, Executor]] = {}  # Python attempts, by executor pipe
        self.done: list[Report] = []  # finished, not yet reported
        self.from_threads: queue.SimpleQueue[Report | None] = queue.SimpleQueue()  # argv commands' reports
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.graphs: dict[int, Graph] = {}
        self.stages: dict[int, dict[str, int]] = {}  # each graph's node stages (for held tasks' order)
        self.lock = threading.Lock()
        # Held by a claim until what it took is in self.running, and by a heartbeat from listing
        # self.running until the store has answered. The store hands back, as a lost reply, what
        # it says this worker runs but the heartbeat does not list; without this, a heartbeat
        # listed before a claim and delivered after it (queued behind other writers for half a
        # lease) handed back tasks this worker had just started.
        self.claiming = threading.Lock()
        self.draining = threading.Event()
        self.stopped = threading.Event()
        self.drain_deadline = float("inf")
        self.last_heartbeat_ok = time.monotonic()
        self.unsent: list[Report] = []
        self.change_fd: int | None = None  # readable when the store may have changed (set in run)
        self.refused: BatonError | None = None  # the server refused our token: the worker ends with this
        # Holding tasks (--hold): what is held, the pace that sizes it, the reports the exchange
        # thread sends next, and its wake-up pipe.
        self.book = Book(config.hold_s) if config.hold > 0 else None
        self.pace = Pace()
        self.owed: list[Report] = []
        self.ended: dict[int, Mapping[str, int]] = {}  # ended attempts' costs until their reports are owed
        self.starting: dict[int, Mapping[str, int]] = {}  # taken to start, not yet in self.running
        self.in_flight = False
        self.kick_r, self.kick_w = os.pipe()
        os.set_blocking(self.kick_r, False)
        os.set_blocking(self.kick_w, False)
        self.exchange_stop = threading.Event()

    # --- lifecycle --------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.draining.is_set():
            self.drain_deadline = 0.0  # a second signal: hand everything back now
            self._wake()
        else:
            self.request_stop()

    def request_stop(self, drain_s: float | None = None) -> None:
        """Stop claiming; let running attempts finish for ``drain_s``, then release them."""
        grace = self.config.drain_s if drain_s is None else drain_s
        self.drain_deadline = time.monotonic() + grace
        self.draining.set()
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full (a wake-up is pending) or closed
            os.write(self.wake_w, b"!")

    def run(self) -> None:
        self.link.register_worker(self.info)
        self.change_fd = self.link.change_fd()
        self.pool.warm(self.config.capacity.get("slots", 1))
        beat = threading.Thread(target=self._heartbeat_loop, name="baton-heartbeat", daemon=True)
        beat.start()
        watchdog = threading.Thread(target=self._watchdog_loop, name="baton-watchdog", daemon=True)
        watchdog.start()
        tail = threading.Thread(target=self._tail_loop, name="baton-log-tail", daemon=True)
        tail.start()
        try:
            self._main_loop()
        finally:
            self.stopped.set()
            beat.join()  # it shares the backend: nothing may use it after run() returns
            watchdog.join()
            tail.join()
            self.threads.shutdown(wait=True)
            self.pool.close()
            try:
                if self.refused is None:
                    self._poll(0)
                    self._send(self._take_done())
                self.link.deregister_worker(self.id)
            except BackendError as exc:  # their leases expire; the attempts run again elsewhere
                log.error("could not hand in the last reports: %s", exc)
            except REFUSALS as exc:
                self._refuse(exc)
            finally:
                for fd in (self.wake_r, self.wake_w, self.kick_r, self.kick_w):
                    os.close(fd)
        if self.refused is not None:
            raise self.refused

    # --- main loop -------------------------------------------------------------------------

    def _main_loop(self) -> None:
        if self.book is not None:
            self._holding_loop(self.book)
            return
        idle_since = time.monotonic()
        while True:
            if self.refused is not None:
                self._give_up()
                return
            self._poll(0)
            reports = self.unsent + self._take_done()
            self.unsent = []
            if self.draining.is_set():
                if self._drain_step(reports):
                    return
                continue
            free = self._free()
            limit = free.get("slots", 0)
            got = []
            if limit > 0 or reports:
                claimed = self._claim(free, limit, reports)
                if claimed is None:
                    continue
                got = claimed
            if got or self.running or reports:
                idle_since = time.monotonic()
            elif self._idle_too_long(idle_since):
                return
            if not got:
                self._wait(limit > 0)

    def _claim(self, free: dict[str, int], limit: int, reports: list[Report]) -> list[Claim] | None:
        """Hand in ``reports`` and claim up to ``limit`` tasks; start what came back. None when
        the round could not claim (the reports are kept or isolated, and the loop goes on)."""
        if not self.claiming.acquire(timeout=self.config.poll_s):
            # a heartbeat is out (the store may be slow or away): keep watching executors and
            # deadlines, and claim next round
            self.unsent = reports
            return None
        try:
            try:
                asked = ClaimRequest(self.id, free, self.config.labels, limit, self.config.lease_s, tuple(reports),
                                     self.config.event_id)  # fmt: skip
                result = self.link.claim(asked)
            except Exception as exc:
                failure: Exception = exc
            else:
                if result.claims:
                    faults.point("worker.after_claim")
                for claim in result.claims:
                    self._start(claim)
                self._log_rejected(result.rejected)
                return list(result.claims)
        finally:
            self.claiming.release()
        if isinstance(failure, REFUSALS):
            self._refuse(failure)
        elif isinstance(failure, TransientError):
            self._store_unreachable(reports, failure)
        else:  # one bad report must not stall the others
            self._isolate(reports, failure)
        return None

    def _store_unreachable(self, reports: list[Report], exc: Exception) -> None:
        """Keep the reports for the next round (a stale one is rejected then, never lost) and
        wait a little; the watchdog stops our attempts if this lasts longer than a lease."""
        log.error("the store is unreachable (%s); %d report(s) kept for later", exc, len(reports))
        self.unsent = reports
        self._poll(1.0, until_stop=True)

    def _isolate(self, reports: list[Report], exc: Exception) -> None:
        """The store refused a claim for a reason other than an outage. If reports rode on it,
        one of them may be what it cannot take (say, text a database column cannot hold): send
        them one by one, and replace one still refused by a bare failure that says why, so the
        task ends with a recorded cause instead of stalling this worker. When nothing gets
        through, the store itself is failing: keep everything for later."""
        log.error("the store refused a claim (%s: %s)", type(exc).__name__, exc)
        kept = self._one_by_one(reports)
        if kept or not reports:
            self._store_unreachable(kept, exc)

    def _one_by_one(self, reports: list[Report]) -> list[Report]:
        """Send ``reports`` one by one; return those the store could not be reached for."""
        kept = []
        for report in reports:
            try:
                self._send([report])
                continue
            except TransientError:
                kept.append(report)
                continue
            except Exception as refused:
                bare, why = unrecordable(report, refused), str(refused)
            try:
                self._send([bare])
                log.error("task %s attempt %s: its report could not be recorded (%s); recorded as failed",
                          report.task_id, report.attempt, why)  # fmt: skip
            except Exception:
                kept.append(report)
        return kept

    def _refuse(self, exc: Unauthenticated | Forbidden) -> None:
        """The server refused this worker's token (revoked, or not allowed what it asks): nothing
        it does can be recorded any more, and retrying cannot help. End the worker, saying why."""
        if self.refused is None:
            log.error("the server refused this worker (%s): stopping", exc)
            self.refused = type(exc)(f"the server refused this worker: {exc}")
        self._wake()

    def _give_up(self) -> None:
        """After a refusal: stop every attempt (their leases expire and the tasks run again
        elsewhere) and drop their reports, which the server would refuse too."""
        with self.lock:
            left = list(self.running.values())
        for running in left:
            running.stop(STOP_SHUTDOWN)
        deadline = time.monotonic() + GIVE_UP_S
        while self.running and time.monotonic() < deadline:
            self._poll(0.1)
        self.done, self.unsent = [], []

    def _drain_step(self, reports: list[Report]) -> bool:
        """One round of shutting down; True when nothing is left running."""
        try:
            self._send(reports)
        except REFUSALS as exc:
            self._refuse(exc)  # the main loop gives up at its next round
            return False
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
        self._poll(0.1)
        return False

    def _idle_too_long(self, idle_since: float) -> bool:
        limit = self.config.exit_when_idle_s
        return limit is not None and time.monotonic() - idle_since >= limit

    def _free(self) -> dict[str, int]:
        with self.lock:
            return self._free_now()

    def _free_now(self) -> dict[str, int]:
        """The capacity no running attempt uses, nor one whose report is not yet owed to the store
        (the caller holds ``self.lock``)."""
        free = dict(self.config.capacity)
        for cost in [*(r.cost for r in self.running.values()), *self.ended.values(), *self.starting.values()]:
            for key, amount in cost.items():
                free[key] = free.get(key, 0) - amount
        return free

    def _wait(self, has_capacity: bool) -> None:
        """Sleep until an attempt finishes or, with free capacity, the store changes."""
        if not has_capacity:
            self._poll(self.config.poll_s)
            return
        if self.change_fd is not None:
            # the store wakes us (a watched log, LISTEN/NOTIFY): the timeout is only a safety net
            deadline = time.monotonic() + self.config.idle_poll_s
            while time.monotonic() < deadline and not self.draining.is_set():
                if self._poll(deadline - time.monotonic(), also=self.change_fd) or self.link.wait_for_change(0):
                    return
            return
        step = 0.001
        deadline = time.monotonic() + self.config.poll_s
        while time.monotonic() < deadline and not self.draining.is_set():
            if self._poll(step) or self.link.wait_for_change(0):
                return
            step = min(step * 2, CHANGE_POLL_MAX_S)

    def _poll(self, timeout_s: float, until_stop: bool = False, also: int | None = None) -> bool:
        """Wait up to ``timeout_s`` for attempts to end (answers on executor pipes, reports from
        command threads, timeouts), a wake-up, or ``also`` to be readable; collect what ended into
        ``self.done``. True when something ended. ``until_stop`` ends the wait early only for a
        stop request."""
        deadline = time.monotonic() + timeout_s
        extra = [] if also is None else [also]
        while True:
            now = time.monotonic()
            due = min((r.deadline for r, _ in self.on_executors.values()), default=math.inf)
            wait_s = max(0.0, min(deadline, due) - now)
            ready = wait([*self.on_executors, self.wake_r, *extra], wait_s)
            ended = self._collect([r for r in ready if r not in extra])
            if ended or (ready and not until_stop) or self.draining.is_set() or time.monotonic() >= deadline:
                return ended

    def _collect(self, ready: list[Any]) -> bool:
        """Turn what the wait returned (and any passed timeouts) into reports."""
        before = len(self.done)
        for conn in ready:
            if conn == self.wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 4096)
                continue
            running, executor = self.on_executors.pop(conn)
            self._finished(running, finish_python(running, executor, self.limits), executor)
        now = time.monotonic()
        for conn, (running, executor) in list(self.on_executors.items()):
            if running.deadline <= now:
                del self.on_executors[conn]
                self._finished(running, time_out_python(running, executor, self.limits), executor)
        while True:
            try:
                report = self.from_threads.get_nowait()
            except queue.Empty:
                break
            if report is not None:
                self.done.append(report)
        return len(self.done) > before

    def _finished(self, running: Running, report: Report | None, executor: Executor | None = None) -> None:
        """Record an attempt's end; its executor (if any) goes back to the pool."""
        report = fenced(running, report) if report is not None else None
        with self.lock:
            self.running.pop(running.claim.task_id, None)
            self._unsent(running, report)
        if executor is not None:
            self.pool.give_back(executor)
        if report is not None:
            self.done.append(report)

    def _unsent(self, running: Running, report: Report | None) -> None:
        """With holds (the caller holds ``self.lock``): the attempt's slot counts as taken until its
        report is on its way, so the exchange thread never claims a task to run in it before the
        store hears that it freed (the store would see the worker run more than its slots)."""
        if self.book is not None and report is not None:
            self.ended[running.claim.task_id] = running.cost

    def _take_done(self) -> list[Report]:
        done, self.done = self.done, []
        return done

    def _send(self, reports: list[Report]) -> None:
        if reports:
            self._log_rejected(self.link.report(self.id, reports).stale)

    def _log_rejected(self, rejected: list[tuple[int, int]]) -> None:
        for task_id, attempt in rejected:
            log.warning("report for task %s attempt %s was rejected as stale", task_id, attempt)

    # --- running attempts -----------------------------------------------------------------

    def _graph(self, graph_id: int) -> Graph:
        graph = self.graphs.get(graph_id)
        if graph is None:
            graph = graph_from_dict(self.link.graph(graph_id).spec, source=f"graph #{graph_id}", stored=True)
            self.graphs[graph_id] = graph
        return graph

    def _start(self, claim: Claim) -> None:
        try:
            graph = self._graph(claim.graph_id)
            node = graph.node(claim.node)
        except Exception as exc:  # a graph this worker cannot decode: the attempt fails, the worker goes on
            log.error("task %s: cannot load its graph #%s: %s", claim.task_id, claim.graph_id, exc)
            with self.lock:
                cost = self.starting.pop(claim.task_id, None)
                if cost is not None:  # its slot stays taken until the report is on its way
                    self.ended[claim.task_id] = cost
            self.done.append(Report(claim.task_id, claim.attempt, Outcome.INVALID_RESULT, time.time(), time.time(),
                                    error=f"the worker cannot load the task's graph: {exc}"[:2000]))  # fmt: skip
            return
        running = Running(claim, node, dict(node.cost))
        with self.lock:
            self.running[claim.task_id] = running
            self.starting.pop(claim.task_id, None)
        if not isinstance(node.action, PythonAction):
            self.threads.submit(self._run_command, running, graph)
            return
        executor = self.pool.borrow()
        try:
            early = start_python(running, graph, self.limits, executor)
        except Exception as exc:  # a bug of ours must not lose the attempt silently
            early = self._crashed_inside(running, exc)
        if early is not None:
            self._finished(running, early, executor)
        else:
            self.on_executors[executor.conn] = (running, executor)

    def _run_command(self, running: Running, graph: Graph) -> None:
        report: Report | None = None
        try:
            report = fenced(running, run_command_attempt(running, graph, self.limits))
        except Exception as exc:  # a bug of ours must not lose the attempt silently
            report = self._crashed_inside(running, exc)
        finally:
            with self.lock:
                self.running.pop(running.claim.task_id, None)
                self._unsent(running, report)
            self.from_threads.put(report)
            self._wake()

    def _crashed_inside(self, running: Running, exc: Exception) -> Report:
        log.exception("attempt %s of task %s failed inside the worker", running.claim.attempt, running.claim.task_id)
        running.detach()
        c = running.claim
        return Report(c.task_id, c.attempt, Outcome.CRASHED, running.started_at, time.time(),
                      error=f"worker error: {exc!r}")  # fmt: skip

    # --- heartbeats -----------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        book = self.book
        while not self.stopped.wait(self.config.heartbeat_s):
            with self.claiming:
                with self.lock:
                    unacknowledged = book.unacknowledged if book is not None else {}
                    held = {(r.claim.task_id, r.claim.attempt): r for r in self.running.values()
                            if r.claim.task_id not in unacknowledged}  # fmt: skip
                    listed = book.listed() if book is not None else []
                sent_at = time.monotonic()
                try:
                    if book is None:
                        orders = self.link.heartbeat(self.id, list(held), self.config.lease_s)
                    else:
                        orders = self.link.heartbeat(self.id, list(held), self.config.lease_s, listed,
                                                     self.config.hold_s)  # fmt: skip
                except BackendError as exc:
                    log.error("heartbeat failed: %s", exc)
                    continue
                except REFUSALS as exc:
                    self._refuse(exc)
                    return
            self.last_heartbeat_ok = time.monotonic()
            if book is not None:
                orders = self._held_orders(book, orders, listed, sent_at)
            for order in orders:
                running = held.get((order.task_id, order.attempt))
                with self.lock:
                    current = self.running.get(order.task_id)
                if running is not None and running is current:
                    log.warning("stopping task %s attempt %s: %s", order.task_id, order.attempt, order.reason)
                    running.stop(order.reason)

    def _tail_loop(self) -> None:
        """Send what running attempts wrote since the last round, every ``log_tail_s``. A thread
        of its own, so a slow store delays neither heartbeats nor reports; a failure is logged
        (once until the next success) and never fatal: the reports carry the output anyway."""
        failing = False
        while not self.stopped.wait(self.config.log_tail_s):
            with self.lock:
                running = list(self.running.values())
            try:
                self.tailer.step(running)
            except Exception as exc:
                if not failing:
                    log.warning("could not send running tasks' output to the store: %s", exc)
                failing = True
            else:
                failing = False

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

    # --- holding tasks (--hold) ---------------------------------------------------------------

    def _holding_loop(self, book: Book) -> None:
        """The main loop of a worker that holds tasks (:mod:`baton.worker.holding`): start held
        tasks as slots free and collect what ends; a thread of its own claims (:meth:`_exchange_loop`),
        so no slot waits for a round trip while the worker holds a task for it."""
        exchanger = threading.Thread(target=self._exchange_loop, args=(book,), name="baton-exchange", daemon=True)
        self._kick()  # the first claim at once
        exchanger.start()
        try:
            idle_since = time.monotonic()
            while True:
                if self.refused is not None:
                    self._give_up()
                    return
                self._poll(0)
                with self.lock:
                    done = self._take_done()
                    self.owed += done
                    for report in done:
                        self.ended.pop(report.task_id, None)
                if self.draining.is_set():
                    if self._holding_drain_step(book):
                        return
                    continue
                started = self._start_held(book)
                with self.lock:
                    owed = bool(self.owed or book.starts or book.releases)
                    busy = owed or bool(self.running or book.held or book.to_run) or self.in_flight
                if owed or started:
                    self._kick()
                if busy:
                    idle_since = time.monotonic()
                elif self._idle_too_long(idle_since):
                    return
                if not started:
                    self._poll(self.config.poll_s if busy else self.config.idle_poll_s)
        finally:
            self.exchange_stop.set()
            self._kick()
            exchanger.join()

    def _kick(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.kick_w, b"!")

    def _start_held(self, book: Book) -> int:
        """Start the held tasks that fit the free capacity now; how many started."""
        with self.lock:
            claimed, book.to_run = book.to_run, []  # claimed to run: running already, for idle slots
            costs = {h.claim.task_id: self._cost(h.claim) for h in book.held}
            free = self._free_now()
            for claim in claimed:
                for key, amount in self._cost(claim).items():
                    free[key] = free.get(key, 0) - amount
            taken = claimed + book.take(free, costs, time.monotonic())
            for claim in taken:  # their slots are taken from now on, before _start lists them as running
                self.starting[claim.task_id] = costs.get(claim.task_id) or self._cost(claim)
        for claim in taken:
            self._start(claim)
        return len(taken)

    def _cost(self, claim: Claim) -> Mapping[str, int]:
        graph = self.graphs.get(claim.graph_id)  # loaded when the hold arrived (a failed load: one slot)
        try:
            return {"slots": 1} if graph is None else graph.node(claim.node).cost
        except KeyError:
            return {"slots": 1}

    def _rank(self, claim: Claim) -> tuple[int, ...]:
        """A held task's place in the queue's order, as far as its graph tells (its node's
        priority, then deepest stage first; the event's priority and fair turns are the store's)."""
        graph = self.graphs.get(claim.graph_id)
        if graph is None:
            return (0, 0)
        stages = self.stages.get(claim.graph_id)
        if stages is None:
            stages = self.stages[claim.graph_id] = node_stages(graph)
        try:
            return (-graph.node(claim.node).priority, -stages.get(claim.node, 0))
        except KeyError:
            return (0, 0)

    def _holding_drain_step(self, book: Book) -> bool:
        """One round of shutting down while holding: give every hold back, let the exchange thread
        send what is owed, let running attempts finish (stopped at the drain's end); True when
        nothing is left to do (or the store stayed away for a lease past the drain's end)."""
        with self.lock:
            book.give_all_back()
        self._start_held(book)  # tasks claimed to run before the drain began: they run, as running ones do
        with self.lock:
            owed = bool(self.owed or book.starts or book.releases) or self.in_flight
            left = list(self.running.values())
        if owed:
            self._kick()
        if not left and not owed:
            return True
        now = time.monotonic()
        if now >= self.drain_deadline + self.config.lease_s:
            log.error("giving up on what is owed to the store; leases and holds expire and the tasks run again")
            return not left
        if left and now >= self.drain_deadline:
            for running in left:
                running.stop(STOP_SHUTDOWN)
        self._poll(0.1)
        return False

    def _exchange_loop(self, book: Book) -> None:
        """Send what the worker owes the store (reports, starts, holds given back) and ask for
        holds up to the pace's target, one claim at a time, each carrying all that gathered while
        the last was out. After a claim that found less than it asked, wait for the store to
        change (or the safety-net poll) before asking again."""
        hungry = False
        slots = self.config.capacity.get("slots", 1)
        while not self.exchange_stop.is_set():
            watched = [self.kick_r] + ([self.change_fd] if hungry and self.change_fd is not None else [])
            wait(watched, self.config.idle_poll_s if hungry else self.config.poll_s)
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self.kick_r, 4096)
            if self.exchange_stop.is_set():
                return
            changed = hungry and self.link.wait_for_change(0)
            while not self.exchange_stop.is_set():  # until nothing is owed and no hold is wanted
                with self.lock:
                    if self.owed:
                        book.yielding = False  # a task ended: the window may grow again
                    extra = 0 if self.draining.is_set() or book.yielding else self._extra(slots)
                    # the capacity that tasks claimed to run and held tasks will not take is claimed
                    # to run (as without holds: the claim's gate admits keyed and rate-limited
                    # tasks); the window beyond it is held
                    free = self._free_now()
                    _less(free, [self._cost(c) for c in book.to_run])
                    room = 0 if self.draining.is_set() else max(0, free.get("slots", 0))
                    _less(free, [self._cost(h.claim) for h in book.held])
                    free = {key: max(0, amount) for key, amount in free.items()}
                    idle = 0 if self.draining.is_set() else free.get("slots", 0)
                    hold = max(0, extra - max(0, len(book.held) - room))
                    owed = bool(self.owed or book.starts or book.releases)
                    if not owed and (idle + hold == 0 or (hungry and not changed)):
                        break
                    reports, self.owed = self.owed, []
                    starts, book.starts = book.starts, []
                    releases, book.releases = book.releases, []
                    self.in_flight = True
                request = ClaimRequest(self.id, free, self.config.labels, idle, self.config.lease_s, tuple(reports),
                                       self.config.event_id, hold=hold, hold_s=self.config.hold_s,
                                       capacity=self.config.capacity, starts=tuple(starts), releases=tuple(releases),
                                       idle=idle)  # fmt: skip
                hungry = self._exchange(book, request)
                changed = False
                if self.refused is not None:
                    return

    def _extra(self, slots: int) -> int:
        return self.pace.extra(slots, self.config.hold) if self.config.hold_adapts else self.config.hold

    def _exchange(self, book: Book, request: ClaimRequest) -> bool:
        """One claim of the exchange thread; True when it found fewer tasks than it asked."""
        sent_at = time.monotonic()
        try:
            with self.claiming:
                result = self.link.claim(request)
        except Exception as exc:
            self._exchange_failed(book, request, exc)
            return False
        finally:
            with self.lock:
                self.in_flight = False
        self.pace.saw_round_trip(time.monotonic() - sent_at)
        self.pace.saw_runs(request.reports)
        for claim in [*result.claims, *result.holds]:  # their graphs, before the main loop starts them
            with contextlib.suppress(Exception):
                self._graph(claim.graph_id)
        with self.lock:
            for task_id, _ in request.starts:
                book.unacknowledged.pop(task_id, None)
            book.to_run += result.claims
            book.add(result.holds, sent_at, self.running, self._rank)
            book.give_back(result.recalled)
            book.yielding = book.yielding or result.yield_holds
            refused = [self.running[t] for t, a in result.refused_starts
                       if t in self.running and self.running[t].claim.attempt == a]  # fmt: skip
        for running in refused:
            log.warning("task %s attempt %s: the store no longer held it when it started; stopping it",
                        running.claim.task_id, running.claim.attempt)  # fmt: skip
            running.stop(STOP_LEASE_LOST)
        self._log_rejected(result.rejected)
        if result.claims or result.holds or result.recalled:
            self._wake()
        return request.limit + request.hold > len(result.claims) + len(result.holds)

    def _exchange_failed(self, book: Book, request: ClaimRequest, exc: Exception) -> None:
        """Keep what the claim carried for the next one (a stale report is refused then, never
        lost); a report the store cannot take is sent alone, after the starts it needs."""
        if isinstance(exc, REFUSALS):
            self._refuse(exc)
            return
        reports = list(request.reports)
        if not isinstance(exc, TransientError) and reports:
            log.error("the store refused a claim (%s: %s)", type(exc).__name__, exc)
            # the starts and give-backs alone (kept again if they fail too), then each report alone
            self._exchange(book, dataclasses.replace(request, reports=(), hold=0, idle=0))
            with self.lock:
                sent = not set(request.starts) & set(book.starts)
                self.in_flight = True  # the reports are out until kept or sent
            kept = self._one_by_one(reports) if sent else reports
            with self.lock:
                self.owed = kept + self.owed
                self.in_flight = False
            return
        log.error("the store is unreachable (%s); %d report(s) kept for later", exc, len(reports))
        with self.lock:
            self.owed = reports + self.owed
            book.starts = list(request.starts) + book.starts
            book.releases = list(request.releases) + book.releases
        self.exchange_stop.wait(1.0)

    def _held_orders(
        self, book: Book, orders: list[StopOrder], listed: list[tuple[int, int]], sent_at: float
    ) -> list[StopOrder]:
        """Apply a heartbeat's answer about held tasks (renewed, asked back, lost); return the
        orders about running attempts."""
        held = {task_id for task_id, _ in listed}
        recalled = [o.task_id for o in orders if o.reason in (STOP_RECALLED, STOP_HOLD_WANTED)]
        lost = [o.task_id for o in orders if o.reason == STOP_HOLD_LOST]
        with self.lock:
            book.renewed(held - set(lost), sent_at)
            book.give_back(recalled)
            book.forget(lost)
            book.yielding = book.yielding or any(o.reason == STOP_HOLD_WANTED for o in orders)
        if recalled:
            self._kick()
        return [o for o in orders if o.reason not in (STOP_RECALLED, STOP_HOLD_WANTED, STOP_HOLD_LOST)]


def _less(capacity: dict[str, int], costs: list[Mapping[str, int]]) -> None:
    """Take ``costs`` off ``capacity``, in place."""
    for cost in costs:
        for key, amount in cost.items():
            capacity[key] = capacity.get(key, 0) - amount
