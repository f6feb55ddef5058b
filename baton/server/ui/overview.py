"""The overview, the UI's home page (``/ui/``): what an operator opens first in the morning.
Events running now, deadlines at risk, failures of the last 24 hours, the next schedule fires and
the workers online, each a section that links to the page it summarises.

A section is one read and one template. :data:`SECTIONS` lists functions, each of which reads the
store a bounded number of times (one list of at most a page of rows; the running events also read
the per-node progress of the few they show, O(nodes) each; the next fires read the schedules and
the calendars) and returns a :class:`Section` whose ``name`` picks its template,
``overview_<name>.html``. Adding a section is one more function in the list and one more
template; the page, its fragment and its refresh need no change. A whole overview is therefore a handful of reads
whatever the store holds; none is made per row of another.

Every list is limited to the event types the token may see, as the events page is. The page
refreshes like the other list pages: the store-wide stream (``/ui/live``) says something changed
and the page fetches its sections again (``?fragment=true``), and every few seconds besides, so
heartbeat ages and durations move.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from baton.access import Action
from baton.engine.states import EventState
from baton.engine.upcoming import upcoming
from baton.server.auth import needs, token_of
from baton.server.centre import graph_types, registered_days
from baton.server.door import GuardedRoute
from baton.server.state import state_of
from baton.server.ui.access import type_filter
from baton.server.ui.render import html
from baton.store.protocol import ReadStore
from baton.store.records import EventRecord, ScheduleRecord, WorkerRecord

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)
RUNNING_READ = 100  # running events counted (past it: "100+")
RUNNING_SHOWN = 5  # the newest of them shown with their progress
FAILURES_SHOWN = 10
AT_RISK_SHOWN = 10
WORKERS_SHOWN = 20
NEXT_FIRES_SHOWN = 8  # fires across schedules
FIRES_EACH = 3  # looked at per schedule (so one busy schedule does not hide the others' next one)
DAY_S = 86_400.0


@dataclass(frozen=True)
class Seen:
    """What every section reads with: the store, the viewer's event types, one clock reading."""

    reads: ReadStore
    event_types: list[str] | None  # None: all
    now: float
    stale_s: float  # a worker not heard from for longer is flagged


@dataclass(frozen=True)
class Section:
    """One panel of the overview: its template (``overview_<name>.html``), its title linking to
    the page it summarises, a one-line summary, and what its template shows."""

    name: str
    title: str
    link: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """A running event's tasks: how many ended, how many of those did not succeed, and its
    nodes complete (every task succeeded)."""

    event: EventRecord
    ended: int
    unsuccessful: int
    nodes_done: int
    nodes: int


def _counted(rows: Sequence[object], cap: int) -> str:
    return f"{cap}+" if len(rows) > cap else str(len(rows))


def running_section(seen: Seen) -> Section:
    """Events running now: how many (up to RUNNING_READ), the newest few with their progress."""
    rows = seen.reads.events(state=EventState.RUNNING, event_types=seen.event_types, limit=RUNNING_READ + 1)
    shown = [_progress(seen.reads, e) for e in rows[:RUNNING_SHOWN]]
    count = _counted(rows, RUNNING_READ)
    return Section("running", "Running now", "/ui/events?state=running", f"{count} running",
                   {"shown": shown, "more": len(rows) > RUNNING_SHOWN, "now": seen.now})  # fmt: skip


def _progress(reads: ReadStore, event: EventRecord) -> Progress:
    nodes = reads.node_progress(event.id)
    not_succeeded = sum(n.remaining for n in nodes)
    ended = event.tasks_total - event.tasks_active
    return Progress(event, ended, max(0, not_succeeded - event.tasks_active),
                    sum(1 for n in nodes if n.remaining == 0), len(nodes))  # fmt: skip


def failures_section(seen: Seen) -> Section:
    """Events that failed in the last 24 hours (by when they ended), newest first."""
    rows = seen.reads.events(state=EventState.FAILED, event_types=seen.event_types, ended_since=seen.now - DAY_S,
                             limit=FAILURES_SHOWN + 1)  # fmt: skip
    count = _counted(rows, FAILURES_SHOWN)
    summary = "none" if not rows else f"{count} failed"
    return Section("failures", "Failed in the last 24 hours", "/ui/events?state=failed&window=day", summary,
                   {"shown": rows[:FAILURES_SHOWN], "more": len(rows) > FAILURES_SHOWN, "now": seen.now})  # fmt: skip


@dataclass(frozen=True)
class Load:
    """One worker online: slots used and free, seconds since its last heartbeat, stale or not."""

    worker: WorkerRecord
    used: int
    slots: int
    age_s: float
    stale: bool

    @property
    def free(self) -> int:
        return max(0, self.slots - self.used)


def workers_section(seen: Seen) -> Section:
    """The workers online (registered and not stopped), stale ones first, with their slots."""
    online = [_load(w, seen) for w in seen.reads.workers() if w.state == "active"]
    online.sort(key=lambda w: (not w.stale, w.worker.name, w.worker.id))
    stale = sum(1 for w in online if w.stale)
    used, slots = sum(w.used for w in online), sum(w.slots for w in online)
    summary = f"{len(online)} online" + (f", {stale} stale" if stale else "") + f" · {used} of {slots} slots used"
    return Section("workers", "Workers", "/ui/workers", summary,
                   {"shown": online[:WORKERS_SHOWN], "more": len(online) - WORKERS_SHOWN})  # fmt: skip


def _load(worker: WorkerRecord, seen: Seen) -> Load:
    age_s = max(0.0, seen.now - worker.last_seen)  # the database's clock may run a little ahead
    return Load(worker, len(worker.running), worker.capacity.get("slots", 0), age_s, age_s > seen.stale_s)


def deadlines_section(seen: Seen) -> Section:
    """Unfinished events marked at risk of missing their deadline (or past it), nearest
    deadline first."""
    rows = seen.reads.events(at_risk=True, event_types=seen.event_types, limit=AT_RISK_SHOWN + 1)
    rows.sort(key=lambda e: e.deadline_at or 0.0)
    summary = "none" if not rows else f"{_counted(rows, AT_RISK_SHOWN)} at risk"
    return Section("deadlines", "Deadlines at risk", "/ui/events?state=running", summary,
                   {"shown": rows[:AT_RISK_SHOWN], "more": len(rows) > AT_RISK_SHOWN, "now": seen.now})  # fmt: skip


@dataclass(frozen=True)
class NextFire:
    """One coming fire of a schedule, with the zone its time is shown in."""

    at: float
    schedule: ScheduleRecord
    zone: str


def next_fires_section(seen: Seen) -> Section:
    """The next few fires across the active schedules (each schedule's next FIRES_EACH, merged
    by time), and how many schedules wait for a calendar: the schedules and the calendars (and,
    for a token limited to event types, the graph versions): two or three reads, each schedule's
    fires worked out from its stored form."""
    days = registered_days(seen.reads)
    schedules = seen.reads.schedules()
    if seen.event_types is not None:
        types = graph_types(seen.reads)
        schedules = [s for s in schedules if types.get(s.graph) in seen.event_types]
    coming, waiting = [], 0
    for s in schedules:
        found = upcoming(s.name, s.spec, s.state, days, seen.now, FIRES_EACH)
        waiting += found.waiting is not None and s.state == "active"
        coming += [NextFire(f.at, s, str(s.spec.get("timezone", "UTC"))) for f in found.fires]
    coming.sort(key=lambda f: (f.at, f.schedule.name))
    active = sum(1 for s in schedules if s.state == "active")
    summary = f"{active} active schedule(s)" + (f", {waiting} waiting for a calendar" if waiting else "")
    return Section("next_fires", "Next fires", "/ui/schedules", summary if schedules else "no schedules",
                   {"shown": coming[:NEXT_FIRES_SHOWN], "waiting": waiting, "now": seen.now})  # fmt: skip


SectionRead = Callable[[Seen], Section]
SECTIONS: tuple[SectionRead, ...] = (running_section, deadlines_section, failures_section, next_fires_section,
                                     workers_section)  # fmt: skip


def sections(seen: Seen, readers: Sequence[SectionRead] = SECTIONS) -> list[Section]:
    """Every section, in the page's order."""
    return [read(seen) for read in readers]


@router.get("/", **needs(Action.READ))
def overview_page(request: Request, fragment: Annotated[bool, Query()] = False) -> Response:
    """The overview (the module's docstring); ``fragment`` answers its sections alone, for the
    page's refresh."""
    state = state_of(request)
    seen = Seen(state.reads, type_filter(token_of(request)), time.time(), 2 * state.settings.heartbeat_interval_s)
    return html(request, "overview_sections.html" if fragment else "overview.html", sections=sections(seen))
