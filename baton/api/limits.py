"""A cap on request bodies: neither uvicorn nor Starlette has one, and an unbounded body is
unbounded memory. Larger bodies are answered 413 before they are read (by their
``Content-Length``) or as soon as their chunks pass the cap (a chunked body has no length).

The refusal is sent from here, not raised into the app: FastAPI turns any error while it reads
a body into its own 400, so the app is told the client left instead, and whatever it answers
to that is dropped."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MEDIA_TYPE = "application/problem+json"


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
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    refused = True
                    if not started:
                        await _refuse(send, cap)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the app's answer to a body it never got whole: the 413 went instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, tracking_send)


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
