"""One HTTP session to a Baton server: authentication, timeouts, TLS, and the server's
problem+json answers turned back into Baton's errors (so callers handle one error tree,
whichever way they reach the store).

- a connection that fails or times out, and any 5xx, raise :class:`TransientError` (worth
  retrying; the store's state is unknown, so only idempotent calls may be retried blindly);
- 401 :class:`Unauthenticated`, 403 :class:`Forbidden`, 404 :class:`NotFound`, 409
  :class:`Conflict` (with ``existing_event``), 422 :class:`ParamsInvalid` when it names
  parameters, any other 4xx :class:`UsageError`.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

import httpx

from baton.client.timing import CallTimes
from baton.errors import Conflict, Forbidden, NotFound, ParamsInvalid, TransientError, Unauthenticated, UsageError

CONNECT_S = 5.0
DEFAULT_S = 30.0
USER_AGENT = "baton"


class SessionOptions(TypedDict, total=False):
    """How a session reaches its server: ``ca_file`` (a PEM bundle to trust for HTTPS instead of
    the system's), ``timeout_s`` per request (default 30), ``transport`` (tests swap it)."""

    ca_file: str | None
    timeout_s: float
    transport: httpx.BaseTransport | None


class Session:
    def __init__(
        self, url: str, token: str, *, times: CallTimes | None = None, **options: Unpack[SessionOptions]
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"{url!r}: a server URL starts with http:// or https://")
        if not token:
            raise UsageError("a server needs a token (--token or BATON_TOKEN)")
        self.url = url.rstrip("/")
        self.times = times  # where given, each answered request's duration is recorded
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        ca_file = options.get("ca_file")
        try:  # a context, not the file's name: httpx deprecates verify=<path>
            verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
            self.client = httpx.Client(
                base_url=self.url,
                headers=headers,
                timeout=httpx.Timeout(options.get("timeout_s", DEFAULT_S), connect=CONNECT_S),
                verify=verify,
                transport=options.get("transport"),
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=60.0),
            )
        except (OSError, ssl.SSLError) as exc:  # a CA file that is missing, unreadable or not PEM
            raise UsageError(f"cannot read the CA file {ca_file!r}: {exc}") from exc

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request; a non-2xx answer raises the matching Baton error. The JSON body is
        ``body``, or ``content`` when the caller has encoded it already."""
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
        send_headers = {"Content-Type": "application/json", **(headers or {})} if content is not None else headers
        query = None if params is None else {k: v for k, v in params.items() if v is not None}
        began = time.monotonic()
        try:
            response = self.client.request(
                method, path, content=content, params=query, headers=send_headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s, connect=CONNECT_S),
            )  # fmt: skip
        except httpx.TransportError as exc:
            raise TransientError(f"{self.url} unreachable: {type(exc).__name__}: {exc}") from exc
        if self.times is not None:
            self.times.record(method, path, time.monotonic() - began)
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def json(self, method: str, path: str, body: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.call(method, path, body, **kwargs).json()

    def close(self) -> None:
        self.client.close()


def error_of(response: httpx.Response) -> Exception:
    """The Baton error a problem+json answer stands for."""
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    status = response.status_code
    detail = str(problem.get("detail") or response.reason_phrase or f"HTTP {status}")
    if status >= 500:
        return TransientError(f"the server answered {status}: {detail}")
    if status == 401:
        return Unauthenticated(detail)
    if status == 403:
        return Forbidden(detail)
    if status == 404:
        return NotFound(detail)
    if status == 409:
        existing = problem.get("event_id")
        return Conflict(detail, existing_event=existing if isinstance(existing, int) else None)
    errors = problem.get("errors")
    if status == 422 and detail.startswith("invalid event parameters") and isinstance(errors, list):
        return ParamsInvalid([str(e.get("detail", e)) if isinstance(e, dict) else str(e) for e in errors])
    return UsageError(f"the server refused the request ({status}): {detail}")
