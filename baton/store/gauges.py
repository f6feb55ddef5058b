"""What the server's metrics read from the store: one read transaction every few seconds,
never one per scrape.

Two kinds of values come from here:

- **gauges** of the state now: unfinished events and their tasks by state, the oldest
  claimable task, workers online and stale, slots used and free, webhook deliveries pending;
- **activity** since the previous read, for counters and histograms that must cover what every
  process did (database-connected workers and controllers too, not only what passed through the
  server). The audit table records each of those decisions (an event submitted or finished, an
  attempt ended, a report refused, a webhook delivery's try), so the activity is read from it
  incrementally by id, joined with the task and its attempts for their times.

An audit id is given out when its transaction writes its rows, just before the commit; on
PostgreSQL two transactions may commit in the other order, so a reader that went straight to
the newest id could step over a row still committing. The caller therefore counts only up to
the newest id of its *previous* read (see :meth:`SqlGauges.metrics_sample`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple

from baton.engine.states import Outcome, TaskState
from baton.store.records import Activity, MetricsSample
from baton.store.retry import retried
from baton.store.tx import Tx, in_list, read_one, read_rows, scalar, select_list

EVENT_ENDS = ("event.succeeded", "event.failed", "event.cancelled")
TASK_ENDS = ("task.succeeded", "task.failed", "task.cancelled")  # an attempt that ended its task
# A webhook delivery's try: delivered, or failed (then retried, or given up: expired, which is a
# failed try too).
DELIVERY_TRIES = {"delivery.delivered": ("delivered",), "delivery.failed": ("failed",),
                  "delivery.expired": ("failed", "expired")}  # fmt: skip
LOST = Outcome.LOST.value
STORE_ENDED = frozenset({LOST, Outcome.RELEASED.value})  # attempts the store ended, not their worker
ATTEMPT = "attempt "  # how the cause of every attempt's end begins: "attempt 3 failed: ..."
IN_CHUNK = 500  # ids per IN list


class EventHead(NamedTuple):
    id: int
    state: str


class StateCount(NamedTuple):
    state: str
    n: int


class Oldest(NamedTuple):
    oldest: float | None


class OnlineRow(NamedTuple):
    id: str
    capacity: str  # JSON
    last_seen: float


class HeldRow(NamedTuple):
    worker_id: str
    cost: str  # JSON: the requirement's cost per task
    n: int


class AuditEnd(NamedTuple):
    """An audit row that counts, with its event's type, its task and one of the task's attempts
    (a row per attempt; none for an event's row)."""

    id: int
    action: str
    cause: str
    actor: str
    detail: str
    event_type: str | None
    task_attempt: int | None  # the task's current attempt
    task_state: str | None
    available_at: float | None
    ready_at: float | None
    claimed_at: float | None  # the task's latest claim (tasks.started_at, the database's clock)
    attempt: int | None
    worker_id: str | None
    outcome: str | None
    started_at: float | None  # the attempt's, as its worker reported it
    finished_at: float | None


CENTRE = ("deadline.missed", "schedule.misfire", "event.pruned")
RATE_PARKED = "task.rate_parked"  # a claim parked tasks on a spent rate limit (detail: tasks)
AGED = "task.aged"  # one row per ageing step, its detail's ``tasks`` how many were raised
DISCOVERED = "partitions.planned"  # one row per discovery's success, its detail's ``new`` how many partitions
HOLD_EXPIRED = "hold.expired"  # one row per worker and sweep, its detail's ``count`` how many holds ran out
HOLD_RECALLED = "hold.recalled"  # one row per recall, its detail's ``count`` how many holds were asked back
_ACTIONS = ", ".join(
    repr(a)
    for a in (
        "event.submitted",
        "report.rejected",
        RATE_PARKED,
        *EVENT_ENDS,
        *DELIVERY_TRIES,
        *CENTRE,
        AGED,
        DISCOVERED,
        HOLD_EXPIRED,
        HOLD_RECALLED,
    )
)
_COUNTED = (
    "SELECT id, event_id, task_id, action, cause, actor, detail FROM audit WHERE id > ? AND id <= ? "
    f"AND (action IN ({_ACTIONS}) "
    f"OR (task_id IS NOT NULL AND cause LIKE '{ATTEMPT}%')) ORDER BY id LIMIT ?"
)
_JOINED = select_list(
    AuditEnd, "a.", event_type="e.type", task_attempt="t.attempt", task_state="t.state", available_at="t.available_at",
    ready_at="t.ready_at", claimed_at="t.started_at", attempt="x.attempt", worker_id="x.worker_id",
    outcome="x.outcome", started_at="x.started_at", finished_at="x.finished_at",
)  # fmt: skip
_ACTIVITY = (
    f"SELECT {_JOINED} FROM ({_COUNTED}) a LEFT JOIN events e ON e.id = a.event_id "
    "LEFT JOIN tasks t ON t.id = a.task_id LEFT JOIN attempts x ON x.task_id = a.task_id ORDER BY a.id, x.attempt"
)


class SqlGauges:
    """The metrics verb of a SQL backend (mixed into :class:`~baton.store.sql.SqlStore`)."""

    transaction: Callable[..., AbstractContextManager[Tx]]

    @retried
    def metrics_sample(self, after: int | None, through: int | None, limit: int, stale_after_s: float) -> MetricsSample:
        """The gauges now, and the activity recorded in audit rows ``after`` < id <= ``through``
        (at most ``limit`` rows: ``activity.through`` says how far it got). Pass as ``through``
        the ``audit_id`` of an earlier sample, so that every row up to it has committed; None
        (either): count nothing. A worker silent for over ``stale_after_s`` is stale."""
        with self.transaction(write=False) as tx:
            events, tasks = _queue(tx)
            oldest = read_one(tx, Oldest, "SELECT MIN(available_at) AS oldest FROM tasks WHERE state = 'ready' "
                                          "AND parked = 0 AND available_at <= ?", (tx.now,))  # fmt: skip
            slots = _slots(tx, stale_after_s)
            pending = int(scalar(tx, "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'"))
            centre = _centre(tx)
            audit_id = int(scalar(tx, "SELECT MAX(id) FROM audit") or 0)
            if after is None or through is None or through <= after:
                activity = Activity(through=after if after is not None else audit_id)
            else:
                activity = _activity(tx, after, through, limit)
            return MetricsSample(
                at=tx.now, audit_id=audit_id, events=events, tasks=tasks,
                oldest_ready_at=oldest.oldest if oldest else None, workers_online=slots.online,
                workers_stale=slots.stale, slots_used=slots.used, slots_free=slots.free, activity=activity,
                deliveries_pending=pending, **centre,
            )  # fmt: skip


class StateCountRow(NamedTuple):
    state: str
    n: int


def _centre(tx: Tx) -> dict[str, Any]:
    """The event centre's gauges: events at risk, schedules by state, backfills running (each
    read through a small partial index or a small table)."""
    at_risk = (
        "SELECT COUNT(*) FROM events WHERE deadline_at IS NOT NULL AND finished_at IS NULL AND at_risk_at IS NOT NULL"
    )
    by_state = read_rows(tx, StateCountRow, "SELECT state, COUNT(*) AS n FROM schedules GROUP BY state")
    parked = "SELECT COUNT(*) FROM tasks WHERE limit_key IS NOT NULL AND state = 'ready' AND parked = 1"
    rate_waiting = "SELECT COUNT(*) FROM tasks WHERE rate_key IS NOT NULL AND state = 'ready' AND parked = 3"
    full = ("SELECT COUNT(*) FROM limit_keys k WHERE k.max_running <= "
            "(SELECT COUNT(*) FROM tasks t WHERE t.limit_key = k.key AND t.state = 'running')")  # fmt: skip
    pauses = int(scalar(tx, "SELECT COUNT(*) FROM pauses"))
    # (only while something is paused: the tasks of unfinished events, through their index)
    held = ("SELECT COUNT(*) FROM tasks WHERE parked = 2 AND state IN ('pending', 'ready') "
            "AND event_id IN (SELECT id FROM events WHERE state = 'running')")  # fmt: skip
    return {"events_at_risk": int(scalar(tx, at_risk)), "schedules": {r.state: int(r.n) for r in by_state},
            "backfills_running": int(scalar(tx, "SELECT COUNT(*) FROM backfills WHERE state = 'running'")),
            "tasks_parked": int(scalar(tx, parked)), "limit_keys_full": int(scalar(tx, full)),
            "pauses": pauses, "tasks_paused": int(scalar(tx, held)) if pauses else 0,
            "events_queued": int(scalar(tx, _QUEUED)), "tasks_rate_waiting": int(scalar(tx, rate_waiting)),
            "tasks_held": int(scalar(tx, "SELECT COUNT(*) FROM tasks WHERE parked = 4"))}  # fmt: skip


_QUEUED = ("SELECT COUNT(*) FROM events e JOIN graphs g ON g.id = e.graph_id WHERE e.state = 'submitted' "
           "AND g.event_limit_policy = 'queue'")  # fmt: skip


def _queue(tx: Tx) -> tuple[dict[str, int], dict[str, int]]:
    """Unfinished events by state, and the tasks of the running ones by state: the events table
    is read once (it has no index by state), each running event's counts by its key."""
    unfinished = read_rows(tx, EventHead, "SELECT id, state FROM events WHERE state IN ('submitted', 'running')")
    running = [e.id for e in unfinished if e.state == "running"]
    tasks: Counter[str] = Counter()
    for at in range(0, len(running), IN_CHUNK):
        ids = running[at : at + IN_CHUNK]
        found = {r.state: int(r.n or 0) for r in read_rows(tx, StateCount, _task_states(len(ids)), ids * 4)}
        total = found.pop("total", 0)
        tasks.update(found)
        tasks[TaskState.READY.value] += total - sum(found.values())  # what no other state holds
    return dict(Counter(e.state for e in unfinished)), {s.value: tasks[s.value] for s in TaskState}


def _task_states(n: int) -> str:
    """The tasks of ``n`` events by state, as ``SqlReads.node_counts`` reads one event's: the
    counted states as kept, succeeded from event_nodes, running from the running tasks, and the
    total (ready ones are what is left)."""
    ids = in_list(range(n))
    return (
        "WITH running AS MATERIALIZED (SELECT event_id FROM tasks WHERE state = 'running' "
        "AND lease_expires_at IS NOT NULL) "
        f"SELECT state, SUM(n) AS n FROM event_node_states WHERE event_id IN ({ids}) GROUP BY state "
        f"UNION ALL SELECT 'succeeded', SUM(total - remaining) FROM event_nodes WHERE event_id IN ({ids}) "
        f"UNION ALL SELECT 'total', SUM(total) FROM event_nodes WHERE event_id IN ({ids}) "
        f"UNION ALL SELECT 'running', COUNT(*) FROM running WHERE event_id IN ({ids})"
    )


@dataclass(frozen=True)
class Slots:
    online: int
    stale: int
    used: int
    free: int


def _slots(tx: Tx, stale_after_s: float) -> Slots:
    """Workers online (active, heard from within ``stale_after_s``) and stale, and the slots of
    the online ones: those their running tasks take (by each task's cost), and the rest."""
    active = read_rows(tx, OnlineRow, f"SELECT {select_list(OnlineRow)} FROM workers WHERE state = 'active'")
    online = {
        w.id: int(json.loads(w.capacity).get("slots", 0)) for w in active if tx.now - w.last_seen <= stale_after_s
    }
    held = read_rows(
        tx,
        HeldRow,
        "SELECT t.worker_id, r.cost, COUNT(*) AS n FROM tasks t JOIN requirements r ON r.id = t.req_id "
        "WHERE t.state = 'running' GROUP BY t.worker_id, r.cost",
    )
    used: Counter[str] = Counter()
    for h in held:
        if h.worker_id in online:
            used[h.worker_id] += int(h.n) * int(json.loads(h.cost).get("slots", 0))
    taken = sum(min(used[w], capacity) for w, capacity in online.items())
    return Slots(len(online), len(active) - len(online), taken, sum(online.values()) - taken)


def _activity(tx: Tx, after: int, through: int, limit: int) -> Activity:
    rows = read_rows(tx, AuditEnd, _ACTIVITY, (after, through, limit))
    tally = _Tally()
    counted, i, last = 0, 0, through
    while i < len(rows):  # an audit row comes once per attempt of its task, in a run
        j, last = i + 1, rows[i].id
        while j < len(rows) and rows[j].id == last:
            j += 1
        tally.add(rows[i], rows[i:j])
        counted, i = counted + 1, j
    return tally.activity(last if counted >= limit else through)


def _attempt(rows: Sequence[AuditEnd], number: int) -> AuditEnd | None:
    """The row (of one audit row's run) that carries attempt ``number`` of its task."""
    return next((r for r in rows if r.attempt == number), None)


class _Tally:
    """Audit rows folded into the counts and observations of an :class:`Activity`. This runs
    over every task end, so it stays plain: no per-row objects beyond the rows read."""

    def __init__(self) -> None:
        self.submitted: Counter[str] = Counter()
        self.finished: Counter[tuple[str, str]] = Counter()
        self.lease_expirations = 0
        self.stale_reports = 0
        self.run_s: list[float] = []
        self.queue_wait_s: list[float] = []
        self.dispatch_s: list[float] = []
        self.deliveries: Counter[str] = Counter()
        self.centre: Counter[str] = Counter()
        self.rate_refused = 0
        self.holds = {HOLD_EXPIRED: 0, HOLD_RECALLED: 0}
        self.aged = 0
        self.discovered = 0

    def add(self, row: AuditEnd, attempts: Sequence[AuditEnd]) -> None:
        action = row.action
        if action == "event.submitted":
            self.submitted[row.event_type or ""] += 1
        elif action in EVENT_ENDS:
            self.finished[(row.event_type or "", action[len("event.") :])] += 1
        elif action == "report.rejected":
            self.stale_reports += _stale(row, attempts)
        elif action in DELIVERY_TRIES:
            self.deliveries.update(DELIVERY_TRIES[action])
        elif action == RATE_PARKED:
            tasks = json.loads(row.detail).get("tasks", 1)
            self.rate_refused += tasks if isinstance(tasks, int) and tasks > 0 else 1
        elif action in CENTRE:
            missed = json.loads(row.detail).get("missed", 1) if action == "schedule.misfire" else 1
            self.centre[action] += missed if isinstance(missed, int) and missed > 0 else 1
        elif action == DISCOVERED:
            new = json.loads(row.detail).get("new", 0)
            self.discovered += new if isinstance(new, int) and new > 0 else 0
        elif action == AGED:
            raised = json.loads(row.detail).get("tasks", 0)
            self.aged += raised if isinstance(raised, int) and raised > 0 else 0
        elif action in (HOLD_EXPIRED, HOLD_RECALLED):
            n = json.loads(row.detail).get("count", 0)
            self.holds[action] += n if isinstance(n, int) and n > 0 else 0
        elif row.cause.startswith(ATTEMPT):
            self._ended(row, attempts)

    def _ended(self, row: AuditEnd, attempts: Sequence[AuditEnd]) -> None:
        """An attempt's end: ``cause`` is "attempt N OUTCOME[: why]" (see ``advance``)."""
        number, _, rest = row.cause.removeprefix(ATTEMPT).partition(" ")
        if not number.isdigit():
            return
        n = int(number)
        outcome, _, _ = rest.partition(":")
        if outcome == LOST and row.actor == "controller":
            self.lease_expirations += 1
        ended = _attempt(attempts, n) if outcome not in STORE_ENDED else None
        if ended is not None and ended.started_at is not None and ended.finished_at is not None:
            self.run_s.append(max(0.0, ended.finished_at - ended.started_at))
        # the task row tells of this attempt only if it ended the task and nothing reset it since
        if row.claimed_at is None or row.task_attempt != n or row.action not in TASK_ENDS:
            return
        if row.task_state != row.action[len("task.") :]:
            return
        if row.available_at is not None:
            self.queue_wait_s.append(max(0.0, row.claimed_at - row.available_at))
        if row.ready_at is not None:
            self.dispatch_s.append(max(0.0, row.claimed_at - row.ready_at))

    def activity(self, through: int) -> Activity:
        return Activity(
            through=through, submitted=dict(self.submitted), finished=dict(self.finished),
            lease_expirations=self.lease_expirations, stale_reports=self.stale_reports, run_s=tuple(self.run_s),
            queue_wait_s=tuple(self.queue_wait_s), dispatch_latency_s=tuple(self.dispatch_s),
            deliveries=dict(self.deliveries), deadlines_missed=self.centre["deadline.missed"],
            fires_missed=self.centre["schedule.misfire"], events_pruned=self.centre["event.pruned"],
            rate_starts_refused=self.rate_refused,
            tasks_aged=self.aged,
            partitions_discovered=self.discovered,
            hold_expiries=self.holds[HOLD_EXPIRED], hold_recalls=self.holds[HOLD_RECALLED],
        )  # fmt: skip


def _stale(row: AuditEnd, attempts: Sequence[AuditEnd]) -> int:
    """1 when a refused report was stale; 0 when it repeated one this worker had recorded (the
    store splits them the same way: a replay finds its attempt recorded by that worker, as the
    worker ended it, while a stale one finds another worker's, none, or one the store ended)."""
    attempt = json.loads(row.detail).get("attempt")
    recorded = _attempt(attempts, attempt) if isinstance(attempt, int) else None
    worker = row.actor.removeprefix("worker:")
    replay = recorded is not None and recorded.worker_id == worker and recorded.outcome not in STORE_ENDED
    return 0 if replay else 1
