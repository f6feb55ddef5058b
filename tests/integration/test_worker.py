"""A real worker (executor processes, argv commands) against a real SQLite file.

The worker runs in a thread of the test process; the tasks it runs are real child
processes. The controller is stepped by the test until the event is finished.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from baton.controller.loop import Controller
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import TransientError
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.settings import default_settings
from baton.store.protocol import Store
from baton.worker.loop import Worker, WorkerConfig

GRAPHS = str(Path(__file__).resolve().parent.parent / "graphs")


def fast(slots: int, **overrides: Any) -> WorkerConfig:
    """A worker config with short timings for tests (``overrides`` change any of them)."""
    timings: dict[str, Any] = {"lease_s": 10, "heartbeat_s": 0.2, "poll_s": 0.05, **overrides}
    return WorkerConfig.from_settings(default_settings(), capacity={"slots": slots}, **timings)


def builder(name: str, **defaults: Any) -> GraphBuilder:
    return GraphBuilder(name, python_path=[GRAPHS], defaults=defaults or None)


class Harness:
    def __init__(self, backend: Store, config: WorkerConfig) -> None:
        self.backend = backend
        self.worker = Worker(backend, config)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()
        self.controller = Controller(backend)  # one: a second would stand by while the first holds the role

    def run(self, graph: Graph, params: dict[str, Any] | None = None, timeout_s: float = 60) -> int:
        record = self.backend.register_graph(graph)
        event, _ = self.backend.submit(record.id, validate_params(graph, params or {}))
        deadline = time.monotonic() + timeout_s
        while not self.backend.event(event.id).state.terminal:
            assert time.monotonic() < deadline, "event did not finish in time"
            if self.controller.step() == 0:
                self.backend.wait_for_change(0.05)
        return event.id

    def stop(self) -> None:
        self.worker.request_stop(drain_s=0)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def harness(backend: Store) -> Iterator[Harness]:
    h = Harness(backend, fast(2, max_log_bytes=4096))
    yield h
    h.stop()


def only_task(backend: Store, event_id: int, node: str) -> Any:
    (task,) = backend.tasks(event_id, node=node)
    return task


def start_hanging(backend: Store, tmp_path: Path, name: str) -> int:
    """Submit a one-task event whose task hangs (with a child process); return once it runs."""
    g = builder(name).param("child_pid_file", "string", default=str(tmp_path / "child.pid"))
    graph = g.python("stuck", "fault_tasks:hang").build()
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, {}))
    Controller(backend).expand()
    deadline = time.monotonic() + 20
    while not (tmp_path / "child.pid").exists():
        assert time.monotonic() < deadline, "the hanging task never started"
        time.sleep(0.05)
    return event.id


def child_pid(tmp_path: Path) -> int:
    return int((tmp_path / "child.pid").read_text())


def test_python_tasks_pass_results_downstream_and_capture_output(harness: Harness, backend: Store) -> None:
    g = builder("pass").param("p", "list", default=["a", "b"]).partitions(param="p")
    g.python("first", "fault_tasks:ok").python("second", "fault_tasks:ok", after=["first"])
    event_id = harness.run(g.build())
    assert backend.event(event_id).state is EventState.SUCCEEDED
    task = backend.tasks(event_id, node="second", partition="b")[0]
    assert json.loads(task.result_json or "") == {"node": "second", "partition": "b", "inputs": ["first"]}
    (attempt,) = backend.attempts([task.id])
    assert "hello from second[b]" in attempt.stdout
    assert "second[b] logged a line" in attempt.stderr


def test_a_raising_task_fails_with_its_traceback_and_the_worker_carries_on(harness: Harness, backend: Store) -> None:
    g = builder("raise").python("bad", "fault_tasks:fail").python("good", "fault_tasks:ok")
    event_id = harness.run(g.build())
    bad = only_task(backend, event_id, "bad")
    assert bad.state is TaskState.FAILED and "RuntimeError: always fails" in (bad.error or "")
    assert "Traceback" in backend.attempts([bad.id])[0].stderr
    assert only_task(backend, event_id, "good").state is TaskState.SUCCEEDED


def test_a_crashing_task_is_retried_and_the_worker_survives(harness: Harness, backend: Store) -> None:
    g = builder("crash", retries=1, retry_delay_s=0.0).python("segv", "fault_tasks:crash")
    event_id = harness.run(g.build())
    task = only_task(backend, event_id, "segv")
    assert task.state is TaskState.SUCCEEDED
    first, second = backend.attempts([task.id])
    assert first.outcome is Outcome.CRASHED and "SIGSEGV" in (first.error or "")
    assert second.outcome is Outcome.SUCCEEDED


def test_a_hanging_task_and_its_children_are_killed_at_the_timeout(
    harness: Harness, backend: Store, tmp_path: Path
) -> None:
    g = builder("hang").param("child_pid_file", "string", default=str(tmp_path / "child.pid"))
    g.python("stuck", "fault_tasks:hang", timeout_s=1.0).python("after_it", "fault_tasks:ok")
    started = time.monotonic()
    event_id = harness.run(g.build())
    task = only_task(backend, event_id, "stuck")
    (attempt,) = backend.attempts([task.id])
    assert attempt.outcome is Outcome.TIMEOUT and "timed out after 1s" in (attempt.error or "")
    assert attempt.finished_at - (attempt.started_at or 0) < 3.0
    assert "hanging now" in attempt.stdout  # partial output survives the kill
    assert time.monotonic() - started < 20
    child = child_pid(tmp_path)
    assert _gone(child), "the task's child process outlived the timeout"


def _gone(pid: int, wait_s: float = 5.0) -> bool:
    """Whether ``pid`` stops running within ``wait_s``: it is gone, or a zombie (dead, its exit
    status not yet collected by whichever process it was handed to)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_output_is_capped_and_invalid_results_fail(harness: Harness, backend: Store) -> None:
    g = builder("caps").param("bytes", "integer", default=100_000)
    g.python("loud", "fault_tasks:shout").python("weird", "fault_tasks:bad_result", retries=3)
    event_id = harness.run(g.build())
    loud = only_task(backend, event_id, "loud")
    out = backend.attempts([loud.id])[0].stdout
    assert len(out) < 4096 + 200 and "bytes cut" in out
    weird = only_task(backend, event_id, "weird")
    assert weird.state is TaskState.FAILED and weird.attempt == 1  # not retried: it cannot help
    assert "not JSON" in (weird.error or "")


INJECTIONS = ['"; touch {mark} #', "$(touch {mark})", "`touch {mark}`", "a\nb; touch {mark}", "--output={mark}", "*"]


@pytest.mark.parametrize("template", INJECTIONS)
def test_argv_commands_get_parameters_verbatim_and_never_through_a_shell(
    harness: Harness, backend: Store, tmp_path: Path, template: str
) -> None:
    mark = tmp_path / "pwned"
    payload = template.format(mark=mark)
    script = (
        "import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': os.environ['X'], "
        "'partition': os.environ['BATON_PARTITION']}, open(os.environ['BATON_RESULT_FILE'], 'w'))"
    )
    g = builder("argv").param("payload", "string", required=True).partitions(values=["p1"])
    g.command("cmd", ["{python}", "-c", script, "{params.payload}", "{partition}"], env={"X": "{params.payload}"})
    event_id = harness.run(g.build(), {"payload": payload})
    task = only_task(backend, event_id, "cmd")
    assert task.state is TaskState.SUCCEEDED
    assert json.loads(task.result_json or "") == {"argv": [payload, "p1"], "env": payload, "partition": "p1"}
    assert not mark.exists()


@pytest.fixture
def settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings variables in the worker's environment (set before the worker and its executors start)."""
    variables = {"BATON_DB": "postgresql://baton:secret@db/baton", "BATON_CONFIG": "/etc/baton.toml",
                 "BATON_LEASE_S": "30", "BATON_UNRELATED": "kept"}  # fmt: skip
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


def test_tasks_never_see_the_settings_variables_of_their_worker(
    settings_in_environment: dict[str, str], harness: Harness, backend: Store
) -> None:
    script = (
        "import json, os; json.dump({k: os.environ.get(k) for k in json.loads(os.environ['SEEN'])}, "
        "open(os.environ['BATON_RESULT_FILE'], 'w'))"
    )
    seen = json.dumps(list(settings_in_environment))
    g = builder("env").python("in_python", "fault_tasks:environment")
    g.command("in_command", ["{python}", "-c", script], env={"SEEN": seen})
    event_id = harness.run(g.build())
    expected = {"BATON_DB": None, "BATON_CONFIG": None, "BATON_LEASE_S": None, "BATON_UNRELATED": "kept"}
    for node in ("in_python", "in_command"):
        task = only_task(backend, event_id, node)
        assert task.state is TaskState.SUCCEEDED, task.error
        assert json.loads(task.result_json or "") == expected, node


def test_a_failing_command_reports_its_exit_code_and_output(harness: Harness, backend: Store) -> None:
    g = builder("exit").command("cmd", ["{python}", "-c", "import sys; print('oops', file=sys.stderr); sys.exit(3)"])
    g.command("missing", ["/no/such/program"])
    event_id = harness.run(g.build())
    (attempt,) = backend.attempts([only_task(backend, event_id, "cmd").id])
    assert attempt.outcome is Outcome.FAILED and attempt.exit_code == 3 and "oops" in attempt.stderr
    (missing,) = backend.attempts([only_task(backend, event_id, "missing").id])
    assert missing.outcome is Outcome.FAILED and "cannot start" in missing.stderr


def test_cancelling_an_event_stops_its_running_tasks(harness: Harness, backend: Store, tmp_path: Path) -> None:
    event_id = start_hanging(backend, tmp_path, "cancel")
    backend.cancel(event_id)
    deadline = time.monotonic() + 20
    while not backend.event(event_id).state.terminal:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert backend.event(event_id).state is EventState.CANCELLED
    (attempt,) = backend.attempts([only_task(backend, event_id, "stuck").id])
    assert attempt.outcome is Outcome.CANCELLED
    assert _gone(child_pid(tmp_path))


def test_a_worker_never_runs_more_than_its_slots(harness: Harness, backend: Store, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    g = builder("cap").param("p", "list", default=[str(i) for i in range(8)]).partitions(param="p")
    g.param("ledger", "string", default=str(ledger)).param("sleep_s", "number", default=0.15)
    g.python("work", "fault_tasks:slow")
    event_id = harness.run(g.build())
    assert backend.event(event_id).state is EventState.SUCCEEDED
    rows = [json.loads(line) for line in ledger.read_text().splitlines()]
    edges = sorted((r["t"], 1 if r["what"] == "start" else -1) for r in rows)
    running = peak = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    assert peak == 2  # two slots: used fully, never exceeded


def test_heartbeats_racing_finished_attempts_never_kill_a_reused_executor(backend: Store) -> None:
    """Regression: a heartbeat naming an attempt that had just finished used to stop it, killing
    the executor that was already running the next task."""
    h = Harness(backend, fast(2, heartbeat_s=0.002))
    try:
        g = builder("race").param("p", "list", default=[str(i) for i in range(300)]).partitions(param="p")
        event_id = h.run(g.python("quick", "fault_tasks:ok").build())
    finally:
        h.stop()
    outcomes = {a.outcome for a in backend.attempts([t.id for t in backend.tasks(event_id)])}
    assert outcomes == {Outcome.SUCCEEDED}
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_each_event_sees_its_own_parameters_through_shared_executors(harness: Harness, backend: Store) -> None:
    """Executors keep recent events' parameters instead of receiving them with every task; many
    events through the same two executors must each still see their own."""
    g = builder("params").param("tag", "string", required=True).param("p", "list", default=["a", "b", "c"])
    graph = g.partitions(param="p").python("echo", "fault_tasks:echo_params").build()
    events = {harness.run(graph, {"tag": f"event-{i}"}): f"event-{i}" for i in range(40)}
    for event_id, tag in events.items():
        for task in backend.tasks(event_id):
            assert json.loads(task.result_json or "")["params"]["tag"] == tag


def test_a_stopping_worker_hands_back_what_it_cannot_finish_without_counting_a_failure(
    backend: Store, tmp_path: Path
) -> None:
    h = Harness(backend, fast(1))
    event_id = start_hanging(backend, tmp_path, "release")
    h.stop()  # drain_s=0: hand it back at once
    task = only_task(backend, event_id, "stuck")
    assert task.state is TaskState.READY and task.failures == 0
    (attempt,) = backend.attempts([task.id])
    assert attempt.outcome is Outcome.RELEASED
    assert _gone(child_pid(tmp_path))
    backend.cancel(event_id)


class CutLink:
    """The backend, reached through a link that can be cut (every call fails while it is)."""

    def __init__(self, backend: Store) -> None:
        self.backend = backend
        self.cut = False
        self.pushes_changes = backend.pushes_changes

    def __getattr__(self, name: str) -> Any:
        verb = getattr(self.backend, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.cut and name != "wait_for_change":
                raise TransientError("link cut by the test")
            return verb(*args, **kwargs)

        return call


def test_a_worker_cut_off_for_longer_than_its_lease_stops_its_tasks(backend: Store, tmp_path: Path) -> None:
    link = CutLink(backend)
    worker = Worker(link, fast(1, lease_s=1.0, heartbeat_s=0.1))  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    event_id = start_hanging(backend, tmp_path, "cut")
    link.cut = True
    cut_at = time.monotonic()
    assert _gone(child_pid(tmp_path), wait_s=10), "the task kept running while cut off"
    assert time.monotonic() - cut_at < 1.0 + 2.0  # about one lease
    assert only_task(backend, event_id, "stuck").state is TaskState.RUNNING  # the store never heard
    link.cut = False
    worker.request_stop(drain_s=0)
    thread.join(timeout=30)
    assert not thread.is_alive()
    backend.cancel(event_id)
    time.sleep(1.1)
    # Ended once: by the lease running out, or (if a heartbeat got through before the worker
    # stopped) handed back as an attempt the worker no longer knew of. Never reported twice.
    expired = backend.expire_leases()
    task = only_task(backend, event_id, "stuck")
    assert task.state is TaskState.CANCELLED
    (attempt,) = backend.attempts([task.id])
    assert attempt.outcome is (Outcome.LOST if expired else Outcome.RELEASED)
    assert backend.event(event_id).state is EventState.CANCELLED


class LateHeartbeatLink:
    """The real store, except that one heartbeat, once armed, reaches it ``delay_s`` late (as
    one queued behind other writers would): ``entered`` is set when that heartbeat has left
    the worker, holding the worker's list of what it runs."""

    def __init__(self, backend: Store, delay_s: float) -> None:
        self.backend = backend
        self.delay_s = delay_s
        self.armed = threading.Event()
        self.entered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def heartbeat(self, worker_id: str, running: Any, lease_s: float) -> Any:
        if self.armed.is_set():
            self.armed.clear()
            self.entered.set()
            time.sleep(self.delay_s)
        return self.backend.heartbeat(worker_id, running, lease_s)


def test_a_heartbeat_that_arrives_late_never_hands_back_tasks_claimed_meanwhile(backend: Store) -> None:
    # The store hands back, as a lost reply, what a heartbeat does not list and was claimed over
    # half a lease ago. A heartbeat listed before a claim and delivered 2.2 s later (lease 3 s)
    # used to hand back the tasks the worker had just started: they ran twice.
    link = LateHeartbeatLink(backend, delay_s=2.2)
    worker = Worker(link, fast(2, lease_s=3, heartbeat_s=0.2))  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        link.armed.set()
        assert link.entered.wait(10), "the worker sent no heartbeat"
        g = builder("late").param("p", "list", default=["a", "b"]).partitions(param="p")
        g.param("ledger", "string", default="").param("sleep_s", "number", default=3.0)  # still running then
        graph = g.python("only", "fault_tasks:slow").build()
        event, _ = backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
        controller = Controller(backend)
        deadline = time.monotonic() + 30
        while not backend.event(event.id).state.terminal:
            assert time.monotonic() < deadline, "the event did not finish"
            if controller.step() == 0:
                backend.wait_for_change(0.05)
    finally:
        worker.request_stop(drain_s=0)
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert backend.event(event.id).state is EventState.SUCCEEDED
    attempts = backend.attempts([t.id for t in backend.tasks(event.id)])
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, Outcome.SUCCEEDED)] * 2


WAITING_COMMAND = """
import pathlib, sys, time
print("started cmd ✓", flush=True)
release, deadline = pathlib.Path(sys.argv[1]), time.monotonic() + 60
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
print("released")
"""


def drive_until(h: Harness, done: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    """Step the controller until ``done()`` (a look at the store), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g}s waiting for {what}"
        if h.controller.step() == 0:
            h.backend.wait_for_change(0.05)


def live_text(backend: Store, event_id: int, node: str, stream: str = "stdout") -> str | None:
    """The live log of the node's running attempt (None: it is not running)."""
    tasks = backend.tasks(event_id, node=node)  # none before the event is expanded
    if not tasks or tasks[0].state is not TaskState.RUNNING:
        return None
    (task,) = tasks
    chunk = backend.attempt_log(task.id, task.attempt, stream)
    assert chunk.live and chunk.size == len(chunk.text)
    return chunk.text


def test_running_tasks_output_is_readable_while_they_run_and_then_is_their_reports(
    backend: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # the executors' line buffering is the worker's own
    h = Harness(backend, fast(2, log_tail_s=0.1))
    try:
        release = tmp_path / "release"
        g = builder("live").param("release", "string", default=str(release))
        g.python("py", "fault_tasks:talk_then_wait")
        g.command("cmd", ["{python}", "-c", WAITING_COMMAND, "{params.release}"])
        graph = g.build()
        event, _ = backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
        lines = {("py", "stdout"): "started py, attempt 1 ✓\n", ("py", "stderr"): "py is waiting\n",
                 ("cmd", "stdout"): "started cmd ✓\n"}  # fmt: skip
        drive_until(h, lambda: all(live_text(backend, event.id, *where) == text for where, text in lines.items()),
                    "the first lines in the live logs")  # fmt: skip
        assert not release.exists()  # so neither task can have ended: they were seen running
        release.touch()
        drive_until(h, lambda: backend.event(event.id).state.terminal, "the event to end")
    finally:
        h.stop()
    assert backend.event(event.id).state is EventState.SUCCEEDED
    for task in backend.tasks(event.id):
        (attempt,) = backend.attempts([task.id])
        final = backend.attempt_log(task.id, attempt.attempt)
        assert not final.live and final.text == attempt.stdout
        assert attempt.stdout == lines[(task.node, "stdout")] + "released\n"
