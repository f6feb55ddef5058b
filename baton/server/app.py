"""The HTTP app of ``baton server``: the event communication server (``/api/v1``) and the task
communication server (``/worker/v1``) in one process, over one open store.

:func:`create_app` takes a store an entry point opened and the settings it resolved; it opens
nothing itself. Routes are plain functions run in the server's thread pool (the store's calls
block), except the workers' long poll, which waits on the change count without a thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI, Request

from baton.errors import Forbidden
from baton.server import metrics, problems, workers
from baton.server.api import backfills, catalog, events, pauses, schedules, webhooks
from baton.server.auth import Authenticator
from baton.server.bodies import BodyBudget
from baton.server.changes import ChangeWatch
from baton.server.door import ADMITTED, FrontDoor, allowed_methods
from baton.server.gathering import Gatherer
from baton.server.metrics import HttpMetrics, Metrics
from baton.server.state import AppState, state_of_app
from baton.server.ui import Compressed, ui_routers
from baton.server.ui.errors import page_for
from baton.server.ui.security import SecurityHeaders
from baton.server.ui.views import Views
from baton.settings import Settings
from baton.store.protocol import Store

API_TITLE = "Baton"
THREADS = 64


def _admitted(request: Request) -> None:
    """Deny by default: a route that did not pass the front door (one not made a
    :class:`~baton.server.door.GuardedRoute`) is refused to everyone."""
    if not request.scope.get(ADMITTED):
        raise Forbidden("this route is not open to any request")


def release_long_polls(app: FastAPI) -> None:
    """Answer the workers' long polls at once: the server is stopping (see :mod:`baton.server.serve`)."""
    state_of_app(app).changes.release()


def create_app(store: Store, settings: Settings) -> FastAPI:
    changes = ChangeWatch(store.wake_feed(), safety_poll_s=min(1.0, settings.idle_poll_s))
    measured = Metrics(store, refresh_s=settings.metrics_refresh_s, stale_after_s=settings.lease_s)
    state = AppState(
        reads=store,
        operator=store,
        link=store,
        tokens=store,
        schema=store,
        webhooks=store,
        settings=settings,
        auth=Authenticator(store, settings.token_cache_s),
        changes=changes,
        metrics=measured,
        gatherer=Gatherer(store),
        bodies=BodyBudget(settings.body_budget_bytes),
        views=Views(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the pool the store's calls run in (one per event loop): long polls hold none of it
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        changes.start()
        measured.start()
        try:
            yield
        finally:
            measured.stop()
            changes.stop()

    app = FastAPI(
        title=API_TITLE,
        version="1",
        summary="Events in, per-partition task graphs out, run by task servers that pull work.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(_admitted)],
    )
    measured.bodies = state.bodies
    app.state.baton = state
    problems.install(app, pages=page_for)
    routers = [events.router, catalog.router, webhooks.router, schedules.router, backfills.router, pauses.router,
               workers.router, metrics.router, *ui_routers()]  # fmt: skip
    for router in routers:
        app.include_router(router)
    state.allowed = allowed_methods(route for router in routers for route in router.routes)
    app.add_middleware(Compressed)
    app.add_middleware(HttpMetrics, metrics=measured)  # it times the front door's refusals too
    app.add_middleware(FrontDoor)  # request ids, and the last word on any error
    app.add_middleware(SecurityHeaders)  # outermost: the UI's headers on every answer, the front door's too
    return app
