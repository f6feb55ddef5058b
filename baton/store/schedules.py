"""Schedules and calendars in the store.

A graph's schedules are rows of ``schedules``, refreshed by each new version of the graph
(:func:`refresh_schedules`): a new schedule handles fires from the moment it is registered (it
never fires for times before it existed); a changed one keeps what it has handled and works out
its next fire afresh; one the new version dropped is retired. A schedule's name is unique across
graphs. A schedule may name a calendar that is not registered yet: it then waits, raising
nothing, until the calendar is registered (the ticker says so in the log and the schedule list).

The controller's ticker reads the schedules that may be due (:meth:`ScheduleVerbs.due_schedules`)
and writes what it decided for each (:class:`~baton.store.records.ScheduleTick`) with
:meth:`ScheduleVerbs.fire_schedule`, in one transaction that applies only if the schedule's
``handled_through`` is still what the ticker read: its events (each under the key
``schedule:<name>:<instant>``, so a fire raises one event whatever happens), the schedule's new
state, a ``schedule.misfire`` notice for fires it missed, and the cancel of the previous event
where the overlap policy says so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from baton.errors import Conflict, NotFound
from baton.graphs.calendars import Calendar, calendar_from_dict, calendar_to_dict
from baton.graphs.model import Graph
from baton.graphs.schedules import schedule_to_dict
from baton.store import outbox
from baton.store.cancel import cancel_event
from baton.store.core import SqlCore, canonical_params
from baton.store.raising import Origin, insert_event, schedule_priority
from baton.store.records import CalendarRecord, ScheduleDue, ScheduleRecord, ScheduleTick
from baton.store.retry import retried
from baton.store.rows import IdRow
from baton.store.tx import Tx, read_one, read_rows, scalar, select_list

ACTIVE, PAUSED, ENDED, RETIRED = "active", "paused", "ended", "retired"


class ScheduleRow(NamedTuple):
    id: int
    name: str
    graph: str
    spec: str
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

    def record(self) -> ScheduleRecord:
        return ScheduleRecord(*self[:3], json.loads(self.spec), *self[4:])  # type: ignore[arg-type]


class CalendarRow(NamedTuple):
    name: str
    spec: str
    source: str
    updated_at: float

    def record(self) -> CalendarRecord:
        return CalendarRecord(self.name, json.loads(self.spec), self.source, self.updated_at)


SCHEDULES = f"SELECT {select_list(ScheduleRow)} FROM schedules"
CALENDARS = f"SELECT {select_list(CalendarRow)} FROM calendars"
_RUNNING = "CASE WHEN e.id IS NOT NULL AND e.finished_at IS NULL THEN 1 ELSE 0 END"
_NEWEST = "(SELECT MAX(g.id) FROM graphs g WHERE g.name = s.graph)"  # versions take rising ids
DUE = (f"SELECT {select_list(ScheduleDue, 's.', last_event_running=_RUNNING, graph_id=_NEWEST)} "
       "FROM schedules s LEFT JOIN events e ON e.id = s.last_event_id WHERE s.state = 'active' AND "
       "(s.next_fire_at IS NULL OR s.next_fire_at <= ? OR s.queued_at IS NOT NULL) ORDER BY s.id LIMIT ?")  # fmt: skip


def fire_key(name: str, at: float) -> str:
    """A fire's idempotency key: the schedule's name and the fire's instant, in UTC."""
    instant = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"schedule:{name}:{instant}"


def refresh_schedules(tx: Tx, graph: Graph) -> None:
    """Make ``schedules`` say what the new version of ``graph`` declares."""
    for schedule in graph.schedules:
        spec = json.dumps(schedule_to_dict(schedule), sort_keys=True)
        row = read_one(tx, ScheduleRow, f"{SCHEDULES} WHERE name = ?", (schedule.name,))
        if row is None:
            state = PAUSED if schedule.paused else ACTIVE
            tx.q("INSERT INTO schedules (name, graph, spec, state, handled_through, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (schedule.name, graph.name, spec, state, tx.now, tx.now, tx.now))  # fmt: skip
            tx.audit("operator", "schedule.created", f"graph {graph.name}", None, schedule=schedule.name)
            continue
        if row.graph != graph.name and row.state != RETIRED:
            raise Conflict(f"graph {graph.name}: schedule name {schedule.name!r} already belongs to graph {row.graph}")
        state = row.state if row.state in (ACTIVE, PAUSED) else (PAUSED if schedule.paused else ACTIVE)
        handled = row.handled_through if row.state != RETIRED else max(row.handled_through, tx.now)
        tx.q("UPDATE schedules SET graph = ?, spec = ?, state = ?, handled_through = ?, next_fire_at = NULL, "
             "updated_at = ? WHERE id = ?", (graph.name, spec, state, handled, tx.now, row.id))  # fmt: skip
    kept = {s.name for s in graph.schedules}
    for row in read_rows(tx, ScheduleRow, f"{SCHEDULES} WHERE graph = ? AND state <> ?", (graph.name, RETIRED)):
        if row.name not in kept:
            tx.q("UPDATE schedules SET state = ?, next_fire_at = NULL, queued_at = NULL, updated_at = ? WHERE id = ?",
                 (RETIRED, tx.now, row.id))  # fmt: skip
            tx.audit("operator", "schedule.retired", f"graph {graph.name}'s newest version dropped it", None,
                     schedule=row.name)  # fmt: skip


class ScheduleVerbs(SqlCore):
    # --- calendars ---------------------------------------------------------------------------

    @retried
    def register_calendar(self, calendar: Calendar, source: str = "") -> CalendarRecord:
        """Store a calendar under its name (replacing an older one): every active schedule works
        out its next fire again."""
        spec = json.dumps(calendar_to_dict(calendar), sort_keys=True, default=str)
        with self.transaction() as tx:
            tx.q("INSERT INTO calendars (name, spec, source, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) "
                 "DO UPDATE SET spec = excluded.spec, source = excluded.source, updated_at = excluded.updated_at",
                 (calendar.name, spec, source, tx.now))  # fmt: skip
            tx.q("UPDATE schedules SET next_fire_at = NULL WHERE state = 'active'")
            tx.audit("operator", "calendar.registered", source or "api", None, calendar=calendar.name)
            tx.changed()
            row = read_one(tx, CalendarRow, f"{CALENDARS} WHERE name = ?", (calendar.name,))
        assert row is not None
        return row.record()

    @retried
    def calendars(self) -> list[CalendarRecord]:
        with self.transaction(write=False) as tx:
            return [r.record() for r in read_rows(tx, CalendarRow, f"{CALENDARS} ORDER BY name")]

    def calendar(self, name: str) -> Calendar | None:
        """The validated calendar of that name, or None when none is registered."""
        for found in self._calendar_rows(name):
            return calendar_from_dict(found.spec, source=f"calendar {name}")
        return None

    @retried
    def _calendar_rows(self, name: str) -> list[CalendarRecord]:
        with self.transaction(write=False) as tx:
            return [r.record() for r in read_rows(tx, CalendarRow, f"{CALENDARS} WHERE name = ?", (name,))]

    # --- schedules: reads and the operator's verbs -------------------------------------------

    @retried
    def schedules(self) -> list[ScheduleRecord]:
        with self.transaction(write=False) as tx:
            return [r.record() for r in read_rows(tx, ScheduleRow, f"{SCHEDULES} ORDER BY name")]

    @retried
    def schedule(self, name: str) -> ScheduleRecord:
        with self.transaction(write=False) as tx:
            return _schedule(tx, name).record()

    @retried
    def pause_schedule(self, name: str, note: str = "", actor: str = "operator") -> ScheduleRecord:
        """Stop raising fires (the next ones are missed, not caught up on resuming)."""
        with self.transaction() as tx:
            row = _schedule(tx, name)
            if row.state not in (ACTIVE, PAUSED):
                raise Conflict(f"schedule {name} is {row.state}: only an active schedule can be paused")
            tx.q("UPDATE schedules SET state = ?, note = ?, paused_by = ?, paused_at = ?, updated_at = ? WHERE id = ?",
                 (PAUSED, note or None, actor, tx.now, tx.now, row.id))  # fmt: skip
            tx.audit(actor, "schedule.paused", note or "paused", None, schedule=name)
            return _schedule(tx, name).record()

    @retried
    def resume_schedule(self, name: str, actor: str = "operator") -> ScheduleRecord:
        """Raise fires again from now: the fires of the pause are not raised."""
        with self.transaction() as tx:
            row = _schedule(tx, name)
            if row.state != PAUSED:
                raise Conflict(f"schedule {name} is {row.state}, not paused")
            handled = max(row.handled_through, tx.now)
            tx.q("UPDATE schedules SET state = ?, note = NULL, paused_by = NULL, paused_at = NULL, "
                 "handled_through = ?, next_fire_at = NULL, queued_at = NULL, updated_at = ? WHERE id = ?",
                 (ACTIVE, handled, tx.now, row.id))  # fmt: skip
            tx.audit(actor, "schedule.resumed", "resumed: fires from now on", None, schedule=name)
            tx.changed()
            return _schedule(tx, name).record()

    # --- the ticker's verbs --------------------------------------------------------------------

    @retried
    def due_schedules(self, now: float, limit: int) -> list[ScheduleDue]:
        """Active schedules whose next raise time is at or before ``now`` (a wall time), whose
        next fire is not worked out yet, or that hold a queued fire; oldest first."""
        with self.transaction(write=False) as tx:
            return read_rows(tx, ScheduleDue, DUE, (now, limit))

    @retried
    def next_schedule_fire(self) -> float | None:
        """The earliest raise time of any active schedule (None: none is known)."""
        with self.transaction(write=False) as tx:
            found = scalar(tx, "SELECT MIN(next_fire_at) FROM schedules WHERE state = 'active'")
        return None if found is None else float(found)

    @retried
    def fire_schedule(self, tick: ScheduleTick, actor: str = "controller") -> list[int]:
        """Write what one look at a schedule decided (see the module's docstring); return the
        ids of the events it raised (empty when another controller had handled it already)."""
        with self.transaction() as tx:
            row = read_one(tx, ScheduleRow, f"{SCHEDULES} WHERE id = ? {self.event_lock}", (tick.schedule_id,))
            if row is None or row.state != ACTIVE or row.handled_through != tick.expected:
                return []  # paused, retired, or handled meanwhile by another look: nothing to do
            return _apply(tx, row, tick, actor, self.event_lock)


def _schedule(tx: Tx, name: str) -> ScheduleRow:
    row = read_one(tx, ScheduleRow, f"{SCHEDULES} WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no schedule {name!r}")
    return row


class GraphRef(NamedTuple):
    id: int
    event_type: str


def _apply(tx: Tx, row: ScheduleRow, tick: ScheduleTick, actor: str, lock: str) -> list[int]:
    if tick.cancel_previous and row.last_event_id is not None:
        _cancel_quietly(tx, row.last_event_id, f"schedule:{row.name}", lock)
    made, last = _raise(tx, row, tick)
    state = ENDED if tick.ended and tick.queued_at is None else ACTIVE
    last_fire = max((at for at, _, _ in tick.raised), default=row.last_fire_at)
    missed = row.missed + (tick.missed if tick.missed > 0 else 0)
    tx.q("UPDATE schedules SET state = ?, handled_through = ?, next_fire_at = ?, queued_at = ?, last_fire_at = ?, "
         "last_event_id = ?, missed = ?, updated_at = ? WHERE id = ?",
         (state, tick.handled_through, tick.next_fire_at, tick.queued_at, last_fire, last, missed, tx.now,
          row.id))  # fmt: skip
    if tick.missed:
        detail: dict[str, Any] = {
            "missed": tick.missed,
            "by_overlap": tick.missed_by_overlap,
            "first": tick.missed_first,
            "last": tick.missed_last,
            "schedule": row.name,
        }
        outbox.notice(tx, outbox.Kind.SCHEDULE_MISFIRE, None, row.id, **detail)
        tx.audit(actor, "schedule.misfire", "fires not raised (catch-up or overlap)", None, **detail)
    return made


def _raise(tx: Tx, row: ScheduleRow, tick: ScheduleTick) -> tuple[list[int], int | None]:
    graph = read_one(tx, GraphRef, "SELECT id, event_type FROM graphs WHERE name = ? ORDER BY version DESC LIMIT 1",
                     (row.graph,))  # fmt: skip
    made: list[int] = []
    last = row.last_event_id
    if graph is None:
        return made, last
    priority = schedule_priority(tx, graph.id, row.name)
    for at, params, deadline in tick.raised:
        key = fire_key(row.name, at)
        origin = Origin(schedule_id=row.id, scheduled_for=at, deadline_at=deadline, priority=priority)
        new = insert_event(tx, graph.id, graph.event_type, canonical_params(params), key, origin)
        if new is not None:
            made.append(new)
            tx.audit("controller", "event.submitted", f"schedule {row.name} fired", new, key=key)
        last = new if new is not None else _event_of(tx, key) or last
    return made, last


def _event_of(tx: Tx, key: str) -> int | None:
    found = read_one(tx, IdRow, "SELECT id FROM events WHERE idem_key = ?", (key,))
    return None if found is None else int(found.id)


def _cancel_quietly(tx: Tx, event_id: int, actor: str, lock: str) -> None:
    """Cancel the schedule's previous event if it is still unfinished (cancel_running)."""
    found = read_one(tx, Ended, f"SELECT finished_at FROM events WHERE id = ? {lock}", (event_id,))
    if found is not None and found.finished_at is None:
        cancel_event(tx, event_id, actor, lock)


class Ended(NamedTuple):
    finished_at: float | None
