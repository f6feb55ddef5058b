"""Backfills and "fire now" in the store.

A backfill is a stored object (``backfills``): a schedule's past fires in a range, raised in
order, at most ``max_running`` unfinished at once. The controller's backfill duty works out the
next fires after the backfill's ``cursor`` (pure, :mod:`baton.engine.fires`) and hands them to
:meth:`BackfillVerbs.advance_backfill`, which raises as many as there is room for and moves the
cursor past them, in one transaction guarded by the cursor it was given. A fire is raised under
its schedule's own key (``schedule:<name>:<instant>``), so a fire that already has an event,
from the schedule or an earlier backfill, is skipped, and a crash anywhere raises nothing twice;
with ``rerun`` it is raised again under the backfill's key (``backfill:<id>:<instant>``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from baton.engine.fires import BusinessDays, deadline_of, fire_at, fire_params, fires_between
from baton.errors import Conflict, NotFound, UsageError
from baton.graphs.calendars import calendar_from_dict
from baton.graphs.params import validate_params
from baton.graphs.schedules import Schedule
from baton.store.core import SqlCore, canonical_params
from baton.store.raising import Origin, insert_event, schedule_priority
from baton.store.reads import EVENTS_FROM, EventRow
from baton.store.records import BackfillRecord, BackfillRequest, EventRecord
from baton.store.retry import retried
from baton.store.rows import IdRow
from baton.store.schedules import ACTIVE, PAUSED, RETIRED, CalendarRow, ScheduleRow, _schedule, fire_key
from baton.store.tx import Tx, read_one, read_rows, scalar, select_list

MAX_BACKFILL_FIRES = 100_000  # fires in one backfill's range, at most
Raising = tuple[float, Mapping[str, Any], float | None]  # (fire instant, params, deadline)


class BackfillRow(NamedTuple):
    id: int
    schedule_id: int
    schedule: str
    graph: str
    from_at: float
    to_at: float
    max_running: int
    rerun: int
    state: str
    cursor: float | None
    raised: int
    skipped: int
    total: int
    running: int
    created_by: str
    created_at: float
    finished_at: float | None
    graph_id: int | None

    def record(self) -> BackfillRecord:
        return BackfillRecord(*self[:7], bool(self.rerun), *self[8:])  # type: ignore[arg-type]


_RUNNING = "(SELECT COUNT(*) FROM events e WHERE e.backfill_id = b.id AND e.finished_at IS NULL)"
_NEWEST = "(SELECT MAX(g.id) FROM graphs g WHERE g.name = s.graph)"
_COLUMNS = select_list(BackfillRow, "b.", schedule="s.name", graph="s.graph", running=_RUNNING, graph_id=_NEWEST)
BACKFILLS = f"SELECT {_COLUMNS} FROM backfills b JOIN schedules s ON s.id = b.schedule_id"


class GraphRef(NamedTuple):
    id: int
    event_type: str


def newest_graph(tx: Tx, name: str) -> GraphRef:
    found = read_one(tx, GraphRef, "SELECT id, event_type FROM graphs WHERE name = ? ORDER BY version DESC LIMIT 1",
                     (name,))  # fmt: skip
    if found is None:
        raise NotFound(f"no graph {name!r}")
    return found


def schedule_of(tx: Tx, row: ScheduleRow) -> tuple[GraphRef, Schedule, BusinessDays | None]:
    """A schedule row's graph (newest version), its validated schedule and its calendar."""
    graph = newest_graph(tx, row.graph)
    schedule = tx.graph_of(graph.id).schedule(row.name)
    if schedule is None:
        raise Conflict(f"schedule {row.name} is no longer in graph {row.graph}")
    if schedule.calendar is None:
        return graph, schedule, None
    cal = read_one(tx, CalendarRow, "SELECT name, spec, source, updated_at FROM calendars WHERE name = ?",
                   (schedule.calendar,))  # fmt: skip
    if cal is None:
        raise Conflict(f"schedule {row.name} names calendar {schedule.calendar!r}, which is not registered")
    return graph, schedule, BusinessDays(calendar_from_dict(cal.record().spec, source=f"calendar {cal.name}"))


class BackfillVerbs(SqlCore):
    @retried
    def trigger_schedule(self, name: str, actor: str = "operator") -> EventRecord:
        with self.transaction() as tx:
            row = _schedule(tx, name)
            if row.state == RETIRED:
                raise Conflict(f"schedule {name} is retired: its graph no longer declares it")
            graph, schedule, days = schedule_of(tx, row)
            fire = fire_at(schedule, tx.now)
            key = f"schedule:{name}:now:{uuid.uuid4().hex[:12]}"
            origin = Origin(schedule_id=row.id, scheduled_for=fire.at, deadline_at=deadline_of(schedule, fire),
                            priority=schedule.priority)  # fmt: skip
            params = canonical_params(validate_params(tx.graph_of(graph.id), fire_params(schedule, fire, days)))
            event_id = insert_event(tx, graph.id, graph.event_type, params, key, origin)
            assert event_id is not None  # a fresh key
            tx.q("UPDATE schedules SET last_event_id = ?, updated_at = ? WHERE id = ?", (event_id, tx.now, row.id))
            tx.audit(actor, "event.submitted", f"schedule {name} fired by hand", event_id, key=key)
            event = read_one(tx, EventRow, f"{EVENTS_FROM} WHERE e.id = ?", (event_id,))
        assert event is not None
        return event.record()

    @retried
    def start_backfill(self, asked: BackfillRequest, actor: str = "operator") -> BackfillRecord:
        if not asked.from_at <= asked.to_at:
            raise UsageError("a backfill's range must not end before it starts")
        if not 1 <= asked.max_running <= 1000:
            raise UsageError("max_running must be between 1 and 1,000")
        with self.transaction(write=not asked.dry_run) as tx:
            row = _schedule(tx, asked.schedule)
            if row.state not in (ACTIVE, PAUSED):
                raise Conflict(f"schedule {asked.schedule} is {row.state}")
            _, schedule, days = schedule_of(tx, row)
            fires = fires_between(schedule, days, asked.from_at - 1e-6, asked.to_at, MAX_BACKFILL_FIRES + 1)
            if len(fires) > MAX_BACKFILL_FIRES:
                raise UsageError(f"the range holds over {MAX_BACKFILL_FIRES:,} fires of {asked.schedule}: split it")
            having = 0 if asked.rerun else _having_events(tx, row.id, asked.from_at, asked.to_at)
            if asked.dry_run:
                return BackfillRecord(
                    0, row.id, row.name, row.graph, asked.from_at, asked.to_at, asked.max_running, asked.rerun,
                    "dry-run", None, 0, having, len(fires), 0, actor, tx.now, None,
                )  # fmt: skip
            new = read_one(tx, IdRow, "INSERT INTO backfills (schedule_id, from_at, to_at, max_running, rerun, state, "
                           "total, created_by, created_at) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?) RETURNING id",
                           (row.id, asked.from_at, asked.to_at, asked.max_running, int(asked.rerun), len(fires),
                            actor, tx.now))  # fmt: skip
            assert new is not None
            tx.audit(actor, "backfill.started", f"schedule {row.name}: {len(fires)} fires", None, backfill=new.id)
            tx.changed()
            return _backfill(tx, int(new.id))

    @retried
    def cancel_backfill(self, backfill_id: int, actor: str = "operator") -> BackfillRecord:
        with self.transaction() as tx:
            found = _backfill(tx, backfill_id)
            if found.state != "running":
                raise Conflict(f"backfill {backfill_id} is {found.state}")
            tx.q("UPDATE backfills SET state = 'cancelled', finished_at = ? WHERE id = ?", (tx.now, backfill_id))
            tx.audit(actor, "backfill.cancelled", "cancelled", None, backfill=backfill_id)
            return _backfill(tx, backfill_id)

    @retried
    def backfills(self, limit: int = 50) -> list[BackfillRecord]:
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, BackfillRow, f"{BACKFILLS} ORDER BY b.id DESC LIMIT ?", (max(1, min(limit, 500)),))
        return [r.record() for r in rows]

    @retried
    def backfill(self, backfill_id: int) -> BackfillRecord:
        with self.transaction(write=False) as tx:
            return _backfill(tx, backfill_id)

    # --- the controller's ------------------------------------------------------------------

    @retried
    def running_backfills(self) -> list[BackfillRecord]:
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, BackfillRow, f"{BACKFILLS} WHERE b.state = 'running' ORDER BY b.id")
        return [r.record() for r in rows]

    @retried
    def advance_backfill(self, backfill_id: int, cursor: float | None, fires: Sequence[Raising],
                         exhausted: bool) -> BackfillRecord:  # fmt: skip
        """Raise the next of ``fires`` (ascending, after ``cursor``) while fewer than the
        backfill's ``max_running`` of its events are unfinished; ``exhausted``: no fire comes
        after these. Applies only while the backfill runs and its cursor is ``cursor``."""
        with self.transaction() as tx:
            found = read_one(tx, BackfillRow, f"{BACKFILLS} WHERE b.id = ? {self.event_lock}", (backfill_id,))
            if found is None or found.state != "running" or found.cursor != cursor:
                return _backfill(tx, backfill_id)
            _raise_some(tx, found, fires, exhausted)
            return _backfill(tx, backfill_id)


def _raise_some(tx: Tx, found: BackfillRow, fires: Sequence[Raising], exhausted: bool) -> None:
    room = found.max_running - found.running
    graph = newest_graph(tx, found.graph)
    raised = skipped = 0
    cursor = found.cursor
    priority = schedule_priority(tx, graph.id, found.schedule)
    for at, params, deadline in fires:
        if raised >= room:
            break
        key = f"backfill:{found.id}:{fire_key(found.schedule, at)}" if found.rerun else fire_key(found.schedule, at)
        origin = Origin(schedule_id=found.schedule_id, scheduled_for=at, backfill_id=found.id, deadline_at=deadline,
                        priority=priority)  # fmt: skip
        new = insert_event(tx, graph.id, graph.event_type, canonical_params(params), key, origin)
        if new is None:
            skipped += 1
        else:
            raised += 1
            tx.audit("controller", "event.submitted", f"backfill {found.id} of schedule {found.schedule}", new, key=key)
        cursor = at
    last = max((at for at, _, _ in fires), default=cursor)
    done = exhausted and cursor == last
    state, ended = ("done", tx.now) if done else ("running", None)
    tx.q("UPDATE backfills SET cursor = ?, raised = raised + ?, skipped = skipped + ?, state = ?, finished_at = ? "
         "WHERE id = ?", (cursor, raised, skipped, state, ended, found.id))  # fmt: skip
    if done:
        tx.audit("controller", "backfill.done", "every fire raised or skipped", None, backfill=found.id)


def _having_events(tx: Tx, schedule_id: int, from_at: float, to_at: float) -> int:
    sql = "SELECT COUNT(*) FROM events WHERE schedule_id = ? AND scheduled_for >= ? AND scheduled_for <= ?"
    return int(scalar(tx, sql, (schedule_id, from_at, to_at)))


def _backfill(tx: Tx, backfill_id: int) -> BackfillRecord:
    row = read_one(tx, BackfillRow, f"{BACKFILLS} WHERE b.id = ?", (backfill_id,))
    if row is None:
        raise NotFound(f"no backfill {backfill_id}")
    return row.record()
