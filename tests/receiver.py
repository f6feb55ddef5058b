"""A webhook receiver for tests: a real HTTP server on a loopback port of this test process's
own (:mod:`ports`), in a thread, that keeps every request it gets and answers as told.

``refuse`` answers the next so many requests with that status; ``stop`` closes the listening
socket (a post then finds the connection refused) and ``start`` opens it again on the same
port. Each request kept says whether its signature verified under the receiver's secret, as a
real receiver would check it (:func:`baton.engine.webhooks.verify`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ports import free_port

from baton.engine.webhooks import verify


@dataclass(frozen=True)
class Received:
    delivery: str
    kind: str
    timestamp: str
    signature: str
    body: bytes
    verified: bool
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, secret: str, path: str = "/hook") -> None:
        self.secret, self.path = secret, path
        self.port = free_port()
        self.got: list[Received] = []
        self.answers: deque[int] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def refuse(self, times: int, status: int = 500) -> None:
        with self._lock:
            self.answers.extend([status] * times)

    def start(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="receiver").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> list[Received]:
        """The requests answered 2xx."""
        with self._lock:
            return [r for r in self.got if 200 <= r.status < 300]

    def _answer(self) -> int:
        with self._lock:
            return self.answers.popleft() if self.answers else 204

    def _keep(self, received: Received) -> None:
        with self._lock:
            self.got.append(received)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                stamp, signature = self.headers.get("Baton-Timestamp", ""), self.headers.get("Baton-Signature", "")
                status = receiver._answer()
                receiver._keep(Received(
                    self.headers.get("Baton-Delivery", ""), self.headers.get("Baton-Kind", ""), stamp, signature,
                    body, verify(receiver.secret, stamp, signature, body, time.time(), tolerance_s=10**10), status,
                ))  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
