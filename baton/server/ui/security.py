"""The UI's defences in the browser: what every answer under ``/ui/`` tells the browser it may do,
and whether a form came from this server's own pages.

Headers (:class:`SecurityHeaders`, on every answer under ``/ui/`` and at ``/``: pages, fragments,
streams, static files, redirects, 304s, and the errors the app answers; not a bug's 500, which
the app answers outside every middleware):

- ``Content-Security-Policy`` (:func:`content_policy`): scripts and style sheets from this server
  only, no inline script, no event handler attribute, no ``style`` attribute, no ``javascript:``
  URL; the only inline style sheets allowed are the graph and timeline drawings' own
  ``<style>``, by their SHA-256 digests (:mod:`baton.server.ui.drawing`, :mod:`baton.server.ui.gantt`); images
  from ``data:`` only (the page's empty icon); fetches and streams to this server only; forms
  posted to this server only; no ``<base>``; no framing;
- ``X-Frame-Options: DENY`` (framing, for browsers that predate ``frame-ancestors``);
- ``Referrer-Policy: same-origin``: a link to another site carries no URL of this one;
- ``X-Content-Type-Options: nosniff``: a fragment or a log is never run as a script.

Origins (:func:`foreign_origin`): a browser names the page a form was posted from in ``Origin``
(or, failing that, ``Referer``); the login refuses a form from another origin than the one the
request arrived at (see :mod:`baton.server.ui.session`).
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton.server.ui.drawing import graph_css
from baton.server.ui.gantt import TIMELINE_CSS

__all__ = ["SecurityHeaders", "content_policy", "covers", "foreign_origin", "security_headers"]

DEFAULT_PORTS = {"http": 80, "https": 443}


def _digest(css: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


def content_policy() -> str:
    """The UI's Content-Security-Policy (the module's docstring says what each part allows)."""
    drawings = " ".join(_digest(css) for css in (graph_css(), TIMELINE_CSS))
    return (
        "default-src 'none'; script-src 'self'; "
        f"style-src 'self' {drawings}; img-src data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def security_headers() -> dict[str, str]:
    """The headers every answer under ``/ui/`` carries."""
    return {
        "Content-Security-Policy": content_policy(),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }


def covers(path: str) -> bool:
    """Whether an answer at ``path`` is the UI's (the root redirects to it)."""
    return path == "/" or path == "/ui" or path.startswith("/ui/")


class SecurityHeaders:
    """Pure ASGI middleware: sets :func:`security_headers` on the start of every HTTP answer whose
    path :func:`covers` (replacing any the route set), and passes the body through as it comes,
    so the live streams keep streaming."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in security_headers().items()]  # fmt: skip
        self.names = frozenset(name for name, _ in self.headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not covers(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_secured)


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an HTTP(S) URL, the port filled in; None for anything else
    (the ``null`` origin of a sandboxed frame or a privacy-minded redirect)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def foreign_origin(request: Request) -> str | None:
    """The origin a browser says ``request`` was made from (``Origin``, else ``Referer``) when it
    is not the one the request arrived at (its scheme, ``Host`` and port); None when they agree
    or when neither header was sent (a client that is not a browser). Forwarded headers are not
    trusted: a proxy in front must pass ``Host`` on as it came."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return None
    own = _origin(str(request.base_url))
    if own is not None and _origin(claimed) == own:
        return None
    return claimed[:200]
