"""Deny by default: every route names the action it needs, and one app-wide dependency checks it.

A route declares its action in its OpenAPI extension ``x-baton-action`` (see :func:`needs`), so
the requirement is visible in ``/openapi.json`` and a route that declares none is refused to
everyone. Tokens come as ``Authorization: Bearer <token>``; they are looked up by SHA-256 with a
short cache, so a revoked token stops working within ``cache_s`` seconds.

The web UI's routes (under ``/ui/``) also take a session cookie, which stands for the token pasted
at login (see :mod:`baton.server.ui.session`). A request authenticated by cookie that may change
something (any method but GET and HEAD) must carry the session's CSRF token in ``X-CSRF-Token``:
a cookie is sent by the browser whoever made the page, the header only by the UI's own script.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Request

from baton.access import Action, TokenRecord, token_digest
from baton.errors import Forbidden, Unauthenticated
from baton.server.bodies import BODIES, BODY_KEY
from baton.store.protocol import TokenStore

PUBLIC = "public"
ACTION_KEY = "x-baton-action"
MAX_TOKEN_CHARS = 256
CACHE_ENTRIES = 10_000
SCHEME = "bearer"
SESSION_COOKIE = "baton_session"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATHS = "/ui/"  # the routes a session cookie opens (the API takes tokens only)
SAFE_METHODS = frozenset({"GET", "HEAD"})
SECURITY_SCHEMES = {SCHEME: {"type": "http", "scheme": "bearer", "description": "a token from 'baton token create'"}}


def needs(action: Action | str, body: str | None = None) -> dict[str, Any]:
    """The keyword arguments that mark a route with the action it needs (or ``PUBLIC``) and,
    for a route that takes a body, its kind (:data:`baton.server.bodies.BODIES`; JSON bodies are
    ``small`` unless told); the OpenAPI document shows the action, whether a token is needed and
    the body's caps."""
    security: list[dict[str, list[str]]] = [] if action == PUBLIC else [{SCHEME: []}]
    extra: dict[str, Any] = {ACTION_KEY: str(action), "security": security}
    if body is not None:
        if body not in BODIES:
            raise ValueError(f"unknown body kind {body!r}")
        extra[BODY_KEY] = body
    return {"openapi_extra": extra}


def route_action(request: Request) -> str | None:
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    action = extra.get(ACTION_KEY)
    return action if isinstance(action, str) else None


class Authenticator:
    """Token lookups by digest, cached for ``cache_s`` (unknown tokens too, so guessing costs
    the database nothing)."""

    def __init__(self, store: TokenStore, cache_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.cache_s = cache_s
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, TokenRecord | None]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, token: str) -> TokenRecord:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("unknown token")
        record = self._cached(token_digest(token), self.store.token_by_digest)
        if record is None:
            raise Unauthenticated("unknown token")
        return _live(record)

    def session(self, cookie: str) -> TokenRecord:
        """The token a session cookie stands for (a session that ended or was closed, or whose
        token was revoked, is refused)."""
        if not cookie or len(cookie) > MAX_TOKEN_CHARS:
            raise Unauthenticated("no session: log in again")
        record = self._cached("session:" + token_digest(cookie), self._session_token)
        if record is None:
            raise Unauthenticated("the session has ended: log in again")
        return _live(record)

    def _session_token(self, key: str) -> TokenRecord | None:
        return self.store.session_token(key.removeprefix("session:"))

    def _cached(self, key: str, read: Callable[[str], TokenRecord | None]) -> TokenRecord | None:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        record = read(key)
        with self._lock:
            self._cache[key] = (now, record)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return record

    def drop_session(self, cookie: str) -> None:
        """Forget a closed session at once (other servers forget it within ``cache_s``)."""
        with self._lock:
            self._cache.pop("session:" + token_digest(cookie), None)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def _live(record: TokenRecord) -> TokenRecord:
    if record.revoked_at is not None:
        raise Unauthenticated(f"token {record.id} ({record.name}) was revoked")
    return record


def csrf_token(cookie: str) -> str:
    """The CSRF token of a session: derived from its cookie, which only its browser holds."""
    return hashlib.sha256(b"baton-csrf:" + cookie.encode()).hexdigest()[:32]


def _by_cookie(request: Request, authenticator: Authenticator) -> TokenRecord | None:
    if not request.url.path.startswith(COOKIE_PATHS):
        return None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    record = authenticator.session(cookie)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(cookie).encode()):
            raise Forbidden("this request lacks the page's CSRF token: reload the page and try again")
    return record


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return value.strip()


def check(request: Request, authenticator: Authenticator) -> TokenRecord | None:
    """The token of a request to a route that needs it, checked against the route's action;
    None for a public route. Raises Unauthenticated (401) or Forbidden (403)."""
    action = route_action(request)
    if action == PUBLIC:
        return None
    token = bearer(request)
    record = authenticator.lookup(token) if token is not None else _by_cookie(request, authenticator)
    if record is None:
        raise Unauthenticated("this route needs a token: send 'Authorization: Bearer <token>'")
    if action is None or action not in Action.__members__.values():
        raise Forbidden("this route is not open to any token")
    if not record.may(Action(action)):
        raise Forbidden(f"a {record.role} token may not {action}")
    request.state.token = record
    return record


def token_of(request: Request) -> TokenRecord:
    """The checked token of the request (routes that need one always have it)."""
    record: TokenRecord = request.state.token
    return record


def visible(token: TokenRecord, event_type: str) -> None:
    """Refuse a token limited to other event types."""
    if not token.sees_type(event_type):
        raise Forbidden(f"this token is limited to the event types {sorted(token.event_types or ())}")
