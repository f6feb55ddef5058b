"""An HTTP/1.1 relay for fault tests: it sits between remote workers and a ``baton server``,
forwards every request and answer, counts requests by route, and can drop answers.

It understands just enough HTTP to cut a connection into exchanges (heads, ``Content-Length``
and chunked bodies): httpx sends one request at a time on a connection and waits for its answer,
so each request is read, sent upstream, and its answer read back before the next. A dropped
answer is one the server produced (and committed) but the worker never sees: the relay closes
the worker's connection instead of passing it on.

It runs on an asyncio loop in a thread of the test process, on a loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    at: float  # time.monotonic() when the request arrived
    request: bytes
    answer: bytes
    dropped: bool


# Decides, for one finished exchange, whether its answer is dropped.
DropRule = Callable[[Exchange], bool]


@dataclass
class Tally:
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def since(self, start: float, path: str | None = None) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if e.at >= start and (path is None or e.path == path)]


class Relay:
    """``Relay(upstream_port).start()``; point workers at ``relay.url``."""

    def __init__(self, upstream_port: int, drop: DropRule | None = None) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.tally = Tally()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Relay:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream_r: asyncio.StreamReader | None = None
        upstream_w: asyncio.StreamWriter | None = None
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            while True:
                request = await _message(client_r)
                if request is None:
                    return
                at = time.monotonic()
                upstream_w.write(request)
                await upstream_w.drain()
                answer = await _message(upstream_r)
                if answer is None:
                    return
                exchange = _exchange(request, answer, at, dropped=False)
                if self.drop is not None and self.drop(exchange):
                    self.tally.add(_exchange(request, answer, at, dropped=True))
                    return  # the worker's connection closes without the answer
                self.tally.add(exchange)
                client_w.write(answer)
                await client_w.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            for writer in (client_w, upstream_w):
                if writer is not None:
                    writer.close()


def _exchange(request: bytes, answer: bytes, at: float, dropped: bool) -> Exchange:
    method, path = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
    status = int(answer.split(b"\r\n", 1)[0].split(b" ")[1])
    return Exchange(method, path.split("?", 1)[0], status, at, request, answer, dropped)


async def _message(reader: asyncio.StreamReader) -> bytes | None:
    """One whole HTTP/1.1 message (head and body) as raw bytes; None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    if len(head) > HEAD_LIMIT:
        raise ConnectionError("head too long")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        return head + await _chunks(reader)
    length = int(fields.get(b"content-length", b"0"))
    return head + (await reader.readexactly(length) if length else b"")


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    out = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        out += size_line + await reader.readexactly(size + 2)
        if size == 0:
            return out


def body_of(message: bytes) -> bytes:
    """The body of a message with a ``Content-Length`` (what the server's JSON answers carry)."""
    return message.split(b"\r\n\r\n", 1)[1]


def claims_in(exchange: Exchange) -> list[tuple[int, int]]:
    """The (task, attempt) pairs a claim's answer handed out, to run or to hold."""
    if exchange.path != "/worker/v1/claim" or exchange.status != 200:
        return []
    answer = json.loads(body_of(exchange.answer))
    return [(c["task_id"], c["attempt"]) for c in [*answer["claims"], *answer.get("holds", [])]]


def claim_id_of(exchange: Exchange) -> str:
    claim_id: str = json.loads(body_of(exchange.request))["claim_id"]
    return claim_id
