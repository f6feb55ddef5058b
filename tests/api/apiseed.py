"""A store with something behind every route, for the auth matrix, the fuzz and the bad-input
tests: two event types (so a token limited to one has something it must not see), each with
an expanded event, a finished attempt with a log, and a registered worker.

Also :func:`raw`: one HTTP/1.1 request sent byte for byte over a socket, for what httpx would
tidy up or refuse first (dot segments in paths, bodies without a length, raw non-ASCII bytes).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report, WorkerInfo

DEMO, OTHER = "api_demo", "api_other"
PROBLEM = "application/problem+json"
REQUEST_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` stored, by type: ``events[DEMO]`` is an event of type ``api_demo``."""

    graphs: Mapping[str, int]
    events: Mapping[str, int]
    tasks: Mapping[str, int]  # a task of each type's event that has a finished attempt
    attempts: Mapping[str, str]  # that attempt's id, as the API names it (<task>-<attempt>)
    worker_id: str


def demo_graph(event_type: str) -> GraphBuilder:
    g = GraphBuilder(event_type).param("depts", "list", default=["a", "b"]).partitions(param="depts")
    g.param("note", "string", default="")
    g.param("extra", "object", default={})
    g.python("extract", "m:f", partitioned=True)
    g.python("summary", "m:f", after=["extract"])
    return g


def seed(store: Store) -> Seeded:
    graphs, events, tasks, attempts = {}, {}, {}, {}
    for event_type in (DEMO, OTHER):
        record = store.register_graph(demo_graph(event_type).build())
        graphs[event_type] = record.id
        events[event_type] = store.submit(record.id, {"depts": ["a", "b"]}, key=f"seed-{event_type}")[0].id
    Controller(store).expand()
    worker = WorkerInfo("seed-worker", "seed", "localhost", 1, {"slots": 8})
    store.register_worker(worker)
    for event_type, event_id in events.items():
        claim = store.claim(ClaimRequest(worker.id, {"slots": 1}, frozenset(), 1, 60.0, event_id=event_id)).claims[0]
        now = time.time()
        report = Report(claim.task_id, claim.attempt, Outcome.FAILED, now, now, error="boom",
                        exit_code=1, stdout=f"{event_type} says hello\n", stderr="and fails\n")  # fmt: skip
        store.report(worker.id, [report])
        tasks[event_type] = claim.task_id
        attempts[event_type] = f"{claim.task_id}-{claim.attempt}"
    return Seeded(graphs, events, tasks, attempts, worker.id)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw(
    base_url: str,
    method: str,
    path: str,
    body: bytes | Sequence[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    hold_body: bool = False,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> RawResponse:
    """Send one request byte for byte and read the answer.

    ``path`` and header values go out as given (a lone surrogate from ``surrogateescape``
    becomes its raw byte). A bytes body is sent with its Content-Length, or, with ``hold_body``,
    only announced: the answer is read before any of it is sent (a server that refuses by the
    length must not wait for the body). A sequence of chunks goes chunked, without a length;
    an empty last chunk ends the body, and without one the answer is read right after the last
    chunk (a server that refuses by the bytes seen must not wait for the rest)."""
    url = urlsplit(base_url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}")
    elif body is not None:
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=timeout_s) as sock:
        sock.sendall(head)
        if isinstance(body, bytes) and not hold_body:
            sock.sendall(body)
        elif body is not None and not isinstance(body, bytes):
            for chunk in body:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
