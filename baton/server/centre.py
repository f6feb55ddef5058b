"""Schedules, calendars and backfills over HTTP: one path for ``/api/v1`` and the web UI, as
:mod:`baton.server.submits` is for events, so a browser is shown and refused exactly what a client
of the API is.

**Scope.** A token limited to event types sees (and steers) only the schedules whose graph raises
events of a type it may see, and only their backfills; to it the others do not exist (404), as
graphs of other types do not. A schedule's event type is its graph's newest version's, read with
the graph versions (one read, :func:`graph_types`). Calendars are shared by every graph and seen by
every reader.

**Reads.** A list of schedules with their next fires costs three reads whatever it holds (the
schedules, the graph versions, the calendars): each schedule's fires are computed from its stored
form (:mod:`baton.engine.upcoming`), not from its graph.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from baton.access import TokenRecord
from baton.engine.fires import BusinessDays, Fire
from baton.engine.upcoming import NEXT_FIRES, Upcoming, business_days, days_of, fire_range, stored_schedule, upcoming
from baton.errors import CalendarInvalid, NotFound, UsageError
from baton.graphs.calendars import Calendar, calendar_from_dict
from baton.server.auth import token_of
from baton.server.state import operator_of, reads_of
from baton.store.protocol import ReadStore
from baton.store.records import BackfillRecord, BackfillRequest, GraphRecord, ScheduleRecord
from baton.wire.api import BackfillIn

Preview = tuple[tuple[Fire, ...], tuple[Fire, ...]]


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as people see it: its row, its graph's newest version (None: no version is
    registered) and what it does next."""

    record: ScheduleRecord
    graph: GraphRecord | None
    coming: Upcoming

    @property
    def event_type(self) -> str | None:
        return None if self.graph is None else self.graph.event_type

    @property
    def zone(self) -> str:
        return str(self.record.spec.get("timezone", "UTC"))

    @property
    def calendar(self) -> str | None:
        found = self.record.spec.get("calendar")
        return None if found is None else str(found)


def newest_graphs(reads: ReadStore) -> dict[str, GraphRecord]:
    """Each graph's newest version, by graph name."""
    return {g.name: g for g in sorted(reads.graphs(), key=lambda g: g.version)}


def graph_types(reads: ReadStore) -> dict[str, str]:
    """Each graph's event type, by graph name (its newest version's)."""
    return {name: g.event_type for name, g in newest_graphs(reads).items()}


def may_see(token: TokenRecord, event_type: str | None) -> bool:
    """Whether a schedule (or backfill) raising events of ``event_type`` exists for ``token``."""
    return token.event_types is None or (event_type is not None and token.sees_type(event_type))


def registered_calendars(reads: ReadStore) -> list[Calendar]:
    """The registered calendars (one that this version of Baton no longer accepts is left out:
    its schedules then wait, as for a calendar not registered)."""
    found = []
    for record in reads.calendars():
        try:
            found.append(calendar_from_dict(record.spec, source=f"calendar {record.name}"))
        except CalendarInvalid:
            continue
    return found


def registered_days(reads: ReadStore) -> dict[str, BusinessDays]:
    return business_days(registered_calendars(reads))


def schedule_views(reads: ReadStore, token: TokenRecord, count: int = NEXT_FIRES,
                   now: float | None = None) -> list[ScheduleView]:  # fmt: skip
    """Every schedule the token may see, by name, each with its next ``count`` fires."""
    graphs, days = newest_graphs(reads), registered_days(reads)
    moment = time.time() if now is None else now
    views = (_view(s, graphs.get(s.graph), days, moment, count) for s in reads.schedules())
    return [v for v in views if may_see(token, v.event_type)]


def _view(record: ScheduleRecord, graph: GraphRecord | None, days: Mapping[str, BusinessDays], now: float,
          count: int) -> ScheduleView:  # fmt: skip
    return ScheduleView(record, graph, upcoming(record.name, record.spec, record.state, days, now, count))


def seen_schedule(request: Request, name: str) -> tuple[ScheduleRecord, GraphRecord | None]:
    """A schedule and its graph's newest version, when the request's token may see it (else
    NotFound)."""
    reads = reads_of(request)
    record = reads.schedule(name)
    graph = newest_graphs(reads).get(record.graph)
    if not may_see(token_of(request), None if graph is None else graph.event_type):
        raise NotFound(f"no schedule {name!r}")
    return record, graph


def schedule_view(request: Request, name: str, count: int = NEXT_FIRES) -> ScheduleView:
    record, graph = seen_schedule(request, name)
    return _view(record, graph, registered_days(reads_of(request)), time.time(), count)


def seen_backfills(request: Request, limit: int) -> list[BackfillRecord]:
    reads, token = reads_of(request), token_of(request)
    found = reads.backfills(limit=limit)
    if token.event_types is None:
        return found
    types = graph_types(reads)
    return [b for b in found if may_see(token, types.get(b.graph))]


def seen_backfill(request: Request, backfill_id: int) -> BackfillRecord:
    """A backfill, when the request's token may see its schedule (else NotFound)."""
    reads = reads_of(request)
    record = reads.backfill(backfill_id)
    if not may_see(token_of(request), graph_types(reads).get(record.graph)):
        raise NotFound(f"no backfill {backfill_id}")
    return record


def preview(reads: ReadStore, record: ScheduleRecord, from_at: float, to_at: float) -> Preview:
    """The first and last few fires of a backfill's range (:func:`baton.engine.upcoming.fire_range`)."""
    schedule = stored_schedule(record.name, record.spec)
    try:
        rules = days_of(schedule, registered_days(reads))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return fire_range(schedule, rules, from_at, to_at)


def start_backfill(request: Request, body: BackfillIn, actor: str) -> tuple[BackfillRecord, Preview | None]:
    """Start the backfill ``body`` asks for (with ``dry_run``, count it and preview its first
    and last fires instead), once the token may see its schedule."""
    record, _ = seen_schedule(request, body.schedule)
    asked = BackfillRequest(body.schedule, body.from_at, body.to_at, body.max_running, body.rerun, body.dry_run)
    started = operator_of(request).start_backfill(asked, actor=actor)
    shown = preview(reads_of(request), record, body.from_at, body.to_at) if body.dry_run else None
    return started, shown
