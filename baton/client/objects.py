"""What ``/api/v1``'s answers become in a client: frozen dataclasses, never raw dicts.

Events come back as :class:`~baton.store.records.EventRecord` (the wire carries every field of
it), webhooks, deliveries, calendars and backfills as their records, and log slices as
:class:`~baton.store.records.LogChunk`; the rest have small types of their own, because the wire
carries less than the store's records (a task's attempts without their output, which is read by
attempt id; a worker without its process id) or something else (a task's result as JSON, not as
text). Answers are checked against the server's wire models, so one definition of each body
serves both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from baton.engine.fires import Fire
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import BackendError
from baton.store.records import (
    BackfillRecord,
    CalendarRecord,
    DeliveryRecord,
    EventRecord,
    GraphRecord,
    LogChunk,
    ScheduleRecord,
    WebhookRecord,
)
from baton.wire.api import (
    AttemptOut,
    BackfillOut,
    CalendarOut,
    DeliveryOut,
    EventOut,
    FireOut,
    GraphOut,
    LogOut,
    ScheduleOut,
    TaskOut,
    WebhookOut,
    WorkerOut,
)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class EventStatus:
    """One event with its tasks counted per node and state, and a ``version`` that changes
    whenever any of it does (the ETag of ``GET /api/v1/events/{id}``)."""

    event: EventRecord
    nodes: Mapping[str, Mapping[str, int]]
    version: str

    @property
    def id(self) -> int:
        return self.event.id

    @property
    def state(self) -> EventState:
        return self.event.state

    def count(self, state: TaskState | str) -> int:
        """Tasks of the event in ``state``, over every node."""
        return sum(states.get(str(state), 0) for states in self.nodes.values())


@dataclass(frozen=True)
class Attempt:
    """One finished attempt of a task; its output is read with ``Client.log(attempt.id)``."""

    id: str  # "<task_id>-<attempt>"
    task_id: int
    attempt: int
    worker_id: str | None
    outcome: Outcome
    started_at: float | None
    finished_at: float
    exit_code: int | None
    error: str | None


@dataclass(frozen=True)
class Task:
    """One task of an event. ``attempts`` is None in listings and the finished attempts, oldest
    first, from ``Client.task(id)``."""

    id: int
    event_id: int
    node: str
    partition: str
    state: TaskState
    attempt: int
    failures: int
    worker_id: str | None
    ready_at: float | None
    started_at: float | None
    finished_at: float | None
    result: Any
    error: str | None
    attempts: tuple[Attempt, ...] | None = None
    priority: int = 0  # its priority now: its node's plus its event's, plus what ageing added


@dataclass(frozen=True)
class GraphVersion:
    """A registered graph version as listed (``Client.graph(id)`` gives its specification)."""

    id: int
    name: str
    version: int
    event_type: str
    digest: str
    registered_at: float


@dataclass(frozen=True)
class Worker:
    """A task server as the server sees it; ``stale``: no heartbeat for over a lease."""

    id: str
    name: str
    host: str
    capacity: Mapping[str, int]
    labels: frozenset[str]
    state: str
    started_at: float
    last_seen: float
    stale: bool
    running: tuple[int, ...]


@dataclass(frozen=True)
class ScheduleStatus:
    """A schedule as the server shows it: its record, the type of the events it raises, its next
    fires (none unless it is active) and why it waits, if it does (a calendar not registered)."""

    record: ScheduleRecord
    event_type: str | None
    next_fires: tuple[Fire, ...]
    waiting: str | None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def state(self) -> str:
        return self.record.state


@dataclass(frozen=True)
class BackfillPlan:
    """What a backfill's dry run found: its counts (``record``: id 0, state ``dry-run``; ``total``
    fires, ``skipped`` those that already have an event) and its first and last few fires."""

    record: BackfillRecord
    first: tuple[Fire, ...]
    last: tuple[Fire, ...]


def parsed(model: type[M], data: Any) -> M:
    """An answer checked against its wire model; one that does not fit means the server speaks
    another version of the API."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BackendError(f"the server's answer is not a {model.__name__} this client knows: {exc}") from exc


def event_of(e: EventOut) -> EventRecord:
    return EventRecord(
        id=e.id, type=e.type, graph_id=e.graph.id, graph_name=e.graph.name, graph_version=e.graph.version,
        key=e.idempotency_key, params=e.params, state=EventState(e.state), cancel_requested=e.cancel_requested,
        submitted_at=e.submitted_at, started_at=e.started_at, finished_at=e.finished_at, tasks_total=e.tasks_total,
        tasks_active=e.tasks_active, error=e.error, schedule_id=e.schedule_id, scheduled_for=e.scheduled_for,
        backfill_id=e.backfill_id, source_event_id=e.source_event_id, deadline_at=e.deadline_at,
        predicted_end_at=e.predicted_end_at, at_risk_at=e.at_risk_at, missed_at=e.missed_at, paused=e.paused,
        priority=e.priority,
    )  # fmt: skip


def status_of(e: EventOut) -> EventStatus:
    if e.nodes is None or e.version is None:
        raise BackendError(f"the server sent event {e.id} without its counts per node")
    return EventStatus(event_of(e), e.nodes, e.version)


def attempt_of(task_id: int, a: AttemptOut) -> Attempt:
    return Attempt(a.id, task_id, a.attempt, a.worker_id, Outcome(a.outcome), a.started_at, a.finished_at,
                   a.exit_code, a.error)  # fmt: skip


def task_of(t: TaskOut) -> Task:
    attempts = None if t.attempts is None else tuple(attempt_of(t.id, a) for a in t.attempts)
    return Task(t.id, t.event_id, t.node, t.partition, TaskState(t.state), t.attempt, t.failures, t.worker_id,
                t.ready_at, t.started_at, t.finished_at, t.result, t.error, attempts, t.priority)  # fmt: skip


def graph_version_of(g: GraphOut) -> GraphVersion:
    return GraphVersion(g.id, g.name, g.version, g.event_type, g.digest, g.registered_at)


def graph_of(g: GraphOut) -> GraphRecord:
    if g.spec is None:
        raise BackendError(f"the server sent graph {g.id} without its specification")
    return GraphRecord(g.id, g.name, g.version, g.event_type, g.digest, g.spec, g.registered_at)


def worker_of(w: WorkerOut) -> Worker:
    return Worker(w.id, w.name, w.host, w.capacity, frozenset(w.labels), w.state, w.started_at, w.last_seen,
                  w.stale, tuple(w.running))  # fmt: skip


def log_of(out: LogOut) -> LogChunk:
    task_id, _, attempt = out.attempt_id.partition("-")
    return LogChunk(int(task_id), int(attempt), out.stream, out.offset, out.text, out.size, live=out.running)


def webhook_of(w: WebhookOut) -> WebhookRecord:
    types = None if w.event_types is None else tuple(w.event_types)
    return WebhookRecord(w.id, w.name, w.url, tuple(w.kinds), types, w.secret_fingerprint, w.created_at, w.disabled_at)


def delivery_of(d: DeliveryOut) -> DeliveryRecord:
    return DeliveryRecord(**d.model_dump())


def calendar_of(c: CalendarOut) -> CalendarRecord:
    return CalendarRecord(c.name, c.spec, c.source, c.updated_at)


def fire_of(f: FireOut) -> Fire:
    return Fire(f.at, f.local)


def schedule_of(s: ScheduleOut) -> ScheduleStatus:
    record = ScheduleRecord(
        id=s.id, name=s.name, graph=s.graph, spec=s.spec, state=s.state, note=s.note, paused_by=s.paused_by,
        paused_at=s.paused_at, handled_through=s.handled_through, next_fire_at=s.next_fire_at, queued_at=s.queued_at,
        last_fire_at=s.last_fire_at, last_event_id=s.last_event_id, missed=s.missed, created_at=s.created_at,
        updated_at=s.updated_at,
    )  # fmt: skip
    return ScheduleStatus(record, s.event_type, tuple(fire_of(f) for f in s.next_fires), s.waiting)


def backfill_of(b: BackfillOut) -> BackfillRecord:
    return BackfillRecord(
        id=b.id, schedule_id=b.schedule_id, schedule=b.schedule, graph=b.graph, from_at=b.from_at, to_at=b.to_at,
        max_running=b.max_running, rerun=b.rerun, state=b.state, cursor=b.cursor, raised=b.raised,
        skipped=b.skipped, total=b.total, running=b.running, created_by=b.created_by, created_at=b.created_at,
        finished_at=b.finished_at, graph_id=b.graph_id,
    )  # fmt: skip


def plan_of(b: BackfillOut) -> BackfillPlan:
    return BackfillPlan(backfill_of(b), tuple(fire_of(f) for f in b.first_fires or ()),
                        tuple(fire_of(f) for f in b.last_fires or ()))  # fmt: skip
