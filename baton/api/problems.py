"""One error shape for every 4xx and 5xx: RFC 9457 problem details (``application/problem+json``).

Domain errors become statuses here, in one place: a bad request is 400, an unknown object 404,
a conflict 409, invalid parameters or graphs 422 (naming each problem), an oversize body 413, a
missing or revoked token 401, a wrong role 403, a database outage 503. Anything else is a bug:
it is logged with its traceback and answered 500 without details.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from baton.api.limits import BodyTooLarge
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


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"where": ".".join(str(part) for part in e.get("loc", ())), "detail": str(e.get("msg", ""))[:500]}
        for e in exc.errors()[:50]
    ]
    where = "; ".join(f"{e['where']}: {e['detail']}" for e in errors[:5])
    return problem(422, f"the request does not fit its schema: {where}", errors=errors)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)


def _too_large(request: Request, exc: Exception) -> JSONResponse:
    return problem(413, str(exc), {"Connection": "close"})


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return problem(500, "an unexpected error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(BatonError, _baton_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(Exception, _unexpected)
