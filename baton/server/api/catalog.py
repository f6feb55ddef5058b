"""``/api/v1`` graphs and workers, and the health check."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from baton.access import Action
from baton.errors import Forbidden, NotFound
from baton.graphs.spec import load_graph_text
from baton.server.auth import PUBLIC, needs, token_of
from baton.server.door import GuardedRoute, ObjectId
from baton.server.problems import Responses, responses
from baton.server.state import operator_of, reads_of, state_of
from baton.wire.api import GraphIn, GraphOut, GraphRegistered, Health, LimitKeyOut, Name, RateKeyOut, WorkerOut

router = APIRouter(tags=["graphs and workers"], route_class=GuardedRoute)


@router.get("/api/v1/graphs", response_model=list[GraphOut], **needs(Action.READ))
def list_graphs(request: Request, type: Annotated[Name | None, Query()] = None) -> list[GraphOut]:
    """Every registered graph version (``type``: of that event type only)."""
    token = token_of(request)
    return [
        GraphOut.of(g)
        for g in reads_of(request).graphs()
        if token.sees_type(g.event_type) and (type is None or g.event_type == type)
    ]


@router.get("/api/v1/graphs/{graph_id}", response_model=GraphOut, **needs(Action.READ))
def show_graph(request: Request, graph_id: ObjectId) -> GraphOut:
    """One graph version with its full specification."""
    if not 1 <= graph_id <= 2**62:
        raise NotFound(f"no graph {graph_id}")
    record = reads_of(request).graph(graph_id)
    if not token_of(request).sees_type(record.event_type):
        raise NotFound(f"no graph {graph_id}")
    return GraphOut.of(record, with_spec=True)


KNOWN: Responses = {200: {"model": GraphRegistered, "description": "this content is already registered: its version"}}


@router.post("/api/v1/graphs", status_code=201, response_model=GraphRegistered, responses=KNOWN,
             **needs(Action.REGISTER_GRAPH, body="api"))  # fmt: skip
def register_graph(request: Request, response: Response, body: GraphIn) -> GraphRegistered:
    """Register a graph from its YAML text: validated first (422 naming each problem with its
    line); the same content keeps its version (200), a change makes a new one (201)."""
    graph = load_graph_text(body.source, source=body.filename)
    known = {g.digest for g in reads_of(request).graphs() if g.name == graph.name}
    record = operator_of(request).register_graph(graph, source=body.source)
    created = record.digest not in known
    if not created:
        response.status_code = 200
    return GraphRegistered(graph=GraphOut.of(record), created=created)


@router.get("/api/v1/workers", response_model=list[WorkerOut], **needs(Action.READ))
def list_workers(request: Request) -> list[WorkerOut]:
    """Task servers with their capacity, labels, running tasks and last heartbeat."""
    lease_s = state_of(request).settings.lease_s
    now = time.time()
    return [WorkerOut.of(w, stale=w.state == "active" and now - w.last_seen > lease_s)
            for w in reads_of(request).workers()]  # fmt: skip


@router.get("/healthz", response_model=Health, **needs(PUBLIC))
def healthz(request: Request) -> Health:
    """Whether the server reaches its database (503 when it does not)."""
    revision = state_of(request).schema.schema_revision()
    return Health(status="ok", schema_revision=revision.current)


MAX_KEYS_PAGE = 1000


@router.get("/api/v1/limits", response_model=list[LimitKeyOut], responses=responses(403), **needs(Action.READ))
def list_limits(
    request: Request,
    after: Annotated[
        Name | None, Query(description="the page after this key (the last key of the previous page)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_KEYS_PAGE)] = 100,
) -> list[LimitKeyOut]:
    """Concurrency keys in order, each with its limit and its running, queued and parked tasks
    (docs/limits.md). Keys are shared by every graph, so a token limited to event types may not
    list them."""
    if token_of(request).event_types is not None:
        raise Forbidden("concurrency keys are shared by every event type: this token is limited to some")
    return [LimitKeyOut.of(k) for k in reads_of(request).limit_keys(after=after, limit=limit)]


@router.get("/api/v1/limits/rates", response_model=list[RateKeyOut], responses=responses(403), **needs(Action.READ))
def list_rate_limits(
    request: Request,
    after: Annotated[
        Name | None, Query(description="the page after this key (the last key of the previous page)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_KEYS_PAGE)] = 100,
) -> list[RateKeyOut]:
    """Rate limits' keys in order, each with its limit and period, its starts in the window that
    ends now, its queued and parked tasks and when its next start is allowed (docs/limits.md).
    Keys are shared by every graph, so a token limited to event types may not list them."""
    if token_of(request).event_types is not None:
        raise Forbidden("rate limits' keys are shared by every event type: this token is limited to some")
    return [RateKeyOut.of(k) for k in reads_of(request).rate_keys(after=after, limit=limit)]
