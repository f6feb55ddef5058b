"""A cap on request bodies: neither uvicorn nor Starlette has one, and an unbounded body is
unbounded memory. Larger bodies are answered 413 before they are read (by their
``Content-Length``) or as soon as their chunks pass the cap."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MEDIA_TYPE = "application/problem+json"


class BodyTooLarge(Exception):
    """Raised while a body is read, once it passes the cap (answered 413 by the app)."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.larger = larger or {}  # path prefix -> its own cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        cap = next((n for prefix, n in self.larger.items() if path.startswith(prefix + "/")), self.default_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _refuse(send, cap)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge(too_large(cap))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, cap)


def too_large(cap: int) -> str:
    return f"the request body is over the server's cap of {cap:,} bytes"


async def _refuse(send: Send, cap: int) -> None:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": "Request body too large",
        "status": 413,
        "detail": too_large(cap),
    }
    payload = json.dumps(body).encode()
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(payload)).encode()),
                   (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
