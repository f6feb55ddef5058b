"""The front door: what every route does before FastAPI reads a byte of its body.

FastAPI reads and parses a request's body before any dependency runs, so a check of the token
in a dependency comes after the work it should have prevented. Every route of the app is a
:class:`GuardedRoute` instead, which, in this order and from the request's head alone:

1. answers a method the path does not have with 405 and an ``Allow`` header listing every method
   the path has (each of a path's methods is its own route);
2. checks the token or session (401, 403): a refused request is answered without reading its
   body, and with ``Connection: close`` (see :class:`FrontDoor`), so the body is never read;
3. refuses query parameters the route does not declare (422) and a body of another media type
   than JSON, or of none (415);
4. reads the body up to the route's cap (413 beyond; :data:`BODIES`), within ``body_timeout_s``
   (408), inside a server-wide budget of bytes being read, parsed and handled at once
   (``body_budget_bytes``, held until the answer is made: a request over it waits its turn
   without holding a thread);
5. counts the body's JSON values before parsing it (413 past the route's count), so a body's
   parsed size is bounded by its length, then parses it in a worker thread, refusing a key
   given twice in one object (400, naming it) and anything that is not UTF-8 JSON (400).

FastAPI then finds the parsed body in place and validates it as before. The caps are stated in
``/openapi.json`` on each operation's ``requestBody`` (``x-baton-max-bytes``,
``x-baton-max-json-values``), with the numbers this server enforces.

:class:`FrontDoor` wraps the whole app (only the UI's security headers are outside it): a
request id on every answer (``X-Request-ID``, and in every problem body), ``Connection: close``
on any answer sent before the request's body was read whole, and a logged traceback and a 500
for any error that escapes the app.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton.server.auth import PUBLIC, check, route_action
from baton.server.bodies import BODIES, BODY_KEY, DEFAULT_BODY, BodyCap, has_body, parse_json
from baton.server.problems import LOGGED, REQUEST_ID, problem
from baton.server.state import state_of
from baton.wire.workers import MAX_KEY

ObjectId = Annotated[int, Path(ge=1, le=MAX_KEY, description="an id (at most 2**62)")]

log = logging.getLogger("baton.api")
ADMITTED = "baton.admitted"  # set in a request's scope once the door let it in
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # a request id a proxy may pass on
Handler = Callable[[Request], Coroutine[Any, Any, Response]]
PARSED = b"{}"  # what a request's body reads as once it has been parsed


def body_cap(route: APIRoute) -> BodyCap | None:
    """The cap of a route that takes a body (a JSON body parameter, or a declared form), else None."""
    kind = (route.openapi_extra or {}).get(BODY_KEY)
    if kind is None:
        return BODIES[DEFAULT_BODY] if route.body_field is not None else None
    return BODIES[kind]


def allowed_methods(routes: Iterable[Any]) -> dict[str, frozenset[str]]:
    """Every method of each path template, over the given routes (for 405's ``Allow``)."""
    found: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, APIRoute):
            found.setdefault(route.path_format, set()).update(route.methods or ())
    return {path: frozenset(methods) for path, methods in found.items()}


class GuardedRoute(APIRoute):
    """A route that checks who asks before its body is read (see the module's docstring)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            every = scope["app"].state.baton.allowed.get(self.path_format, frozenset(self.methods))
            raise HTTPException(405, f"{scope['method'][:20]} is not a method of this path",
                                headers={"Allow": ", ".join(sorted(every))})  # fmt: skip
        await super().handle(scope, receive, send)

    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()
        cap = body_cap(self)
        dependant = self.dependant

        async def guarded(request: Request) -> Response:
            await check_head(request, dependant, cap)
            if cap is None or not has_body(request.scope):
                request.scope[ADMITTED] = True
                return await inner(request)
            state = state_of(request)
            # the body's share of the budget is held until the answer is made: what the route
            # builds from a body counts too
            async with state.bodies.reading(request, cap.max_bytes(state.settings), state.settings.body_timeout_s) \
                    as raw:  # fmt: skip
                if cap.json:
                    request._json = await anyio.to_thread.run_sync(parse_json, raw, cap.max_json_values)
                    # FastAPI asks for the body only to see that there is one, then takes the
                    # parsed JSON: the bytes need not stay in memory while the route runs
                    request._body = PARSED
                else:
                    request._body = bytes(raw.take())
                request.scope[ADMITTED] = True
                return await inner(request)

        return guarded


async def check_head(request: Request, dependant: Dependant, cap: BodyCap | None) -> None:
    """What the head alone decides: identity (401, 403), the query (422), the media type (415)."""
    if route_action(request) != PUBLIC:
        await anyio.to_thread.run_sync(check, request, state_of(request).auth)
    _known_query(request, dependant)
    if cap is not None and cap.json and has_body(request.scope):
        _json_media_type(request)


def _known_query(request: Request, dependant: Dependant) -> None:
    """Refuse a query parameter the route does not declare (a misspelt filter such as
    ``?stat=failed`` would otherwise list everything)."""
    unknown = sorted(set(request.query_params) - _query_names(dependant))
    if unknown:
        raise RequestValidationError(
            [{"loc": ("query", name[:100]), "msg": "not a parameter of this route", "type": "extra_forbidden"}
             for name in unknown[:20]]
        )  # fmt: skip


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _json_media_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not media_type:
        raise HTTPException(415, "a request body needs 'Content-Type: application/json'")
    if not (media_type == "application/json" or (media_type.startswith("application/") and
                                                 media_type.endswith("+json"))):  # fmt: skip
        raise HTTPException(415, f"send the body as application/json, not {media_type[:100]}")


# --- the outermost middleware --------------------------------------------------------------------


class FrontDoor:
    """Request ids, ``Connection: close`` for an unread body, and the last word on errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope[REQUEST_ID] = request_id
        unread = has_body(scope)
        started = False

        async def receiving() -> Message:
            nonlocal unread
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                unread = False
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                if not any(name == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                if unread:  # the body was never read: no later request can follow on this connection
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except Exception:
            if not scope.get(LOGGED):
                log.exception("%s %s failed (request %s)", scope.get("method"), scope.get("path"), request_id)
            if not started:
                await problem(500, "an unexpected error; it has been logged", request_id=request_id)(
                    scope, receiving, sending
                )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if CLIENT_ID.match(given):
                return given
    return f"{int(time.time()):x}-{secrets.token_hex(6)}"
