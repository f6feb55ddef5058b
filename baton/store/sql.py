"""The backend logic, written once for every SQL database.

A dialect subclass supplies connections, transactions, the clock and a few clauses
(:meth:`SqlStore.transaction`, the row-locking clauses); everything else — submitting, planning,
claiming, reporting, expiring, cancelling, re-running, leadership — lives here, each verb one
transaction. The reads behind status, logs and audit are in :mod:`baton.store.reads`, those
behind an event's page (timeline, critical path) in :mod:`baton.store.timeline_reads`; the
controller's rule applied to each report is in :mod:`baton.store.advance`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from baton import faults
from baton.engine.planner import Plan
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import Conflict, NotFound, ParamsInvalid, TransientError, UsageError
from baton.graphs.model import Graph
from baton.graphs.params import params_size_problem, storable, text_problem
from baton.graphs.spec import graph_digest, graph_from_dict, graph_to_dict
from baton.store import advance, claims, live_logs
from baton.store.advance import Ended
from baton.store.gauges import SqlGauges
from baton.store.migrate import Revision, Upgrade
from baton.store.reads import EVENTS_FROM, STREAMS, EventRow, SqlReads, StateRow
from baton.store.records import (
    Claim,
    ClaimRequest,
    ClaimResult,
    EventRecord,
    GraphRecord,
    LogTail,
    Report,
    ReportAnswers,
    StopOrder,
    WorkerInfo,
)
from baton.store.rerun import NodeName, event_head, reset_for_rerun
from baton.store.retry import retried
from baton.store.rows import (
    FENCED_FROM,
    RUNNING_FROM,
    AttemptEnd,
    Fenced,
    GraphRow,
    HolderRow,
    IdRow,
    KeyedEvent,
    Running,
    SinceRow,
    SpecRow,
)
from baton.store.timeline_reads import SqlTimelineReads
from baton.store.tokens import SqlTokens
from baton.store.tx import Tx, exists, in_list, read_one, read_rows, scalar, select_list

if TYPE_CHECKING:
    from baton.store.protocol import ChangeFeed

MAX_KEY_CHARS = 200  # an idempotency key
REQUIREMENTS_CHECK_S = 1.0
K = TypeVar("K")
V = TypeVar("V")


def _ended_here(tx: Tx, row: Running, outcome: Outcome, error: str) -> Ended:
    """An attempt the backend itself ends (lease expired, claim reply lost)."""
    report = Report(row.id, row.attempt, outcome, row.started_at or tx.now, tx.now, error=error)
    return Ended(report, event_id=row.event_id, graph_id=row.graph_id, node=row.node, partition=row.partition,
                 failures=row.failures, worker_id=row.worker_id, cancelling=bool(row.event_cancelling))  # fmt: skip


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _storable(r: Report) -> Report:
    """The report with its texts made storable by any database (see :func:`storable`)."""
    stdout, stderr = storable(r.stdout), storable(r.stderr)
    error = None if r.error is None else storable(r.error)
    if stdout is r.stdout and stderr is r.stderr and error is r.error:
        return r
    return dataclasses.replace(r, stdout=stdout, stderr=stderr, error=error)


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)


class _Recent(OrderedDict[K, V]):
    """A dict that forgets its oldest entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)


class SqlStore(SqlTokens, SqlGauges, SqlTimelineReads, SqlReads):
    """Backend verbs over a SQL database; see :mod:`baton.store.protocol`."""

    dialect = ""  # "sqlite", "postgresql"
    skip_locked = ""  # "FOR UPDATE OF t SKIP LOCKED" where the database has it: claim without waiting
    row_lock = ""  # "FOR UPDATE OF t" where the database locks rows, not the whole file
    event_lock = ""  # "FOR UPDATE": two controllers must not plan one event at once
    # "FOR KEY SHARE OF t" where the database locks rows: keeps an attempt from ending (which
    # locks its task FOR UPDATE) until the commit, without waiting on a heartbeat's lease update
    share_lock = ""
    pushes_changes = False  # True when wait_for_change is woken by the database (LISTEN/NOTIFY)
    reconnect_s = 0.0  # how long verbs retry transient failures (0: never)

    def __init__(self, max_result_bytes: int, max_params_bytes: int, max_log_bytes: int) -> None:
        self.max_result_bytes = max_result_bytes
        self.max_params_bytes = max_params_bytes
        self.max_log_bytes = max_log_bytes  # a live log stops growing there
        self._graphs: dict[int, Graph] = {}
        self._requirements: dict[int, claims.Requirement] = {}
        self._requirements_checked = 0.0
        self._requirements_stale = True
        self._events = _Recent[int, claims.EventInfo](256)  # immutable parts of recent events, for claims
        self._lock = threading.Lock()

    # --- dialect hooks ------------------------------------------------------------------

    @abstractmethod
    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]:
        """Open a transaction; a write transaction takes the write lock at once."""

    @property
    @abstractmethod
    def url(self) -> str:
        """The URL this backend was opened with (another process opens the same store with it)."""

    @abstractmethod
    def schema_revision(self) -> Revision: ...

    @abstractmethod
    def migrate(self) -> Upgrade: ...

    @abstractmethod
    def close(self) -> None: ...

    def _after_plan(self, tx: Tx, tasks: int) -> None:
        """A dialect's chance to act after an event's tasks were inserted (see PostgreSQL)."""

    @abstractmethod
    def wait_for_change(self, timeout_s: float) -> bool: ...

    @abstractmethod
    def change_fd(self) -> int | None: ...

    def wake_feed(self) -> ChangeFeed:
        """Changes that may have made work claimable or finished an event (where the database
        wakes only for those, as PostgreSQL's NOTIFY does: this backend itself)."""
        return self

    # --- graphs ---------------------------------------------------------------------------

    def graph_of(self, graph_id: int) -> Graph:
        """The validated graph of a registered version (immutable, so cached forever)."""
        graph = self._graphs.get(graph_id)
        if graph is None:
            graph = self._cache_graph(graph_id, self.graph(graph_id).spec)
        return graph

    def _graph_in(self, tx: Tx, graph_id: int) -> Graph:
        """graph_of, read through an open transaction."""
        graph = self._graphs.get(graph_id)
        if graph is None:
            row = read_one(tx, SpecRow, "SELECT spec FROM graphs WHERE id = ?", (graph_id,))
            if row is None:
                raise NotFound(f"no graph with id {graph_id}")
            graph = self._cache_graph(graph_id, json.loads(row.spec))
        return graph

    def _cache_graph(self, graph_id: int, spec: Mapping[str, Any]) -> Graph:
        graph = graph_from_dict(spec, source=f"graph #{graph_id}", stored=True)
        with self._lock:
            self._graphs[graph_id] = graph
        return graph

    @retried
    def register_graph(self, graph: Graph, source: str = "") -> GraphRecord:
        digest = graph_digest(graph)
        spec = json.dumps(graph_to_dict(graph), sort_keys=True)
        same = "SELECT id FROM graphs WHERE name = ? AND digest = ?"
        with self.transaction() as tx:
            row = read_one(tx, IdRow, same, (graph.name, digest))
            if row is None:
                latest = scalar(tx, "SELECT MAX(version) FROM graphs WHERE name = ?", (graph.name,)) or 0
                row = read_one(
                    tx,
                    IdRow,
                    "INSERT INTO graphs (name, version, event_type, digest, spec, source, registered_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                    (graph.name, latest + 1, graph.event_type, digest, spec, source, tx.now),
                )
                if row is None:  # registered concurrently: the same graph, or another took the version
                    row = read_one(tx, IdRow, same, (graph.name, digest))
                    if row is None:
                        raise TransientError(f"version {latest + 1} of {graph.name} was taken concurrently")
                else:
                    tx.audit("operator", "graph.registered", source or "api", graph=graph.name, version=latest + 1)
        return self.graph(row.id)

    @retried
    def graph(self, graph_id: int) -> GraphRecord:
        with self.transaction(write=False) as tx:
            row = read_one(tx, GraphRow, f"SELECT {select_list(GraphRow)} FROM graphs WHERE id = ?", (graph_id,))
        if row is None:
            raise NotFound(f"no graph with id {graph_id}")
        return GraphRecord(**{**row._asdict(), "spec": json.loads(row.spec)})

    @retried
    def latest_graph(self, event_type: str) -> GraphRecord:
        with self.transaction(write=False) as tx:
            graph_id = scalar(tx, "SELECT MAX(id) FROM graphs WHERE event_type = ?", (event_type,))
        if graph_id is None:
            raise NotFound(f"no graph is registered for event type '{event_type}' (see 'baton graph register')")
        return self.graph(graph_id)

    @retried
    def graphs(self) -> list[GraphRecord]:
        with self.transaction(write=False) as tx:
            ids = [r.id for r in read_rows(tx, IdRow, "SELECT id FROM graphs ORDER BY name, version")]
        return [self.graph(i) for i in ids]

    # --- events ---------------------------------------------------------------------------

    @retried
    def submit(self, graph_id: int, params: Mapping[str, Any], key: str | None = None) -> tuple[EventRecord, bool]:
        record = self.graph(graph_id)
        canonical = _canonical(params)
        too_big = params_size_problem(canonical, self.max_params_bytes)
        if too_big:
            raise ParamsInvalid([too_big])
        if key is not None and (len(key) > MAX_KEY_CHARS or text_problem(key)):
            raise UsageError(f"an idempotency key is 1 to {MAX_KEY_CHARS} characters of text, without NUL")
        with self.transaction() as tx:
            existing = self._existing_event(tx, key, record.event_type, canonical)
            created = False
            if existing is None:
                row = read_one(
                    tx,
                    IdRow,
                    "INSERT INTO events (type, graph_id, idem_key, params, state, submitted_at) "
                    "VALUES (?, ?, ?, ?, 'submitted', ?) ON CONFLICT DO NOTHING RETURNING id",
                    (record.event_type, graph_id, key, canonical, tx.now),
                )
                if row is None:  # the same key was submitted concurrently and committed first
                    existing = self._existing_event(tx, key, record.event_type, canonical)
                else:
                    existing, created = int(row.id), True
                    tx.audit("client", "event.submitted", f"graph {record.name} v{record.version}", existing, key=key)
                    tx.changed()
            assert existing is not None
            # read in the same transaction: the answer is the event as submitted, never as a
            # controller may have moved it a moment after the commit
            event = read_one(tx, EventRow, f"{EVENTS_FROM} WHERE e.id = ?", (existing,))
            assert event is not None
        return event.record(), created

    @staticmethod
    def _existing_event(tx: Tx, key: str | None, event_type: str, canonical: str) -> int | None:
        """The event already submitted under this idempotency key, if it matches."""
        if key is None:
            return None
        row = read_one(tx, KeyedEvent, f"SELECT {select_list(KeyedEvent)} FROM events WHERE idem_key = ?", (key,))
        if row is None:
            return None
        if row.type != event_type or row.params != canonical:
            raise Conflict(
                f"idempotency key {key!r} already names event {row.id} with other parameters; use a new key",
                existing_event=int(row.id),
            )
        return int(row.id)

    @retried
    def events_to_expand(self, limit: int, only: int | None = None) -> list[EventRecord]:
        """Submitted events, oldest first (``only``: that one event, if it is submitted)."""
        with self.transaction(write=False) as tx:
            if only is None:
                sql, params = "SELECT id FROM events WHERE state = 'submitted' ORDER BY id LIMIT ?", (limit,)
            else:
                sql, params = "SELECT id FROM events WHERE state = 'submitted' AND id = ?", (only,)
            ids = [r.id for r in read_rows(tx, IdRow, sql, params)]
        return [self.event(i) for i in ids]

    @retried
    def save_plan(self, event_id: int, plan: Plan) -> bool:
        with self.transaction() as tx:
            head = event_head(tx, event_id, self.event_lock)
            if head is None or head.state != EventState.SUBMITTED:
                return False
            tx.changed()
            req = claims.intern_requirements(tx, tx.graph_of(head.graph_id))
            tx.many(
                "INSERT INTO tasks (event_id, node, partition, state, pending, priority, stage, req_id, "
                "available_at, ready_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        event_id,
                        t.node,
                        t.partition,
                        "ready" if t.pending == 0 else "pending",
                        t.pending,
                        t.priority,
                        t.stage,
                        req[t.node],
                        tx.now,
                        tx.now if t.pending == 0 else None,
                    )
                    for t in plan.tasks
                ],
            )
            for t in plan.tasks:
                if t.pending:
                    tx.moved(event_id, t.node, None, "pending")
            tx.many(
                "INSERT INTO event_nodes (event_id, node, total, remaining) VALUES (?, ?, ?, ?)",
                [(event_id, node, n, n) for node, n in plan.node_totals.items()],
            )
            total = len(plan.tasks)
            tx.q(
                "UPDATE events SET state = 'running', started_at = ?, tasks_total = ?, tasks_active = ? "
                "WHERE id = ? AND state = 'submitted'",
                (tx.now, total, total, event_id),
            )
            ready = sum(1 for t in plan.tasks if t.pending == 0)
            tx.audit(
                "controller",
                "event.expanded",
                "new event",
                event_id,
                tasks=total,
                ready=ready,
                nodes=dict(plan.node_totals),
            )
            self._after_plan(tx, total)
            faults.point("plan.before_commit")
        return True

    @retried
    def fail_event(self, event_id: int, reason: str) -> None:
        """Refuse a submitted event that cannot be expanded (its graph changed shape, or the
        store cannot hold its plan); the reason is kept as the event's error."""
        with self.transaction() as tx:
            moved = tx.q(
                "UPDATE events SET state = 'failed', finished_at = ?, error = ? WHERE id = ? AND state = 'submitted'",
                (tx.now, reason, event_id),
            ).rowcount
            if moved:
                tx.audit("controller", "event.failed", reason, event_id)

    # --- the worker link ------------------------------------------------------------------

    @retried
    def register_worker(self, info: WorkerInfo) -> None:
        with self.transaction() as tx:
            tx.q(
                "INSERT INTO workers (id, name, host, pid, capacity, labels, started_at, last_seen, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active') ON CONFLICT (id) DO UPDATE SET "
                "last_seen = excluded.last_seen, state = 'active'",
                (
                    info.id,
                    info.name,
                    info.host,
                    info.pid,
                    json.dumps(dict(info.capacity)),
                    json.dumps(sorted(info.labels)),
                    tx.now,
                    tx.now,
                ),
            )
            tx.audit(
                f"worker:{info.id}",
                "worker.registered",
                "start",
                capacity=dict(info.capacity),
                labels=sorted(info.labels),
            )

    @retried
    def deregister_worker(self, worker_id: str) -> None:
        with self.transaction() as tx:
            tx.q("UPDATE workers SET state = 'stopped', last_seen = ? WHERE id = ?", (tx.now, worker_id))
            tx.audit(f"worker:{worker_id}", "worker.stopped", "shutdown")

    @retried
    def claim(
        self,
        worker_id: str,
        free: Mapping[str, int],
        labels: frozenset[str],
        limit: int,
        lease_s: float,
        reports: Sequence[Report] = (),
        event_id: int | None = None,
        claim_id: str | None = None,
    ) -> ClaimResult:
        request = ClaimRequest(worker_id, free, labels, limit, lease_s, tuple(reports), event_id, claim_id)
        with self.transaction() as tx:
            return self._claim_tx(tx, request)

    @retried
    def claim_many(self, requests: Sequence[ClaimRequest]) -> list[ClaimResult]:
        """Several workers' claims in one transaction, in order, each as :meth:`claim` would do it
        (one commit for all: the server gathers the claims that arrive together)."""
        with self.transaction() as tx:
            ids = sorted({r.task_id for request in requests for r in request.reports})
            if ids and len(requests) > 1 and self.row_lock:
                # lock every reported task in one order first, as a single claim does, so that two
                # transactions never wait on each other's rows
                read_rows(tx, IdRow, f"SELECT id FROM tasks t WHERE t.id IN ({in_list(ids)}) ORDER BY t.id "
                                     f"{self.row_lock}", ids)  # fmt: skip
            return [self._claim_tx(tx, request) for request in requests]

    def _claim_tx(self, tx: Tx, q: ClaimRequest) -> ClaimResult:
        rejected, tally = self._record_reports(tx, q.worker_id, q.reports)
        faults.point("report.before_commit" if q.reports else "")
        if q.claim_id is not None:
            again, expires = claims.taken_by(tx, q.worker_id, q.claim_id, self.row_lock)
            if again:  # this request was answered before, and the answer lost: the same attempts
                tally.apply(tx)
                got = claims.build_claims(tx, again, expires, self._events)
                return ClaimResult(got, *self._duplicates(tx, q.worker_id, q.reports, rejected))
        # Statements are sent before earlier answers are read where order allows, so that on
        # a pipelined database they share round trips: the releases travel with the pick
        # (which must see them), the counter updates with the upstream results. The counters
        # go last: the event's shared rows stay locked only for the commit.
        got = self._claim_in(tx, q.worker_id, q.free, q.labels, q.limit, q.lease_s, tally, q.event_id, q.claim_id)
        if tally.read(tx) and len(got) < q.limit:
            # what the counters released (a fan-in's downstream) may take the capacity left
            left = dict(q.free)
            for c in got:
                for key, amount in tx.graph_of(c.graph_id).node(c.node).cost.items():
                    left[key] = left.get(key, 0) - amount
            more = self._claim_in(tx, q.worker_id, left, q.labels, q.limit - len(got), q.lease_s, advance.Tally(),
                                  q.event_id, q.claim_id)  # fmt: skip
            got += more
        return ClaimResult(got, *self._duplicates(tx, q.worker_id, q.reports, rejected))

    def _claim_in(
        self,
        tx: Tx,
        worker_id: str,
        free: Mapping[str, int],
        labels: frozenset[str],
        limit: int,
        lease_s: float,
        tally: advance.Tally,
        event_id: int | None = None,
        claim_id: str | None = None,
    ) -> list[Claim]:
        """Pick, take and describe up to ``limit`` tasks; reads the tally's releases and sends
        its counter updates on the way (see claim)."""
        requirements = self._requirements_now(tx)
        chosen = claims.pick(
            tx,
            requirements,
            free,
            labels,
            limit,
            self.skip_locked,
            before_reading=lambda: tally.read_released(tx),
            event_id=event_id,
        )
        self._requirements_stale = len(chosen) < limit
        if not chosen:
            tally.send(tx)
            return []
        expires = claims.take(tx, worker_id, chosen, lease_s, claim_id)
        return claims.build_claims(tx, chosen, expires, self._events, before_reading=lambda: tally.send(tx))

    def _requirements_now(self, tx: Tx) -> dict[int, claims.Requirement]:
        """The interned requirements, re-read when new ones may exist: rows are only ever added
        (when an event is planned), so it suffices to look after a claim came back short, or once
        a second while every claim is filled (a new kind of task then waits at most that long)."""
        now = time.monotonic()
        if self._requirements_stale or now >= self._requirements_checked + REQUIREMENTS_CHECK_S:
            self._requirements_checked = now
            known = scalar(tx, "SELECT MAX(id) FROM requirements") or 0
            if known not in self._requirements and known:
                self._requirements = claims.load_requirements(tx)
        return self._requirements

    @retried
    def report(self, worker_id: str, reports: Sequence[Report]) -> ReportAnswers:
        if not reports:
            return ReportAnswers()
        with self.transaction() as tx:
            rejected, tally = self._record_reports(tx, worker_id, reports)
            tally.apply(tx)
            return ReportAnswers(*self._duplicates(tx, worker_id, reports, rejected))

    @staticmethod
    def _duplicates(
        tx: Tx, worker_id: str, reports: Sequence[Report], rejected: list[tuple[int, int]]
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Split the reports the fence refused into (stale, duplicate). A duplicate is a report
        this worker sent before and that was recorded as it said (a succeeded one may have been
        recorded as an invalid result); an attempt the store ended itself (lease expired, reply
        lost) or that another worker holds is stale."""
        if not rejected:
            return [], []
        ids = sorted({task_id for task_id, _ in rejected})
        sql = (f"SELECT {select_list(AttemptEnd)} FROM attempts "
               f"WHERE worker_id = ? AND task_id IN ({in_list(ids)})")  # fmt: skip
        recorded = {(r.task_id, r.attempt): r.outcome for r in read_rows(tx, AttemptEnd, sql, (worker_id, *ids))}
        said = {(r.task_id, r.attempt): r.outcome for r in reports}
        stale: list[tuple[int, int]] = []
        duplicate: list[tuple[int, int]] = []
        for pair in rejected:
            outcome = recorded.get(pair)
            same = outcome == said[pair] or (said[pair] is Outcome.SUCCEEDED and outcome == Outcome.INVALID_RESULT)
            (duplicate if outcome is not None and same else stale).append(pair)
        return stale, duplicate

    def _record_reports(
        self, tx: Tx, worker_id: str, reports: Sequence[Report]
    ) -> tuple[list[tuple[int, int]], advance.Tally]:
        """Fence each report by (state, attempt, worker); apply the current ones, except for the
        counter updates they owe (returned)."""
        if not reports:
            return [], advance.Tally()
        ids = sorted({r.task_id for r in reports})
        sql = f"{FENCED_FROM} WHERE t.id IN ({in_list(ids)}) ORDER BY t.id {self.row_lock}"
        rows = {row.id: row for row in read_rows(tx, Fenced, sql, ids)}
        ended, rejected = [], []
        for r in reports:
            row = rows.get(r.task_id)
            if row is None or row.state != TaskState.RUNNING or row.attempt != r.attempt or row.worker_id != worker_id:
                rejected.append((r.task_id, r.attempt))
                tx.audit(
                    f"worker:{worker_id}",
                    "report.rejected",
                    "stale attempt",
                    task_id=r.task_id,
                    attempt=r.attempt,
                    current=row.attempt if row else None,
                )
                continue
            ended.append(self._ended(row, worker_id, r))
        return rejected, advance.end_attempts(tx, ended, f"worker:{worker_id}")

    def _ended(self, row: Fenced, worker_id: str, r: Report) -> Ended:
        r = _storable(r)
        if r.outcome is Outcome.SUCCEEDED:
            problem = self._result_problem(r.result_json)
            if problem:
                r = dataclasses.replace(r, outcome=Outcome.INVALID_RESULT, result_json=None, error=problem)
        return Ended(r, event_id=row.event_id, graph_id=row.graph_id, node=row.node, partition=row.partition,
                     failures=row.failures, worker_id=worker_id, cancelling=bool(row.event_cancelling))  # fmt: skip

    def _result_problem(self, result: str | None) -> str | None:
        if result is None:
            return None
        size = len(result.encode())
        if size > self.max_result_bytes:
            return (
                f"result is {size:,} bytes, over the {self.max_result_bytes:,}-byte cap; "
                "write large data to files and return their paths"
            )
        try:
            json.loads(result, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            return f"result is not valid JSON: {exc}"[:500]
        return None

    @retried
    def heartbeat(self, worker_id: str, running: Sequence[tuple[int, int]], lease_s: float) -> list[StopOrder]:
        with self.transaction() as tx:
            tx.q("UPDATE workers SET last_seen = ? WHERE id = ?", (tx.now, worker_id))
            tx.q(
                "UPDATE tasks SET lease_expires_at = ? WHERE worker_id = ? AND state = 'running'",
                (tx.now + lease_s, worker_id),
            )
            rows = read_rows(
                tx,
                Running,
                f"{RUNNING_FROM} WHERE t.worker_id = ? AND t.state = 'running' ORDER BY +t.id {self.row_lock}",
                (worker_id,),
            )
            held = {(r.id, r.attempt): bool(r.cancel_requested) for r in rows}
            self._release_orphans(tx, worker_id, rows, set(running), lease_s / 2)
        stops = []
        for task_id, attempt in running:
            if (task_id, attempt) not in held:
                stops.append(StopOrder(task_id, attempt, "lease lost"))
            elif held[(task_id, attempt)]:
                stops.append(StopOrder(task_id, attempt, "event cancelled"))
        return stops

    @retried
    def append_logs(self, worker_id: str, tails: Sequence[LogTail]) -> list[int | None]:
        for t in tails:
            if t.stream not in STREAMS or t.offset < 0:
                raise UsageError(f"a log tail needs a stream ({', '.join(STREAMS)}) and an offset >= 0 "
                                 f"(got {t.stream!r}, {t.offset})")  # fmt: skip
        if not tails:
            return []
        with self.transaction() as tx:
            return live_logs.append(tx, worker_id, tails, self.max_log_bytes, self.share_lock)

    def _release_orphans(
        self, tx: Tx, worker_id: str, rows: Sequence[Running], listed: set[tuple[int, int]], age_s: float
    ) -> None:
        """Hand back attempts the store says this worker holds but the worker does not know of:
        a claim whose reply was lost (the database went away as it committed). Only claims older
        than ``age_s`` count, so one whose reply is still on its way is never taken."""
        lost_reply = "claimed, but the worker never received the claim (lost reply)"
        ended = [
            _ended_here(tx, r, Outcome.RELEASED, lost_reply)
            for r in rows
            if (r.id, r.attempt) not in listed and (r.started_at or tx.now) < tx.now - age_s
        ]
        advance.finish_attempts(tx, ended, f"worker:{worker_id}")

    # --- the controller's verbs -----------------------------------------------------------

    @retried
    def expire_leases(self, limit: int = 500) -> int:
        with self.transaction() as tx:
            return self._expire(tx, limit)

    @retried
    def sweep(self, limit: int, since: float) -> tuple[int, float]:
        """The controller's periodic round in one transaction: expire lost leases, and wake
        workers if a retry's backoff ended after ``since``. Returns (expired, checked up to)."""
        with self.transaction() as tx:
            expired = self._expire(tx, limit)
            due = "SELECT 1 FROM tasks WHERE state = 'ready' AND available_at > ? AND available_at <= ? LIMIT 1"
            if exists(tx, due, (since, tx.now)):
                tx.changed()
            return expired, tx.now

    def _expire(self, tx: Tx, limit: int) -> int:
        rows = read_rows(
            tx,
            Running,
            f"{RUNNING_FROM} WHERE t.state = 'running' AND t.lease_expires_at < ? "
            f"ORDER BY t.lease_expires_at LIMIT ? {self.skip_locked}",
            (tx.now, limit),
        )
        ended = [_ended_here(tx, r, Outcome.LOST, f"worker_lost: lease of worker {r.worker_id} expired") for r in rows]
        advance.finish_attempts(tx, ended, "controller")
        if ended:
            faults.point("expire.before_commit")
        return len(ended)

    @retried
    def cancel(self, event_id: int, actor: str = "operator") -> EventRecord:
        with self.transaction() as tx:
            row = read_one(tx, StateRow, f"SELECT state FROM events WHERE id = ? {self.event_lock}", (event_id,))
            if row is None:
                raise NotFound(f"no event {event_id}")
            state = EventState(row.state)
            if state.terminal:
                raise Conflict(f"event {event_id} is already {state}")
            tx.q("UPDATE events SET cancel_requested = 1 WHERE id = ?", (event_id,))
            tx.changed()
            tx.audit(actor, "event.cancel_requested", "cancel", event_id)
            if state is EventState.SUBMITTED:
                tx.q("UPDATE events SET state = 'cancelled', finished_at = ? WHERE id = ?", (tx.now, event_id))
                tx.audit(actor, "event.cancelled", "cancelled before expansion", event_id)
            else:
                n = 0
                for old in ("pending", "ready"):
                    sql = (f"UPDATE tasks SET state = 'cancelled', finished_at = ? WHERE event_id = ? AND state = ? "
                           f"RETURNING {select_list(NodeName)}")  # fmt: skip
                    for r in read_rows(tx, NodeName, sql, (tx.now, event_id, old)):
                        tx.moved(event_id, r.node, old, "cancelled")
                        n += 1
                tx.q("UPDATE tasks SET cancel_requested = 1 WHERE event_id = ? AND state = 'running'", (event_id,))
                tx.audit(actor, "task.cancelled", "event cancelled", event_id, tasks=n)
                advance.settle(tx, {event_id: n})
            event = read_one(tx, EventRow, f"{EVENTS_FROM} WHERE e.id = ?", (event_id,))  # as this left it
            assert event is not None
        return event.record()

    @retried
    def rerun(
        self, event_id: int, partition: str | None = None, node: str | None = None, actor: str = "operator"
    ) -> int:
        with self.transaction() as tx:
            return reset_for_rerun(tx, event_id, partition, node, actor, self.event_lock)

    @retried
    def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        """Take the role, or keep it, for ``ttl_s``; True when ``holder`` has it now. A holder
        that stops renewing loses it when the time runs out, and a standby takes over."""
        with self.transaction() as tx:
            tx.q(
                "INSERT INTO leadership (role, holder, expires_at, since) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (role) DO NOTHING",
                (role, holder, tx.now + ttl_s, tx.now),
            )
            row = read_one(
                tx,
                SinceRow,
                "UPDATE leadership SET expires_at = ?, since = CASE WHEN holder = ? THEN since ELSE ? END, "
                "holder = ? WHERE role = ? AND (holder = ? OR expires_at < ?) RETURNING since",
                (tx.now + ttl_s, holder, tx.now, holder, role, holder, tx.now),
            )
            if row is not None and row.since == tx.now:
                tx.audit(holder, "leadership.acquired", f"took the {role} role", role=role)
        return row is not None

    @retried
    def resign(self, role: str, holder: str) -> None:
        """Give the role up at once (on a clean shutdown), so a standby need not wait."""
        with self.transaction() as tx:
            tx.q("UPDATE leadership SET expires_at = 0 WHERE role = ? AND holder = ?", (role, holder))

    @retried
    def leader(self, role: str) -> str | None:
        with self.transaction(write=False) as tx:
            sql = "SELECT holder FROM leadership WHERE role = ? AND expires_at >= ?"
            row = read_one(tx, HolderRow, sql, (role, tx.now))
        return None if row is None else str(row.holder)

    def statements_executed(self) -> float | None:
        """Statements run so far, where the database counts them (see PostgreSQL); else None."""
        return None
