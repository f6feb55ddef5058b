"""The controller's event-centre duties that raise events: the schedules' ticker and backfills.

Both decide with the pure functions of :mod:`baton.engine.fires` and :mod:`baton.engine.tick`
and have the store write each decision in one transaction guarded by what they read (a
schedule's ``handled_through``, a backfill's ``cursor``), so a controller that dies between
deciding and writing, or two controllers deciding at once, raise each fire once: the events'
keys hold even if the guards did not.

They read dates from the clock's wall time (``clock.wall()``); ``now``, the loop's monotonic
time, only says when they are next due.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from baton.clock import Clock
from baton.controller.duties import NOW
from baton.engine.fires import BusinessDays, fire_params, fires_between
from baton.engine.tick import Tick, tick
from baton.errors import ParamsInvalid
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.graphs.schedules import Schedule
from baton.store.protocol import ControllerStore
from baton.store.records import BackfillRecord, ScheduleDue, ScheduleTick

log = logging.getLogger("baton.controller")


class Calendars:
    """The calendars schedules name, read from the store at most once per ``keep_s`` each."""

    def __init__(self, keep_s: float = 60.0) -> None:
        self.keep_s = keep_s
        self._read: dict[str, tuple[float, BusinessDays | None]] = {}

    def days(self, store: ControllerStore, schedule: Schedule, wall: float) -> BusinessDays | None:
        """The schedule's business days; None when it names no calendar, or one not registered."""
        if schedule.calendar is None:
            return None
        cached = self._read.get(schedule.calendar)
        if cached is None or wall - cached[0] > self.keep_s:
            calendar = store.calendar(schedule.calendar)
            cached = (wall, None if calendar is None else BusinessDays(calendar))
            self._read[schedule.calendar] = cached
        return cached[1]


class Ticker:
    """Raise the schedules' fires as they come due: at each schedule's next raise time (read
    from the store), and at least every ``every_s`` to pick up new and changed schedules."""

    every_round = False

    def __init__(self, every_s: float, clock: Clock, batch: int = 100) -> None:
        self.every_s, self.clock, self.batch = every_s, clock, batch
        self._due = NOW
        self._calendars = Calendars()

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        wall = self.clock.wall()
        raised = 0
        due = store.due_schedules(wall, self.batch)
        for row in due:
            raised += self._look(store, row, wall)
        upcoming = store.next_schedule_fire()
        wait = self.every_s if upcoming is None else min(self.every_s, max(0.0, upcoming - wall))
        self._due = now if len(due) >= self.batch else now + wait
        return raised

    def _look(self, store: ControllerStore, row: ScheduleDue, wall: float) -> int:
        schedule = None if row.graph_id is None else store.graph_of(row.graph_id).schedule(row.name)
        if schedule is None:
            return 0  # its graph dropped it a moment ago: the registration retired it
        days = self._calendars.days(store, schedule, wall)
        if schedule.calendar is not None and days is None:
            log.warning("schedule %s waits for calendar %s, which is not registered", row.name, schedule.calendar)
            return 0
        decided = tick(schedule, days, row.handled_through, row.queued_at, bool(row.last_event_running), wall)
        if _unchanged(decided, row):
            return 0
        graph = store.graph_of(row.graph_id or 0)
        return len(store.fire_schedule(_written(row, decided, graph)))


def _unchanged(decided: Tick, row: ScheduleDue) -> bool:
    """Nothing to write: no fire raised or missed, and the state the same (a held fire whose
    previous event still runs, looked at again)."""
    return (not decided.raised and not decided.missed and not decided.cancel_previous
            and decided.handled_through == row.handled_through and decided.queued_at == row.queued_at
            and decided.next_fire_at == row.next_fire_at)  # fmt: skip


def complete(graph: Graph, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """A fire's parameters with the graph's defaults filled in, as a submit would have them; as
    rendered when they do not fit (the event then fails at expansion, saying why, where an
    operator sees it)."""
    try:
        return validate_params(graph, params)
    except ParamsInvalid as exc:
        log.warning("graph %s: a fire's parameters do not fit: %s", graph.name, exc)
        return params


def _written(row: ScheduleDue, decided: Tick, graph: Graph) -> ScheduleTick:
    missed = decided.missed_fires
    return ScheduleTick(
        schedule_id=row.id,
        expected=row.handled_through,
        raised=tuple((r.fire.at, complete(graph, r.params), r.deadline_at) for r in decided.raised),
        handled_through=decided.handled_through,
        next_fire_at=decided.next_fire_at,
        queued_at=decided.queued_at,
        cancel_previous=decided.cancel_previous,
        missed=decided.missed,
        missed_by_overlap=decided.missed_by_overlap,
        missed_first=missed[0].at if missed else None,
        missed_last=missed[-1].at if missed else None,
        ended=decided.next_fire_at is None and math.isfinite(decided.handled_through),
    )


class Backfiller:
    """Every ``every_s``, raise the next fires of each running backfill that has room (fewer
    than its ``max_running`` events unfinished), in order."""

    every_round = False
    SLACK = 50  # fires looked at beyond the room, for those skipped because they have an event

    def __init__(self, every_s: float, clock: Clock) -> None:
        self.every_s, self.clock = every_s, clock
        self._due = NOW
        self._calendars = Calendars()

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        self._due = now + self.every_s
        moved = 0
        for backfill in store.running_backfills():
            room = backfill.max_running - backfill.running
            if room > 0 and backfill.graph_id is not None:
                moved += self._advance(store, backfill, room)
        return moved

    def _advance(self, store: ControllerStore, backfill: BackfillRecord, room: int) -> int:
        graph = store.graph_of(backfill.graph_id or 0)
        schedule = graph.schedule(backfill.schedule)
        if schedule is None:
            return 0
        days = self._calendars.days(store, schedule, self.clock.wall())
        if schedule.calendar is not None and days is None:
            return 0  # its calendar is not registered (any more): it waits
        after = backfill.cursor if backfill.cursor is not None else math.nextafter(backfill.from_at, -math.inf)
        limit = room + self.SLACK
        fires = fires_between(schedule, days, after, backfill.to_at, limit)
        # no deadline: one reckoned from a past fire has passed before the event is raised
        raising = [(f.at, complete(graph, fire_params(schedule, f, days)), None) for f in fires]
        after_it = store.advance_backfill(backfill.id, backfill.cursor, raising, exhausted=len(fires) < limit)
        return after_it.raised - backfill.raised
