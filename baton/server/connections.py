"""Connections under hostile traffic: uvicorn's HTTP/1.1 protocol (h11) with a deadline for a
request's head, a cap on open connections, and a file limit raised to carry them.

uvicorn closes a connection that stays idle *between* requests (its keep-alive timeout), but
not one that never sends a request, nor one that sends its head a byte at a time: about a
thousand such connections, costing an attacker nothing, used to exhaust the process's file
limit, and every real client was then refused with nothing in the log.

- **Head deadline** (``header_timeout_s``): a new connection must send a whole request head
  within it, and so must a kept-alive connection once it starts its next request; otherwise it
  is closed. (The body has its own deadline, ``body_timeout_s``: :mod:`baton.server.bodies`.)
- **Connection cap** (``max_connections``): past it, the oldest connection that has not sent a
  whole request head yet is closed to make room (real clients speak at once; an idle flood is
  what waits), and when every connection is busy the new one is refused. Either is logged, at
  most once every :data:`LOG_EVERY_S`, with the counts.
- **File limit**: :func:`raise_file_limit` lifts the process's soft limit towards its hard limit
  at start, so the cap, not the limit, is what binds.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("baton.server")
LOG_EVERY_S = 10.0
SPARE_FILES = 256  # kept beside the connections: the database, logs, tasks' pipes


class Guarded(H11Protocol):
    """uvicorn's h11 protocol with a head deadline and a connection cap (the module's docstring).
    ``header_timeout_s`` and ``max_connections`` are set on the class by :func:`guarded`."""

    header_timeout_s = 10.0
    max_connections = 4096
    counts: dict[str, int] = {}  # "evicted", "refused", "timed_out": shared by one server's connections
    _last_logged: list[float] = [-LOG_EVERY_S]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened_at = time.monotonic()
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._make_room():
            self._tell("refused", f"refused a connection from {_peer(self.client)}: all {self.max_connections:,} "
                                  "connections are busy with requests")  # fmt: skip
            self.transport.abort()
            return
        self._arm()

    def _make_room(self) -> bool:
        """Close the oldest connection still waiting for its first request head, if any."""
        waiting = [c for c in self.connections if isinstance(c, Guarded) and c is not self and c.cycle is None]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.opened_at)
        oldest.transport.abort()
        self._tell("evicted", f"the cap of {self.max_connections:,} open connections was reached: closed the "
                              f"oldest one that had sent no request ({_peer(oldest.client)}, idle "
                              f"{time.monotonic() - oldest.opened_at:.1f} s)")  # fmt: skip
        return True

    def _tell(self, what: str, message: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        now = time.monotonic()
        if now - self._last_logged[0] >= LOG_EVERY_S:
            self._last_logged[0] = now
            totals = ", ".join(f"{k} {v:,}" for k, v in sorted(self.counts.items()))
            log.warning("%s (so far: %s; raise max_connections or put a proxy in front)", message, totals)

    def _arm(self) -> None:
        if self.head_timer is None and not self.transport.is_closing():
            self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_late)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_late(self) -> None:
        self.head_timer = None
        self.counts["timed_out"] = self.counts.get("timed_out", 0) + 1
        if not self.transport.is_closing():
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        between = self.cycle is not None and self.cycle.response_complete
        if between:  # a kept-alive connection starts its next request: its head has a deadline too
            self._arm()
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a whole head arrived: the request is the app's now
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded(header_timeout_s: float, max_connections: int) -> type[Guarded]:
    """The protocol class for one server, with its settings and its own counts."""
    return type("GuardedH11", (Guarded,), {"header_timeout_s": header_timeout_s, "max_connections": max_connections,
                                           "counts": {}, "_last_logged": [-LOG_EVERY_S]})  # fmt: skip


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def raise_file_limit(connections: int) -> int:
    """Lift the soft file limit to what ``connections`` need (within the hard limit); the
    connections the limit leaves room for, which is what to cap them at."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the file limit from %s to %s: %s", soft, target, exc)
    room = connections if soft == resource.RLIM_INFINITY else max(16, min(connections, soft - SPARE_FILES))
    if room < connections:
        log.warning("the file limit (%s, hard %s) leaves room for %s connections, not max_connections=%s: "
                    "raise it (ulimit -n, LimitNOFILE=) to serve more", soft, hard, room, connections)  # fmt: skip
    return room
