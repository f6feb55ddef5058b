"""``baton.Client`` against a real ``baton server`` on loopback, on both backends, with a
controller and a worker running the tasks over the same store (tests/engine.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from engine import Engine, graph
from serving import Served, free_port, mint

import baton
from baton.access import Role
from baton.client.api import Client, EventStatus, Task, Worker
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import Conflict, Forbidden, NotFound, ParamsInvalid, TransientError, Unauthenticated, UsageError
from baton.store.protocol import Store

DEPTS = ["d1", "d2", "d3", "d4", "d5", "d6", "d7"]


class Recorder(httpx.HTTPTransport):
    """A real transport that notes every answer's method, path and status; ``lose`` answers are
    dropped after the server handled them (as a proxy cutting the connection would)."""

    def __init__(self, lose: int = 0) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, int]] = []
        self.lose = lose

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        self.seen.append((request.method, request.url.path, response.status_code))
        if self.lose > 0:
            self.lose -= 1
            raise httpx.ReadError("the answer was lost on the way")
        return response


def _register(backend: Store, tmp_path: Path) -> None:
    g = graph("client_demo").param("depts", "list", default=DEPTS).partitions(param="depts")
    g.param("bad", "string", default="").param("fixed", "string", default=str(tmp_path / "fixed"))
    g.python("extract", "fault_tasks:fail_partition", retries=0)
    g.python("summary", "fault_tasks:ok", after=["extract"], partitioned=False)
    backend.register_graph(g.build())


def _gated(backend: Store, gate: Path) -> None:
    """One task that prints 5,000 characters once the file ``gate`` exists (and not before)."""
    code = ("import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.02)\n"
            "sys.stdout.write('x' * 4000 + 'y' * 1000)\nsys.stderr.write('done')\n")  # fmt: skip
    g = graph("client_gated").command("hold", [sys.executable, "-c", code, str(gate)], retries=0)
    backend.register_graph(g.build())


@pytest.fixture
def client(backend: Store, served: Served, tmp_path: Path) -> Iterator[Client]:
    _register(backend, tmp_path)
    with Client(served.url, mint(backend, Role.CLIENT)) as c:
        yield c


def test_submit_runs_to_success_and_the_same_key_answers_the_same_event(backend: Store, client: Client) -> None:
    seen: list[EventStatus] = []
    with Engine(backend):
        event, created = client.submit("client_demo", key="year-2025")
        final = client.wait(event.id, timeout_s=60, on_progress=seen.append)

    assert created and event.state is EventState.SUBMITTED
    assert final.state is EventState.SUCCEEDED and final.id == event.id
    assert final.nodes == {"extract": {"succeeded": 7}, "summary": {"succeeded": 1}}
    assert final.count("succeeded") == 8 and final.event.tasks_active == 0
    # each look that changed the event was told once (the first may already be the end: a fast run)
    assert seen[-1] is final and all(a.version != b.version for a, b in pairwise(seen))
    again, created_again = client.submit("client_demo", key="year-2025")
    assert (again.id, created_again) == (event.id, False)
    with pytest.raises(Conflict) as refused:
        client.submit("client_demo", {"depts": ["d1"]}, key="year-2025")
    assert refused.value.existing_event == event.id


def test_wait_sends_the_version_and_an_unchanged_event_costs_a_304(backend: Store, served: Served) -> None:
    _register(backend, Path("/nonexistent"))
    recorder = Recorder()
    with Client(served.url, mint(backend, Role.CLIENT), transport=recorder) as c:
        event, _ = c.submit("client_demo")  # no controller runs: it stays submitted
        with pytest.raises(TimeoutError, match="still submitted"):
            c.wait(event.id, timeout_s=1.0, poll_s=0.1, max_poll_s=0.2)

    looks = [status for method, path, status in recorder.seen if path == f"/api/v1/events/{event.id}"]
    assert looks[0] == 200 and len(looks) >= 3
    assert set(looks[1:]) == {304}


def test_tasks_are_read_page_by_page_and_filtered(backend: Store, served: Served, client: Client) -> None:
    with Engine(backend):
        event, _ = client.submit("client_demo")
        client.wait(event.id, timeout_s=60)
    recorder = Recorder()
    with Client(served.url, mint(backend, Role.VIEWER), transport=recorder) as viewer:
        tasks = list(viewer.tasks(event.id, page_size=3))
        pages = [s for _, path, s in recorder.seen if path.endswith("/tasks")]
        extract = list(viewer.tasks(event.id, node="extract", partition="d4"))
        first_two = list(viewer.tasks(event.id, limit=2, page_size=500))
        succeeded = list(viewer.tasks(event.id, state=TaskState.SUCCEEDED, page_size=2))
        summary = viewer.task(next(t.id for t in tasks if t.node == "summary"))

    assert len(tasks) == 8 and [t.id for t in tasks] == sorted({t.id for t in tasks})
    assert pages == [200, 200, 200]  # 3 + 3 + 2
    assert {(t.node, t.partition) for t in tasks} == {("extract", d) for d in DEPTS} | {("summary", "")}
    assert [(t.node, t.partition, t.state) for t in extract] == [("extract", "d4", TaskState.SUCCEEDED)]
    assert [t.id for t in first_two] == [t.id for t in tasks[:2]]
    assert len(succeeded) == 8 and all(t.attempts is None for t in succeeded)
    assert summary.result["node"] == "summary" and summary.attempts is not None
    assert [(a.id, a.outcome) for a in summary.attempts] == [(f"{summary.id}-1", Outcome.SUCCEEDED)]


def test_a_log_is_read_by_offset_and_followed_until_its_attempt_ends(
    backend: Store, served: Served, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    _gated(backend, gate)
    with Engine(backend), Client(served.url, mint(backend, Role.CLIENT)) as c:
        event, _ = c.submit("client_gated")
        (task,) = _running(c, event.id)
        attempt_id = f"{task.id}-1"
        before = c.log(attempt_id)  # running, nothing written yet
        assert before.live and (before.text, before.size) == ("", 0)
        gate.touch()
        followed = list(c.log_slices(attempt_id, follow=True, timeout_s=30, slice_chars=1500))
        middle = c.log(attempt_id, offset=3990, limit=20)
        stderr = c.read_log(attempt_id, "stderr")
        with pytest.raises(NotFound):
            list(c.log_slices(f"{task.id}-2", follow=True, timeout_s=30))  # the task ended: it never comes

    # slices of at most 1,500 characters, one after the other (from the live log, the stored one,
    # or both: the worker may have sent the output before the attempt ended)
    assert [s.offset for s in followed] == [0, *(s.next_offset for s in followed[:-1])]
    assert all(0 < len(s.text) <= 1500 for s in followed) and followed[-1].next_offset == 5000
    assert "".join(s.text for s in followed) == "x" * 4000 + "y" * 1000
    assert (middle.text, middle.next_offset, middle.task_id, middle.attempt) == ("x" * 10 + "y" * 10, 4010, task.id, 1)
    assert stderr == "done"


def test_a_running_attempts_output_is_read_and_followed_live_over_the_api(
    backend: Store, served: Served, tmp_path: Path
) -> None:
    """A task prints a line and waits: the line is readable before the task ends (its worker
    sends it), marked live; following it then goes on to the end once the task ends."""
    gate = tmp_path / "gate"
    code = ("import os, sys, time\nprint('started', flush=True)\n"
            "while not os.path.exists(sys.argv[1]): time.sleep(0.02)\nprint('finished')\n")  # fmt: skip
    backend.register_graph(
        graph("client_talk").command("talk", [sys.executable, "-c", code, str(gate)], retries=0).build()
    )
    with Engine(backend), Client(served.url, mint(backend, Role.CLIENT)) as c:
        event, _ = c.submit("client_talk")
        (task,) = _running(c, event.id)
        slices = c.log_slices(f"{task.id}-1", follow=True, poll_s=0.1, timeout_s=60)
        first = next(slices)  # waits for the worker to send the line
        assert first.live and first.text == "started\n"
        assert c.read_log(f"{task.id}-1") == "started\n"  # without follow: what is there so far
        gate.touch()
        rest = list(slices)  # ends once the attempt has ended
        stored = c.log(f"{task.id}-1")
    assert first.text + "".join(s.text for s in rest) == "started\nfinished\n"
    assert not stored.live and stored.text == "started\nfinished\n"


def _running(c: Client, event_id: int) -> list[Task]:
    """The event's tasks once they are all running (a deadline, not a sleep, bounds it)."""
    deadline = time.monotonic() + 30
    while True:
        tasks = list(c.tasks(event_id))
        if tasks and all(t.state is TaskState.RUNNING for t in tasks):
            return tasks
        assert time.monotonic() < deadline, f"tasks not running: {tasks}"
        time.sleep(0.05)


def test_cancel_stops_a_running_event_and_a_second_cancel_is_a_conflict(
    backend: Store, served: Served, tmp_path: Path
) -> None:
    _gated(backend, tmp_path / "never")
    with Engine(backend), Client(served.url, mint(backend, Role.CLIENT)) as c:
        event, _ = c.submit("client_gated")
        _running(c, event.id)
        asked = c.cancel(event.id)
        final = c.wait(event.id, timeout_s=30)
        with pytest.raises(Conflict, match="already cancelled"):
            c.cancel(event.id)

    assert asked.cancel_requested and asked.state is EventState.RUNNING
    assert final.state is EventState.CANCELLED and final.nodes == {"hold": {"cancelled": 1}}


def test_rerun_of_a_failed_partition_runs_it_and_what_depends_on_it(
    backend: Store, client: Client, tmp_path: Path
) -> None:
    with Engine(backend):
        event, _ = client.submit("client_demo", {"bad": "d3"})
        failed = client.wait(event.id, timeout_s=60)
        (tmp_path / "fixed").touch()
        reset = client.rerun(event.id, partition="d3")
        final = client.wait(event.id, timeout_s=60)

    assert failed.state is EventState.FAILED
    assert failed.nodes == {"extract": {"succeeded": 6, "failed": 1}, "summary": {"upstream_failed": 1}}
    assert reset == 2 and final.state is EventState.SUCCEEDED
    (d3,) = client.tasks(event.id, node="extract", partition="d3")
    assert [a.outcome for a in client.task(d3.id).attempts or ()] == [Outcome.FAILED, Outcome.SUCCEEDED]


def test_events_are_listed_newest_first_by_keyset_pages(backend: Store, client: Client) -> None:
    ids = [client.submit("client_demo", key=f"k{i}")[0].id for i in range(5)]
    recorder = Recorder()
    listing = Client(client.url, mint(backend, Role.VIEWER), transport=recorder)
    with listing:
        newest = [e.id for e in listing.events(type="client_demo", page_size=2)]
        three = [e.id for e in listing.events(limit=3, page_size=2)]
        submitted = list(listing.events(state=EventState.SUBMITTED))
        until_none = list(listing.events(until=0.0))
        since_first = {e.id for e in listing.events(since=client.event(ids[0]).event.submitted_at)}

    assert newest == ids[::-1] and three == ids[:1:-1]
    assert len([p for _, p, _ in recorder.seen if p == "/api/v1/events"]) == 3 + 2 + 1 + 1 + 1
    assert {e.id for e in submitted} == set(ids) and until_none == []
    assert since_first == set(ids)


def test_a_time_bound_is_rounded_down_to_the_microsecond_never_past_the_time() -> None:
    """An event's own submitted_at as ``since`` must include it. 1796640437.2883599 times 10**6
    is 1796640437288359.9..., which floating point rounds up to ...360: the bound sent was
    .288360, past the event (found by the keyset test failing about once in 170 runs)."""
    from baton.client.api import _epoch

    assert _epoch(1796640437.2883599) == "1796640437.288359"
    assert _epoch(-1.5) == "-1.500000" and _epoch(0.0) == "0.000000"
    step = 1 / 3 * 1e-6  # times across microseconds, their fractions all around
    for i in range(100_000):
        seconds = 1796640437.0 + i * step
        below = Decimal(seconds) - Decimal(_epoch(seconds) or "nan")  # exactly
        assert 0 <= below < Decimal("0.000001"), (repr(seconds), _epoch(seconds))
        assert float(_epoch(seconds) or "nan") <= seconds  # and as the server reads it


def test_graphs_workers_and_errors_are_typed(backend: Store, served: Served, client: Client) -> None:
    source = Path(__file__).resolve().parents[1].joinpath("graphs", "cli_params.yaml").read_text()
    with Client(served.url, mint(backend, Role.ADMIN)) as admin:
        made, created = admin.register_graph(source, filename="cli_params.yaml")
        same, created_again = admin.register_graph(source)
        with pytest.raises(UsageError, match=r"cli_broken\.yaml"):
            admin.register_graph("graph: x\nnodes: {a: {after: [b]}}\n", filename="cli_broken.yaml")
    assert created and not created_again and same.id == made.id and made.event_type == "cli_params"
    assert {g.event_type for g in client.graphs()} == {"client_demo", "cli_params"}
    assert client.latest_graph("cli_params").spec["params"]["year"]["type"] == "integer"
    with Engine(backend) as engine:
        (worker,) = _until_one(client)
        assert worker.id == engine.worker.id and worker.capacity == {"slots": 2} and not worker.stale

    with pytest.raises(ParamsInvalid) as invalid:
        client.submit("cli_params", {"year": "soon", "extra": 1})
    assert len(invalid.value.problems) == 2
    with pytest.raises(NotFound):
        client.submit("no_such_type")
    with pytest.raises(NotFound):
        client.event(10**12)
    with Client(served.url, mint(backend, Role.VIEWER)) as viewer, pytest.raises(Forbidden):
        viewer.submit("client_demo")
    with Client(served.url, "baton_client_wrong") as stranger, pytest.raises(Unauthenticated):
        stranger.event(1)
    with Client(f"http://127.0.0.1:{free_port()}", "t", retries=1) as away, pytest.raises(TransientError):
        away.graphs()
    assert baton.Client is Client


def _until_one(c: Client) -> list[Worker]:
    deadline = time.monotonic() + 30
    while not (workers := [w for w in c.workers() if w.state == "active"]):
        assert time.monotonic() < deadline, "the worker never registered"
        time.sleep(0.05)
    return workers


def test_a_keyed_submit_survives_a_lost_answer_and_an_unkeyed_one_is_not_repeated(
    backend: Store, served: Served, tmp_path: Path
) -> None:
    _register(backend, tmp_path)
    token = mint(backend, Role.CLIENT)
    with Client(served.url, token, transport=Recorder(lose=1)) as keyed:
        event, created = keyed.submit("client_demo", key="lost-once")
    with Client(served.url, token, transport=Recorder(lose=1)) as unkeyed, pytest.raises(TransientError):
        unkeyed.submit("client_demo")

    assert not created  # the lost first try made it; the retry found it
    events = backend.events(limit=10)
    assert [e.id for e in events if e.key == "lost-once"] == [event.id]
    assert len(events) == 2  # the unkeyed submit was made once, and not sent again
