"""The workers' verbs over SQL (:class:`~baton.store.protocol.GatheringLink`): register, claim
(reporting first), report, heartbeat, append live logs, leave; each verb one transaction.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from baton import faults
from baton.engine.states import Outcome, TaskState
from baton.errors import UsageError
from baton.store import advance, claims, holds, limits, live_logs
from baton.store.advance import Ended
from baton.store.reads import STREAMS
from baton.store.records import (
    Claim,
    ClaimRequest,
    ClaimResult,
    LogTail,
    Report,
    ReportAnswers,
    StopOrder,
    WorkerInfo,
)
from baton.store.retry import retried
from baton.store.rows import (
    FENCED_FROM,
    RUNNING_FROM,
    AttemptEnd,
    Fenced,
    IdRow,
    Running,
)
from baton.store.tx import Tx, in_list, read_rows, scalar, select_list

if TYPE_CHECKING:
    pass

from baton.store.core import GATE_ROUNDS, REQUIREMENTS_CHECK_S, SqlCore, ended_here, no_constant, storable_report


class WorkerVerbs(SqlCore):
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
            holds.release_all(tx, worker_id)
            tx.audit(f"worker:{worker_id}", "worker.stopped", "shutdown")

    @retried
    def claim(self, request: ClaimRequest) -> ClaimResult:
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
                match, args = tx.is_in("t.id", ids)
                read_rows(tx, IdRow, f"SELECT id FROM tasks t WHERE {match} ORDER BY t.id {self.row_lock}", args)
            return [self._claim_tx(tx, request) for request in requests]

    def _claim_tx(self, tx: Tx, q: ClaimRequest) -> ClaimResult:
        """Record the reports, then claim: one pipeline whose statements are sent before earlier
        answers are read wherever the order allows, so that on a pipelined database they share
        round trips. The releases travel with the pick (which must see them), the counter updates
        with the upstream results; the counters go last, so the event's shared rows stay locked
        only for the commit."""
        holding = q.hold_s > 0
        refused_starts, held_s = holds.start(tx, q.worker_id, q.starts, q.lease_s)
        if q.releases:
            holds.release(tx, q.worker_id, q.releases)
        asked_back = tx.q(holds.RECALLED, (q.worker_id,)) if holding else None  # read last
        refused, owed = self._record_reports(tx, q.worker_id, q.reports)
        faults.point("report.before_commit" if q.reports else "")
        if q.claim_id is not None:
            again, expires = claims.taken_by(tx, q.worker_id, q.claim_id, self.row_lock)
            kept, hold_end = holds.held_for_claim(tx, q.worker_id, q.claim_id) if q.hold else ([], 0.0)
            if again or kept:  # this request was answered before, and the answer lost: the same attempts
                owed.apply(tx)
                got = claims.send_inputs(tx, again, expires, self._events).read(tx)
                held = claims.send_inputs(tx, kept, hold_end, self._events).read(tx)
                recalled, yields = holds.read_recalled(asked_back)
                return ClaimResult(got, *self._duplicates(tx, q.worker_id, q.reports, refused), holds=held,
                                   refused_starts=refused_starts, recalled=recalled, yield_holds=yields,
                                   held_s=held_s)  # fmt: skip
        got = self._claim_in(tx, q, q.free, q.limit, owed)
        if owed.read(tx) and len(got) < q.limit:
            # what the counters released (a fan-in's downstream) may take the capacity left
            left = dict(q.free)
            for c in got:
                for key, amount in tx.graph_of(c.graph_id).node(c.node).cost.items():
                    left[key] = left.get(key, 0) - amount
            got += self._claim_in(tx, q, left, q.limit - len(got), advance.Tally())
        held = self._hold_in(tx, q) if q.hold > 0 else []
        idle = q.idle if holding else q.limit  # a claim that does not hold: its free slots
        if idle > len(got) + len(held):  # idle slots the queue cannot fill: ask others' holds back
            fitting = [r.id for r in self._requirements_now(tx).values() if r.fits(q.labels, q.capacity or q.free)]
            holds.recall_for(tx, q.worker_id, fitting, idle - len(got) - len(held))
        recalled, yields = holds.read_recalled(asked_back)
        return ClaimResult(got, *self._duplicates(tx, q.worker_id, q.reports, refused), holds=held,
                           refused_starts=refused_starts, recalled=recalled, yield_holds=yields,
                           held_s=held_s)  # fmt: skip

    def _hold_in(self, tx: Tx, q: ClaimRequest) -> list[Claim]:
        """Hold up to ``q.hold`` more tasks for ``q``'s worker (after its claims, so the tasks its
        reports released are in the queue): from the queue's head, each fitting the worker's
        capacity, none under a limit (see :mod:`baton.store.holds`)."""
        capacity = q.capacity if q.capacity is not None else q.free
        pick = claims.send_pick(tx, self._requirements_now(tx), capacity, q.labels, q.hold, self.skip_locked,
                                q.event_id, holds.HOLDABLE)  # fmt: skip
        chosen = pick.read(tx)
        if len(chosen) < q.hold:  # short: a new kind of task may be what it lacked (see _requirements_now)
            self._requirements_stale = True
        if not chosen:
            return []
        hold_end = holds.hold(tx, q.worker_id, chosen, q.hold_s, q.claim_id)
        return claims.send_inputs(tx, chosen, hold_end, self._events).read(tx)

    def _claim_in(
        self, tx: Tx, q: ClaimRequest, free: Mapping[str, int], limit: int, owed: advance.Tally
    ) -> list[Claim]:
        """Pick, take and describe up to ``limit`` tasks for ``q``'s worker, reading what ``owed``
        has sent and sending its counter updates on the way (see :meth:`_claim_tx`). Candidates
        whose concurrency key is full or whose rate limit is spent are parked, out of the queue,
        and the capacity they leave is offered to the next ones (at most :data:`GATE_ROUNDS`
        picks)."""
        requirements = self._requirements_now(tx)
        taken: list[claims.Candidate] = []
        expires = tx.now + q.lease_s
        for _ in range(GATE_ROUNDS):
            pick = claims.send_pick(tx, requirements, free, q.labels, limit - len(taken), self.skip_locked, q.event_id)
            owed.read_released(tx)
            chosen = pick.read(tx)
            admitted, parked = limits.gate(tx, chosen)
            if admitted:
                expires = claims.take(tx, q.worker_id, admitted, q.lease_s, q.claim_id)
                taken += admitted
            if not parked or len(taken) >= limit:  # (what was not parked nor taken is another's key)
                break
            free = claims.left_after(free, admitted, requirements)
        self._requirements_stale = len(taken) < limit
        if not taken:
            owed.send(tx)
            return []
        inputs = claims.send_inputs(tx, taken, expires, self._events)
        owed.send(tx)
        return inputs.read(tx)

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
        match, ids = tx.is_in("t.id", sorted({r.task_id for r in reports}))
        sql = f"{FENCED_FROM} WHERE {match} ORDER BY t.id {self.row_lock}"
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
        tally = advance.end_attempts(tx, ended, f"worker:{worker_id}")
        if tally.planned:  # a discovery's partitions: as large as an event's plan may be
            self._after_plan(tx, sum(tally.planned.values()))
        return rejected, tally

    def _ended(self, row: Fenced, worker_id: str, r: Report) -> Ended:
        r = storable_report(r)
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
            json.loads(result, parse_constant=no_constant)
        except (ValueError, RecursionError) as exc:
            return f"result is not valid JSON: {exc}"[:500]
        return None

    @retried
    def heartbeat(
        self,
        worker_id: str,
        running: Sequence[tuple[int, int]],
        lease_s: float,
        held: Sequence[tuple[int, int]] = (),
        hold_s: float = 0.0,
    ) -> list[StopOrder]:
        with self.transaction() as tx:
            dropped = holds.beat(tx, worker_id, held, hold_s) if hold_s > 0 else []
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
            current = {(r.id, r.attempt): bool(r.cancel_requested) for r in rows}
            self._release_orphans(tx, worker_id, rows, set(running), lease_s / 2)
        stops = []
        for task_id, attempt in running:
            if (task_id, attempt) not in current:
                stops.append(StopOrder(task_id, attempt, "lease lost"))
            elif current[(task_id, attempt)]:
                stops.append(StopOrder(task_id, attempt, "event cancelled"))
        return stops + dropped

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
            ended_here(tx, r, Outcome.RELEASED, lost_reply)
            for r in rows
            if (r.id, r.attempt) not in listed and (r.started_at or tx.now) < tx.now - age_s
        ]
        advance.finish_attempts(tx, ended, f"worker:{worker_id}")
