"""The worker's link over HTTP: :class:`~baton.store.protocol.WorkerLink` spoken to
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
- **big batches**: reports (and live log chunks) are encoded once and split by their encoded
  size, so no request passes the server's cap;
- **a restarted server** counts changes from zero again: each answer names the server's run
  (``epoch``), and a long poll from another run is answered at once.

The server's settings (lease, heartbeat, caps) are the ones that count: :meth:`terms` reads them
before the worker is configured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from baton.client.session import Session
from baton.clock import Backoff
from baton.errors import BackendError, TransientError
from baton.store.records import (
    Claim,
    ClaimRequest,
    ClaimResult,
    GraphRecord,
    LogTail,
    Report,
    ReportAnswers,
    StopOrder,
    WorkerInfo,
)
from baton.wire.workers import (
    MAX_CLAIM,
    MAX_HOLD,
    MAX_REPORTS,
    MAX_TAILS,
    AnswerOut,
    ClaimOut,
    ClaimWire,
    EventWire,
    HeartbeatOut,
    LogsOut,
    ReportIn,
    ReportsOut,
    Terms,
    WaitOut,
)

log = logging.getLogger("baton.remote")
ROUND_TRIP_SLACK_S = 10.0  # a long poll's read timeout beyond the wait the server holds it
KEPT_EVENTS = 32  # events whose parameters a worker keeps (at most the protocol's MAX_KNOWN_EVENTS)
HEAD_ROOM_BYTES = 64 * 1024  # a claim's fields beside its reports (labels, capacity), at most
# A lost call is sent again after these pauses for the link's retry_s; after that, the worker's
# next round sends it again.
BACKOFF = Backoff(first_s=0.05, max_s=1.0)


class HttpLink:
    def __init__(self, session: Session, retry_s: float = 10.0) -> None:
        self.session = session
        self.retry_s = retry_s
        self._terms: Terms | None = None
        self._unanswered: str | None = None  # a claim id sent without an answer: the next claim reuses it
        self._worker_id: str | None = None
        self._since = 0
        self._epoch: str | None = None
        self._events: OrderedDict[int, EventWire] = OrderedDict()  # the events of recent claims, newest last
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

    def claim(self, request: ClaimRequest) -> ClaimResult:
        """Reports ride on the claim up to the server's cap (the rest go first, on their own);
        ``lease_s`` is the server's to decide, so it is not sent."""
        self._armed.clear()
        batches = self._batches(request.reports)
        early = ReportAnswers([], [])
        for batch in batches[:-1]:
            early = _merged(early, self._report_batch(request.worker_id, batch))
        riding = batches[-1] if batches else []
        claim_id = request.claim_id or self._unanswered or uuid.uuid4().hex
        self._unanswered = claim_id
        fields: dict[str, Any] = {
            "worker_id": request.worker_id, "claim_id": claim_id, "free": dict(request.free),
            "labels": sorted(request.labels), "max_tasks": max(0, min(request.limit, MAX_CLAIM)),
            "event_id": request.event_id, "known_events": list(self._events),
        }  # fmt: skip
        if request.hold_s > 0:  # only a holding worker sends these
            fields.update(holding=True, hold=max(0, min(request.hold, MAX_HOLD)),
                          starts=[list(p) for p in request.starts], releases=list(request.releases), idle=request.idle,
                          capacity=None if request.capacity is None else dict(request.capacity))  # fmt: skip
        out = ClaimOut.model_validate(self._retrying("POST", "/worker/v1/claim", _with_reports(fields, riding)))
        self._unanswered = None
        answered = _merged(early, _answers(out.answers))
        if request.hold_s > 0:
            short = len(out.claims) + len(out.holds) < request.limit + request.hold
        else:
            short = not out.claims and request.limit > 0
        if short:
            self._since, self._epoch = out.changes, out.epoch or None
            self._armed.set()  # nothing to take: long-poll until the server has news
        return ClaimResult(self._claims(out, out.claims), answered.stale, answered.duplicate,
                           holds=self._claims(out, out.holds),
                           refused_starts=[(int(t), int(a)) for t, a in out.refused_starts],
                           recalled=list(out.recalled), yield_holds=out.yield_holds)  # fmt: skip

    def _claims(self, out: ClaimOut, wires: Sequence[ClaimWire]) -> list[Claim]:
        """The answer's claims, each with its event's parameters: sent in this answer, or kept
        from an earlier one (the last :data:`KEPT_EVENTS` events are kept, and named in each claim)."""
        for event in out.events:
            self._events[event.id] = event
        claims = []
        for c in wires:
            kept = self._events.get(c.event_id)
            if kept is None:  # the server left out an event we did not name: it is not keeping the protocol
                raise BackendError(f"the server's claim answer lacks event {c.event_id}")
            self._events.move_to_end(c.event_id)
            claims.append(c.claim(kept))
        while len(self._events) > KEPT_EVENTS:
            self._events.popitem(last=False)
        return claims

    def report(self, worker_id: str, reports: Sequence[Report]) -> ReportAnswers:
        answered = ReportAnswers([], [])
        for batch in self._batches(reports):
            answered = _merged(answered, self._report_batch(worker_id, batch))
        return answered

    def _report_batch(self, worker_id: str, batch: Sequence[str]) -> ReportAnswers:
        body = _with_reports({"worker_id": worker_id}, batch)
        return _answers(ReportsOut.model_validate(self._retrying("POST", "/worker/v1/report", body)).answers)

    def heartbeat(
        self,
        worker_id: str,
        running: Sequence[tuple[int, int]],
        lease_s: float,
        held: Sequence[tuple[int, int]] = (),
        hold_s: float = 0.0,
    ) -> list[StopOrder]:
        """``lease_s`` and ``hold_s`` are the server's; ``hold_s`` > 0 says this worker holds tasks."""
        body: dict[str, Any] = {"worker_id": worker_id, "running": [list(pair) for pair in running]}
        if hold_s > 0:
            body.update(held=[list(pair) for pair in held], holding=True)
        out = HeartbeatOut.model_validate(self.session.json("POST", "/worker/v1/heartbeat", body))
        return [StopOrder(s.task_id, s.attempt, s.reason) for s in out.stop]

    def append_logs(self, worker_id: str, tails: Sequence[LogTail]) -> list[int | None]:
        """Cut by encoded size like reports (escaping can make output several times longer);
        not retried here: the worker's next round sends the same output again."""
        texts = [json.dumps(_tail_fields(t), separators=(",", ":")) for t in tails]
        held: list[int | None] = []
        for batch in _cut(texts, self.terms().max_request_bytes - HEAD_ROOM_BYTES, MAX_TAILS):
            body = _with_list({"worker_id": worker_id}, "tails", batch)
            held += LogsOut.model_validate(self.session.call("POST", "/worker/v1/logs", content=body).json()).held
        return held

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
            since, epoch, worker_id, wait_s = self._since, self._epoch, self._worker_id, self.terms().long_poll_s
            try:
                body = {"worker_id": worker_id, "since": since, "epoch": epoch, "wait_s": wait_s}
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

    def _batches(self, reports: Sequence[Report]) -> list[list[str]]:
        """Reports in order as JSON text, cut so each request's body stays under the server's
        cap (by the size of the text itself: escaping can make it several times the report's).
        A report over the cap alone goes alone; the server refuses it, and the worker records
        that the task's report could not be recorded."""
        texts = [json.dumps(ReportIn.of(r).model_dump(mode="json"), separators=(",", ":")) for r in reports]
        return _cut(texts, self.terms().max_request_bytes - HEAD_ROOM_BYTES, MAX_REPORTS)

    def _retrying(self, method: str, path: str, body: Mapping[str, Any] | bytes | None) -> Any:
        """Every worker call is safe to repeat (claims by their id, reports as duplicates):
        retry a lost one for ``retry_s``, then let the worker's own round retry it."""
        content = _json(body) if isinstance(body, Mapping) else body
        pauses = dataclasses.replace(BACKOFF, within_s=self.retry_s).delays()
        while True:
            try:
                return self.session.call(method, path, content=content).json()
            except TransientError:
                pause = next(pauses, None)
                if self._closed.is_set() or pause is None:
                    raise
                time.sleep(pause)


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _cut(texts: Sequence[str], budget: int, most: int) -> list[list[str]]:
    """``texts`` in order, cut into batches of at most ``most`` whose sizes add up to at most
    ``budget`` (a text over it alone goes alone)."""
    batches: list[list[str]] = []
    size = 0
    for text in texts:
        if not batches or size + len(text) + 1 > budget or len(batches[-1]) >= most:
            batches.append([])
            size = 0
        batches[-1].append(text)
        size += len(text) + 1
    return batches


def _with_reports(fields: Mapping[str, Any], reports: Sequence[str]) -> bytes:
    """``fields`` as a JSON object with a ``reports`` list of reports encoded already."""
    return _with_list(fields, "reports", reports)


def _with_list(fields: Mapping[str, Any], name: str, items: Sequence[str]) -> bytes:
    """``fields`` as a JSON object with a list ``name`` of items encoded already."""
    head = _json(fields)[:-1]
    return head + f',"{name}":['.encode() + ",".join(items).encode() + b"]}"


def _tail_fields(t: LogTail) -> dict[str, Any]:
    return {"task_id": t.task_id, "attempt": t.attempt, "stream": t.stream, "offset": t.offset, "text": t.text}


def _answers(answers: Sequence[AnswerOut]) -> ReportAnswers:
    stale = [(a.task_id, a.attempt) for a in answers if a.answer == "stale"]
    return ReportAnswers(stale, [(a.task_id, a.attempt) for a in answers if a.answer == "duplicate"])


def _merged(a: ReportAnswers, b: ReportAnswers) -> ReportAnswers:
    return ReportAnswers([*a.stale, *b.stale], [*a.duplicate, *b.duplicate])
