"""What crosses the wire: request and response bodies of ``/api/v1`` (pydantic, so the OpenAPI
document states them and bad bodies are refused 422 with each problem named), and the rule that
a query names only parameters its route declares.

Request bodies are strict: a field names its type exactly (``true`` is not the number 1, ``"2"``
not an integer) and unknown fields are refused, so a client's mistake is an answer, not a guess."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from baton.engine.fires import Fire
from baton.engine.upcoming import Upcoming
from baton.engine.webhooks import MAX_EVENT_TYPES, MAX_URL_CHARS, NAME_PATTERN, SECRET_PATTERN, URL_PATTERN
from baton.graphs.calendars import MAX_CALENDAR_BYTES
from baton.graphs.model import MAX_EVENT_PRIORITY, MIN_EVENT_PRIORITY
from baton.store.records import (
    DELIVERY_STATES,
    MAX_BACKFILL_DAYS,
    MAX_MAX_RUNNING,
    MAX_PAUSE_REASON_CHARS,
    NOTICE_KINDS,
    REASONS,
    AttemptRecord,
    BackfillRecord,
    CalendarRecord,
    DeliveryRecord,
    EventRecord,
    GraphRecord,
    LimitKeyRecord,
    PauseAnswer,
    PauseRecord,
    PauseTarget,
    RateKeyRecord,
    ResumeAnswer,
    ScheduleRecord,
    TaskCounts,
    TaskRecord,
    WaitingGroup,
    WebhookRecord,
    WorkerRecord,
)
from baton.wire.workers import Key, integral

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
MAX_PAGE = 500
MAX_EPOCH_S = 1e11  # about the year 5138
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_RESULT_DEPTH = 200  # pydantic's JSON serializer gives up past 255 levels


def epoch_seconds(value: object) -> float:
    """A time given in a query, as seconds since the epoch: ISO 8601 (without a zone: UTC) or
    a number of seconds. Written out, not pydantic's datetime, which reads a number past 2e10
    as milliseconds."""
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("expected ISO 8601 (2026-01-31T12:00:00Z) or seconds since the epoch") from None
        return ((when if when.tzinfo else when.replace(tzinfo=UTC)) - EPOCH).total_seconds()
    if not (math.isfinite(seconds) and abs(seconds) <= MAX_EPOCH_S):
        raise ValueError(f"seconds since the epoch must be a number within ±{MAX_EPOCH_S:g}")
    return seconds


When = Annotated[
    float,
    BeforeValidator(epoch_seconds),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"},
                              {"type": "number", "minimum": -MAX_EPOCH_S, "maximum": MAX_EPOCH_S}]}),
]  # fmt: skip


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SubmitIn(Strict):
    type: Name = Field(description="the event type: the graph registered for it runs")
    params: dict[str, Any] = Field(default_factory=dict, description="the event's parameters")
    idempotency_key: Name | None = Field(None, description="or the Idempotency-Key header")
    graph_version: Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(integral)] | None = Field(
        None, description="pin a version (default: the latest)"
    )
    deadline_at: When | None = Field(
        None, description="when the event must have ended (ISO 8601 or epoch seconds): forecast, marked at risk, missed"
    )
    priority: Annotated[int, Field(ge=MIN_EVENT_PRIORITY, le=MAX_EVENT_PRIORITY), BeforeValidator(integral)] = Field(
        0,
        description=f"added to each of its tasks' node priority ({MIN_EVENT_PRIORITY} to {MAX_EVENT_PRIORITY}; "
        "higher runs first; waiting tasks age upwards, see docs/limits.md)",
    )


class GraphRef(BaseModel):
    id: int
    name: str
    version: int


class EventOut(BaseModel):
    id: int
    type: str
    graph: GraphRef
    idempotency_key: str | None
    params: dict[str, Any]
    state: str
    cancel_requested: bool
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    tasks_total: int
    tasks_active: int
    error: str | None
    schedule_id: int | None = Field(None, description="the schedule whose fire raised it")
    scheduled_for: float | None = Field(None, description="that fire's instant")
    backfill_id: int | None = Field(None, description="the backfill that raised it")
    source_event_id: int | None = Field(None, description="the event whose end raised it (a chain)")
    deadline_at: float | None = None
    predicted_end_at: float | None = Field(None, description="the controller's forecast of its end")
    at_risk_at: float | None = Field(None, description="when the forecast first passed the deadline")
    missed_at: float | None = Field(None, description="when the deadline passed with the event unfinished")
    paused: int = Field(0, description="how many pauses hold it (its graph's, its own, its nodes'): /api/v1/pauses")
    priority: int = Field(0, description="added to each of its tasks' node priority when it was planned")
    nodes: dict[str, dict[str, int]] | None = Field(None, description="tasks per node and state (one event only)")
    version: str | None = Field(None, description="changes whenever the event does (one event only)")

    @classmethod
    def of(cls, e: EventRecord, nodes: Mapping[str, Mapping[str, int]] | None = None) -> EventOut:
        counts = None if nodes is None else {n: dict(s) for n, s in sorted(nodes.items())}
        version = None if counts is None else event_version(e, counts)
        return cls(
            id=e.id, type=e.type, graph=GraphRef(id=e.graph_id, name=e.graph_name, version=e.graph_version),
            idempotency_key=e.key, params=dict(e.params), state=e.state.value, cancel_requested=e.cancel_requested,
            submitted_at=e.submitted_at, started_at=e.started_at, finished_at=e.finished_at,
            tasks_total=e.tasks_total, tasks_active=e.tasks_active, error=e.error, nodes=counts, version=version,
            schedule_id=e.schedule_id, scheduled_for=e.scheduled_for, backfill_id=e.backfill_id,
            source_event_id=e.source_event_id, deadline_at=e.deadline_at, predicted_end_at=e.predicted_end_at,
            at_risk_at=e.at_risk_at, missed_at=e.missed_at, paused=e.paused, priority=e.priority,
        )  # fmt: skip


def event_version(e: EventRecord, counts: Mapping[str, Mapping[str, int]]) -> str:
    """A short digest of everything about an event that changes: for ETags and live pages."""
    state = [e.state.value, e.cancel_requested, e.started_at, e.finished_at, e.tasks_active, counts,
             e.predicted_end_at, e.at_risk_at, e.missed_at, e.paused]  # fmt: skip
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


class Page(BaseModel):
    next_cursor: str | None = Field(None, description="pass as cursor for the next page; null: this was the last")


class EventPage(Page):
    events: list[EventOut]


class AttemptOut(BaseModel):
    id: str = Field(description="the attempt's id, for its log: <task_id>-<attempt>")
    attempt: int
    worker_id: str | None
    outcome: str
    started_at: float | None
    finished_at: float
    exit_code: int | None
    error: str | None

    @classmethod
    def of(cls, a: AttemptRecord) -> AttemptOut:
        return cls(id=f"{a.task_id}-{a.attempt}", attempt=a.attempt, worker_id=a.worker_id,
                   outcome=a.outcome.value, started_at=a.started_at, finished_at=a.finished_at,
                   exit_code=a.exit_code, error=a.error)  # fmt: skip


class TaskOut(BaseModel):
    id: int
    event_id: int
    node: str
    partition: str
    state: str
    attempt: int
    failures: int
    worker_id: str | None
    ready_at: float | None
    started_at: float | None
    finished_at: float | None
    result: Any = None
    result_problem: str | None = Field(None, description="why a stored result is not shown (result is null)")
    error: str | None
    attempts: list[AttemptOut] | None = None
    priority: int = Field(0, description="its priority now: its node's plus its event's, plus what ageing added")

    @classmethod
    def of(cls, t: TaskRecord, attempts: list[AttemptRecord] | None = None) -> TaskOut:
        result, problem = shown_result(t.result_json)
        return cls(
            id=t.id, event_id=t.event_id, node=t.node, partition=t.partition, state=t.state.value,
            attempt=t.attempt, failures=t.failures, worker_id=t.worker_id, ready_at=t.ready_at,
            started_at=t.started_at, finished_at=t.finished_at, result=result, result_problem=problem, error=t.error,
            attempts=None if attempts is None else [AttemptOut.of(a) for a in attempts], priority=t.priority,
        )  # fmt: skip


def shown_result(text: str | None) -> tuple[Any, str | None]:
    """A task's stored result as the answer can carry it, or None and why not. The store
    takes any JSON text a task returns; two kinds cannot be put in an answer as they are: text
    escaping a lone surrogate (mended here, as the store mends output) and nesting deeper than
    the serializer goes."""
    if text is None:
        return None, None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"the stored result is not readable JSON: {exc}"[:300]
    if _depth(value) > MAX_RESULT_DEPTH:
        return None, f"the result is nested deeper than {MAX_RESULT_DEPTH} levels; tasks that depend on it get it whole"
    if "\\ud" in text.lower():  # a surrogate escaped: \ud800-\udfff, alone or in a pair
        mended = json.dumps(value, ensure_ascii=False).encode("utf-8", "replace").decode("utf-8")
        value = json.loads(mended)
    return value, None


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (walked without recursion, and only as far
    as past the cap)."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_RESULT_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            deepest = max(deepest, depth)
            stack.extend((x, depth + 1) for x in (item.values() if isinstance(item, dict) else item))
    return deepest


class TaskPage(Page):
    tasks: list[TaskOut]


class LogOut(BaseModel):
    attempt_id: str
    stream: str
    offset: int
    next_offset: int
    size: int = Field(description="the whole stream's length in characters")
    text: str
    running: bool = Field(False, description="the attempt still runs: its output so far (sent by its worker "
                          "every few seconds); more may follow from next_offset")  # fmt: skip


class CancelOut(BaseModel):
    event: EventOut


class RerunIn(Strict):
    partition: Name | None = Field(None, description="only this partition (and what depends on it)")
    node: Name | None = Field(None, description="only this node (and what depends on it)")


class RerunOut(BaseModel):
    event_id: int
    reset: int = Field(description="how many tasks were reset to run again")


class GraphOut(BaseModel):
    id: int
    name: str
    version: int
    event_type: str
    digest: str
    registered_at: float
    spec: dict[str, Any] | None = None

    @classmethod
    def of(cls, g: GraphRecord, with_spec: bool = False) -> GraphOut:
        return cls(id=g.id, name=g.name, version=g.version, event_type=g.event_type, digest=g.digest,
                   registered_at=g.registered_at, spec=dict(g.spec) if with_spec else None)  # fmt: skip


class GraphIn(Strict):
    source: str = Field(min_length=1, max_length=4 * 1024 * 1024, description="the graph's YAML text")
    filename: Name = Field("graph.yaml", description="named in validation errors")


class GraphRegistered(BaseModel):
    graph: GraphOut
    created: bool


class WorkerOut(BaseModel):
    id: str
    name: str
    host: str
    capacity: dict[str, int]
    labels: list[str]
    state: str
    started_at: float
    last_seen: float
    stale: bool = Field(description="no heartbeat for over a lease")
    running: list[int] = Field(description="ids of the tasks it holds")

    @classmethod
    def of(cls, w: WorkerRecord, stale: bool) -> WorkerOut:
        return cls(id=w.id, name=w.name, host=w.host, capacity=dict(w.capacity), labels=sorted(w.labels),
                   state=w.state, started_at=w.started_at, last_seen=w.last_seen, stale=stale,
                   running=list(w.running))  # fmt: skip


class Health(BaseModel):
    status: str
    schema_revision: str | None


# --- webhooks -------------------------------------------------------------------------------------

WebhookName = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
NoticeKind = Annotated[
    str,
    Field(pattern="^(" + "|".join(re.escape(k) for k in NOTICE_KINDS) + ")$"),
    WithJsonSchema({"type": "string", "enum": list(NOTICE_KINDS)}),
]
DeliveryState = Annotated[
    str,
    Field(pattern="^(" + "|".join(DELIVERY_STATES) + ")$"),
    WithJsonSchema({"type": "string", "enum": list(DELIVERY_STATES)}),
]


class WebhookIn(Strict):
    """A webhook to add (or, with ``replace``, to change; a removed one of the name is enabled
    again). The secret signs every delivery; it is never shown again."""

    name: WebhookName
    url: str = Field(max_length=MAX_URL_CHARS, pattern=URL_PATTERN, description="http(s), no user:password@")
    secret: str = Field(min_length=16, max_length=256, pattern=SECRET_PATTERN,
                        description="16 to 256 printable ASCII characters, no spaces")  # fmt: skip
    kinds: list[NoticeKind] = Field(min_length=1, max_length=len(NOTICE_KINDS), description="what it receives")
    event_types: list[Name] | None = Field(
        None,
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        description="only notices about these event types (default: all)",
    )
    replace: bool = Field(False, description="change a webhook that exists (else 409)")


class WebhookOut(BaseModel):
    id: int
    name: str
    url: str
    kinds: list[str]
    event_types: list[str] | None
    secret_fingerprint: str = Field(description="the first hex digits of the secret's SHA-256 (never the secret)")
    enabled: bool
    created_at: float
    disabled_at: float | None

    @classmethod
    def of(cls, w: WebhookRecord) -> WebhookOut:
        return cls(id=w.id, name=w.name, url=w.url, kinds=list(w.kinds),
                   event_types=None if w.event_types is None else list(w.event_types),
                   secret_fingerprint=w.fingerprint, enabled=w.disabled_at is None, created_at=w.created_at,
                   disabled_at=w.disabled_at)  # fmt: skip


class DeliveryOut(BaseModel):
    id: int
    uid: str = Field(description="sent as Baton-Delivery, the same on every try")
    webhook: str
    notice_id: int
    kind: str
    event_id: int | None
    state: str
    attempts: int
    next_at: float
    last_status: int | None
    last_error: str | None
    last_at: float | None
    created_at: float
    delivered_at: float | None

    @classmethod
    def of(cls, d: DeliveryRecord) -> DeliveryOut:
        return cls(**dataclasses.asdict(d))


class DeliveryPage(Page):
    deliveries: list[DeliveryOut]


# --- schedules, calendars and backfills ----------------------------------------------------------

ITEM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$"  # a schedule's or calendar's name (baton.graphs.model.NAME_RE)
ItemName = Annotated[str, Field(min_length=1, max_length=100, pattern=ITEM_PATTERN)]
MAX_NOTE_CHARS = 500


class CalendarIn(Strict):
    """A business calendar as its YAML document (docs/schedules.md), validated as a file is."""

    source: str = Field(min_length=1, max_length=MAX_CALENDAR_BYTES, description="the calendar's YAML text")
    filename: Name = Field("calendar.yaml", description="named in validation errors")


class CalendarOut(BaseModel):
    name: str
    description: str
    spec: dict[str, Any] = Field(description="the validated calendar in its canonical form")
    source: str = Field(description="what it was registered from")
    updated_at: float

    @classmethod
    def of(cls, c: CalendarRecord) -> CalendarOut:
        return cls(name=c.name, description=str(c.spec.get("description", "")), spec=dict(c.spec), source=c.source,
                   updated_at=c.updated_at)  # fmt: skip


class FireOut(BaseModel):
    at: float = Field(description="the fire's instant (its identity)")
    local: str = Field(description="its wall time in the schedule's zone, ISO 8601 with the offset")

    @classmethod
    def of(cls, f: Fire) -> FireOut:
        return cls(at=f.at, local=f.local)


class ScheduleOut(BaseModel):
    id: int
    name: str
    graph: str
    event_type: str | None = Field(description="of the events it raises (its graph's newest version's)")
    state: str = Field(description="active, paused, ended (no fire is left) or retired (its graph dropped it)")
    note: str | None = Field(description="why it was paused")
    paused_by: str | None
    paused_at: float | None
    spec: dict[str, Any] = Field(description="the schedule as its graph's newest version declares it")
    handled_through: float = Field(description="fires up to this instant are handled (raised or missed)")
    next_fire_at: float | None = Field(description="when the controller raises next (null: not worked out yet)")
    queued_at: float | None = Field(description="a fire held back by overlap: queue_one")
    last_fire_at: float | None
    last_event_id: int | None = Field(description="the event of its last fire")
    missed: int = Field(description="fires not raised (catch-up or overlap)")
    created_at: float
    updated_at: float
    next_fires: list[FireOut] = Field(description="its next fires (none unless active)")
    waiting: str | None = Field(description="why it raises nothing although active (a calendar not registered)")

    @classmethod
    def of(cls, s: ScheduleRecord, event_type: str | None, coming: Upcoming) -> ScheduleOut:
        return cls(
            id=s.id, name=s.name, graph=s.graph, event_type=event_type, state=s.state, note=s.note,
            paused_by=s.paused_by, paused_at=s.paused_at, spec=dict(s.spec), handled_through=s.handled_through,
            next_fire_at=s.next_fire_at, queued_at=s.queued_at, last_fire_at=s.last_fire_at,
            last_event_id=s.last_event_id, missed=s.missed, created_at=s.created_at, updated_at=s.updated_at,
            next_fires=[FireOut.of(f) for f in coming.fires], waiting=coming.waiting,
        )  # fmt: skip


class PauseIn(Strict):
    note: str = Field("", max_length=MAX_NOTE_CHARS, pattern=r"^[^\x00]*$", description="why (shown with it)")


class BackfillIn(Strict):
    """A backfill: the schedule's fires in [from, to], raised in order by the controller, at most
    ``max_running`` unfinished at once. A time without a zone is UTC (``baton backfill`` reads
    dates in the schedule's zone and sends instants)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)

    schedule: ItemName
    from_at: When = Field(alias="from", description="the first instant (ISO 8601 or epoch seconds), included")
    to_at: When = Field(alias="to", description="the last instant, included")
    max_running: Annotated[int, Field(ge=1, le=MAX_MAX_RUNNING), BeforeValidator(integral)] = Field(
        1, description="its events unfinished at once, at most"
    )
    rerun: bool = Field(False, description="raise fires that already have an event again")
    dry_run: bool = Field(False, description="count the fires and those that have an event; store nothing")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillIn:
        if self.to_at < self.from_at:
            raise ValueError("'to' is before 'from'")
        if self.to_at - self.from_at > MAX_BACKFILL_DAYS * 86_400.0:
            raise ValueError(f"the range spans over {MAX_BACKFILL_DAYS:,} days: split it")
        return self


class BackfillOut(BaseModel):
    id: int = Field(description="0 for a dry run (nothing is stored)")
    schedule_id: int
    schedule: str
    graph: str
    graph_id: int | None = Field(None, description="the graph's newest version")
    from_at: float
    to_at: float
    max_running: int
    rerun: bool
    state: str = Field(description="running, done, cancelled, or dry-run")
    cursor: float | None = Field(description="the last fire handled")
    raised: int
    skipped: int = Field(description="fires that already had an event")
    total: int = Field(description="fires in the range")
    running: int = Field(description="its events unfinished now")
    created_by: str
    created_at: float
    finished_at: float | None
    first_fires: list[FireOut] | None = Field(None, description="a dry run's first few fires")
    last_fires: list[FireOut] | None = Field(None, description="a dry run's last few fires (after the first)")

    @classmethod
    def of(cls, b: BackfillRecord, preview: tuple[tuple[Fire, ...], tuple[Fire, ...]] | None = None) -> BackfillOut:
        first, last = (None, None) if preview is None else ([FireOut.of(f) for f in p] for p in preview)
        return cls(
            id=b.id, schedule_id=b.schedule_id, schedule=b.schedule, graph=b.graph, graph_id=b.graph_id,
            from_at=b.from_at, to_at=b.to_at, max_running=b.max_running, rerun=b.rerun, state=b.state,
            cursor=b.cursor, raised=b.raised, skipped=b.skipped, total=b.total, running=b.running,
            created_by=b.created_by, created_at=b.created_at, finished_at=b.finished_at,
            first_fires=first, last_fires=last,
        )  # fmt: skip


class WaitingGroupOut(BaseModel):
    """Tasks of one node that are not running, for one reason (docs/limits.md, "Why a task waits")."""

    node: str
    reason: Literal[REASONS] = Field(description=", ".join(REASONS[:-1]) + " or " + REASONS[-1])  # type: ignore[valid-type]
    count: int
    sentence: str = Field(description="the reason told in words, naming what it waits for")
    until: float | None = Field(None, description="when a backoff ends (epoch seconds)")
    since: float | None = Field(None, description="when the pause holding them began (epoch seconds)")

    @classmethod
    def of(cls, g: WaitingGroup) -> WaitingGroupOut:
        return cls(node=g.node, reason=g.reason, count=g.count, sentence=g.sentence, until=g.until, since=g.since)

    def record(self) -> WaitingGroup:
        return WaitingGroup(self.node, self.reason, self.count, self.sentence, self.until, self.since)


class LimitKeyOut(BaseModel):
    """A concurrency key (docs/limits.md)."""

    key: str
    max_running: int = Field(description="at most this many of its tasks run at once, cluster-wide")
    running: int
    ready: int = Field(description="its ready tasks in the claim's queue")
    parked: int = Field(description="its ready tasks parked until a slot frees")

    @classmethod
    def of(cls, k: LimitKeyRecord) -> LimitKeyOut:
        return cls(key=k.key, max_running=k.max_running, running=k.running, ready=k.ready, parked=k.parked)

    def record(self) -> LimitKeyRecord:
        return LimitKeyRecord(self.key, self.max_running, self.running, self.ready, self.parked)


class GraphPause(Strict):
    """A graph, by name: every version's events, and those raised while it is paused."""

    graph: Name

    def target(self) -> PauseTarget:
        return PauseTarget(graph=self.graph)


class EventPause(Strict):
    """An event, or one node of it."""

    event_id: Key = Field(description="an event's id")
    node: Name | None = Field(None, description="only this node of the event")

    def target(self) -> PauseTarget:
        return PauseTarget(event_id=self.event_id, node=self.node)


Reason = Annotated[
    str, Field(max_length=MAX_PAUSE_REASON_CHARS, pattern=r"^[^\x00]*$", description="why, shown with it")
]


class GraphPauseIn(GraphPause):
    reason: Reason = ""


class EventPauseIn(EventPause):
    reason: Reason = ""


PauseScope = GraphPause | EventPause  # what to resume
PauseTargetIn = GraphPauseIn | EventPauseIn  # what to pause, and why


class PauseOut(BaseModel):
    """A pause in force (docs/limits.md)."""

    id: int
    target: str = Field(description="graph:NAME, event:ID or event:ID:node:NODE")
    graph: str = Field(description="the graph it concerns (an event's graph, for an event or node pause)")
    event_id: int | None
    node: str | None
    reason: str
    paused_by: str
    paused_at: float

    @classmethod
    def of(cls, p: PauseRecord) -> PauseOut:
        return cls(**dataclasses.asdict(p))

    def record(self) -> PauseRecord:
        return PauseRecord(**self.model_dump())


class TaskCountsOut(BaseModel):
    ready: int
    pending: int
    running: int

    @classmethod
    def of(cls, c: TaskCounts) -> TaskCountsOut:
        return cls(ready=c.ready, pending=c.pending, running=c.running)

    def record(self) -> TaskCounts:
        return TaskCounts(self.ready, self.pending, self.running)


class PausedOut(BaseModel):
    pause: PauseOut
    created: bool = Field(description="false: the target was paused already (this is that pause)")
    held: TaskCountsOut = Field(description="ready tasks taken out of the queue, pending ones that will wait, "
                                            "running ones that finish")  # fmt: skip

    @classmethod
    def of(cls, a: PauseAnswer) -> PausedOut:
        return cls(pause=PauseOut.of(a.pause), created=a.created, held=TaskCountsOut.of(a.held))

    def record(self) -> PauseAnswer:
        return PauseAnswer(self.pause.record(), self.created, self.held.record())


class ResumedOut(BaseModel):
    target: str
    released: TaskCountsOut = Field(description="tasks no pause holds any more: the ready ones may start now")
    still_paused: list[str] = Field(description="other pauses that still hold part or all of the scope")

    @classmethod
    def of(cls, a: ResumeAnswer) -> ResumedOut:
        return cls(target=a.target, released=TaskCountsOut.of(a.released), still_paused=list(a.still_paused))

    def record(self) -> ResumeAnswer:
        return ResumeAnswer(self.target, self.released.record(), tuple(self.still_paused))


class RateKeyOut(BaseModel):
    """A rate limit's key (docs/limits.md#rate-limits)."""

    key: str
    max_starts: int = Field(description="at most this many of its tasks start in any period_s, cluster-wide")
    period_s: float = Field(description="the window's length in seconds")
    started: int = Field(description="its tasks started in the window that ends now")
    queued: int = Field(description="its ready tasks in the claim's queue")
    parked: int = Field(description="its ready tasks parked until the rate allows a start")
    next_start_at: float | None = Field(description="when its next start is allowed (epoch seconds; null: now)")

    @classmethod
    def of(cls, k: RateKeyRecord) -> RateKeyOut:
        return cls(key=k.key, max_starts=k.max_starts, period_s=k.period_s, started=k.started, queued=k.queued,
                   parked=k.parked, next_start_at=k.next_start_at)  # fmt: skip

    def record(self) -> RateKeyRecord:
        return RateKeyRecord(self.key, self.max_starts, self.period_s, self.started, self.queued, self.parked,
                             self.next_start_at)  # fmt: skip
