"""The web UI of ``baton server``: server-rendered pages and fragments over the read store, one
live stream per page. See ``baton/ui/README.md`` for what each module holds."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.types import ASGIApp, Receive, Scope, Send


def ui_routers() -> list[APIRouter]:
    """The UI's routes, for :func:`baton.api.app.create_app` to include."""
    from baton.ui import actions, event_page, live, pages, session, static_files

    return [session.router, pages.router, event_page.router, live.router, actions.router, static_files.router]


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
