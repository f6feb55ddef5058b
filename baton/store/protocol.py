"""The store, cut by caller: one small protocol for each kind of process that uses it.

Every verb is one transaction. A caller is typed against the narrowest protocol it needs, so
a remote transport (the HTTP server and its clients) can stand in for the database behind any
of them without the caller changing:

- :class:`WorkerLink`: a task server (register, claim, report, heartbeat, append logs, leave);
- :class:`ControllerStore`: the controller (expand events, expire leases, hold its role);
- :class:`OperatorStore`: people and applications (register graphs, submit, cancel, rerun);
- :class:`ReadStore`: status, logs, audit, the API and the UI; reads change nothing, and
  lists are keyset-paginated (pass the last id you got; never an offset, never a total count);
- :class:`TokenStore`: the HTTP server's API tokens, by digest;
- :class:`WebhookStore`: administrators' webhooks and their delivery log;
- :class:`MetricsStore`: what the HTTP server's metrics read, every few seconds;
- :class:`Store`: all of them plus opening and closing, which only entry points hold
  (``baton.store.open_store`` makes one).

``tests/unit/test_layering.py`` holds the import rules that keep these seams real.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Unpack

from baton.access import Role, TokenRecord, TokenScope
from baton.engine.forecast import NodeNow, NodeRun
from baton.engine.planner import Plan
from baton.engine.states import EventState
from baton.graphs.calendars import Calendar
from baton.graphs.model import Graph
from baton.store.migrate import Revision, Upgrade
from baton.store.outbox import Kind
from baton.store.records import (
    AttemptRecord,
    AuditFilter,
    AuditRecord,
    BackfillRecord,
    BackfillRequest,
    CalendarRecord,
    ClaimRequest,
    ClaimResult,
    DeliveryFilter,
    DeliveryJob,
    DeliveryRecord,
    DeliveryResult,
    EventFilter,
    EventRecord,
    GraphRecord,
    HeldWait,
    KeyWait,
    LimitKeyRecord,
    LiveLogOrphan,
    LogChunk,
    LogTail,
    MetricsSample,
    Move,
    NodeProgress,
    PartitionRow,
    PathStep,
    PauseAnswer,
    PauseRecord,
    PauseTarget,
    PruneRequest,
    PruneResult,
    RateKeyRecord,
    RateWait,
    Report,
    ReportAnswers,
    ResumeAnswer,
    RetryWait,
    ScheduleDue,
    ScheduleRecord,
    ScheduleTick,
    StopOrder,
    TaskFilter,
    TaskRecord,
    Timeline,
    WaitingGroup,
    Watched,
    WebhookRecord,
    WorkerInfo,
    WorkerRecord,
)


class ChangeFeed(Protocol):
    """How a loop waits for the store to change instead of polling it fast."""

    @property
    def pushes_changes(self) -> bool:
        """True when :meth:`wait_for_change` is woken by the store, not by polling."""
        ...

    def wait_for_change(self, timeout_s: float) -> bool:
        """Block until something may have changed in the store, or the timeout passes."""
        ...

    def change_fd(self) -> int | None:
        """A descriptor that becomes readable when the store may have changed (then ask
        ``wait_for_change(0)``), for waiting on it beside other descriptors; None when changes
        can only be polled."""
        ...


class WorkerLink(ChangeFeed, Protocol):
    """What a worker may do: register, claim (reporting first), report, heartbeat, append the
    output of running attempts, leave."""

    def register_worker(self, info: WorkerInfo) -> None: ...

    def graph(self, graph_id: int) -> GraphRecord: ...

    def claim(self, request: ClaimRequest) -> ClaimResult:
        """Record the request's ``reports`` (fenced by attempt), then claim up to ``limit`` ready
        tasks that fit in ``free`` capacity and whose required labels the worker has
        (``event_id``: of that event only). One transaction. A ``claim_id`` (made by the caller,
        unique per request) makes a retry safe: when a claim with this id took tasks the worker
        still runs, those same attempts come back and nothing new is taken."""
        ...

    def report(self, worker_id: str, reports: Sequence[Report]) -> ReportAnswers:
        """Record reports; say which were stale and which were sent before (the rest are recorded)."""
        ...

    def heartbeat(
        self,
        worker_id: str,
        running: Sequence[tuple[int, int]],
        lease_s: float,
        held: Sequence[tuple[int, int]] = (),
        hold_s: float = 0.0,
    ) -> list[StopOrder]:
        """Extend the leases of the attempts this worker still holds; say which to stop. With
        ``hold_s``: renew the holds of the tasks it lists as ``held`` (task_id, attempt it will
        be) for ``hold_s``, give back those it does not list (a lost answer), and say which held
        ones to drop (``baton.store.holds``: recalled, or no longer held)."""
        ...

    def append_logs(self, worker_id: str, tails: Sequence[LogTail]) -> list[int | None]:
        """Append each tail, in order, to its attempt's live log, in one transaction. A tail is
        appended only while ``worker_id`` holds that attempt (else it is dropped: answered None)
        and only at the log's end (``offset`` equal to the log's length in characters; else
        nothing changes, so a chunk sent twice is appended once and a gap is refused). A log
        stops growing at the store's ``max_log_bytes``. Each answer is the length the live log
        has now: the worker goes on from there."""
        ...

    def deregister_worker(self, worker_id: str) -> None: ...


class GatheringLink(WorkerLink, Protocol):
    """A worker link that can take several workers' claims in one transaction: for the server,
    which gathers the claims arriving together into one commit."""

    def claim_many(self, requests: Sequence[ClaimRequest]) -> list[ClaimResult]:
        """Each request as :meth:`WorkerLink.claim` would do it, in order, in one transaction."""
        ...


class ControllerStore(ChangeFeed, Protocol):
    """The controller's duties: expand submitted events, expire leases, hold its role."""

    def graph_of(self, graph_id: int) -> Graph:
        """The validated graph of a registered version (immutable, so it may be cached)."""
        ...

    def events_to_expand(self, limit: int, only: int | None = None) -> list[EventRecord]:
        """Submitted events, oldest first (``only``: that event alone, if it is submitted), but for
        those waiting for a place under their graph's event limit."""
        ...

    def save_plan(self, event_id: int, plan: Plan) -> bool:
        """Create every task of the event at once; False if it was already expanded, or if its
        graph's event limit holds it back (it waits, or the limit's policy cancelled it)."""
        ...

    def fail_event(self, event_id: int, reason: str) -> None:
        """End a submitted event that cannot be expanded, keeping ``reason`` on it."""
        ...

    def sweep(self, limit: int, since: float) -> tuple[int, float]:
        """Expire up to ``limit`` lapsed leases and announce retries whose backoff ended after
        ``since``; return how many leases expired and the new ``since``."""
        ...

    def unpark_rated(self) -> tuple[int, float | None]:
        """Return tasks parked on a spent rate limit to the queue where their key allows a start
        now; return how many went back, and in how many seconds the next of the others may start
        (None: not known)."""
        ...

    def age(self, now: float, step_s: float, batch: int) -> int:
        """Raise by 1 the priority of up to ``batch`` ready tasks that have waited ``step_s`` at
        ``now`` (since claimable and since last raised) below the head of the queue's priority;
        how many were raised (ageing: see :mod:`baton.engine.priorities`)."""
        ...

    def event_state(self, event_id: int) -> EventState: ...

    def lead(self, role: str, holder: str, ttl_s: float) -> bool:
        """Take or renew ``role`` for ``ttl_s`` seconds; False while another holder has it."""
        ...

    def resign(self, role: str, holder: str) -> None: ...

    def watched_events(self, limit: int) -> list[Watched]:
        """Unfinished events that have a deadline, the nearest deadline first."""
        ...

    def nodes_now(self, event_id: int) -> dict[str, NodeNow]:
        """Each node of an event: its tasks, those not yet succeeded, when the last one ended."""
        ...

    def graph_runs(self, graph_id: int, limit: int = ...) -> list[dict[str, NodeRun]]:
        """Each node's first start and last end in the graph's last successful events."""
        ...

    def record_forecast(self, event_id: int, predicted_end_at: float | None, now: float) -> list[Kind]:
        """Keep an event's forecast end; mark it at risk or missed (once each, with a notice)."""
        ...

    def due_schedules(self, now: float, limit: int) -> list[ScheduleDue]:
        """Active schedules that may have fires to raise at ``now`` (a wall time), oldest first."""
        ...

    def next_schedule_fire(self) -> float | None:
        """The earliest raise time of any active schedule (None: none is known)."""
        ...

    def calendar(self, name: str) -> Calendar | None:
        """The registered calendar of that name (None: none is)."""
        ...

    def fire_schedule(self, tick: ScheduleTick, actor: str = "controller") -> list[int]:
        """Write one look at a schedule (events, state, misfire notice, cancel), in one
        transaction, only if its ``handled_through`` is still ``tick.expected``; the events raised."""
        ...

    def running_backfills(self) -> list[BackfillRecord]:
        """Backfills still raising fires, oldest first."""
        ...

    def advance_backfill(
        self,
        backfill_id: int,
        cursor: float | None,
        fires: Sequence[tuple[float, Mapping[str, Any], float | None]],
        exhausted: bool,
    ) -> BackfillRecord:
        """Raise the next of ``fires`` (instant, params, deadline; ascending, after ``cursor``)
        while the backfill has room; ``exhausted``: none comes after them. One transaction,
        applied only while its cursor is ``cursor``."""
        ...

    def prune(self, asked: PruneRequest) -> PruneResult:
        """Remove a batch of what retention says is over (:mod:`baton.store.retention`)."""
        ...

    def dispatch(self, limit: int) -> int:
        """Act on up to ``limit`` outbox notices, oldest first, in one transaction (raise the
        events they chain to); return how many were dispatched (:mod:`baton.store.outbox`)."""
        ...

    def claim_deliveries(self, now: float, limit: int, lease_s: float) -> list[DeliveryJob]:
        """Take up to ``limit`` webhook deliveries due at ``now`` (the controller's clock), each
        with its next attempt number; none is due again for ``lease_s``, so one whose taker dies
        is taken again then (at least once)."""
        ...

    def record_deliveries(self, results: Sequence[DeliveryResult], horizon_s: float) -> list[str]:
        """Record how each try went, fenced by its attempt (a try that is no longer the delivery's
        last changes nothing: ``stale``); a retry later than ``horizon_s`` after the delivery was
        made gives up (``expired``). Answers each delivery's state: ``delivered``, ``pending``,
        ``expired`` or ``stale``. One transaction."""
        ...


class OperatorStore(Protocol):
    """What people and application systems change: graphs, events, reruns."""

    def register_graph(self, graph: Graph, source: str = "") -> GraphRecord:
        """Store a graph version (the same content keeps its version; a change makes a new one)."""
        ...

    def latest_graph(self, event_type: str) -> GraphRecord: ...

    def submit(
        self,
        graph_id: int,
        params: Mapping[str, Any],
        key: str | None = None,
        deadline_at: float | None = None,
        priority: int = 0,
    ) -> tuple[EventRecord, bool]:
        """Accept an event durably, to end by ``deadline_at`` if given, its tasks' priorities raised
        by ``priority`` (-1000 to 1000; out of range: UsageError). The same key returns the same
        event (created False, its own priority); the same key with other parameters raises
        Conflict."""
        ...

    def cancel(self, event_id: int, actor: str = "operator") -> EventRecord: ...

    def register_calendar(self, calendar: Calendar, source: str = "") -> CalendarRecord:
        """Store a business calendar under its name, replacing an older one."""
        ...

    def pause_schedule(self, name: str, note: str = "", actor: str = "operator") -> ScheduleRecord:
        """Stop raising its fires until resumed (the fires of the pause are never raised)."""
        ...

    def resume_schedule(self, name: str, actor: str = "operator") -> ScheduleRecord:
        """Raise its fires again, from now on."""
        ...

    def trigger_schedule(self, name: str, actor: str = "operator") -> EventRecord:
        """Raise the schedule's event now ("fire now"), as a fire at this instant would be, under
        its own key; the schedule's own fires are untouched."""
        ...

    def start_backfill(self, asked: BackfillRequest, actor: str = "operator") -> BackfillRecord:
        """Raise the schedule's past fires in [from_at, to_at], in order, at most ``max_running``
        unfinished at once (the controller does it; this records the backfill). Fires that
        already have an event are skipped unless ``rerun``. ``dry_run``: count only, store nothing."""
        ...

    def cancel_backfill(self, backfill_id: int, actor: str = "operator") -> BackfillRecord:
        """Raise no more of its fires (the events it raised run on)."""
        ...

    def rerun(
        self, event_id: int, partition: str | None = None, node: str | None = None, actor: str = "operator"
    ) -> int:
        """Re-run failed and cancelled tasks (optionally one partition or node) and what depends
        on them, keeping every success (but a discovery named by ``node``: it runs again, and
        its new partitions are planned); return how many tasks were reset."""
        ...

    def pause(self, target: PauseTarget, reason: str = "", actor: str = "operator") -> PauseAnswer:
        """Start no task of the target (an event, a graph, a node of an event) until it is resumed;
        running tasks finish. Pausing what is paused already answers the pause in force."""
        ...

    def resume(self, target: PauseTarget, actor: str = "operator") -> ResumeAnswer:
        """End the target's pause: its tasks no other pause holds may start again (Conflict if
        it is not paused)."""
        ...


class ReadStore(Protocol):
    """Reads for status, logs, audit, the API and the UI. None changes anything."""

    def event(self, event_id: int) -> EventRecord: ...

    def event_state(self, event_id: int) -> EventState:
        """Only the state: cheap enough to poll (an event's parameters can be large)."""
        ...

    def events(self, **asked: Unpack[EventFilter]) -> list[EventRecord]:
        """Events newest first, as :class:`~baton.store.records.EventFilter` asks."""
        ...

    def node_counts(self, event_id: int) -> dict[str, dict[str, int]]:
        """Tasks per node and state."""
        ...

    def node_progress(self, event_id: int) -> list[NodeProgress]:
        """Per node: how many tasks, how many not yet succeeded (kept as tasks end: O(nodes))."""
        ...

    def tasks(self, event_id: int, **asked: Unpack[TaskFilter]) -> list[TaskRecord]:
        """An event's tasks in id order, as :class:`~baton.store.records.TaskFilter` asks."""
        ...

    def task(self, task_id: int) -> TaskRecord: ...

    def attempts(self, task_ids: Sequence[int]) -> list[AttemptRecord]: ...

    def attempt_log(
        self, task_id: int, attempt: int, stream: str = "stdout", offset: int = 0, limit: int = 65_536
    ) -> LogChunk:
        """Up to ``limit`` characters of one attempt's captured ``stdout`` or ``stderr`` from
        ``offset``: its report's output once it ended, its live log while it runs (``live``);
        NotFound for an attempt that neither ran nor runs."""
        ...

    def audit(self, **asked: Unpack[AuditFilter]) -> list[AuditRecord]:
        """Decisions with their causes, oldest first, as :class:`~baton.store.records.AuditFilter` asks."""
        ...

    def timeline(self, event_id: int, bins: int = 200) -> Timeline:
        """The event's tasks per node, binned in time (O(nodes x bins) out, one pass over the
        event's tasks in)."""
        ...

    def critical_path(self, event_id: int) -> list[PathStep]:
        """From the event's first task to its last, each step the last-finishing task the next
        one waited for: one pass over the event's tasks to find its end, then a read per step
        (an ``all`` step reads the upstream node's tasks)."""
        ...

    def backoffs(self, event_id: int, now: float) -> list[RetryWait]:
        """Per node, the ready tasks not claimable before a retry delay ends (after ``now``)."""
        ...

    def waiting(self, event_id: int) -> list[WaitingGroup]:
        """Why the event's tasks are not running, per node and reason (baton.store.waiting)."""
        ...

    def key_waits(self, event_id: int) -> list[KeyWait]:
        """Per node and concurrency key, the event's tasks parked because the key is full."""
        ...

    def pauses(self, event_id: int | None = None) -> list[PauseRecord]:
        """The pauses in force, oldest first: all, or those that hold the event (its graph's, its
        own and its nodes')."""
        ...

    def limit_keys(self, after: str | None = None, limit: int = 100) -> list[LimitKeyRecord]:
        """Concurrency keys in order, each with its limit and its running, queued and parked
        tasks; the next page starts after the last key of this one."""
        ...

    def rate_waits(self, event_id: int) -> list[RateWait]:
        """Per node and rate key, the event's tasks parked until their rate limit allows a start."""
        ...

    def held_waits(self, event_id: int) -> list[HeldWait]:
        """Per node and worker, the event's ready tasks workers hold beyond their free slots."""
        ...

    def rate_keys(self, after: str | None = None, limit: int = 100) -> list[RateKeyRecord]:
        """Rate limits' keys in order, each with its limit, period, starts in the window that ends
        now, queued and parked tasks and next allowed start; the next page starts after the last
        key of this one."""
        ...

    def partition_rows(self, event_id: int, after: str | None = None, limit: int = 100) -> list[PartitionRow]:
        """The event's partitions in order, each with its tasks; the next page starts after the
        last partition of this one."""
        ...

    def workers(self) -> list[WorkerRecord]: ...

    def graph(self, graph_id: int) -> GraphRecord: ...

    def graph_of(self, graph_id: int) -> Graph: ...

    def graphs(self) -> list[GraphRecord]: ...

    def schedules(self) -> list[ScheduleRecord]:
        """Every schedule, retired ones too, by name."""
        ...

    def schedule(self, name: str) -> ScheduleRecord: ...

    def calendars(self) -> list[CalendarRecord]: ...

    def backfills(self, limit: int = 50) -> list[BackfillRecord]:
        """Backfills, newest first."""
        ...

    def backfill(self, backfill_id: int) -> BackfillRecord: ...

    def leader(self, role: str) -> str | None:
        """Who holds ``role`` now (None when nobody does)."""
        ...


class TokenStore(Protocol):
    """API tokens, by the SHA-256 of each (the store never sees a token): for the HTTP server
    and ``baton token``."""

    def create_token(self, digest: str, role: Role, name: str, **scope: Unpack[TokenScope]) -> TokenRecord: ...

    def tokens(self) -> list[TokenRecord]: ...

    def token_by_digest(self, digest: str) -> TokenRecord | None:
        """The token with this digest, revoked or not; None when there is none."""
        ...

    def revoke_token(self, token_id: int) -> TokenRecord: ...

    def open_session(self, digest: str, token_id: int, lifetime_s: float) -> float:
        """Keep a UI session (the SHA-256 of its cookie) for the token; returns when it ends.
        Sessions that ended are removed on the way."""
        ...

    def session_token(self, digest: str) -> TokenRecord | None:
        """The token a live session stands for, revoked or not; None when there is no such
        session or it has ended."""
        ...

    def close_session(self, digest: str) -> None: ...


class WebhookStore(Protocol):
    """Webhooks, for administrators: each receives the notices of the kinds (and event types) it
    asks for, signed with its secret. Nothing here ever answers a secret."""

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
        """Add a webhook (or enable a removed one of that name again, with what is given here);
        one that exists and is enabled is refused (Conflict) unless ``replace``."""
        ...

    def remove_webhook(self, name: str, actor: str = "operator") -> WebhookRecord:
        """Disable it and cancel its pending deliveries, keeping its history."""
        ...

    def webhooks(self) -> list[WebhookRecord]:
        """Every webhook, removed ones too, by name."""
        ...

    def deliveries(self, **asked: Unpack[DeliveryFilter]) -> list[DeliveryRecord]:
        """The delivery log, newest first, as :class:`~baton.store.records.DeliveryFilter` asks."""
        ...


class MetricsStore(Protocol):
    """What the server's metrics read: one transaction every few seconds, never one per scrape."""

    def metrics_sample(self, after: int | None, through: int | None, limit: int, stale_after_s: float) -> MetricsSample:
        """The gauges now (unfinished events and their tasks by state, the oldest claimable task,
        workers and their slots; a worker silent for over ``stale_after_s`` is stale), and what
        the audit rows ``after`` < id <= ``through`` record (at most ``limit``; the activity's
        ``through`` says how far it got). Pass as ``through`` the ``audit_id`` of an earlier
        sample: rows up to it have all committed, which the newest ones may not have yet."""
        ...


class DebugDoor(Protocol):
    """What test tools read beyond any caller's verbs (:mod:`baton.testing`): never used by a
    process, and narrow on purpose, so no tool needs the concrete store or its transactions."""

    def record_moves(self) -> None:
        """Journal every task move from now on (idempotent; see :mod:`baton.store.journal`)."""
        ...

    def recorded_moves(self) -> list[Move] | None:
        """Every journalled move in order, or None when the store has no journal."""
        ...

    def live_log_orphans(self) -> list[LiveLogOrphan]:
        """Live logs whose attempt is not running (the transaction that ends an attempt deletes
        its live logs, so there should be none)."""
        ...

    def stray_parked(self) -> list[int]:
        """Tasks whose parked mark is wrong: parked on a concurrency key (1) or a rate key (3)
        but not a ready task with that key (every other move clears those marks), or unfinished
        and marked paused (2) without a pause covering it, or covered by one and not marked."""
        ...


class SchemaStore(Protocol):
    """Where the schema stands: what a health check reads to know the database answers."""

    def schema_revision(self) -> Revision:
        """Where this database's schema stands (read only)."""
        ...


class Store(
    GatheringLink,
    ControllerStore,
    OperatorStore,
    ReadStore,
    TokenStore,
    WebhookStore,
    MetricsStore,
    SchemaStore,
    Protocol,
):
    """Everything, with the lifecycle: what ``open_store`` returns to an entry point."""

    @property
    def debug(self) -> DebugDoor:
        """The test tools' door (see :class:`DebugDoor`)."""
        ...

    @property
    def url(self) -> str:
        """The URL this store was opened with (another process opens the same store with it)."""
        ...

    def migrate(self) -> Upgrade:
        """Bring the schema to the one this code declares; a newer schema is refused (SchemaError)."""
        ...

    def close(self) -> None: ...

    def wake_feed(self) -> ChangeFeed:
        """A feed woken only when work may have become claimable or an event finished, not on
        every commit: what the server's long polls wait on."""
        ...

    def statements_executed(self) -> float | None:
        """Statements the database has run so far, where it counts them (for ``baton bench``)."""
        ...
