"""Run one claimed attempt and turn how it ended into a Report.

Python attempts are handed to an executor process and answered over its pipe: the worker's
loop starts them (:func:`start_python`) and, when the pipe is readable or the timeout passes,
finishes them (:func:`finish_python`, :func:`time_out_python`) without a thread per attempt.
Argv commands run to their end on a thread of their own (:func:`run_command_attempt`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from baton.engine.states import Outcome
from baton.graphs.model import CommandAction, Graph, Node, PythonAction
from baton.store.records import Claim, Report
from baton.worker import context as C
from baton.worker.capture import LiveFiles
from baton.worker.commands import TaskFiles, placeholder_values, run_command
from baton.worker.executor import Executor, ExecutorDied

log = logging.getLogger("baton.worker")
STOP_LEASE_LOST = "lease lost"
STOP_CANCELLED = "event cancelled"
STOP_SHUTDOWN = "worker shutting down"
STOP_OUTCOMES = {STOP_CANCELLED: Outcome.CANCELLED, STOP_SHUTDOWN: Outcome.RELEASED}


@dataclass
class Running:
    """An attempt in progress on this worker, and how to stop it."""

    claim: Claim
    node: Node
    cost: dict[str, int]
    started_at: float = field(default_factory=time.time)
    stop_reason: str | None = None
    executor: Executor | None = None
    deadline: float = math.inf  # monotonic time of a Python attempt's timeout
    finished: bool = False
    ended_by_stop: bool = False  # its report says only that it was stopped
    lock: threading.Lock = field(default_factory=threading.Lock)
    output: LiveFiles | None = None  # its capture files while it runs (for its live log)
    owns_output: bool = False  # close them when it finishes (an executor's outlive the attempt)

    def stop(self, reason: str) -> None:
        """Stop this attempt if it is still running; a finished one is left alone (its executor
        may already be running another task). The kill is sent under the lock, so it can never
        reach an executor that :meth:`detach` has already handed back."""
        with self.lock:
            if self.finished:
                return
            if self.stop_reason is None:
                self.stop_reason = reason
            if self.executor is not None:
                self.executor.signal_kill()  # the worker's loop sees the pipe close

    def detach(self) -> Executor | None:
        """Mark the attempt finished; from now on stop() does nothing, and its output is no
        longer read here (an executor's files soon hold the next attempt's)."""
        with self.lock:
            self.finished = True
            executor, self.executor = self.executor, None
            output, self.output = self.output, None
        if output is not None and self.owns_output:
            output.close()
        return executor

    def watch_output(self, output: LiveFiles, owned: bool) -> None:
        """Read the attempt's output from ``output`` while it runs (``owned``: close it after)."""
        with self.lock:
            if not self.finished:
                self.output, self.owns_output = output, owned
                return
        if owned:
            output.close()

    def read_output(self, stream: str, offset: int, limit: int) -> bytes | None:
        """Up to ``limit`` bytes the attempt wrote to ``stream`` from byte ``offset``, read while
        it writes; None once it has finished. Read under the lock that :meth:`detach` takes, so
        never from files an executor has handed to its next attempt."""
        with self.lock:
            if self.finished:
                return None
            return b"" if self.output is None else self.output.read(stream, offset, limit)


@dataclass(frozen=True)
class Limits:
    max_result_bytes: int
    max_log_bytes: int


def fenced(running: Running, report: Report) -> Report | None:
    """The report, or None when it would only say that the attempt was stopped because its
    lease was lost (another worker may hold the task now). An attempt that ended by itself is
    reported even then, say after a pause past its lease: the store fences it (recorded while
    the attempt is still the task's current one, else answered stale), so no result is lost."""
    return None if running.stop_reason == STOP_LEASE_LOST and running.ended_by_stop else report


def _report(running: Running, outcome: Outcome, **kw: object) -> Report:
    c = running.claim
    return Report(c.task_id, c.attempt, outcome, running.started_at, time.time(), **kw)  # type: ignore[arg-type]


def _stopped(running: Running, stdout: str, stderr: str) -> Report:
    reason = running.stop_reason or STOP_SHUTDOWN
    running.ended_by_stop = True
    outcome = STOP_OUTCOMES.get(reason, Outcome.CANCELLED)
    return _report(running, outcome, error=f"stopped: {reason}", stdout=stdout, stderr=stderr)


@functools.lru_cache(maxsize=1024)
def _message_head(target: str, python_path: tuple[str, ...], limits: Limits) -> str:
    """The part of an executor message that is the same for every task of a node."""
    return (
        f'{{"target":{json.dumps(target)},"python_path":{json.dumps(list(python_path))},'
        f'"max_result_bytes":{limits.max_result_bytes},"max_log_bytes":{limits.max_log_bytes},'
    )


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    return json.dumps(text)


def _python_message(c: Claim, graph: Graph, node: PythonAction, limits: Limits, send_params: bool) -> str:
    """The executor's message, built as text so params and inputs are never parsed here. An event's
    parameters (which can hold a 10,000-item partition list) go to each executor once, not per task."""
    context = (
        f'{{"event_id":{c.event_id},"event_type":{_quoted(c.event_type)},"node":{_quoted(c.node)},'
        f'"partition":{json.dumps(c.partition or None)},"attempt":{c.attempt},"inputs":{c.inputs_json}}}'
    )
    params = f'"params":{c.params_json},' if send_params else ""
    return f'{_message_head(node.target, graph.python_path, limits)}{params}"context":{context}}}'


def start_python(running: Running, graph: Graph, limits: Limits, executor: Executor) -> Report | None:
    """Hand a Python attempt to an idle executor without waiting for it. Returns a report at once
    only when the attempt ends before it starts (stopped already, or the executor is dead); the
    caller then takes the executor back."""
    action = running.node.action
    assert isinstance(action, PythonAction)
    with running.lock:
        if running.stop_reason is not None:
            running.finished = True
            return _stopped(running, "", "")
        running.executor = executor
        running.output, running.owns_output = executor.output, False
    send_params = executor.note_event(running.claim.event_id)
    try:
        executor.send(_python_message(running.claim, graph, action, limits, send_params))
    except ExecutorDied as exc:
        running.detach()
        return _report(running, Outcome.CRASHED, error=str(exc))
    if running.node.timeout_s is not None:
        running.deadline = time.monotonic() + running.node.timeout_s
    return None


def finish_python(running: Running, executor: Executor, limits: Limits) -> Report:
    """Read the executor's answer (its pipe is readable: an answer, or the process died)."""
    try:
        reply = executor.receive()
    except ExecutorDied as exc:
        running.detach()
        out, err = executor.partial_output(limits.max_log_bytes)
        if running.stop_reason is not None:
            return _stopped(running, out, err)
        return _report(running, Outcome.CRASHED, error=str(exc), stdout=out, stderr=err)
    running.detach()
    logs = {"stdout": reply.get("stdout", ""), "stderr": reply.get("stderr", "")}
    if reply["ok"]:
        return _report(running, Outcome.SUCCEEDED, result_json=reply["result"], **logs)
    outcome = Outcome.INVALID_RESULT if reply.get("kind") == "invalid_result" else Outcome.FAILED
    return _report(running, outcome, error=reply.get("error"), **logs)


def time_out_python(running: Running, executor: Executor, limits: Limits) -> Report:
    """The attempt ran past its timeout: kill its executor (and whatever it started)."""
    running.detach()
    executor.kill()
    out, err = executor.partial_output(limits.max_log_bytes)
    timeout_s = running.node.timeout_s or 0.0
    return _report(running, Outcome.TIMEOUT, error=f"timed out after {timeout_s:g}s; killed", stdout=out, stderr=err)


def _watch_output(running: Running, out: BinaryIO, err: BinaryIO) -> None:
    """Let the live tail read a command's capture files (descriptors of its own: the files are
    closed when the command ends, maybe before the tail has looked for the last time)."""
    try:
        files = LiveFiles.duplicate(out, err)
    except OSError as exc:  # out of descriptors: no live log, and the report still has the output
        log.warning("task %s: its output cannot be followed live: %s", running.claim.task_id, exc)
        return
    running.watch_output(files, owned=True)


def run_command_attempt(running: Running, graph: Graph, limits: Limits) -> Report:
    """Run an argv command attempt to its end (blocking: called on a thread of its own)."""
    action = running.node.action
    assert isinstance(action, CommandAction)
    try:
        return _run_command(running, graph, running.node, action, limits)
    finally:
        running.detach()


def _run_command(running: Running, graph: Graph, node: Node, action: CommandAction, limits: Limits) -> Report:
    c = running.claim
    fields = {
        "event_id": c.event_id,
        "event_type": c.event_type,
        "node": c.node,
        "partition": c.partition,
        "attempt": c.attempt,
    }
    params = json.loads(c.params_json)
    env = {
        C.ENV_EVENT_ID: str(c.event_id),
        C.ENV_EVENT_TYPE: c.event_type,
        C.ENV_NODE: c.node,
        C.ENV_PARTITION: c.partition,
        C.ENV_ATTEMPT: str(c.attempt),
    }
    if graph.python_path:
        inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([*graph.python_path, *inherited])
    result = run_command(
        action,
        placeholder_values(fields, params),
        env,
        TaskFiles(c.inputs_json, c.params_json, limits.max_result_bytes),
        node.timeout_s,
        limits.max_log_bytes,
        lambda: running.stop_reason is not None,
        on_capture=lambda out, err: _watch_output(running, out, err),
    )
    logs = {"stdout": result.stdout, "stderr": result.stderr, "exit_code": result.exit_code}
    if result.stopped:
        return _stopped(running, result.stdout, result.stderr)
    if result.timed_out:
        return _report(running, Outcome.TIMEOUT, error=f"timed out after {node.timeout_s:g}s; killed", **logs)
    if result.exit_code == 0 and result.result_problem is not None:
        return _report(running, Outcome.INVALID_RESULT, error=result.result_problem, **logs)
    if result.exit_code == 0:
        return _report(running, Outcome.SUCCEEDED, result_json=result.result_json, **logs)
    if result.exit_code is not None and result.exit_code < 0:
        return _report(running, Outcome.CRASHED, error=f"killed by signal {-result.exit_code}", **logs)
    return _report(running, Outcome.FAILED, error=f"exited with code {result.exit_code}", **logs)
