"""The operator's store over ``/api/v1``: :class:`HttpStore` implements
:class:`~baton.store.protocol.OperatorStore`, :class:`~baton.store.protocol.ReadStore`
(schedules, calendars and backfills too), :class:`~baton.store.protocol.WebhookStore` and a
:class:`~baton.store.protocol.ChangeFeed` with a :class:`~baton.client.api.Client`, returning the
store's records. A command written against
those protocols runs the same on the database and through a server (``baton submit --server
URL``), as a worker runs the same on either side of its :class:`~baton.store.protocol.WorkerLink`.

Where the API is shaped otherwise, this store pays for it, not its caller:

- an attempt's output is read by attempt id, two streams a request each, so :meth:`attempts`
  costs a request per task and two per attempt;
- lists page by the server's own cursor, so ``after`` and ``before`` (the store's keyset) are
  reached by reading from the start, and ``event_types`` by filtering what one type would not;
- the wire carries no task's ``pending`` count and no worker's process id: both read 0.

What the API does not offer at all (the audit, timelines, critical paths, backoffs, partition
rows, role holders) raises :class:`~baton.errors.UsageError` naming it, in :func:`_unserved`.

An event is read once per moment: until :meth:`wait_for_change` sees it change (or this store
cancels or reruns it), the event, its state and its counts come from that one answer, so one
printout shows one moment, as one transaction would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from itertools import islice
from pathlib import PurePath
from typing import Any, NoReturn, Unpack

from baton.client.api import Client
from baton.client.objects import Attempt, EventStatus, Task, Worker
from baton.engine.states import EventState
from baton.errors import NotFound, TransientError, UsageError
from baton.graphs.calendars import Calendar, calendar_to_dict
from baton.graphs.model import Graph
from baton.graphs.spec import graph_from_dict, graph_to_dict
from baton.store.records import (
    AttemptRecord,
    AuditFilter,
    AuditRecord,
    BackfillRecord,
    BackfillRequest,
    CalendarRecord,
    DeliveryFilter,
    DeliveryRecord,
    EventFilter,
    EventRecord,
    GraphRecord,
    HeldWait,
    KeyWait,
    LimitKeyRecord,
    LogChunk,
    NodeProgress,
    PartitionRow,
    PathStep,
    PauseAnswer,
    PauseRecord,
    PauseTarget,
    RateKeyRecord,
    RateWait,
    ResumeAnswer,
    RetryWait,
    ScheduleRecord,
    TaskFilter,
    TaskRecord,
    Timeline,
    WaitingGroup,
    WebhookRecord,
    WorkerRecord,
)

POLL_S = 0.5  # how often wait_for_change asks whether an event changed (a bodiless 304 if not)
OUTAGE_S = 30.0  # how long wait_for_change waits out a server that does not answer (a restart)


class HttpStore:
    """The store a ``baton`` command reaches through a server: its URL and a token, no database."""

    def __init__(self, client: Client, *, poll_s: float = POLL_S, outage_s: float = OUTAGE_S) -> None:
        self.client = client
        self.poll_s = poll_s
        self.outage_s = outage_s
        self._moment: dict[int, EventStatus] = {}
        self._graphs: dict[int, GraphRecord] = {}
        self._models: dict[int, Graph] = {}
        self._away_since: float | None = None

    @property
    def url(self) -> str:
        return self.client.url

    def close(self) -> None:
        self.client.close()

    # --- OperatorStore -----------------------------------------------------------------------

    def register_graph(self, graph: Graph, source: str = "") -> GraphRecord:
        """Register through the API (an admin token), which takes the graph as text (JSON is YAML)."""
        text = json.dumps(graph_to_dict(graph))
        version, _ = self.client.register_graph(text, filename=source or f"{graph.name}.json")
        return self.graph(version.id)

    def latest_graph(self, event_type: str) -> GraphRecord:
        record = self.client.latest_graph(event_type)
        self._graphs[record.id] = record
        return record

    def submit(
        self,
        graph_id: int,
        params: Mapping[str, Any],
        key: str | None = None,
        deadline_at: float | None = None,
        priority: int = 0,
    ) -> tuple[EventRecord, bool]:
        """The API takes an event type and a graph version: those of ``graph_id``."""
        graph = self.graph(graph_id)
        return self.client.submit(graph.event_type, params, key=key, graph_version=graph.version,
                                  deadline_at=deadline_at, priority=priority)  # fmt: skip

    def cancel(self, event_id: int, actor: str = "operator") -> EventRecord:
        """The server records the token's name as the actor, whatever ``actor`` says."""
        self._moment.pop(event_id, None)
        return self.client.cancel(event_id)

    def rerun(
        self, event_id: int, partition: str | None = None, node: str | None = None, actor: str = "operator"
    ) -> int:
        """The server records the token's name as the actor, whatever ``actor`` says."""
        self._moment.pop(event_id, None)
        return self.client.rerun(event_id, partition=partition, node=node)

    def pause(self, target: PauseTarget, reason: str = "", actor: str = "operator") -> PauseAnswer:
        """The server records the token's name as the actor, whatever ``actor`` says."""
        if target.event_id is not None:
            self._moment.pop(target.event_id, None)
        return self.client.pause(graph=target.graph, event_id=target.event_id, node=target.node, reason=reason)

    def resume(self, target: PauseTarget, actor: str = "operator") -> ResumeAnswer:
        """The server records the token's name as the actor, whatever ``actor`` says."""
        if target.event_id is not None:
            self._moment.pop(target.event_id, None)
        return self.client.resume(graph=target.graph, event_id=target.event_id, node=target.node)

    # --- OperatorStore: calendars, schedules, backfills ---------------------------------------
    # The server records the token's name as the actor, whatever ``actor`` says.

    def register_calendar(self, calendar: Calendar, source: str = "") -> CalendarRecord:
        """Through the API (an admin token), which takes the calendar as text (JSON is YAML)."""
        filename = PurePath(source).name[:200] if source else f"{calendar.name}.json"
        return self.client.register_calendar(calendar.name, json.dumps(calendar_to_dict(calendar)), filename)

    def pause_schedule(self, name: str, note: str = "", actor: str = "operator") -> ScheduleRecord:
        return self.client.pause_schedule(name, note).record

    def resume_schedule(self, name: str, actor: str = "operator") -> ScheduleRecord:
        return self.client.resume_schedule(name).record

    def trigger_schedule(self, name: str, actor: str = "operator") -> EventRecord:
        return self.client.trigger_schedule(name)

    def start_backfill(self, asked: BackfillRequest, actor: str = "operator") -> BackfillRecord:
        if asked.dry_run:
            return self.client.dry_run_backfill(asked.schedule, asked.from_at, asked.to_at,
                                                max_running=asked.max_running, rerun=asked.rerun).record  # fmt: skip
        return self.client.start_backfill(asked.schedule, asked.from_at, asked.to_at, max_running=asked.max_running,
                                          rerun=asked.rerun)  # fmt: skip

    def cancel_backfill(self, backfill_id: int, actor: str = "operator") -> BackfillRecord:
        return self.client.cancel_backfill(backfill_id)

    # --- ReadStore: calendars, schedules, backfills --------------------------------------------

    def calendars(self) -> list[CalendarRecord]:
        return self.client.calendars()

    def schedules(self) -> list[ScheduleRecord]:
        return [s.record for s in self.client.schedules(next_fires=0)]

    def schedule(self, name: str) -> ScheduleRecord:
        return self.client.schedule(name, next_fires=0).record

    def backfills(self, limit: int = 50) -> list[BackfillRecord]:
        """The API lists up to 200 at a time (the store up to 500)."""
        return self.client.backfills(limit=max(1, min(limit, 200)))

    def backfill(self, backfill_id: int) -> BackfillRecord:
        return self.client.backfill(backfill_id)

    # --- ReadStore: events -------------------------------------------------------------------

    def event(self, event_id: int) -> EventRecord:
        return self._status(event_id).event

    def event_state(self, event_id: int) -> EventState:
        return self._status(event_id).state

    def node_counts(self, event_id: int) -> dict[str, dict[str, int]]:
        return {node: dict(states) for node, states in self._status(event_id).nodes.items()}

    def node_progress(self, event_id: int) -> list[NodeProgress]:
        counts = self.node_counts(event_id)
        totals = {node: sum(states.values()) for node, states in counts.items()}
        return [NodeProgress(n, totals[n], totals[n] - counts[n].get("succeeded", 0)) for n in sorted(counts)]

    def events(self, **asked: Unpack[EventFilter]) -> list[EventRecord]:
        before, types, limit = asked.get("before"), asked.get("event_types"), asked.get("limit", 20)
        whole = before is None and types is None  # else pages are read from the start, and cut here
        listed = self.client.events(type=asked.get("event_type"), state=asked.get("state"), since=asked.get("since"),
                                    until=asked.get("until"), backfill_id=asked.get("backfill_id"),
                                    limit=limit if whole else None)  # fmt: skip
        older = (e for e in listed if before is None or e.id < before)
        return list(islice((e for e in older if types is None or e.type in types), limit))

    def _status(self, event_id: int) -> EventStatus:
        if event_id not in self._moment:
            self._moment[event_id] = self.client.event(event_id)
        return self._moment[event_id]

    # --- ReadStore: tasks, attempts, logs ----------------------------------------------------

    def tasks(self, event_id: int, **asked: Unpack[TaskFilter]) -> list[TaskRecord]:
        after, limit = asked.get("after"), asked.get("limit")
        listed = self.client.tasks(event_id, node=asked.get("node"), partition=asked.get("partition"),
                                   state=asked.get("state"), limit=limit if after is None else None)  # fmt: skip
        return list(islice((task_record(t) for t in listed if after is None or t.id > after), limit))

    def task(self, task_id: int) -> TaskRecord:
        return task_record(self.client.task(task_id))

    def attempts(self, task_ids: Sequence[int]) -> list[AttemptRecord]:
        """Finished attempts by task, then attempt: a request per task, two per attempt (its streams)."""
        found: list[AttemptRecord] = []
        for task_id in sorted(set(task_ids)):
            try:
                attempts = self.client.task(task_id).attempts or ()
            except NotFound:
                continue  # as the database: an unknown task has no attempts
            found += [self._attempt(a) for a in attempts]
        return found

    def _attempt(self, a: Attempt) -> AttemptRecord:
        stdout, stderr = self.client.read_log(a.id, "stdout"), self.client.read_log(a.id, "stderr")
        return AttemptRecord(a.task_id, a.attempt, a.worker_id, a.outcome, a.started_at, a.finished_at, a.exit_code,
                             a.error, stdout, stderr)  # fmt: skip

    def attempt_log(
        self, task_id: int, attempt: int, stream: str = "stdout", offset: int = 0, limit: int = 65_536
    ) -> LogChunk:
        return self.client.log(f"{int(task_id)}-{int(attempt)}", stream, offset, limit)

    # --- ReadStore: graphs and workers -------------------------------------------------------

    def graph(self, graph_id: int) -> GraphRecord:
        """Graph versions never change: each is read once."""
        if graph_id not in self._graphs:
            self._graphs[graph_id] = self.client.graph(graph_id)
        return self._graphs[graph_id]

    def graph_of(self, graph_id: int) -> Graph:
        if graph_id not in self._models:
            record = self.graph(graph_id)
            self._models[graph_id] = graph_from_dict(record.spec, source=f"{record.name} v{record.version}",
                                                     stored=True)  # fmt: skip
        return self._models[graph_id]

    def graphs(self) -> list[GraphRecord]:
        """Every version with its specification: the list, then a request per version not read yet."""
        return [self.graph(g.id) for g in sorted(self.client.graphs(), key=lambda g: (g.name, g.version))]

    def workers(self) -> list[WorkerRecord]:
        return [worker_record(w) for w in self.client.workers()]

    # --- WebhookStore (an admin token) --------------------------------------------------------

    def add_webhook(
        self,
        name: str,
        url: str,
        secret: str,
        kinds: Sequence[str],
        event_types: Sequence[str] | None = None,
        replace: bool = False,
        actor: str = "operator",
    ) -> WebhookRecord:
        """The server records the token's name as the actor, whatever ``actor`` says."""
        return self.client.add_webhook(name, url, secret, kinds, event_types, replace=replace)

    def remove_webhook(self, name: str, actor: str = "operator") -> WebhookRecord:
        """The server records the token's name as the actor, whatever ``actor`` says."""
        return self.client.remove_webhook(name)

    def webhooks(self) -> list[WebhookRecord]:
        return self.client.webhooks()

    def deliveries(self, **asked: Unpack[DeliveryFilter]) -> list[DeliveryRecord]:
        return self.client.deliveries(webhook=asked.get("webhook"), state=asked.get("state"),
                                      before=asked.get("before"), limit=asked.get("limit", 50))  # fmt: skip

    # --- ReadStore: what the API does not serve ----------------------------------------------

    def audit(self, **asked: Unpack[AuditFilter]) -> list[AuditRecord]:
        _unserved("the audit trail")

    def timeline(self, event_id: int, bins: int = 200) -> Timeline:
        _unserved("timelines (the web UI shows them)")

    def critical_path(self, event_id: int) -> list[PathStep]:
        _unserved("critical paths (the web UI shows them)")

    def backoffs(self, event_id: int, now: float) -> list[RetryWait]:
        _unserved("retry backoffs (the web UI shows them)")

    def waiting(self, event_id: int) -> list[WaitingGroup]:
        return self.client.waiting(event_id)

    def key_waits(self, event_id: int) -> list[KeyWait]:
        _unserved("tasks parked on concurrency keys (the web UI shows them; 'baton limits' lists the keys)")

    def limit_keys(self, after: str | None = None, limit: int = 100) -> list[LimitKeyRecord]:
        return self.client.limit_keys(after=after, limit=limit)

    def pauses(self, event_id: int | None = None) -> list[PauseRecord]:
        return self.client.pauses(event_id)

    def rate_waits(self, event_id: int) -> list[RateWait]:
        _unserved("tasks parked on rate limits (the web UI shows them; 'baton limits --rates' lists the keys)")

    def rate_keys(self, after: str | None = None, limit: int = 100) -> list[RateKeyRecord]:
        return self.client.rate_keys(after=after, limit=limit)

    def held_waits(self, event_id: int) -> list[HeldWait]:
        _unserved("tasks workers hold (the web UI and 'baton status' on the server's side show them)")

    def partition_rows(self, event_id: int, after: str | None = None, limit: int = 100) -> list[PartitionRow]:
        _unserved("partition rows (the web UI shows them)")

    def leader(self, role: str) -> str | None:
        _unserved("who holds a role")

    # --- ChangeFeed --------------------------------------------------------------------------

    @property
    def pushes_changes(self) -> bool:
        return False

    def change_fd(self) -> int | None:
        return None

    def wait_for_change(self, timeout_s: float) -> bool:
        """Until an event read through this store has changed (asked every ``poll_s`` with its
        ETag: a bodiless 304 while it has not), or ``timeout_s`` has passed. A server that does
        not answer is waited for as long as ``outage_s``, then its TransientError is raised.
        With no event read yet, anything may have changed once ``poll_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            time.sleep(max(0.0, min(self.poll_s, deadline - time.monotonic())))
            if self._looked():
                return True
            if time.monotonic() >= deadline:
                return False

    def _looked(self) -> bool:
        """Whether an event read before has changed since (each one kept is then the new answer)."""
        if not self._moment:
            return True
        try:
            fresh = {i: self.client._changed(i, s.version) for i, s in self._moment.items()}  # package-internal
        except TransientError:
            self._away_since = self._away_since or time.monotonic()
            if time.monotonic() - self._away_since > self.outage_s:
                raise
            return False
        self._away_since = None
        self._moment.update({i: s for i, s in fresh.items() if s is not None})
        return any(s is not None for s in fresh.values())


def task_record(t: Task) -> TaskRecord:
    """A task as the store records it; ``pending`` (unfinished upstream tasks) is not on the wire: 0."""
    result = None if t.result is None else json.dumps(t.result)
    return TaskRecord(t.id, t.event_id, t.node, t.partition, t.state, 0, t.attempt, t.failures, t.worker_id,
                      t.ready_at, t.started_at, t.finished_at, result, t.error, t.priority)  # fmt: skip


def worker_record(w: Worker) -> WorkerRecord:
    """A worker as the store records it; its process id is not on the wire: 0."""
    return WorkerRecord(w.id, w.name, w.host, 0, w.capacity, w.labels, w.started_at, w.last_seen, w.state, w.running)


def _unserved(what: str) -> NoReturn:
    raise UsageError(f"the server's API does not serve {what}: run this command with --db where the database is")
