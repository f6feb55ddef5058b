"""Group commit for the workers' claims and reports: those that arrive while one transaction
runs share the next one.

The first request to arrive when nothing runs leads: it takes every request queued so far (up
to ``max_batch``) and runs them as one :meth:`~baton.store.protocol.GatheringLink.claim_many`
transaction; requests arriving meanwhile queue. When it is done it hands the lead to the oldest
queued request, whose thread then runs the next batch, and returns. Nothing waits for a batch
to fill: an idle server runs each claim at once, alone, and a busy one commits once for many
workers, which is what lets a PostgreSQL deployment get faster through the server.

A batch the store refuses for a reason other than an outage is run again one request at a
time, so one worker's bad report cannot fail the others' claims.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from baton.errors import TransientError
from baton.store.protocol import GatheringLink
from baton.store.records import ClaimRequest, ClaimResult

MAX_BATCH = 32


@dataclass
class _Pending:
    request: ClaimRequest
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to run the next batch, not with an answer
    result: ClaimResult | None = None
    error: BaseException | None = None


class Gatherer:
    def __init__(self, link: GatheringLink, max_batch: int = MAX_BATCH) -> None:
        self.link = link
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._running = False
        self.batches = 0  # transactions run, and requests they carried (for metrics and tests)
        self.requests = 0

    def claim(self, request: ClaimRequest) -> ClaimResult:
        pending = _Pending(request)
        with self._lock:
            self._queue.append(pending)
            leads = not self._running
            self._running = True
        while not leads:
            pending.done.wait()
            if pending.result is not None or pending.error is not None:
                return _outcome(pending)
            pending.done.clear()
            leads = pending.lead
        self._lead()
        if pending.result is None and pending.error is None:  # a later batch took it (it was not first)
            pending.done.wait()
        return _outcome(pending)

    def _lead(self) -> None:
        """Run one batch, then pass the lead to the oldest request still queued (or stop)."""
        with self._lock:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
        try:
            self._run(batch)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._running = False

    def _run(self, batch: Sequence[_Pending]) -> None:
        self.batches += 1
        self.requests += len(batch)
        try:
            if len(batch) == 1:
                results = [self._one(batch[0].request)]
            else:
                results = self.link.claim_many([p.request for p in batch])
        except TransientError as exc:
            for p in batch:
                p.error = exc
        except Exception:
            for p in batch:  # one request may be what the store cannot take: each on its own
                try:
                    p.result = self._one(p.request)
                except Exception as exc:
                    p.error = exc
        else:
            for p, result in zip(batch, results, strict=True):
                p.result = result
        for p in batch:
            p.done.set()

    def _one(self, r: ClaimRequest) -> ClaimResult:
        return self.link.claim(r)


def _outcome(pending: _Pending) -> ClaimResult:
    if pending.error is not None:
        raise pending.error
    assert pending.result is not None
    return pending.result
