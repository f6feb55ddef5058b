"""Submitting an event over HTTP, one path for ``POST /api/v1/events`` and the web UI's "Raise
event" form: the token's event types, the idempotency key, the graph version, the parameters'
validation and the store's ``submit``. Both callers go through :func:`submit_event`, so an
operator in the browser is refused for exactly what (and with exactly the messages) a client
of the API would be."""

from __future__ import annotations

from fastapi import Request

from baton.errors import Conflict, Forbidden, NotFound, UsageError
from baton.graphs.params import validate_params
from baton.server.auth import token_of
from baton.server.state import operator_of, reads_of
from baton.store.records import EventRecord, GraphRecord
from baton.wire.api import SubmitIn


def _graph_for(request: Request, body: SubmitIn) -> GraphRecord:
    if body.graph_version is None:
        return operator_of(request).latest_graph(body.type)
    for g in reads_of(request).graphs():
        if g.event_type == body.type and g.version == body.graph_version:
            return g
    raise NotFound(f"no graph version {body.graph_version} for event type {body.type!r}")


def submit_event(request: Request, body: SubmitIn, header_key: str | None = None) -> tuple[EventRecord, bool]:
    """The event ``body`` asks for (created True), or the one its idempotency key already names
    (False). ``header_key`` is the API's ``Idempotency-Key`` header, which must agree with the
    body's field. Raises Forbidden for an event type the token may not submit, NotFound for an
    unknown type or version, ParamsInvalid for bad parameters and Conflict for a key that names
    an event of other parameters or another pinned graph version."""
    token = token_of(request)
    if not token.sees_type(body.type):
        raise Forbidden(f"this token may submit only {sorted(token.event_types or ())}")
    if header_key and body.idempotency_key and header_key != body.idempotency_key:
        raise UsageError("the Idempotency-Key header and the idempotency_key field differ")
    key = header_key or body.idempotency_key
    record = _graph_for(request, body)
    params = validate_params(reads_of(request).graph_of(record.id), body.params)
    event, created = operator_of(request).submit(
        record.id, params, key=key, deadline_at=body.deadline_at, priority=body.priority
    )
    if body.graph_version is not None and event.graph_version != body.graph_version:
        raise Conflict(
            f"idempotency key {key!r} already names event {event.id}, of graph version {event.graph_version}",
            existing_event=event.id,
        )
    return event, created
