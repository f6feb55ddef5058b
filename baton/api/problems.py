"""One error shape for every 4xx and 5xx: RFC 9457 problem details (``application/problem+json``).

Domain errors become statuses here, in one place: a bad request or a body that is not JSON is
400, an unknown object 404, a conflict 409, invalid parameters, graphs or request fields 422
(naming each problem in ``errors``), an oversize body 413 (sent by :mod:`baton.api.limits`), a
body of another media type 415, a missing or revoked token 401, a wrong role 403, a database
outage 503. A request's token is judged before its body. Anything else is a bug: it is logged
with its traceback and answered 500 without details.

:func:`install` also puts these answers in the OpenAPI document, so clients (and the fuzz) know
every status an operation may give.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from baton.api.auth import SECURITY_SCHEMES, check
from baton.api.state import state_of
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

log = logging.getLogger("baton.api")
MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
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
    detail: str = Field(description="what was wrong, and where")
    errors: list[FieldProblem] | None = Field(None, description="each problem of an invalid request (422)")
    event_id: int | None = Field(None, description="the event an idempotency key already names (409)")


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


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


def _baton_error(request: Request, exc: Exception) -> JSONResponse:
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
    if status == 503:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    detail = str(exc) if status != 503 else f"the database is unavailable: {exc}"
    return problem(status, detail, headers, **extra)


def _token_refused(request: Request) -> JSONResponse | None:
    """FastAPI reads and parses a body before any dependency runs, so a request with a bad body
    and a bad token would hear about its body: its token comes first."""
    if request.scope.get("route") is None:
        return None
    try:
        check(request, state_of(request).auth)
    except BatonError as exc:
        return _baton_error(request, exc)
    return None


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refused = _token_refused(request)
    if refused is not None:
        return refused
    found = exc.errors()
    if found and all(e.get("type") == "json_invalid" for e in found):
        e = found[0]
        return problem(400, f"the request body is not valid JSON: {e.get('ctx', {}).get('error')} "
                            f"(at character {e['loc'][-1]})")  # fmt: skip
    errors = [
        {"where": ".".join(str(part) for part in e.get("loc", ())), "detail": str(e.get("msg", ""))[:500]}
        for e in found[:50]
    ]
    where = "; ".join(f"{e['where']}: {e['detail']}" for e in errors[:5])
    return problem(422, f"the request does not fit its schema: {where}", errors=errors)


def _unreadable(cause: BaseException | None) -> str | None:
    """What was wrong with a body FastAPI could not parse (it says only that it could not)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not UTF-8 JSON ({cause.reason} at byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the request body's JSON is nested too deeply to read"
    if isinstance(cause, ValueError):  # e.g. an integer of over 4,300 digits
        return f"the request body's JSON cannot be read: {str(cause)[:300]}"
    return None


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = str(exc.detail)
    if exc.status_code == 400:
        refused = _token_refused(request)
        if refused is not None:
            return refused
        detail = _unreadable(exc.__cause__) or detail
    return problem(exc.status_code, detail, dict(exc.headers) if exc.headers else None)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return problem(500, "an unexpected error; it has been logged")


Pages = Callable[[Request, JSONResponse], Response]  # the web UI's page for a problem
Handler = Callable[[Request, Exception], JSONResponse]


def install(app: FastAPI, pages: Pages | None = None) -> None:
    """Answer every error with a problem (or, where ``pages`` says so, a page for a browser),
    and say so in the app's OpenAPI document."""
    handlers: list[tuple[type[Exception], Handler]] = [
        (BatonError, _baton_error), (RequestValidationError, _validation_error), (HTTPException, _http_error),
        (Exception, _unexpected),
    ]  # fmt: skip
    for kind, handler in handlers:
        app.add_exception_handler(kind, handler if pages is None else _paged(handler, pages))
    app.openapi = _documenting(app.openapi)  # type: ignore[method-assign]


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
    unreadable or too large (400, 413), its parameters or body invalid (422), a path's object
    unknown (404), the database away (503)."""
    found = [503]
    if operation.get("security"):
        found += [401, 403]
    if "requestBody" in operation:
        found += [400, 413, 422]
    parameters = operation.get("parameters", [])
    if parameters:
        found.append(422)
    if any(p.get("in") == "path" for p in parameters):
        found.append(404)
    return found


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem responses (replacing FastAPI's own 422 shape, which this app never
    sends), the Problem schema and the bearer scheme to an OpenAPI document, in place."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answers = operation.setdefault("responses", {})
            for status in _statuses(operation):
                answers[str(status)] = _problem_response(status)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs"))
    schemas["Problem"] = problem_schema
    components["securitySchemes"] = SECURITY_SCHEMES
    return schema


def _documenting(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def documented() -> dict[str, Any]:
        return document(openapi())  # FastAPI caches the document; adding again changes nothing

    return documented
