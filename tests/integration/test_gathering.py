"""The server's group commit: claims arriving together share a transaction, each gets what a
claim of its own would have, and one bad request does not fail the others."""

from __future__ import annotations

import threading
import time

import pytest

from baton.controller.loop import Controller
from baton.engine.states import Outcome, TaskState
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.server.gathering import Gatherer
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, ClaimResult, Report


def _event(backend: Store, partitions: int) -> int:
    g = GraphBuilder("gather").param("p", "list", default=[str(i) for i in range(partitions)]).partitions(param="p")
    g.python("only", "m:f", partitioned=True)
    graph = g.build()
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, {}))
    Controller(backend).expand()
    return event.id


def _request(
    worker: str, limit: int = 2, reports: tuple[Report, ...] = (), claim_id: str | None = None
) -> ClaimRequest:
    return ClaimRequest(worker, {"slots": limit}, frozenset(), limit, 30.0, reports, claim_id=claim_id)


def test_claims_in_one_batch_each_get_their_own_tasks_and_reports_are_answered_per_worker(backend: Store) -> None:
    _event(backend, 6)
    first = backend.claim_many([_request("a"), _request("b"), _request("c")])
    taken = [[c.task_id for c in r.claims] for r in first]
    assert [len(t) for t in taken] == [2, 2, 2] and len({i for t in taken for i in t}) == 6
    now = time.time()
    done = tuple(Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now, now, "1") for c in first[0].claims)
    second = backend.claim_many([_request("b", reports=done), _request("a", reports=done)])
    assert second[0].rejected == [(c.task_id, c.attempt) for c in first[0].claims]  # b does not hold them
    assert second[1].rejected == [] and second[1].duplicate == []  # a's own: recorded
    assert [a.outcome for a in backend.attempts([c.task_id for c in first[0].claims])] == [Outcome.SUCCEEDED] * 2


class Held:
    """A link whose first transaction waits until the test lets it go, so that the other
    requests queue behind it deterministically."""

    def __init__(self, backend: Store) -> None:
        self.backend = backend
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def _hold(self, size: int) -> None:
        self.sizes.append(size)
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(30)

    def claim(self, request: ClaimRequest) -> ClaimResult:
        self._hold(1)
        return self.backend.claim(request)

    def claim_many(self, requests: list[ClaimRequest]) -> list[ClaimResult]:
        self._hold(len(requests))
        if any(r.worker_id == "bad" for r in requests):
            raise ValueError("a request the store refuses")
        return self.backend.claim_many(requests)


def _until(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@pytest.mark.parametrize("bad", [False, True])
def test_requests_that_arrive_during_a_transaction_share_the_next_one(backend: Store, bad: bool) -> None:
    _event(backend, 20)
    link = Held(backend)
    gatherer = Gatherer(link)  # type: ignore[arg-type]
    workers = [f"w{i}" for i in range(8)] + (["bad"] if bad else [])
    out: dict[str, ClaimResult | BaseException] = {}

    def one(r: ClaimRequest) -> None:
        try:
            out[r.worker_id] = gatherer.claim(r)
        except BaseException as exc:
            out[r.worker_id] = exc

    threads = [threading.Thread(target=one, args=(_request(w),)) for w in workers]
    threads[0].start()
    assert link.entered.wait(30)  # the first runs alone; the others arrive while it does
    for t in threads[1:]:
        t.start()
    _until(lambda: len(gatherer._queue) == len(workers) - 1)
    link.release.set()
    for t in threads:
        t.join(timeout=30)
    assert link.sizes[:2] == [1, len(workers) - 1]  # then one transaction for all who waited
    assert gatherer.requests == len(workers) and gatherer.batches == 2
    good = [out[w] for w in workers if w != "bad"]
    assert all(isinstance(r, ClaimResult) and len(r.claims) == 2 for r in good), out
    ids = [c.task_id for r in good if isinstance(r, ClaimResult) for c in r.claims]
    assert len(ids) == len(set(ids)) == 16
    if bad:  # its batch was refused: each request again on its own, and the store took them all
        assert link.sizes[2:] == [1] * (len(workers) - 1)


def test_reports_alone_ride_the_gatherer_as_a_claim_of_nothing(backend: Store) -> None:
    """What ``POST /worker/v1/report`` does: a request with reports and no capacity records them,
    takes nothing, and answers a replay ``duplicate`` and another worker's report stale."""
    _event(backend, 3)
    gatherer = Gatherer(backend)
    (taken,) = backend.claim_many([_request("a", limit=2)])
    now = time.time()
    done = tuple(Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now, now, "1") for c in taken.claims)
    alone = ClaimRequest("a", {}, frozenset(), 0, 30.0, done)
    first = gatherer.claim(alone)
    assert first.claims == [] and first.rejected == [] and first.duplicate == []
    assert [a.outcome for a in backend.attempts([c.task_id for c in taken.claims])] == [Outcome.SUCCEEDED] * 2
    again = gatherer.claim(alone)
    assert again.claims == [] and again.rejected == [] and sorted(again.duplicate) == sorted(_pairs(done))
    other = gatherer.claim(ClaimRequest("b", {}, frozenset(), 0, 30.0, done))
    assert sorted(other.rejected) == sorted(_pairs(done)) and other.duplicate == []
    assert sum(t.state is TaskState.READY for t in backend.tasks(taken.claims[0].event_id)) == 1  # none taken


def _pairs(reports: tuple[Report, ...]) -> list[tuple[int, int]]:
    return [(r.task_id, r.attempt) for r in reports]
