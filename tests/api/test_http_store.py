"""``baton.client.store.HttpStore``, the store the event commands reach through ``--server``,
against a real ``baton server`` on both backends: each read answers what the same read of the
database answers (but for what the wire does not carry: a task's ``pending`` count and a
worker's process id, which read 0), its writes are the database's, a change is waited for with
bodiless 304s, and what the API does not serve is a UsageError."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from engine import Engine, graph
from serving import Served, mint

from baton.access import Role
from baton.client.api import Client
from baton.client.store import HttpStore
from baton.engine.states import EventState, TaskState
from baton.errors import UsageError
from baton.graphs.model import Graph
from baton.store.protocol import Store

DEPTS = ["d1", "d2", "d3", "d4"]


class Seen(httpx.HTTPTransport):
    """A real transport that notes each answer's path and status."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((request.url.path, response.status_code))
        return response


def _demo(tmp_path: Path) -> Graph:
    g = graph("store_demo").param("depts", "list", default=DEPTS).partitions(param="depts")
    g.param("bad", "string", default="").param("fixed", "string", default=str(tmp_path / "fixed"))
    g.python("extract", "fault_tasks:fail_partition", retries=0)
    return g.python("summary", "fault_tasks:ok", after=["extract"], partitioned=False).build()


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def http(backend: Store, served: Served, seen: Seen) -> Iterator[HttpStore]:
    with closing(HttpStore(Client(served.url, mint(backend, Role.ADMIN), transport=seen), poll_s=0.05)) as store:
        yield store


def _until_finished(store: HttpStore, event_id: int) -> EventState:
    while not store.event_state(event_id).terminal:
        store.wait_for_change(1.0)
    return store.event_state(event_id)


def test_each_read_answers_as_the_database_does(backend: Store, http: HttpStore, tmp_path: Path) -> None:
    demo = backend.register_graph(_demo(tmp_path))
    other = backend.register_graph(graph("store_other").python("only", "fault_tasks:ok").build())
    with Engine(backend):
        failed, _ = http.submit(demo.id, {"bad": "d2"})
        plain, _ = http.submit(other.id, {})
        done, _ = http.submit(demo.id, {})
        finished = [_until_finished(http, e.id) for e in (failed, plain, done)]
    ids = [t.id for t in backend.tasks(failed.id)]

    assert finished == [EventState.FAILED, EventState.SUCCEEDED, EventState.SUCCEEDED]
    for e in (failed.id, plain.id):
        assert http.event(e) == backend.event(e) and http.event_state(e) is backend.event_state(e)
        assert http.node_counts(e) == backend.node_counts(e) and http.node_progress(e) == backend.node_progress(e)
    for query in ({}, {"limit": 2}, {"before": done.id}, {"before": plain.id, "limit": 1}, {"event_type": "store_demo"},
                  {"event_types": ["store_other"]}, {"event_types": []}, {"state": EventState.FAILED}):  # fmt: skip
        assert http.events(**query) == backend.events(**query), query  # type: ignore[arg-type]
    no_pending = [dataclasses.replace(t, pending=0) for t in backend.tasks(failed.id)]
    assert http.tasks(failed.id) == no_pending and len(no_pending) == 5
    for query in ({"node": "extract", "partition": "d2"}, {"state": TaskState.UPSTREAM_FAILED}, {"after": ids[1]},
                  {"after": ids[1], "limit": 2}):  # fmt: skip
        expected = [dataclasses.replace(t, pending=0) for t in backend.tasks(failed.id, **query)]  # type: ignore[arg-type]
        assert http.tasks(failed.id, **query) == expected, query  # type: ignore[arg-type]
    assert http.task(ids[0]) == dataclasses.replace(backend.task(ids[0]), pending=0)
    assert http.attempts([*ids, 10**9]) == backend.attempts(ids) and len(backend.attempts(ids)) == 4
    assert http.attempt_log(ids[1], 1, "stderr", 5, 20) == backend.attempt_log(ids[1], 1, "stderr", 5, 20)
    assert http.graph(demo.id) == demo and http.graph_of(demo.id) == backend.graph_of(demo.id)
    assert http.graphs() == backend.graphs() and http.latest_graph("store_other") == other
    assert http.workers() == [dataclasses.replace(w, pid=0) for w in backend.workers()]


def test_writes_are_the_databases_and_a_change_is_waited_for_with_304s(
    backend: Store, http: HttpStore, seen: Seen, tmp_path: Path
) -> None:
    record = http.register_graph(_demo(tmp_path), source="demo.yaml")
    event, created = http.submit(record.id, {"bad": "d3"}, key="k")
    again, created_again = http.submit(record.id, {"bad": "d3"}, key="k")
    assert http.event_state(event.id) is EventState.SUBMITTED  # no controller yet
    quiet = http.wait_for_change(0.3)
    looks = [status for path, status in seen.seen if path == f"/api/v1/events/{event.id}"]

    assert record == backend.latest_graph("store_demo") and http.register_graph(_demo(tmp_path)) == record
    assert created and (again.id, created_again) == (event.id, False) and backend.event(event.id) == event
    assert not quiet and looks[0] == 200 and len(looks) >= 3 and set(looks[1:]) == {304}
    with Engine(backend):
        assert _until_finished(http, event.id) is EventState.FAILED
        (tmp_path / "fixed").touch()
        assert http.rerun(event.id, partition="d3") == 2
        assert _until_finished(http, event.id) is EventState.SUCCEEDED
        assert http.event(event.id) == backend.event(event.id)
        needy = backend.register_graph(graph("store_needy").python("train", "fault_tasks:ok", labels=["gpu"]).build())
        waiting, _ = http.submit(needy.id, {})
        assert http.cancel(waiting.id) == backend.event(waiting.id)
    assert backend.event_state(waiting.id) is EventState.CANCELLED


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.audit(event_id=1),
        lambda s: s.timeline(1),
        lambda s: s.critical_path(1),
        lambda s: s.backoffs(1, 0.0),
        lambda s: s.partition_rows(1),
        lambda s: s.leader("controller"),
    ],
)
def test_what_the_api_does_not_serve_is_a_usage_error(http: HttpStore, read: Callable[[HttpStore], object]) -> None:
    with pytest.raises(UsageError, match=r"the server's API does not serve .*: run this command with --db"):
        read(http)
