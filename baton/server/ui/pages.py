"""The UI's list pages: events, workers, graphs (one keyset query or one small read each)."""

from __future__ import annotations

import time
from typing import Annotated

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from baton.access import Action
from baton.engine.diagnose import LIVE_S
from baton.engine.states import EventState
from baton.graphs.model import MAX_EVENT_PRIORITY, MIN_EVENT_PRIORITY
from baton.server.auth import needs, token_of
from baton.server.door import GuardedRoute
from baton.server.state import reads_of, state_of
from baton.server.ui.access import seen_graph, type_filter
from baton.server.ui.drawing import graph_svg
from baton.server.ui.params_form import form_fields
from baton.server.ui.render import html

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)
PAGE = 50
WINDOWS = {"hour": 3600.0, "day": 86_400.0, "week": 7 * 86_400.0}
Cursor = Annotated[int | None, Query(ge=1, le=2**62)]


@router.get("/events", **needs(Action.READ))
def events_page(
    request: Request,
    type: Annotated[str, Query(max_length=200)] = "",
    state: Annotated[str, Query(pattern="^(|submitted|running|succeeded|failed|cancelled)$")] = "",
    window: Annotated[str, Query(pattern="^(hour|day|week|all)$")] = "all",
    before: Cursor = None,
    fragment: bool = False,
) -> Response:
    """Events newest first, filtered by type, state and age; keyset pages of 50."""
    now = time.time()
    since = now - WINDOWS[window] if window in WINDOWS else None
    rows = reads_of(request).events(event_type=type or None, event_types=type_filter(token_of(request)),
                                    state=EventState(state) if state else None,
                                    since=since, before=before, limit=PAGE + 1)  # fmt: skip
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    types = sorted({g.event_type for g in reads_of(request).graphs()})
    return html(request, "events_rows.html" if fragment else "events.html", events=rows, now=now, types=types,
                filters={"type": type, "state": state, "window": window},
                next_before=rows[-1].id if more and rows else None, first=before is None)  # fmt: skip


@router.get("/workers", **needs(Action.READ))
def workers_page(request: Request, fragment: bool = False) -> Response:
    """Every worker the store knows: slots and resources used and free, labels, running tasks,
    heartbeat age (stale past two heartbeat intervals)."""
    state = state_of(request)
    now = time.time()
    workers = sorted(state.reads.workers(), key=lambda w: (w.state != "active", w.name, w.id))
    return html(request, "workers_rows.html" if fragment else "workers.html", workers=workers, now=now,
                stale_s=2 * state.settings.heartbeat_interval_s, live_s=LIVE_S)  # fmt: skip


@router.get("/graphs", **needs(Action.READ))
def graphs_page(request: Request) -> Response:
    token = token_of(request)
    graphs = [g for g in reads_of(request).graphs() if token.sees_type(g.event_type)]
    graphs.sort(key=lambda g: (g.name, -g.version))
    return html(request, "graphs.html", graphs=graphs)


@router.get("/graphs/{graph_id}", **needs(Action.READ))
def graph_page(request: Request, graph_id: int) -> Response:
    """One graph version, drawn, with the source it was registered from and, for a token that
    may submit events of its type, the form that raises one (``POST .../submit``)."""
    store = reads_of(request)
    record = seen_graph(request, graph_id)
    graph = store.graph_of(record.id)
    versions = sorted((g for g in store.graphs() if g.name == record.name), key=lambda g: -g.version)
    source = yaml.safe_dump(dict(record.spec), sort_keys=False, allow_unicode=True)
    form = form_fields(graph) if token_of(request).may(Action.SUBMIT) else None
    pause = next((p for p in store.pauses() if p.target == f"graph:{record.name}"), None)
    return html(request, "graph.html", graph=record, versions=versions, svg=graph_svg(graph), source=source,
                form=form, latest=versions[0] if versions else record, pause=pause,
                limit=graph.event_limit, priority_bounds=(MIN_EVENT_PRIORITY, MAX_EVENT_PRIORITY))  # fmt: skip
