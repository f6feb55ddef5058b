"""Live pages: one server-sent-event stream per open page, at most one message a second.

A stream waits on the server's change count (:class:`baton.api.changes.ChangeWatch`, the same
one the workers' long polls wait on) and, on the event page, at most LOOK_S between looks. Each
look reads the event's version (the event row and its per-node counts: O(nodes)); the stream
speaks only if it moved, naming the fragments to fetch again, and the page fetches them with
their ETags. An idle stream sends a ping every 15 s. The store-wide stream (events list,
workers) says only that something changed; those pages also refresh every few seconds. Streams
end when the server stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from baton.access import Action
from baton.api.auth import needs
from baton.api.changes import ChangeWatch
from baton.api.state import state_of
from baton.api.wire import event_version
from baton.backends.protocol import ReadStore
from baton.ui.access import seen_event

router = APIRouter(prefix="/ui", include_in_schema=False)
EVERY_S = 1.0  # no page hears more often than this
LOOK_S = 2.0  # the event page also looks this often: not every store wakes on every change
PING_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
FRAGMENTS = ("header", "graph", "waiting", "timeline", "partitions", "tasks")
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def message(data: dict[str, object], kind: str = "change") -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _event_news(store: ReadStore, event_id: int) -> dict[str, object]:
    event = store.event(event_id)
    counts = store.node_counts(event_id)
    return {"version": event_version(event, counts), "state": event.state.value, "changed": list(FRAGMENTS)}


async def _paced(changes: ChangeWatch, since: int, last_sent: float, look_s: float) -> int:
    """Wait for news (or ``look_s``), never returning sooner than EVERY_S after a message."""
    await anyio.sleep(max(0.0, last_sent + EVERY_S - time.monotonic()))
    return await changes.wait(since, look_s)


async def _event_stream(request: Request, event_id: int) -> AsyncIterator[str]:
    """The store's wake-ups are for claimable work (PostgreSQL's NOTIFY says nothing of a task
    that merely ended), so besides waking on them the stream looks at the event's version every
    LOOK_S: one O(nodes) read."""
    state = state_of(request)
    changes = state.changes
    yield "retry: 3000\n\n"
    last_version, last_sent, last_out, since = None, 0.0, time.monotonic(), changes.count
    while not changes.released:
        news = await anyio.to_thread.run_sync(_event_news, state.store, event_id)
        if news["version"] != last_version:
            yield message(news if last_version is not None else {**news, "changed": []})
            last_version, last_sent = news["version"], time.monotonic()
            last_out = last_sent
        elif time.monotonic() - last_out >= PING_S:
            yield ": ping\n\n"
            last_out = time.monotonic()
        since = await _paced(changes, since, last_sent, LOOK_S)


async def _store_stream(request: Request) -> AsyncIterator[str]:
    changes = state_of(request).changes
    yield "retry: 3000\n\n"
    since, last_sent = changes.count, 0.0
    while not changes.released:
        seen = since
        since = await _paced(changes, since, last_sent, PING_S)
        if since != seen:
            yield message({"count": since})
            last_sent = time.monotonic()
        else:
            yield ": ping\n\n"


@router.get("/events/{event_id}/live", **needs(Action.READ))
async def event_live(request: Request, event_id: int) -> StreamingResponse:
    """The event page's stream: ``change`` messages with the event's version, its state and the
    fragments to fetch again."""
    await anyio.to_thread.run_sync(seen_event, request, event_id)
    return StreamingResponse(_event_stream(request, event_id), media_type="text/event-stream", headers=HEADERS)


@router.get("/live", **needs(Action.READ))
async def store_live(request: Request) -> StreamingResponse:
    """The list pages' stream: a ``change`` message when anything in the store changed."""
    return StreamingResponse(_store_stream(request), media_type="text/event-stream", headers=HEADERS)
