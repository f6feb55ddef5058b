"""The task servers' protocol, ``/worker/v1``: the bodies both sides build (the server's routes
in :mod:`baton.server.workers`, the workers' link in :mod:`baton.client.worker_link`). Plain pydantic, so a
remote worker needs nothing of the server's stack.

Results, parameters and inputs travel as JSON *text*: the store keeps them as text, so nothing
is parsed and written again on the way."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from baton.engine.states import Outcome
from baton.store.records import Claim, LogTail, Report, StopOrder

MAX_CLAIM = 64  # tasks per claim
MAX_HOLD = 64  # tasks held per claim (beyond max_tasks)
MAX_STARTS = 1024  # held tasks started, or given back, per claim
MAX_REPORTS = 512  # reports per request
MAX_TAILS = 1024  # live log chunks per request (two streams per running attempt)
MAX_KNOWN_EVENTS = 256  # events whose parameters a worker keeps
MAX_WAIT_S = 30.0
MAX_KEY = 2**62  # the largest id the server takes (a PostgreSQL BIGINT, with room)


def integral(value: object) -> object:
    """A JSON number with no fraction as the integer it is (``89670.0`` is the integer 89670 in
    JSON Schema, and strict models take only ints); anything else as it came, for the field's
    own check (``true`` stays a boolean, and is refused)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**63:
        return int(value)
    return value


# An integer field takes integral JSON numbers through ``integral``, placed after its bounds so
# that the schema states them as minimum and maximum (pydantic writes them out as "ge"/"le"
# otherwise).
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Count = Annotated[int, Field(ge=0, le=2**31 - 1), BeforeValidator(integral)]  # a PostgreSQL INTEGER
Key = Annotated[int, Field(ge=1, le=MAX_KEY), BeforeValidator(integral)]
Pair = Annotated[list[Key], Field(min_length=2, max_length=2)]  # a list: strict models take no list for a tuple
Time = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]
Answer = Literal["recorded", "duplicate", "stale"]


class Strict(BaseModel):
    """A request body: unknown fields refused, and each field's JSON type exact (``true`` is no
    number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class WorkerIn(Strict):
    id: Id
    name: Id
    host: Id
    pid: Count
    capacity: dict[Id, Count] = Field(max_length=64)
    labels: list[Id] = Field(default_factory=list, max_length=256)


class Terms(BaseModel):
    """The timings and caps a worker of this server must keep (the server's settings, not the
    worker's)."""

    lease_s: float
    heartbeat_s: float
    long_poll_s: float
    max_result_bytes: int
    max_log_bytes: int
    max_request_bytes: int
    hold_s: float = Field(0.0, description="a held task's hold lasts this long unless heartbeats renew it")


class Registered(BaseModel):
    worker_id: str = Field(description="the worker's id on the server: its own, tied to its token")


class ReportIn(Strict):
    task_id: Key
    attempt: Key
    outcome: Outcome = Field(strict=False)  # the enum from its JSON string (strict takes only members)
    started_at: Time
    finished_at: Time
    result: str | None = Field(None, description="the result as JSON text")
    error: str | None = None
    exit_code: Annotated[int, Field(ge=-(2**31), le=2**31 - 1), BeforeValidator(integral)] | None = None
    stdout: str = ""
    stderr: str = ""

    @classmethod
    def of(cls, r: Report) -> ReportIn:
        return cls(task_id=r.task_id, attempt=r.attempt, outcome=r.outcome, started_at=r.started_at,
                   finished_at=r.finished_at, result=r.result_json, error=r.error, exit_code=r.exit_code,
                   stdout=r.stdout, stderr=r.stderr)  # fmt: skip

    def report(self) -> Report:
        return Report(self.task_id, self.attempt, self.outcome, self.started_at, self.finished_at, self.result,
                      self.error, self.exit_code, self.stdout, self.stderr)  # fmt: skip


class ClaimIn(Strict):
    worker_id: Id
    claim_id: Id = Field(description="made by the worker, new for each claim; a retry reuses it")
    free: dict[Id, Count] = Field(max_length=64)
    labels: list[Id] = Field(default_factory=list, max_length=256)
    max_tasks: Annotated[int, Field(ge=0, le=MAX_CLAIM), BeforeValidator(integral)]
    reports: list[ReportIn] = Field(default_factory=list, max_length=MAX_REPORTS)
    event_id: Key | None = None
    known_events: list[Key] = Field(
        default_factory=list, max_length=MAX_KNOWN_EVENTS,
        description="events whose parameters the worker holds: the answer leaves them out",
    )  # fmt: skip
    holding: bool = Field(False, description="the worker holds tasks: the answer names those asked back")
    hold: Annotated[int, Field(ge=0, le=MAX_HOLD), BeforeValidator(integral)] = Field(
        0, description="tasks to hold beyond max_tasks: not running, started by the worker when a slot frees"
    )
    capacity: dict[Id, Count] | None = Field(
        None, max_length=64, description="the worker's whole capacity, which each held task must fit (default: free)"
    )
    starts: list[Pair] = Field(
        default_factory=list, max_length=MAX_STARTS, description="[task_id, attempt] of each held task started"
    )
    releases: list[Key] = Field(
        default_factory=list, max_length=MAX_STARTS, description="held tasks given back unstarted"
    )
    idle: Count = Field(0, description="slots with nothing to run: others' holds that fit are asked back")


class ClaimWire(BaseModel):
    """One claimed attempt. Its event's parameters travel apart, in ``ClaimOut.events``, once per
    answer and only to a worker that does not hold them already (``ClaimIn.known_events``)."""

    task_id: int
    attempt: int
    event_id: int
    node: str
    partition: str
    inputs: str
    lease_expires_at: float

    @classmethod
    def of(cls, c: Claim) -> ClaimWire:
        return cls(task_id=c.task_id, attempt=c.attempt, event_id=c.event_id, node=c.node, partition=c.partition,
                   inputs=c.inputs_json, lease_expires_at=c.lease_expires_at)  # fmt: skip

    def claim(self, event: EventWire) -> Claim:
        return Claim(self.task_id, self.attempt, self.event_id, event.type, event.graph_id, self.node,
                     self.partition, event.params, self.inputs, self.lease_expires_at)  # fmt: skip


class EventWire(BaseModel):
    """What every task of an event shares (immutable once submitted): a worker keeps it."""

    id: int
    type: str
    graph_id: int
    params: str = Field(description="the event's parameters as JSON text")

    @classmethod
    def of(cls, c: Claim) -> EventWire:
        return cls(id=c.event_id, type=c.event_type, graph_id=c.graph_id, params=c.params_json)


class AnswerOut(BaseModel):
    task_id: int
    attempt: int
    answer: Answer


class ClaimOut(BaseModel):
    claims: list[ClaimWire]
    events: list[EventWire] = Field(
        default_factory=list, description="the claims' events, except those the worker said it knows"
    )
    answers: list[AnswerOut] = Field(description="one per report sent with the claim")
    holds: list[ClaimWire] = Field(
        default_factory=list, description="held tasks: not running; lease_expires_at is the hold's end"
    )
    refused_starts: list[list[int]] = Field(
        default_factory=list, description="[task_id, attempt] of starts refused (the hold was lost): stop them"
    )
    recalled: list[int] = Field(default_factory=list, description="held tasks to give back unless started")
    yield_holds: bool = Field(
        False, description="some were asked back for an idle worker: hold no more beyond the free slots for now"
    )
    changes: int = Field(description="the server's change count before this claim: pass to /wait as since")
    epoch: str = Field("", description="this run of the server (a restart starts another): pass to /wait")


class ReportsIn(Strict):
    worker_id: Id
    reports: list[ReportIn] = Field(max_length=MAX_REPORTS)


class ReportsOut(BaseModel):
    answers: list[AnswerOut]


class HeartbeatIn(Strict):
    worker_id: Id
    running: list[Pair] = Field(max_length=100_000, description="[task_id, attempt] of each attempt held")
    held: list[Pair] = Field(
        default_factory=list, max_length=100_000,
        description="[task_id, attempt it will be] of each held task not yet reported started",
    )  # fmt: skip
    holding: bool = Field(False, description="the worker holds tasks: renew its holds, give back those it lacks")


class StopOut(BaseModel):
    task_id: int
    attempt: int
    reason: str

    @classmethod
    def of(cls, s: StopOrder) -> StopOut:
        return cls(task_id=s.task_id, attempt=s.attempt, reason=s.reason)


class HeartbeatOut(BaseModel):
    stop: list[StopOut]


class WaitIn(Strict):
    worker_id: Id
    since: Count = Field(description="the changes count of the worker's last claim")
    epoch: Id | None = Field(None, description="the epoch of that claim's answer: another run's is answered at once")
    wait_s: float = Field(20.0, ge=0, le=MAX_WAIT_S)


class WaitOut(BaseModel):
    changes: int
    changed: bool = Field(description="look again (claim): the store may have new work, or the server restarted")
    epoch: str = ""


class LogTailIn(Strict):
    task_id: Key
    attempt: Key
    stream: Literal["stdout", "stderr"]
    offset: Count = Field(description="characters of the attempt's live log the worker has sent before")
    text: str = Field(description="what the attempt wrote since")

    def tail(self) -> LogTail:
        return LogTail(self.task_id, self.attempt, self.stream, self.offset, self.text)


class LogsIn(Strict):
    worker_id: Id
    tails: list[LogTailIn] = Field(max_length=MAX_TAILS)


class LogsOut(BaseModel):
    held: list[int | None] = Field(
        description="per tail, the length of the attempt's live log now (null: the attempt is no longer the "
        "worker's, and the tail was dropped)"
    )


class LeaveIn(Strict):
    worker_id: Id
