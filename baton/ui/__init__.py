"""The web UI of ``baton server``: server-rendered pages and fragments over the read store, one
live stream per page. See ``baton/ui/README.md`` for what each module holds."""

from __future__ import annotations

from fastapi import APIRouter


def ui_routers() -> list[APIRouter]:
    """The UI's routes, for :func:`baton.api.app.create_app` to include."""
    from baton.ui import actions, event_page, live, pages, session, static_files

    return [session.router, pages.router, event_page.router, live.router, actions.router, static_files.router]
