"""Plain records that cross the backend boundary (and, later, the HTTP wire).

They carry JSON as text where the backend only stores or forwards it (results, inputs,
params) so that nothing is parsed and re-serialised on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypedDict

from baton.engine.states import EventState, Outcome, TaskState
from baton.store.outbox import Kind as Kind  # re-exported: what a webhook may ask for, for the wire

NOTICE_KINDS: tuple[str, ...] = tuple(k.value for k in Kind)  # what a webhook may ask for
DELIVERY_STATES = ("pending", "delivered", "expired", "cancelled")


@dataclass(frozen=True)
class GraphRecord:
    id: int
    name: str
    version: int
    event_type: str
    digest: str
    spec: Mapping[str, Any]
    registered_at: float


@dataclass(frozen=True)
class EventRecord:
    id: int
    type: str
    graph_id: int
    graph_name: str
    graph_version: int
    key: str | None
    params: Mapping[str, Any]
    state: EventState
    cancel_requested: bool
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    tasks_total: int
    tasks_active: int
    error: str | None = None  # why the event failed before it ran (it could not be expanded)
    # what raised it, when it must end by and when it is forecast to (the event centre)
    schedule_id: int | None = None
    scheduled_for: float | None = None
    backfill_id: int | None = None
    source_event_id: int | None = None
    deadline_at: float | None = None
    predicted_end_at: float | None = None
    at_risk_at: float | None = None
    missed_at: float | None = None
    paused: int = 0  # how many pauses hold it (its graph's, its own, its nodes'): see pauses()
    priority: int = 0  # added to its tasks' node priorities (baton.engine.priorities)


@dataclass(frozen=True)
class TaskRecord:
    id: int
    event_id: int
    node: str
    partition: str
    state: TaskState
    pending: int
    attempt: int
    failures: int
    worker_id: str | None
    ready_at: float | None
    started_at: float | None
    finished_at: float | None
    result_json: str | None
    error: str | None
    priority: int = 0  # its priority now: its node's plus its event's, plus what ageing added


@dataclass(frozen=True)
class AttemptRecord:
    task_id: int
    attempt: int
    worker_id: str | None
    outcome: Outcome
    started_at: float | None
    finished_at: float
    exit_code: int | None
    error: str | None
    stdout: str
    stderr: str


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: float
    event_id: int | None
    task_id: int | None
    actor: str
    action: str
    cause: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class NodeProgress:
    """One node of an event: its task count, and how many have not succeeded yet."""

    node: str
    total: int
    remaining: int


@dataclass(frozen=True)
class LogChunk:
    """A slice of one attempt's captured output, in characters from ``offset``."""

    task_id: int
    attempt: int
    stream: str  # "stdout" or "stderr"
    offset: int
    text: str
    size: int  # the whole stream's length, so a reader knows whether more follows
    live: bool = False  # the attempt still runs: its live log, which may grow (see LogTail)

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.text)


@dataclass(frozen=True)
class LogTail:
    """Output a running attempt wrote since the worker's last tail of it: ``text`` goes at
    character ``offset`` of the attempt's live log of ``stream`` (the length the worker believes
    the store holds). The store keeps a live log only while the attempt runs; its report's
    output replaces it."""

    task_id: int
    attempt: int
    stream: str  # "stdout" or "stderr"
    offset: int
    text: str


@dataclass(frozen=True)
class WorkerRecord:
    """A task server as the store knows it: what it declared, when it was last seen, what it runs."""

    id: str
    name: str
    host: str
    pid: int
    capacity: Mapping[str, int]
    labels: frozenset[str]
    started_at: float
    last_seen: float
    state: str  # "active" or "stopped"
    running: tuple[int, ...] = ()  # ids of the tasks it holds a lease on


@dataclass(frozen=True)
class WorkerInfo:
    """What a task server declares about itself when it registers."""

    id: str
    name: str
    host: str
    pid: int
    capacity: Mapping[str, int]  # always has "slots"; may name other resources (mem_mb, gpu)
    labels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Claim:
    """A task handed to a worker: everything it needs to run one attempt."""

    task_id: int
    attempt: int
    event_id: int
    event_type: str
    graph_id: int
    node: str
    partition: str
    params_json: str
    inputs_json: str
    lease_expires_at: float


@dataclass(frozen=True)
class Report:
    """How one attempt ended, as told by the worker that ran it."""

    task_id: int
    attempt: int
    outcome: Outcome
    started_at: float
    finished_at: float
    result_json: str | None = None
    error: str | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""


def unrecordable(report: Report, why: Exception) -> Report:
    """A bare failure standing in for a report the store refused (no output, result or exit
    code: whatever it could not hold is gone), naming why, so the task still ends with a cause."""
    error = f"the attempt ended ({report.outcome}) but its report could not be recorded: {why}"
    return Report(
        report.task_id, report.attempt, Outcome.FAILED, report.started_at, report.finished_at,
        error=error[:2000],  # the backend makes any text storable (NUL, lone surrogates)
    )  # fmt: skip


@dataclass(frozen=True)
class ReportAnswers:
    """What the store made of a batch of reports, by (task_id, attempt); any other was recorded.

    - ``stale``: the attempt is no longer current (its lease expired, or another attempt runs):
      nothing was recorded, and the worker must not let that attempt go on;
    - ``duplicate``: the same report was recorded before (a retry after a lost answer): fine.
    """

    stale: list[tuple[int, int]] = field(default_factory=list)
    duplicate: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class ClaimResult:
    """New claims, and the reports sent in the same call that were not recorded now: rejected
    as stale, or duplicates of reports recorded before."""

    claims: list[Claim] = field(default_factory=list)
    rejected: list[tuple[int, int]] = field(default_factory=list)
    duplicate: list[tuple[int, int]] = field(default_factory=list)
    # Held tasks (see ClaimRequest.hold): not running; each claim's attempt is the one it will
    # be once started, and its lease_expires_at the end of the hold.
    holds: list[Claim] = field(default_factory=list)
    # Starts the store refused, as (task_id, attempt): the hold was lost (it ran out, or its
    # event was cancelled). The worker must stop these attempts.
    refused_starts: list[tuple[int, int]] = field(default_factory=list)
    # Held tasks the store asks back (a higher priority waits, a worker is idle, a pause): the
    # worker gives back those it has not started (ClaimRequest.releases).
    recalled: list[int] = field(default_factory=list)
    # Some were asked back for a worker with idle slots: hold no more beyond the free slots until
    # a task of this worker ends.
    yield_holds: bool = False
    # Seconds each started hold was held (for the server's metrics).
    held_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ClaimRequest:
    """One worker's claim, as :meth:`~baton.store.protocol.WorkerLink.claim` takes it: for
    callers that gather several into one transaction (the server's group commit)."""

    worker_id: str
    free: Mapping[str, int]
    labels: frozenset[str]
    limit: int
    lease_s: float
    reports: tuple[Report, ...] = ()
    event_id: int | None = None
    claim_id: str | None = None
    # Held tasks (baton.store.holds), for a worker that holds them (``hold_s`` > 0, how long a
    # hold lasts unless renewed): ``hold`` more tasks to hold beyond ``limit``, each fitting the
    # worker's whole ``capacity`` (default: ``free``); the answer names its holds asked back;
    # ``starts``: held tasks the worker started, as (task_id, attempt), recorded before the
    # reports; ``releases``: held task ids it gives back unstarted; ``idle``: its slots with
    # nothing to run (held tasks of others that fit are asked back when the claim cannot fill them).
    hold: int = 0
    hold_s: float = 0.0
    capacity: Mapping[str, int] | None = None
    starts: tuple[tuple[int, int], ...] = ()
    releases: tuple[int, ...] = ()
    idle: int = 0


# A heartbeat's reasons to drop a held task (baton.store.holds): the store asks it back, or no
# longer holds it for this worker.
STOP_RECALLED = "hold recalled"
STOP_HOLD_LOST = "hold lost"
STOP_HOLD_WANTED = "hold wanted elsewhere"  # asked back for an idle worker: hold no more for now


@dataclass(frozen=True)
class StopOrder:
    """Heartbeat reply: stop this attempt (its lease is gone, or its event was cancelled)."""

    task_id: int
    attempt: int
    reason: str


@dataclass(frozen=True)
class Activity:
    """What the audit says happened store-wide between two of its ids, whoever did it (this
    server, database-connected workers, controllers): the counts behind the server's metrics.

    Queue wait and dispatch latency are measured once per task end, for the attempt that ended
    the task (an attempt that ends in a retry has its ready time replaced by the retry's);
    run time for every attempt a worker ran to an end (not those the store ended: lost leases,
    released claims)."""

    through: int  # the last audit id counted: the next read starts after it
    submitted: Mapping[str, int] = field(default_factory=dict)  # by event type
    finished: Mapping[tuple[str, str], int] = field(default_factory=dict)  # by (event type, state)
    lease_expirations: int = 0
    stale_reports: int = 0  # reports refused as stale (not those refused as sent twice)
    run_s: tuple[float, ...] = ()
    queue_wait_s: tuple[float, ...] = ()  # claimable (available_at) -> claimed
    dispatch_latency_s: tuple[float, ...] = ()  # ready (last dependency done) -> claimed
    # webhook deliveries: "delivered", "failed" (attempts refused or unanswered), "expired" (given up)
    deliveries: Mapping[str, int] = field(default_factory=dict)
    deadlines_missed: int = 0
    fires_missed: int = 0  # schedules' fires not raised (catch-up, overlap); at least, when uncounted
    events_pruned: int = 0
    rate_starts_refused: int = 0  # task starts refused by a rate limit (each parked the task)
    tasks_aged: int = 0  # raises of a ready task's priority by ageing
    partitions_discovered: int = 0  # partitions planned from discoveries' results (new keys only)
    hold_expiries: int = 0  # held tasks returned to the queue because their worker stopped renewing them
    hold_recalls: int = 0  # held tasks the store asked back from their workers


@dataclass(frozen=True)
class MetricsSample:
    """The store's state for the metrics, read in one transaction, plus the activity since the
    previous sample (see :meth:`~baton.store.protocol.MetricsStore.metrics_sample`)."""

    at: float  # the database's clock when it was read
    audit_id: int  # the newest audit id then (0: none)
    events: Mapping[str, int]  # unfinished events by state (submitted, running)
    tasks: Mapping[str, int]  # the tasks of running events by state
    oldest_ready_at: float | None  # since when the longest-waiting claimable task has waited
    workers_online: int
    workers_stale: int  # active, but silent for longer than the given limit
    slots_used: int  # of online workers
    slots_free: int
    activity: Activity
    deliveries_pending: int = 0  # webhook deliveries not yet delivered nor given up
    events_at_risk: int = 0  # unfinished events whose forecast passed their deadline
    schedules: Mapping[str, int] = field(default_factory=dict)  # by state
    backfills_running: int = 0
    tasks_parked: int = 0  # ready tasks parked on a full concurrency key
    limit_keys_full: int = 0  # concurrency keys with as many tasks running as their limit
    pauses: int = 0  # pauses in force (events, graphs, nodes of events)
    tasks_paused: int = 0  # pending and ready tasks a pause holds
    events_queued: int = 0  # submitted events of graphs whose event limit queues them
    tasks_rate_waiting: int = 0  # ready tasks parked until their rate limit allows a start
    tasks_held: int = 0  # ready tasks workers hold beyond their free slots (not running)


@dataclass(frozen=True)
class TimelineLane:
    """One node of an event on its timeline, aggregated so its size never depends on the
    partition count: the envelope, the time its tasks spent queued and running, and per time
    bin how many became ready, started and ended (running at a bin's end = started - ended so
    far; queued = ready - started so far). Times are the tasks' current attempts': a task that
    waits out a retry counts as ready again, not as started, and one that ended without running
    (its upstream failed, or it was cancelled while waiting) is in no bin. A time outside the
    timeline falls in its first or last bin."""

    node: str
    tasks: int
    first_ready_at: float | None
    first_start_at: float | None
    last_end_at: float | None
    queue_s: float  # summed ready -> start, over started tasks
    run_s: float  # summed start -> end, over ended tasks
    ready: tuple[int, ...]  # per bin
    started: tuple[int, ...]
    ended: tuple[int, ...]


@dataclass(frozen=True)
class PathStep:
    """One task on an event's critical path: the chain of tasks, each the last of its
    dependencies to finish, that ends in the event's last task (while the event runs, its latest
    unfinished one). Times are the current attempt's: ``started_at`` is None until it starts."""

    task_id: int
    node: str
    partition: str
    state: str
    ready_at: float | None
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class Timeline:
    """An event's timeline: ``bins`` equal bins of ``bin_s`` from ``start`` (the first task
    ready) to ``end`` (the last one ended; while it runs, the database's clock, or any later time
    a task has, such as a retry's ready time)."""

    event_id: int
    start: float
    end: float
    bin_s: float
    lanes: tuple[TimelineLane, ...]  # in the graph's node order


@dataclass(frozen=True)
class RetryWait:
    """Ready tasks of one node that wait out a retry delay: how many, and the first one's end."""

    node: str
    tasks: int
    until: float


@dataclass(frozen=True)
class KeyWait:
    """Ready tasks of one node parked on a full concurrency key, with the key's state and up to
    three of the tasks holding it (``node[partition] on worker``)."""

    node: str
    key: str
    tasks: int
    running: int
    max_running: int
    holders: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitKeyRecord:
    """A concurrency key: its limit, and its tasks running, back in the queue and parked."""

    key: str
    max_running: int
    running: int
    ready: int
    parked: int


@dataclass(frozen=True)
class HeldWait:
    """Ready tasks of one node a worker holds beyond its free slots (not running yet)."""

    node: str
    worker_id: str
    tasks: int


@dataclass(frozen=True)
class RateWait:
    """Ready tasks of one node parked on a spent rate limit, with the key's state and when its
    next start is allowed (epoch seconds; None: now, and the controller's next sweep returns them)."""

    node: str
    key: str
    tasks: int
    started: int  # starts in the window that ends now
    max_starts: int
    period_s: float
    until: float | None


@dataclass(frozen=True)
class RateKeyRecord:
    """A rate limit's key: its limit and period, its starts in the window that ends now, its
    tasks in the queue and parked, and when its next start is allowed (epoch seconds; None: now)."""

    key: str
    max_starts: int
    period_s: float
    started: int
    queued: int
    parked: int
    next_start_at: float | None


@dataclass(frozen=True)
class PartitionRow:
    """One partition of an event: its task of each partitioned node (id and state)."""

    partition: str
    tasks: Mapping[str, tuple[int, str]]  # node -> (task id, state)


class Move(NamedTuple):
    """One task state change, as the test journal saw it (:mod:`baton.store.journal`)."""

    task_id: int
    from_state: str | None  # None: the task was created in to_state
    to_state: str
    from_attempt: int | None
    to_attempt: int


class LiveLogOrphan(NamedTuple):
    """A live log kept for an attempt that is not running."""

    task_id: int
    attempt: int
    stream: str


class EventFilter(TypedDict, total=False):
    """Which events :meth:`~baton.store.protocol.ReadStore.events` lists, newest first: submitted
    in ``[since, until)``, of ``event_type`` (or of ``event_types``), in ``state``, ended at or
    after ``ended_since``, unfinished and marked at risk of missing their deadline (``at_risk``),
    raised by the backfill ``backfill_id``; the next page starts ``before`` the last id of this
    one; ``limit`` events at most (20 when not given)."""

    event_type: str | None
    event_types: Sequence[str] | None
    state: EventState | None
    backfill_id: int | None
    since: float | None
    until: float | None
    ended_since: float | None
    at_risk: bool
    before: int | None
    limit: int


class TaskFilter(TypedDict, total=False):
    """Which of an event's tasks :meth:`~baton.store.protocol.ReadStore.tasks` lists, in id order:
    of ``node``, ``partition``, in ``state``; the next page starts ``after`` the last id of this
    one; ``limit`` None (or not given): all of them, for tools that need the whole event."""

    node: str | None
    partition: str | None
    state: TaskState | None
    after: int | None
    limit: int | None


class AuditFilter(TypedDict, total=False):
    """Which decisions :meth:`~baton.store.protocol.ReadStore.audit` lists, oldest first: of
    ``event_id``, of ``task_id``; the next page starts ``after`` the last id of this one;
    ``limit`` None (or not given): all of them."""

    event_id: int | None
    task_id: int | None
    after: int | None
    limit: int | None


class Watched(NamedTuple):
    """An unfinished event with a deadline."""

    id: int
    graph_id: int
    started_at: float | None
    deadline_at: float
    predicted_end_at: float | None
    at_risk_at: float | None
    missed_at: float | None


@dataclass(frozen=True)
class PruneRequest:
    """What to prune, as of ``now`` (the caller's clock)."""

    now: float
    batch: int = 1000  # rows at most per transaction
    days: float | None = None  # every graph's finished events older than this, whatever it says
    default_days: float | None = None  # for graphs that say nothing (None: kept)
    notice_before: float | None = None  # outbox rows dispatched and delivered before this
    dry_run: bool = False  # count every event and task due; remove nothing


@dataclass(frozen=True)
class PruneResult:
    """What one call removed (or, in a dry run, would remove): events whole, rows of them."""

    events: int = 0
    tasks: int = 0
    audit: int = 0
    notices: int = 0
    more: bool = False  # rows were left for the next call

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(self.events + other.events, self.tasks + other.tasks, self.audit + other.audit,
                           self.notices + other.notices, other.more)  # fmt: skip


@dataclass(frozen=True)
class WebhookRecord:
    """A webhook as anyone may see it: never its secret, only a few digits of its SHA-256."""

    id: int
    name: str
    url: str
    kinds: tuple[str, ...]
    event_types: tuple[str, ...] | None  # None: every event type
    fingerprint: str  # of the secret (baton.engine.webhooks.fingerprint)
    created_at: float
    disabled_at: float | None  # removed: it receives nothing more; its deliveries are kept


@dataclass(frozen=True)
class DeliveryRecord:
    """One notification to one webhook: a line of the delivery log."""

    id: int
    uid: str  # sent as Baton-Delivery, the same on every try: receivers deduplicate by it
    webhook: str
    notice_id: int
    kind: str
    event_id: int | None
    state: str  # pending, delivered, expired (given up at the horizon), cancelled (webhook removed)
    attempts: int
    next_at: float
    last_status: int | None  # the HTTP status of the last try (None: no answer)
    last_error: str | None
    last_at: float | None
    created_at: float
    delivered_at: float | None


@dataclass(frozen=True)
class DeliveryJob:
    """A delivery the controller has taken to post: ``attempt`` fences what it reports back.
    The secret is left out of the repr, so no log line or traceback can carry it."""

    id: int
    uid: str
    attempt: int
    kind: str
    webhook: str
    url: str
    body: str  # the JSON text to post, byte for byte what was signed
    created_at: float
    secret: str = field(repr=False)


@dataclass(frozen=True)
class DeliveryResult:
    """How one try of a delivery went, for the store to record (fenced by ``attempt``): at
    ``at`` the receiver answered ``status`` (None: no answer, ``error`` says why); ``retry_at``
    None means delivered, else when to try again (past the horizon: given up instead)."""

    delivery_id: int
    attempt: int
    at: float
    status: int | None
    error: str | None
    retry_at: float | None


class DeliveryFilter(TypedDict, total=False):
    """Which deliveries :meth:`~baton.store.protocol.WebhookStore.deliveries` lists, newest
    first: to the webhook named ``webhook``, in ``state``; the next page starts ``before`` the
    last id of this one; ``limit`` at most (50 when not given)."""

    webhook: str | None
    state: str | None
    before: int | None
    limit: int


@dataclass(frozen=True)
class CalendarRecord:
    """A stored business calendar: its validated document as plain data (``calendar_to_dict``)."""

    name: str
    spec: Mapping[str, Any]
    source: str
    updated_at: float


@dataclass(frozen=True)
class ScheduleRecord:
    """A schedule as the store keeps it. ``state``: active, paused, ended (no fire is left),
    retired (its graph's newest version dropped it). Fires up to ``handled_through`` are
    handled; ``next_fire_at`` is when it raises next (None: to be worked out, or never);
    ``queued_at`` a fire held back by ``overlap: queue_one``; ``missed`` counts fires not raised."""

    id: int
    name: str
    graph: str
    spec: Mapping[str, Any]
    state: str
    note: str | None
    paused_by: str | None
    paused_at: float | None
    handled_through: float
    next_fire_at: float | None
    queued_at: float | None
    last_fire_at: float | None
    last_event_id: int | None
    missed: int
    created_at: float
    updated_at: float


class ScheduleDue(NamedTuple):
    """What the ticker reads of a schedule that may have fires to raise."""

    id: int
    name: str
    graph: str
    graph_id: int | None  # the graph's newest version (None: the graph is gone)
    handled_through: float
    queued_at: float | None
    last_event_id: int | None
    last_event_running: int  # 1 while the schedule's last event is unfinished
    next_fire_at: float | None


@dataclass(frozen=True)
class ScheduleTick:
    """What one look at a schedule decided, for the store to write in one transaction (see
    :mod:`baton.engine.tick`): applied only while ``handled_through`` is still ``expected``."""

    schedule_id: int
    expected: float  # the handled_through the ticker read
    raised: tuple[tuple[float, Mapping[str, Any], float | None], ...]  # (fire instant, params, deadline)
    handled_through: float
    next_fire_at: float | None
    queued_at: float | None
    cancel_previous: bool = False
    missed: int = 0  # -1: more than were counted
    missed_by_overlap: int = 0
    missed_first: float | None = None
    missed_last: float | None = None
    ended: bool = False


MAX_MAX_RUNNING = 1000  # the store's bound on a backfill's max_running
MAX_BACKFILL_DAYS = 36_600  # a backfill's range spans at most about a century


@dataclass(frozen=True)
class BackfillRequest:
    """A backfill to start: the schedule's fires in [from_at, to_at] (epoch seconds)."""

    schedule: str
    from_at: float
    to_at: float
    max_running: int = 1
    rerun: bool = False  # raise fires that already have an event again (under the backfill's own key)
    dry_run: bool = False  # count only; store nothing


@dataclass(frozen=True)
class BackfillRecord:
    """A backfill: the past fires of a schedule in [from_at, to_at], raised in order, at most
    ``max_running`` unfinished at once. ``cursor`` is the last fire handled; ``raised`` and
    ``skipped`` (fires that already had an event) count what was done, ``total`` the fires in
    the range; ``running`` its events unfinished now."""

    id: int
    schedule_id: int
    schedule: str
    graph: str
    from_at: float
    to_at: float
    max_running: int
    rerun: bool
    state: str  # running, done, cancelled (dry-run: not stored)
    cursor: float | None
    raised: int
    skipped: int
    total: int
    running: int
    created_by: str
    created_at: float
    finished_at: float | None
    graph_id: int | None = None  # the graph's newest version


MAX_PAUSE_REASON_CHARS = 500


@dataclass(frozen=True)
class PauseTarget:
    """What to pause or resume: a graph by name (every version's events, and those raised while
    it is paused), an event, or one node of an event."""

    graph: str | None = None
    event_id: int | None = None
    node: str | None = None

    def __post_init__(self) -> None:
        if (self.graph is None) == (self.event_id is None) or (self.node is not None and self.event_id is None):
            raise ValueError("a pause names a graph, an event, or a node of an event")

    @property
    def name(self) -> str:
        """How the pause is named: ``graph:NAME``, ``event:ID`` or ``event:ID:node:NODE``."""
        if self.graph is not None:
            return f"graph:{self.graph}"
        return f"event:{self.event_id}" + (f":node:{self.node}" if self.node is not None else "")


@dataclass(frozen=True)
class PauseRecord:
    """A pause in force: its target, the graph it concerns (an event's graph for an event or node
    pause), why, by whom and since when."""

    id: int
    target: str
    graph: str
    event_id: int | None
    node: str | None
    reason: str
    paused_by: str
    paused_at: float


@dataclass(frozen=True)
class TaskCounts:
    """Unfinished tasks of a scope, by state."""

    ready: int = 0
    pending: int = 0
    running: int = 0


@dataclass(frozen=True)
class PauseAnswer:
    """What pausing did: the pause (``created`` False: it was in force already), and what it holds:
    ready tasks taken out of the queue, pending ones that will wait when ready, running ones that
    finish (their retries wait)."""

    pause: PauseRecord
    created: bool
    held: TaskCounts


@dataclass(frozen=True)
class ResumeAnswer:
    """What resuming did: ``released`` counts the tasks no pause holds any more (the ready ones are
    back in the queue now, the pending ones start when their upstream is done); ``still_paused``
    names the pauses that go on holding part or all of the scope."""

    target: str
    released: TaskCounts
    still_paused: tuple[str, ...] = ()


# Why tasks are not running (baton.store.waiting), in the order they are listed within a node.
REASONS = ("queued", "paused", "upstream", "backoff", "limit", "rate", "held", "no_worker", "slot", "cancelled")


@dataclass(frozen=True)
class WaitingGroup:
    """``count`` tasks of ``node`` that do not run for one ``reason`` (a code in :data:`REASONS`),
    told in ``sentence``; ``until`` is when a backoff ends and ``since`` when a pause began (epoch
    seconds), for each surface to format in its reader's time."""

    node: str
    reason: str
    count: int
    sentence: str
    until: float | None = None
    since: float | None = None
