"""The worker's link over HTTP: :class:`~baton.backends.protocol.WorkerLink` spoken to
``/worker/v1`` of a Baton server, so the same worker code runs against a database or a server.

What the network adds, and how it is handled:

- **a lost answer**: a claim carries a ``claim_id`` made here; it is retried with the same id
  (for ``retry_s``, then again on the worker's next round) until an answer arrives, and the
  server answers a repeated id with the attempts it already took, so none waits out a lease;
- **reports sent twice** are answered ``duplicate`` and change nothing; ``stale`` ones are
  passed to the worker as rejected;
- **idleness**: after a claim that found nothing, a thread long-polls ``/wait`` (about 20 s)
  with the change count that claim saw, and makes :meth:`change_fd` readable when the server
  says something changed: an idle worker costs one request per long poll, plus heartbeats;
- **big batches**: reports are split so no request passes the server's cap.

The server's settings (lease, heartbeat, caps) are the ones that count: :meth:`terms` reads them
before the worker is configured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from baton.api.worker_wire import ClaimOut, HeartbeatOut, ReportIn, ReportsOut, Terms, WaitOut
from baton.errors import TransientError
from baton.records import (
    ClaimResult,
    GraphRecord,
    Report,
    ReportAnswers,
    StopOrder,
    WorkerInfo,
)
from baton.remote.http import Session

log = logging.getLogger("baton.remote")
ROUND_TRIP_SLACK_S = 10.0  # a long poll's read timeout beyond the wait the server holds it
REPORT_OVERHEAD_BYTES = 400  # a report's JSON beyond its texts


class HttpLink:
    def __init__(self, session: Session, retry_s: float = 10.0) -> None:
        self.session = session
        self.retry_s = retry_s
        self._terms: Terms | None = None
        self._unanswered: str | None = None  # a claim id sent without an answer: the next claim reuses it
        self._worker_id: str | None = None
        self._since = 0
        self._armed = threading.Event()
        self._closed = threading.Event()
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        os.set_blocking(self._pipe_w, False)
        self._waiter: threading.Thread | None = None

    # --- terms and lifecycle ---------------------------------------------------------------

    def terms(self) -> Terms:
        """The server's timings and caps for its workers (read once)."""
        if self._terms is None:
            self._terms = Terms.model_validate(self._retrying("GET", "/worker/v1/terms", None))
        return self._terms

    def register_worker(self, info: WorkerInfo) -> None:
        body = {"id": info.id, "name": info.name, "host": info.host, "pid": info.pid,
                "capacity": dict(info.capacity), "labels": sorted(info.labels)}  # fmt: skip
        self._retrying("POST", "/worker/v1/register", body)
        self._worker_id = info.id
        if self._waiter is None:
            self._waiter = threading.Thread(target=self._wait_loop, name="baton-long-poll", daemon=True)
            self._waiter.start()

    def deregister_worker(self, worker_id: str) -> None:
        try:
            self.session.call("POST", "/worker/v1/leave", {"worker_id": worker_id})
        finally:
            self.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._armed.set()  # let the waiting thread see it is closed
        if self._waiter is not None:
            self._waiter.join(timeout=1.0)
        self.session.close()
        for fd in (self._pipe_r, self._pipe_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def graph(self, graph_id: int) -> GraphRecord:
        g = self._retrying("GET", f"/worker/v1/graphs/{int(graph_id)}", None)
        return GraphRecord(g["id"], g["name"], g["version"], g["event_type"], g["digest"], g["spec"] or {},
                           g["registered_at"])  # fmt: skip

    # --- the verbs -------------------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        free: Mapping[str, int],
        labels: frozenset[str],
        limit: int,
        lease_s: float,
        reports: Sequence[Report] = (),
        event_id: int | None = None,
        claim_id: str | None = None,
    ) -> ClaimResult:
        """Reports ride on the claim up to the server's cap (the rest go first, on their own);
        ``lease_s`` is the server's to decide, so it is not sent."""
        self._armed.clear()
        batches = self._batches(reports)
        early: list[ReportAnswers] = [self.report(worker_id, batch) for batch in batches[:-1]]
        riding = batches[-1] if batches else []
        claim_id = claim_id or self._unanswered or uuid.uuid4().hex
        self._unanswered = claim_id
        body = {"worker_id": worker_id, "claim_id": claim_id, "free": dict(free), "labels": sorted(labels),
                "max_tasks": max(0, min(limit, 64)), "event_id": event_id,
                "reports": [ReportIn.of(r).model_dump(mode="json") for r in riding]}  # fmt: skip
        out = ClaimOut.model_validate(self._retrying("POST", "/worker/v1/claim", body))
        self._unanswered = None
        stale = [p for a in early for p in a.stale] + [
            (a.task_id, a.attempt) for a in out.answers if a.answer == "stale"
        ]
        duplicate = [p for a in early for p in a.duplicate]
        duplicate += [(a.task_id, a.attempt) for a in out.answers if a.answer == "duplicate"]
        if not out.claims and limit > 0:
            self._since = out.changes
            self._armed.set()  # nothing to take: long-poll until the server has news
        return ClaimResult([c.claim() for c in out.claims], stale, duplicate)

    def report(self, worker_id: str, reports: Sequence[Report]) -> ReportAnswers:
        stale: list[tuple[int, int]] = []
        duplicate: list[tuple[int, int]] = []
        for batch in self._batches(reports):
            body = {"worker_id": worker_id, "reports": [ReportIn.of(r).model_dump(mode="json") for r in batch]}
            out = ReportsOut.model_validate(self._retrying("POST", "/worker/v1/report", body))
            stale += [(a.task_id, a.attempt) for a in out.answers if a.answer == "stale"]
            duplicate += [(a.task_id, a.attempt) for a in out.answers if a.answer == "duplicate"]
        return ReportAnswers(stale, duplicate)

    def heartbeat(self, worker_id: str, running: Sequence[tuple[int, int]], lease_s: float) -> list[StopOrder]:
        body = {"worker_id": worker_id, "running": [list(pair) for pair in running]}
        out = HeartbeatOut.model_validate(self.session.json("POST", "/worker/v1/heartbeat", body))
        return [StopOrder(s.task_id, s.attempt, s.reason) for s in out.stop]

    # --- waiting for work ------------------------------------------------------------------

    @property
    def pushes_changes(self) -> bool:
        return True

    def change_fd(self) -> int | None:
        return self._pipe_r

    def wait_for_change(self, timeout_s: float) -> bool:
        if timeout_s > 0:
            with contextlib.suppress(OSError, ValueError):
                select.select([self._pipe_r], [], [], timeout_s)
        try:
            return bool(os.read(self._pipe_r, 4096))
        except (BlockingIOError, OSError):
            return False

    def _wait_loop(self) -> None:
        while not self._closed.is_set():
            self._armed.wait()
            if self._closed.is_set():
                return
            since, worker_id, wait_s = self._since, self._worker_id, self.terms().long_poll_s
            try:
                body = {"worker_id": worker_id, "since": since, "wait_s": wait_s}
                raw = self.session.json("POST", "/worker/v1/wait", body, timeout_s=wait_s + ROUND_TRIP_SLACK_S)
                changed = WaitOut.model_validate(raw).changed
            except Exception as exc:  # the server is away or refused: let the worker look (and see why)
                if self._closed.is_set():
                    return
                log.warning("long poll failed: %s", exc)
                self._closed.wait(1.0)
                changed = True
            if changed and self._armed.is_set():
                self._armed.clear()
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._pipe_w, b"!")

    # --- plumbing --------------------------------------------------------------------------

    def _batches(self, reports: Sequence[Report]) -> list[list[Report]]:
        """Reports in order, cut so each batch's JSON stays under half the server's cap."""
        cap = self.terms().max_request_bytes // 2
        batches: list[list[Report]] = []
        size = cap + 1
        for r in reports:
            weight = REPORT_OVERHEAD_BYTES + 2 * (len(r.stdout) + len(r.stderr) + len(r.result_json or "")
                                                  + len(r.error or ""))  # fmt: skip
            if size + weight > cap or len(batches[-1]) >= 512:
                batches.append([])
                size = 0
            batches[-1].append(r)
            size += weight
        return batches

    def _retrying(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        """Every worker call is safe to repeat (claims by their id, reports as duplicates):
        retry a lost one for ``retry_s``, then let the worker's own round retry it."""
        deadline = time.monotonic() + self.retry_s
        delay = 0.05
        while True:
            try:
                return self.session.json(method, path, body)
            except TransientError:
                if self._closed.is_set() or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
