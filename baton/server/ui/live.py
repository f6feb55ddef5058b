"""Live pages: one server-sent-event stream per open page, at most one message a second.

A stream waits on the server's change count (:class:`baton.server.changes.ChangeWatch`, the same
one the workers' long polls wait on) and, on the event page, at most LOOK_S between looks. A look
reads the event's version (the event row and its per-node counts: O(nodes)); when it moved, the
stream sends the fragments that move with every count (PUSHED: header, graph, waiting) in the
message itself, only those the page does not hold yet, and names the others (PULLED) for the
page to fetch with their ETags, when they are in view. Looks and fragments are shared by every
page of the event (:mod:`baton.server.ui.views`), so ten pages cost about what one does. The page says
which version it was drawn at (``since``), so a stream says nothing until the event moves from
it. An idle stream sends a ping every 15 s. The stream is gzipped when the browser accepts it:
each message is flushed whole (the first on the 60,002-task event, 14 KB of HTML, takes 2.6 KB
on the wire; later ones share its compression window).

The store-wide stream (events list, workers) says only that something changed; those pages also
refresh every few seconds. Streams end when the server stops.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from baton.access import Action
from baton.server.auth import needs
from baton.server.changes import ChangeWatch
from baton.server.door import GuardedRoute
from baton.server.state import state_of
from baton.server.ui.event_page import seen_look, shared_fragment, views_of
from baton.server.ui.render import can_steer

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)
EVERY_S = 1.0  # no page hears more often than this
LOOK_S = 2.0  # the event page also looks this often: not every store wakes on every change
PING_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
PUSHED = ("header", "graph", "waiting")
PULLED = ("timeline", "partitions", "tasks")
FRAGMENTS = PUSHED + PULLED
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
Since = Annotated[str | None, Query(max_length=64, pattern="^[0-9a-f]*$")]


def message(data: dict[str, object], kind: str = "change") -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class _Page:
    """What one stream knows of its page: the version it shows and the fragments it holds."""

    def __init__(self, request: Request, event_id: int, since: str | None) -> None:
        self.request, self.event_id, self.steer = request, event_id, can_steer(request)
        self.version, self.held = since, dict[str, str]()

    def news(self) -> dict[str, object] | None:
        """The message for the page if the event moved from what it shows, else None."""
        request = self.request
        look = seen_look(request, self.event_id)  # access checked at every look
        if look.version == self.version:
            return None
        first, self.version = self.version is None, look.version
        news: dict[str, object] = {"version": look.version, "state": look.event.state.value, "changed": []}
        if first:  # a page that did not say what it shows: fetches on the next change
            return news
        store, views, html = state_of(request).reads, views_of(request), {}
        for name in PUSHED:
            rendered = shared_fragment(store, views, look, name, self.steer)
            if self.held.get(name) != rendered.etag:
                html[name] = rendered.text
                self.held[name] = rendered.etag
        return {**news, "html": html, "changed": list(PULLED)}


async def _paced(changes: ChangeWatch, since: int, last_sent: float, look_s: float) -> int:
    """Wait for news (or ``look_s``), never returning sooner than EVERY_S after a message."""
    await anyio.sleep(max(0.0, last_sent + EVERY_S - time.monotonic()))
    return await changes.wait(since, look_s)


async def _event_stream(changes: ChangeWatch, page: _Page) -> AsyncIterator[str]:
    """The store's wake-ups are for claimable work (PostgreSQL's NOTIFY says nothing of a task
    that merely ended), so besides waking on them the stream looks at the event every LOOK_S."""
    yield "retry: 3000\n\n"
    last_sent, last_out, since = 0.0, time.monotonic(), changes.count
    while not changes.released:
        news = await anyio.to_thread.run_sync(page.news)
        if news is not None:
            yield message(news)
            last_sent = last_out = time.monotonic()
        elif time.monotonic() - last_out >= PING_S:
            yield ": ping\n\n"
            last_out = time.monotonic()
        since = await _paced(changes, since, last_sent, LOOK_S)


async def _gzipped(stream: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """The stream gzipped, each message flushed whole (Z_SYNC_FLUSH) so that it arrives at once."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    async for text in stream:
        yield packer.compress(text.encode()) + packer.flush(zlib.Z_SYNC_FLUSH)


def _streamed(request: Request, stream: AsyncIterator[str]) -> StreamingResponse:
    if "gzip" not in request.headers.get("accept-encoding", ""):
        return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)
    headers = {**HEADERS, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
    return StreamingResponse(_gzipped(stream), media_type="text/event-stream", headers=headers)


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
async def event_live(request: Request, event_id: int, since: Since = None) -> StreamingResponse:
    """The event page's stream: ``change`` messages with the event's version, its state, the
    pushed fragments' HTML that changed, and the fragments to fetch again."""
    page = _Page(request, event_id, since or None)
    await anyio.to_thread.run_sync(seen_look, request, event_id)
    return _streamed(request, _event_stream(state_of(request).changes, page))


@router.get("/live", **needs(Action.READ))
async def store_live(request: Request) -> StreamingResponse:
    """The list pages' stream: a ``change`` message when anything in the store changed."""
    return _streamed(request, _store_stream(request))
