"""No single event, graph or report can stop the controller or a worker for the others.

Each test drives a real store (SQLite file and PostgreSQL) in-process: a poison event beside a
good one, a report the store refuses, output a database column cannot hold, parameters past the
cap. The poison always ends with a recorded cause; the others go on.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from baton.controller.loop import Controller
from baton.engine.states import EventState, TaskState
from baton.errors import BackendError, ParamsInvalid
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.settings import default_settings
from baton.store.records import ClaimRequest, ClaimResult, Report
from baton.store.sql import SqlStore
from baton.worker.loop import Worker, WorkerConfig

GRAPHS = str(Path(__file__).resolve().parent.parent / "graphs")


def tables_snapshot(backend: SqlStore) -> dict[str, int]:
    with backend.transaction(write=False) as tx:
        return {t: tx.one(f"SELECT COUNT(*) FROM {t}")[0] for t in ("graphs", "events", "tasks", "attempts", "audit")}


def small_graph(name: str) -> Graph:
    g = GraphBuilder(name, python_path=[GRAPHS])
    g.param("ledger", "string", default="").param("sleep_s", "number", default=0.0)
    return g.python("only", "fault_tasks:slow").build()


def with_priority(graph: Graph, priority: int) -> Graph:
    """The graph as an older release could have stored it: a priority no column can hold."""
    return dataclasses.replace(graph, nodes=tuple(dataclasses.replace(n, priority=priority) for n in graph.nodes))


def submit(backend: SqlStore, graph: Graph, params: dict[str, Any] | None = None) -> int:
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, params or {}))
    return event.id


def drive(backend: SqlStore, controller: Controller, event_ids: Sequence[int], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(backend.event(e).state.terminal for e in event_ids):
        assert time.monotonic() < deadline, [backend.event(e).state for e in event_ids]
        if controller.step() == 0:
            backend.wait_for_change(0.05)


class RefusingLink:
    """The real store, except that it refuses (as a database would refuse text it cannot hold)
    any batch of reports holding a report for one task."""

    def __init__(self, backend: SqlStore) -> None:
        self.backend = backend
        self.poison: int | None = None
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def _check(self, reports: Sequence[Report]) -> None:
        if any(r.task_id == self.poison and "could not be recorded" not in (r.error or "") for r in reports):
            self.refused += 1
            raise BackendError("database error: invalid byte sequence (refused by the test)")

    def claim(self, request: ClaimRequest) -> ClaimResult:
        self._check(request.reports)
        return self.backend.claim(request)

    def report(self, worker_id: str, reports: Sequence[Report]) -> list[tuple[int, int]]:
        self._check(reports)
        return self.backend.report(worker_id, reports)


@pytest.fixture
def worker_on(backend: SqlStore) -> Iterator[Any]:
    workers: list[tuple[Worker, threading.Thread]] = []

    def start(link: Any) -> Worker:
        config = WorkerConfig.from_settings(
            default_settings(), capacity={"slots": 2}, lease_s=10, heartbeat_s=0.2, poll_s=0.05
        )
        worker = Worker(link, config)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        workers.append((worker, thread))
        return worker

    yield start
    for worker, thread in workers:
        worker.request_stop(drain_s=0)
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_an_event_the_store_cannot_plan_fails_with_its_cause_and_the_others_run(
    backend: SqlStore, worker_on: Any
) -> None:
    poison = submit(backend, with_priority(small_graph("poison"), 2**70))
    good = submit(backend, small_graph("good"))
    worker_on(backend)
    controller = Controller(backend)

    drive(backend, controller, [poison, good])  # before the fix: OverflowError / "integer out of range"

    assert backend.event(good).state is EventState.SUCCEEDED
    failed = backend.event(poison)
    assert failed.state is EventState.FAILED
    assert failed.error is not None and failed.error.startswith("cannot expand:")
    assert backend.tasks(poison) == []
    causes = [a.cause for a in backend.audit(event_id=poison) if a.action == "event.failed"]
    assert causes == [failed.error]
    # the controller is still the leader and still works
    later = submit(backend, small_graph("later"))
    drive(backend, controller, [later])
    assert backend.event(later).state is EventState.SUCCEEDED


def test_a_report_the_store_refuses_fails_its_task_with_a_cause_and_the_worker_goes_on(
    backend: SqlStore, worker_on: Any
) -> None:
    link = RefusingLink(backend)
    g = GraphBuilder("refused", python_path=[GRAPHS])
    g.param("ledger", "string", default="").param("sleep_s", "number", default=0.0)
    g.partitions(values=["a", "b", "c", "d"]).python("only", "fault_tasks:slow")
    graph = g.build()
    event_id = submit(backend, graph)
    controller = Controller(backend)
    controller.expand()
    link.poison = next(t.id for t in backend.tasks(event_id) if t.partition == "b")
    worker_on(link)

    drive(backend, controller, [event_id])

    states = {t.partition: t.state for t in backend.tasks(event_id)}
    assert states == {"a": TaskState.SUCCEEDED, "b": TaskState.FAILED, "c": TaskState.SUCCEEDED,
                      "d": TaskState.SUCCEEDED}  # fmt: skip
    assert link.refused >= 1
    (attempt,) = backend.attempts([link.poison])
    assert attempt.error is not None and "could not be recorded" in attempt.error
    assert "refused by the test" in attempt.error
    # the worker still claims: a new event runs to the end
    later = submit(backend, small_graph("after-refusal"))
    drive(backend, controller, [later])
    assert backend.event(later).state is EventState.SUCCEEDED


def test_output_no_database_column_can_hold_is_stored_readably(backend: SqlStore, worker_on: Any) -> None:
    code = "import sys; sys.stdout.write('a\\x00b'); sys.stderr.write('c\\udcffd'.encode('utf-8', 'surrogatepass')" \
           ".decode('utf-8', 'surrogateescape'))"  # fmt: skip
    graph = GraphBuilder("nul").command("noisy", [sys.executable, "-c", code]).build()
    event_id = submit(backend, graph)
    worker_on(backend)

    drive(backend, Controller(backend), [event_id])  # before the fix, PostgreSQL refused the NUL forever

    (task,) = backend.tasks(event_id)
    assert task.state is TaskState.SUCCEEDED
    (attempt,) = backend.attempts([task.id])
    assert attempt.stdout == "a\ufffdb"
    assert "\x00" not in attempt.stderr and attempt.stderr.startswith("c") and attempt.stderr.endswith("d")


def test_parameters_over_the_cap_are_refused_and_nothing_is_written(backend: SqlStore) -> None:
    g = GraphBuilder("big-params").param("blob", "string", default="")
    graph = g.python("only", "fault_tasks:slow").build()
    record = backend.register_graph(graph)
    before = tables_snapshot(backend)

    with pytest.raises(ParamsInvalid) as refused:  # before the fix: a 10 MB parameter was stored
        backend.submit(record.id, validate_params(graph, {"blob": "x" * 10_000_000}))

    assert "over the 1,048,576-byte cap" in str(refused.value) and "max_params_bytes" in str(refused.value)
    assert tables_snapshot(backend) == before
    # just under the cap is accepted, and stored whole
    blob = "y" * (1024 * 1024 - len(json.dumps({"blob": ""}, separators=(",", ":"))))
    event, _ = backend.submit(record.id, validate_params(graph, {"blob": blob}))
    assert backend.event(event.id).params["blob"] == blob


def test_a_large_allowed_parameter_reaches_a_command_through_its_file(backend: SqlStore, worker_on: Any) -> None:
    read = (
        "import json, os, pathlib; p = json.loads(pathlib.Path(os.environ['BATON_PARAMS_FILE']).read_text());"
        "pathlib.Path(os.environ['BATON_RESULT_FILE']).write_text(json.dumps({'chars': len(p['blob'])}))"
    )
    g = GraphBuilder("large-param").param("blob", "string", default="")
    graph = g.command("reader", [sys.executable, "-c", read]).build()
    event_id = submit(backend, graph, {"blob": "z" * 600_000})  # before the fix: "Argument list too long"
    worker_on(backend)

    drive(backend, Controller(backend), [event_id])

    (task,) = backend.tasks(event_id)
    assert task.state is TaskState.SUCCEEDED, backend.attempts([task.id])
    assert json.loads(task.result_json or "null") == {"chars": 600_000}


@pytest.mark.parametrize(
    ("write", "fragment"),
    [
        (
            "f.write(b'[' + b'0,' * 2_000_000 + b'0]')",
            "the result file is 4,000,003 bytes, over the 1,048,576-byte cap",
        ),
        ("f.write(b'\\xff\\xfe')", "the result file is not UTF-8 text (byte 0)"),
        ("f.write(b'[NaN]')", "result is not valid JSON: NaN is not a JSON number"),
        ("f.write(b'[' * 100_000)", "result is not valid JSON"),
    ],
)
def test_a_result_file_that_cannot_be_a_result_fails_the_task_without_retry(
    backend: SqlStore, worker_on: Any, write: str, fragment: str
) -> None:
    code = f"import os\nwith open(os.environ['BATON_RESULT_FILE'], 'wb') as f:\n    {write}\n"
    graph = GraphBuilder("bad-result", defaults={"retries": 2}).command("writer", [sys.executable, "-c", code]).build()
    event_id = submit(backend, graph)
    worker_on(backend)

    drive(backend, Controller(backend), [event_id])

    (task,) = backend.tasks(event_id)
    assert task.state is TaskState.FAILED
    (attempt,) = backend.attempts([task.id])  # not retried: writing it again cannot help
    assert attempt.error is not None and fragment in attempt.error, attempt.error
