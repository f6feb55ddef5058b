"""``/worker/v1`` against a real server on loopback, on both backends: the protocol details a
remote task server relies on when the network loses answers, repeats requests or the server
restarts; and the HTTP link's batching under the server's body cap.

The tests play the worker themselves with plain HTTP (or :class:`~baton.client.worker_link.HttpLink`)
and drive the store's expansion in-process, so each answer can be checked exactly.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from relay import Relay, body_of
from serving import Served, mint

from baton.access import Role
from baton.client.session import Session
from baton.client.worker_link import HttpLink
from baton.controller.loop import Controller
from baton.engine.states import EventState, Outcome, TaskState
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report, WorkerInfo

LONG_POLL_S = 3.0


def _event(backend: Store, parts: list[str], name: str = "wire") -> int:
    """An expanded event of one task per partition (their bodies never run here)."""
    g = GraphBuilder(name).param("parts", "list", default=parts).partitions(param="parts")
    g.python("x", "m:f", partitioned=True)
    graph = g.build()
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, {}))
    Controller(backend).expand()
    return event.id


def _done(task_id: int, attempt: int, stdout: str = "") -> dict[str, Any]:
    now = time.time()
    return {"task_id": task_id, "attempt": attempt, "outcome": "succeeded", "started_at": now, "finished_at": now,
            "result": "{}", "stdout": stdout}  # fmt: skip


def _worker(http: httpx.Client, worker_id: str = "w1") -> None:
    body = {"id": worker_id, "name": "w", "host": "h", "pid": 1, "capacity": {"slots": 8}}
    assert http.post("/worker/v1/register", json=body).status_code == 200


def _claim(http: httpx.Client, claim_id: str, max_tasks: int = 8, **extra: Any) -> dict[str, Any]:
    body = {"worker_id": "w1", "claim_id": claim_id, "free": {"slots": 8}, "max_tasks": max_tasks, **extra}
    answer = http.post("/worker/v1/claim", json=body)
    assert answer.status_code == 200, answer.text
    out: dict[str, Any] = answer.json()
    return out


def _pairs(claim: dict[str, Any]) -> list[tuple[int, int]]:
    return sorted((c["task_id"], c["attempt"]) for c in claim["claims"])


@pytest.fixture
def quick(backend: Store, tmp_path: Path) -> Iterator[Served]:
    """A server with a short long poll and lease (which its workers must take from /terms)."""
    server = Served(backend.url, tmp_path, env={"BATON_LONG_POLL_S": str(LONG_POLL_S), "BATON_LEASE_S": "6"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_terms_are_the_servers_settings(backend: Store, quick: Served) -> None:
    with quick.client(mint(backend, Role.WORKER)) as http:
        terms = http.get("/worker/v1/terms").json()
    assert terms["lease_s"] == 6 and terms["heartbeat_s"] == 1 and terms["long_poll_s"] == LONG_POLL_S
    assert terms["max_request_bytes"] == 16 * 1024 * 1024


def test_each_report_is_answered_and_a_replayed_batch_is_duplicate_not_an_error(backend: Store, served: Served) -> None:
    event_id = _event(backend, ["a", "b", "c"])
    with served.client(mint(backend, Role.WORKER)) as http:
        _worker(http)
        (a, b, c) = _pairs(_claim(http, "c1"))
        batch = {"worker_id": "w1", "reports": [_done(*a), _done(*b), _done(c[0], 7)]}
        first = http.post("/worker/v1/report", json=batch)
        assert first.status_code == 200
        assert [x["answer"] for x in first.json()["answers"]] == ["recorded", "recorded", "stale"]
        again = http.post("/worker/v1/report", json=batch)
        assert again.status_code == 200
        assert [x["answer"] for x in again.json()["answers"]] == ["duplicate", "duplicate", "stale"]
        # a heartbeat answers which of the attempts it lists to stop: the finished ones
        beat = http.post("/worker/v1/heartbeat", json={"worker_id": "w1", "running": [list(a), list(c)]}).json()
        assert beat["stop"] == [{"task_id": a[0], "attempt": a[1], "reason": "lease lost"}]
        riding = _claim(http, "c2", reports=[_done(*c), _done(*a)])
        assert [x["answer"] for x in riding["answers"]] == ["recorded", "duplicate"]
    assert backend.event(event_id).state is EventState.SUCCEEDED
    for task in backend.tasks(event_id):
        assert [x.outcome for x in backend.attempts([task.id])] == [Outcome.SUCCEEDED]


def test_a_retried_claim_id_gets_the_same_attempts_even_from_a_restarted_server(backend: Store, served: Served) -> None:
    event_id = _event(backend, ["a", "b", "c", "d"])
    token = mint(backend, Role.WORKER)
    with served.client(token) as http:
        _worker(http)
        taken = _pairs(_claim(http, "c1", max_tasks=2))
        assert len(taken) == 2 and _pairs(_claim(http, "c1", max_tasks=2)) == taken
    served.restart()  # the claim id is kept with the tasks, not in the server
    with served.client(token) as http:
        assert _pairs(_claim(http, "c1", max_tasks=2)) == taken
        rest = _pairs(_claim(http, "c2", max_tasks=8))
        assert len(rest) == 2 and not set(rest) & set(taken)
    tasks = backend.tasks(event_id)
    assert all(t.state is TaskState.RUNNING and t.attempt == 1 for t in tasks)
    backend.report(f"w1@t{backend.tokens()[0].id}", [_report(p) for p in taken + rest])


def _report(pair: tuple[int, int]) -> Report:
    return Report(pair[0], pair[1], Outcome.SUCCEEDED, time.time(), time.time(), "{}")


def _wait(http: httpx.Client, since: int, epoch: str | None) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    answer = http.post("/worker/v1/wait", json={"worker_id": "w1", "since": since, "epoch": epoch, "wait_s": 20})
    assert answer.status_code == 200, answer.text
    return answer.json(), time.monotonic() - started


def _take(http: httpx.Client, idle: dict[str, Any], claim_id: str) -> tuple[int, float]:
    """Play an idle worker from an empty claim: wait, claim, and again until a task comes (a
    wake-up may come early, for the event's submission before its expansion). Returns how
    many long polls it took and how long."""
    started = time.monotonic()
    for polls in range(1, 4):
        answer, _ = _wait(http, idle["changes"], idle["epoch"])
        assert answer["changed"], "a long poll timed out with work waiting"
        idle = _claim(http, f"{claim_id}-{polls}")
        if idle["claims"]:
            return polls, time.monotonic() - started
    raise AssertionError("no task after three wake-ups")


def test_a_long_poll_wakes_for_new_work_however_it_falls_against_the_empty_claim(backend: Store, quick: Served) -> None:
    token = mint(backend, Role.WORKER)
    with quick.client(token) as http:
        _worker(http)
        idle = _claim(http, "empty-1")
        assert idle["claims"] == [] and idle["epoch"]
        # nothing changes: held for the whole long poll (the server's, not the 20 s asked for)
        answer, took = _wait(http, idle["changes"], idle["epoch"])
        assert not answer["changed"] and LONG_POLL_S - 0.5 <= took <= LONG_POLL_S + 2
        # work appears between the empty claim and the wait: answered at once
        idle = _claim(http, "empty-2")
        _event(backend, ["a"], "between")
        polls, took = _take(http, idle, "take-1")
        assert polls == 1 and took < 1.0
        # work appears while the wait is held: answered as soon as it is there
        idle = _claim(http, "empty-3")
        threading.Timer(0.5, _event, (backend, ["b"], "during")).start()
        polls, took = _take(http, idle, "take-2")
        assert 0.4 < took < 1.5


def test_a_long_poll_holding_a_count_of_another_run_of_the_server_is_answered_at_once(
    backend: Store, quick: Served
) -> None:
    token = mint(backend, Role.WORKER)
    with quick.client(token) as http:
        _worker(http)
        before = _claim(http, "before")
    quick.restart()
    with quick.client(token) as http:
        answer, took = _wait(http, before["changes"], before["epoch"])
        assert answer["changed"] and answer["epoch"] != before["epoch"] and took < 1.0
        answer, took = _wait(http, 10**6, None)  # a count above the server's: another run's too
        assert answer["changed"] and took < 1.0


def test_reports_over_the_servers_body_cap_are_split_into_requests_under_it(backend: Store, tmp_path: Path) -> None:
    """Twelve reports of 240 kB of JSON each (40,000 'é', escaped to six bytes apiece) against a
    1 MiB cap: they must go in several requests, each under the cap, and all be recorded."""
    cap = 1024 * 1024
    event_id = _event(backend, [f"p{i}" for i in range(12)])
    server = Served(backend.url, tmp_path, env={"BATON_MAX_WORKER_REQUEST_BYTES": str(cap)}).start()
    relay = Relay(server.port).start()
    link = HttpLink(Session(relay.url, mint(backend, Role.WORKER)))
    try:
        worker_id = f"w-{uuid.uuid4().hex[:6]}"
        link.register_worker(WorkerInfo(worker_id, "w", "h", 1, {"slots": 12}, frozenset()))
        claims = link.claim(ClaimRequest(worker_id, {"slots": 12}, frozenset(), 12, 30.0)).claims
        assert len(claims) == 12
        text = "é" * 40_000
        reports = [Report(c.task_id, c.attempt, Outcome.SUCCEEDED, time.time(), time.time(), "{}", stdout=text)
                   for c in claims]  # fmt: skip
        answered = link.claim(ClaimRequest(worker_id, {"slots": 12}, frozenset(), 0, 30.0, reports))
        assert answered.rejected == [] and answered.duplicate == []
    finally:
        link.deregister_worker(worker_id)
        relay.stop()
        server.stop()
    carrying = [e for e in relay.tally.exchanges if e.path in ("/worker/v1/report", "/worker/v1/claim")]
    sizes = [len(body_of(e.request)) for e in carrying if b'"stdout":"\\u00e9' in e.request]
    assert len(sizes) >= 3 and max(sizes) <= cap, sizes
    assert all(e.status == 200 for e in carrying)
    assert backend.event(event_id).state is EventState.SUCCEEDED
    attempts = backend.attempts([t.id for t in backend.tasks(event_id)])
    assert len(attempts) == 12 and all(a.outcome is Outcome.SUCCEEDED and a.stdout == text for a in attempts)


def test_an_events_parameters_travel_once_per_answer_and_never_to_a_worker_that_holds_them(
    backend: Store, served: Served
) -> None:
    """A claim's answer names each event's parameters once, whatever the number of its tasks,
    and leaves out the events the worker says it knows; the HTTP link rebuilds each claim whole."""
    first_event = _event(backend, ["a", "b", "c"], name="params_once")
    with served.client(mint(backend, Role.WORKER)) as http:
        _worker(http)
        both = _claim(http, "p1", max_tasks=2)
        assert len(both["claims"]) == 2
        assert [e["id"] for e in both["events"]] == [first_event]
        assert "parts" in both["events"][0]["params"] and all("params" not in c for c in both["claims"])
        known = _claim(http, "p2", max_tasks=1, known_events=[first_event])
        assert len(known["claims"]) == 1 and known["events"] == []
    link = HttpLink(Session(served.url, mint(backend, Role.WORKER)))
    try:
        link.register_worker(WorkerInfo("w2", "w2", "h", 1, {"slots": 4}, frozenset()))
        second_event = _event(backend, ["x", "y"], name="params_link")
        claims = link.claim(ClaimRequest("w2", {"slots": 1}, frozenset(), 1, 30.0)).claims
        again = link.claim(ClaimRequest("w2", {"slots": 1}, frozenset(), 1, 30.0)).claims  # its event is known now
        for c in [*claims, again[0]]:
            assert c.event_id == second_event and c.event_type == "params_link"
            assert '"x"' in c.params_json and '"y"' in c.params_json
    finally:
        link.close()
