"""The web UI of ``baton server``: server-rendered pages and fragments over the read store, one
live stream per page (docs/ui.md).

- ``session``: logging in with a token, the session cookie, logging out;
- ``overview``: the home page (running events, recent failures, workers, next fires), a list of
  sections;
- ``schedules``: the schedules page (pause, resume, fire now) and a calendar's year;
  ``backfills``: the backfills pages, the form that starts one, and its cancel;
- ``pages``: the events, workers and graphs pages (a graph's holds the form that raises an event:
  ``params_form``); ``event_page``: an event's page, its fragments and the task drawer;
  ``live``: the pages' streams; ``actions``: raise an event, cancel, rerun;
- ``views``: what the pages of one event share (one look, each fragment once per version);
- ``drawing``, ``gantt``, ``waiting``: the graph, the timeline and the waiting reasons;
- ``render``: templates, ETags and formatting; ``access``: what a token may see; ``errors``:
  error and login pages; ``static_files``: the script and the style sheet.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.types import ASGIApp, Receive, Scope, Send


def ui_routers() -> list[APIRouter]:
    """The UI's routes, for :func:`baton.server.app.create_app` to include."""
    from baton.server.ui import actions, backfills, event_page, live, overview, pages, schedules, session, static_files

    return [session.router, overview.router, pages.router, event_page.router, live.router, actions.router,
            schedules.router, backfills.router, static_files.router]  # fmt: skip


class Compressed:
    """Gzip the UI's pages and fragments (HTML compresses tenfold; streams are left alone), and
    nothing else: the workers' hot path stays uncompressed."""

    def __init__(self, app: ASGIApp) -> None:
        from starlette.middleware.gzip import GZipMiddleware

        self.app = app
        self.zipped = GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.zipped if scope["type"] == "http" and scope["path"].startswith("/ui/") else self.app
        await target(scope, receive, send)
