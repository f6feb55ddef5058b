"""One error shape for every 4xx and 5xx: RFC 9457 problem details (``application/problem+json``).

Domain errors become statuses here, in one place: a bad request or a body that is not JSON is
400, an unknown object 404, a conflict 409, invalid parameters, graphs or request fields 422
(naming each problem in ``errors``), an oversize body 413 (:mod:`baton.server.bodies`), a
body of another media type 415, a missing or revoked token 401, a wrong role 403, a database
outage 503. A request's token is judged before its body is read (:mod:`baton.server.door`).
Anything else is a bug: it is logged with its traceback and the request's id, and answered 500
without details but with that id.

Every problem is bounded whatever the input: at most :data:`MAX_ERRORS` items in ``errors`` (with
``more_errors`` saying how many were left out), each text cut, anything UTF-8 cannot carry (a lone
surrogate from a JSON escape) shown as its escape, and the whole body under
:data:`MAX_PROBLEM_BYTES`.

:func:`install` also puts these answers in the OpenAPI document, so clients (and the fuzz) know
every status an operation may give.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from baton.errors import (
    BackendError,
    BatonError,
    Conflict,
    Forbidden,
    GraphInvalid,
    NotFound,
    ParamsInvalid,
    TransientError,
    Unauthenticated,
)
from baton.server.auth import SECURITY_SCHEMES
from baton.server.bodies import BODIES, BODY_KEY, DEFAULT_BODY, printable
from baton.settings import Settings

REQUEST_ID = "baton.request_id"
LOGGED = "baton.logged"  # set in the scope once a failure has been logged with its traceback

log = logging.getLogger("baton.api")
MEDIA_TYPE = "application/problem+json"
MAX_PROBLEM_BYTES = 16 * 1024  # the largest error body, whatever the request
MAX_ERRORS = 20  # items listed in a problem's errors
MAX_TEXT = 500  # characters of one detail
MAX_WHERE = 200  # characters of one location
TITLES = {
    400: "Bad request",
    408: "Request timeout",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class FieldProblem(BaseModel):
    detail: str
    where: str | None = Field(None, description="the field (``body.params.year``) or the graph file's path")
    line: int | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error."""

    type: str
    title: str
    status: int
    detail: str = Field(description="what was wrong, and where", max_length=MAX_TEXT * 4)
    errors: list[FieldProblem] | None = Field(
        None, max_length=MAX_ERRORS, description="the first problems of an invalid request (422)"
    )
    more_errors: int | None = Field(None, description="how many more problems there were than errors lists")
    event_id: int | None = Field(None, description="the event an idempotency key already names (409)")
    request_id: str | None = Field(None, description="this request's id, in the server's log (X-Request-ID)")


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, request_id: str | None = None, **extra: Any
) -> Response:
    """A problem+json response, bounded (the module's docstring)."""
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                            "detail": _text(detail, MAX_TEXT * 4), **extra}  # fmt: skip
    errors = body.get("errors")
    if errors is not None:
        more = len(errors) - MAX_ERRORS + body.pop("more_errors", 0)
        body["errors"] = [_bounded(e) for e in errors[:MAX_ERRORS]]
        if more > 0:
            body["more_errors"] = more
    if request_id is not None:
        body["request_id"] = request_id
    payload = json.dumps(body, ensure_ascii=False).encode()
    while len(payload) > MAX_PROBLEM_BYTES and body.get("errors"):
        body["more_errors"] = body.get("more_errors", 0) + 1
        body["errors"].pop()
        payload = json.dumps(body, ensure_ascii=False).encode()
    return Response(payload, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _text(value: object, limit: int) -> str:
    text = printable(str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded(error: dict[str, Any]) -> dict[str, Any]:
    found = {"detail": _text(error.get("detail", ""), MAX_TEXT)}
    if error.get("where") is not None:
        found["where"] = _text(error["where"], MAX_WHERE)
    if error.get("line") is not None:
        found["line"] = error["line"]
    return found


def request_id_of(request: Request) -> str | None:
    found = request.scope.get(REQUEST_ID)
    return found if isinstance(found, str) else None


def status_of(exc: BatonError) -> int:
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, ParamsInvalid | GraphInvalid):
        return 422
    if isinstance(exc, TransientError | BackendError):
        return 503
    return 400


def _baton_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BatonError)
    status = status_of(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, ParamsInvalid):
        extra["errors"] = [{"detail": p} for p in exc.problems]
    elif isinstance(exc, GraphInvalid):
        extra["errors"] = [{"where": p.where, "line": p.line, "detail": p.message} for p in exc.problems]
    existing = getattr(exc, "existing_event", None)
    if existing is not None:
        extra["event_id"] = existing
    request_id = request_id_of(request)
    if status == 503:
        log.error("%s %s: %s (request %s)", request.method, request.url.path, printable(str(exc)), request_id)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    detail = str(exc) if status != 503 else f"the database is unavailable: {exc}"
    return problem(status, detail, headers, request_id, **extra)


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    found = exc.errors()
    errors = [{"where": ".".join(str(part)[:100] for part in e.get("loc", ())), "detail": str(e.get("msg", ""))}
              for e in found[:MAX_ERRORS]]  # fmt: skip
    where = "; ".join(f"{_text(e['where'], 100)}: {_text(e['detail'], 100)}" for e in errors[:3])
    more = f" (and {len(found) - 3:,} more)" if len(found) > 3 else ""
    return problem(422, f"the request does not fit its schema: {where}{more}", None, request_id_of(request),
                   errors=errors, more_errors=max(0, len(found) - MAX_ERRORS))  # fmt: skip


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, str(exc.detail), headers, request_id_of(request))


def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = request_id_of(request)
    log.exception("%s %s failed (request %s)", request.method, request.url.path, request_id)
    request.scope[LOGGED] = True
    return problem(500, "an unexpected error; it has been logged", None, request_id)


Pages = Callable[[Request, Response], Response]  # the web UI's page for a problem
Handler = Callable[[Request, Exception], Response]


def install(app: FastAPI, pages: Pages | None = None) -> None:
    """Answer every error with a problem (or, where ``pages`` says so, a page for a browser),
    and say so in the app's OpenAPI document."""
    handlers: list[tuple[type[Exception], Handler]] = [
        (BatonError, _baton_error), (RequestValidationError, _validation_error), (HTTPException, _http_error),
        (Exception, _unexpected),
    ]  # fmt: skip
    for kind, handler in handlers:
        app.add_exception_handler(kind, handler if pages is None else _paged(handler, pages))
    app.openapi = _documenting(app, app.openapi)  # type: ignore[method-assign]


def _paged(handler: Handler, pages: Pages) -> Callable[[Request, Exception], Response]:
    def answer(request: Request, exc: Exception) -> Response:
        return pages(request, handler(request, exc))

    return answer


# --- the OpenAPI document: which problems each operation may answer ------------------------------

REF = "#/components/schemas/Problem"
Responses = dict[int | str, dict[str, Any]]  # a route's ``responses``


def responses(*statuses: int) -> Responses:
    """A route's ``responses`` for problems beyond those every operation of its kind may answer."""
    return {status: _problem_response(status) for status in statuses}


def _problem_response(status: int) -> dict[str, Any]:
    return {"description": TITLES[status], "content": {MEDIA_TYPE: {"schema": {"$ref": REF}}}}


def _statuses(operation: dict[str, Any]) -> list[int]:
    """What any operation of this shape may answer: its token refused (401, 403), its body
    unreadable, too large, too slow or not JSON (400, 413, 408, 415), its parameters or body
    invalid (422), a path's object unknown (404), the database away (503)."""
    found = [503]
    if operation.get("security"):
        found += [401, 403]
    if "requestBody" in operation:
        found += [400, 408, 413, 415, 422]
    parameters = operation.get("parameters", [])
    if parameters:
        found.append(422)
    if any(p.get("in") == "path" for p in parameters):
        found.append(404)
    return found


def document(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Add the problem responses (replacing FastAPI's own 422 shape, which this app never
    sends), the body caps this server enforces, the Problem schema and the bearer scheme to an
    OpenAPI document, in place."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answers = operation.setdefault("responses", {})
            for status in _statuses(operation):
                answers[str(status)] = _problem_response(status)
            if "requestBody" in operation:
                _state_cap(operation, settings)
    _exact(schema)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs"))
    schemas["Problem"] = problem_schema
    components["securitySchemes"] = SECURITY_SCHEMES
    return schema


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact(node: Any) -> None:
    """Say exactly what the server takes, in place: a bound FastAPI wrote as a float (2**62 as
    ``4.611686018427388e+18``, which read as a decimal is past 2**62) as the integer it is, and a
    map whose keys pydantic bounds by a pattern (``patternProperties``, which lets other keys
    through unchecked) as ``propertyNames`` and ``additionalProperties``."""
    if isinstance(node, list):
        for item in node:
            _exact(item)
        return
    if not isinstance(node, dict):
        return
    for key in BOUNDS:
        value = node.get(key)
        if isinstance(value, float) and value.is_integer():
            node[key] = int(value)
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1:
        ((pattern, values),) = patterns.items()
        node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
        node["additionalProperties"] = values
        del node["patternProperties"]
    for value in node.values():
        _exact(value)


def _state_cap(operation: dict[str, Any], settings: Settings) -> None:
    cap = BODIES[operation.get(BODY_KEY, DEFAULT_BODY)]
    size, values = cap.max_bytes(settings), cap.max_json_values
    body = operation["requestBody"]
    body["x-baton-max-bytes"] = size
    body["x-baton-max-json-values"] = values
    body["description"] = (f"application/json only (415 otherwise), at most {size:,} bytes (413 beyond, judged "
                           f"before the body is read when Content-Length says so) and {values:,} JSON values "
                           "(413); a key given twice in one object is refused (400)")  # fmt: skip


def _documenting(app: FastAPI, openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def documented() -> dict[str, Any]:
        # FastAPI caches the document; adding again changes nothing
        return document(openapi(), app.state.baton.settings)

    return documented
