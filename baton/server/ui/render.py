"""Templates and the small formatting rules pages share (times, durations, states).

Jinja2 autoescapes every template, so nothing a graph, an event or a log holds can become markup;
the SVG drawn by :mod:`baton.server.ui.drawing` and :mod:`baton.server.ui.gantt` escapes on its own and is
inserted with ``|safe`` only there. Before escaping, every ``{{ … }}`` goes through
:func:`shown` (the environment's ``finalize``), which shows invisible characters as markers
(:mod:`baton.server.ui.invisibles`), so no template can forget to; a value that is data rather than
text to read (a form field, an identifier for the script) says so with ``|verbatim``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape

from baton.access import Action, TokenRecord
from baton.engine.upcoming import wall_text
from baton.server.auth import SESSION_COOKIE, csrf_token
from baton.server.ui.invisibles import reveal

HERE = Path(__file__).parent
STATES = ("pending", "ready", "running", "succeeded", "failed", "upstream_failed", "cancelled")


def when(t: float | None) -> str:
    """A timestamp as the server's local time (the page says which zone)."""
    if t is None:
        return "—"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def span(start: float | None, end: float | None, now: float) -> str:
    """How long something ran (to ``now`` while it still runs)."""
    return "—" if start is None else duration((end if end is not None else now) - start)


def pretty_json(value: object) -> str:
    """JSON for people to read (autoescaping then makes it safe to show)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def qs(**params: object) -> str:
    """A query string of the parameters that have a value."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


class Verbatim(str):
    """A template value that is data, not text to read (a form field's value, an attribute the
    script or a test selects by): :func:`shown` leaves it as it is; it is still escaped."""


def shown(value: Any) -> Any:
    """What a ``{{ … }}`` outputs, before escaping: text with its invisible characters shown as
    markers. Markup (the drawings, fragments rendered here) marked its own text; numbers and
    ``None`` pass as they are."""
    if isinstance(value, Verbatim) or hasattr(value, "__html__") or isinstance(value, Undefined):
        return value
    if value is None or isinstance(value, int | float):
        return value
    return reveal(value if isinstance(value, str) else str(value))


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )
    env.filters.update(when=when, duration=duration, pretty_json=pretty_json, verbatim=Verbatim, zoned=wall_text)
    env.globals.update(span=span, qs=qs, STATES=STATES)
    return env


ENV = _environment()


def csrf_of(request: Request) -> str:
    cookie = request.cookies.get(SESSION_COOKIE)
    return csrf_token(cookie) if cookie else ""


def viewer(request: Request) -> TokenRecord | None:
    return getattr(request.state, "token", None)


@dataclass(frozen=True)
class Rendered:
    """A fragment rendered once for every viewer of one kind, with its ETag."""

    body: bytes
    etag: str

    @property
    def text(self) -> str:
        return self.body.decode()


def _tag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def fragment(template: str, can_steer: bool, **context: Any) -> Rendered:
    """A fragment that depends on its viewer only through ``can_steer`` (so it can be shared:
    :mod:`baton.server.ui.views`)."""
    body = ENV.get_template(template).render(token=None, csrf="", path="", can_steer=can_steer, **context).encode()
    return Rendered(body, _tag(body))


def respond(request: Request, rendered: Rendered, status: int = 200) -> Response:
    """A rendered page or fragment, or 304 when the page already holds it."""
    headers = {"ETag": rendered.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if status == 200 and request.headers.get("if-none-match") == rendered.etag:
        return Response(status_code=304, headers=headers)
    return HTMLResponse(rendered.body, status_code=status, headers=headers)


def can_steer(request: Request) -> bool:
    token = viewer(request)
    return token is not None and token.may(Action.STEER)


def can_submit(request: Request) -> bool:
    token = viewer(request)
    return token is not None and token.may(Action.SUBMIT)


def html(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """A page or fragment, with an ETag: a fragment fetched again unchanged costs a 304."""
    token = viewer(request)
    steer = can_steer(request)
    body = (
        ENV.get_template(template)
        .render(request=request, token=token, csrf=csrf_of(request), path=request.url.path, can_steer=steer, **context)
        .encode()
    )
    return respond(request, Rendered(body, _tag(body)), status)
