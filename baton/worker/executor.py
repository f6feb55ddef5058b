"""Executor processes: long-lived children that run Python callables, one task at a time.

A fresh process per task would cost tens of milliseconds; a thread could not be killed at
its timeout and a crash would take the worker down. So each worker keeps up to one executor
per slot. An executor runs in its own session (process group): killing the group at a
timeout also kills anything the task started. Its stdout and stderr (file descriptors 1 and
2, so output of C code and child processes is captured too) go to files that are emptied
before each task (the worker reads them as the task writes, for its live log: Python's own
stdout is line-buffered there); messages travel over a separate pipe as JSON.

An executor outlives no worker: it checks every half second that its parent is still there, and
when the worker is gone (even killed with -9) it kills its process group. On Linux it is also a
child subreaper (see guard.py), so what a task started that left the group (a daemon that
double-forked and called setsid) is handed to it and killed first. Such orphans are its children
now, so between tasks it reaps whichever of its children have ended.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, BinaryIO

from baton.worker import guard
from baton.worker.capture import LiveFiles, read_capped, reset
from baton.worker.context import TaskContext


class ExecutorDied(Exception):
    """The executor process ended while running a task (crash, kill or timeout)."""


PARAMS_KEPT = 32  # events whose parameters an executor keeps; the child keeps twice as many


class Executor:
    """The parent's handle on one executor process."""

    def __init__(self) -> None:
        self._events_sent: OrderedDict[int, None] = OrderedDict()
        self.killed = False  # set once we have killed it (timeout, stop order, or it died)
        parent, child = socket.socketpair()
        self.capture_dir = tempfile.mkdtemp(prefix="baton-executor-")
        self.out_path = os.path.join(self.capture_dir, "stdout")
        self.err_path = os.path.join(self.capture_dir, "stderr")
        # read here while a task runs, for its live log (the executor only ever truncates them)
        self.output = LiveFiles.open(self.out_path, self.err_path)
        # A plain interpreter running this module, not multiprocessing's spawn: that would import
        # the worker's __main__ (the whole CLI) into every executor, ~0.5 s of CPU and ~20 MB
        # each. Its own session (process group) from the start, so a kill reaches its children.
        # Not a daemon: tasks may start processes of their own. The executor watches its parent
        # instead and ends its process group if the worker dies (see _watch_parent).
        argv = [sys.executable, "-c", "from baton.worker.executor import main; main()", str(child.fileno()),
                str(os.getpid()), self.out_path, self.err_path, json.dumps(sys.path)]  # fmt: skip
        # imported here, in the worker: the executor process itself must not load pydantic (~20 MB each)
        from baton.settings import without_settings

        self.process = subprocess.Popen(
            argv,
            pass_fds=[child.fileno()],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            env=without_settings(os.environ),  # task code never sees the database URL
        )
        child.close()
        self.conn: Connection = Connection(parent.detach())

    def note_event(self, event_id: int) -> bool:
        """Record that the next task is of this event; True when its parameters must be sent.

        The child keeps the last 2 * PARAMS_KEPT events used, this side the last PARAMS_KEPT, over
        the same sequence of tasks, so whatever this side thinks was sent is still held there."""
        sent = event_id in self._events_sent
        self._events_sent[event_id] = None
        self._events_sent.move_to_end(event_id)
        if len(self._events_sent) > PARAMS_KEPT:
            self._events_sent.popitem(last=False)
        return not sent

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: str) -> None:
        """Hand the executor a task; its answer arrives on :attr:`conn` (see :meth:`receive`)."""
        try:
            self.conn.send_bytes(message.encode())
        except OSError as exc:
            self.kill()
            raise ExecutorDied(self.exit_description()) from exc

    def receive(self) -> dict[str, Any]:
        """The answer to the task sent last; call when :attr:`conn` is readable. Raises
        ExecutorDied when the process ended instead (crash, kill, or a stop order)."""
        try:
            raw = self.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            self.kill()
            raise ExecutorDied(self.exit_description()) from exc
        reply: dict[str, Any] = json.loads(raw)
        return reply

    def signal_kill(self) -> None:
        """SIGKILL the executor and every process it started, without waiting for it to end."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()

    def kill(self) -> None:
        """Kill the executor and every process it started, and reap it."""
        self.signal_kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def exit_description(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        code = self.process.returncode
        if code is not None and code < 0:
            return f"the task's process was killed by signal {signal.Signals(-code).name}"
        return f"the task's process exited with code {code}"

    def partial_output(self, max_bytes: int) -> tuple[str, str]:
        """What a task wrote before its process died (read after a timeout or crash)."""
        texts = []
        for path in (self.out_path, self.err_path):
            try:
                with open(path, "rb") as f:
                    texts.append(read_capped(f, max_bytes))
            except OSError:
                texts.append("")
        return texts[0], texts[1]

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.kill()
            self.output.close()
            shutil.rmtree(self.capture_dir, ignore_errors=True)


# --- inside the executor process ----------------------------------------------------------


def main() -> None:
    """Entry point of an executor process: ``FD PARENT_PID STDOUT_PATH STDERR_PATH SYS_PATH_JSON``."""
    fd, parent_pid, out_path, err_path, path = sys.argv[1:6]
    sys.path[:] = json.loads(path)  # import what the worker could import
    serve(Connection(int(fd)), int(parent_pid), out_path, err_path)


def serve(conn: Connection, parent_pid: int, out_path: str, err_path: str) -> None:
    """Executor main loop: receive a task, run it, reply; until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    subreaper = guard.become_subreaper()
    threading.Thread(target=_watch_parent, args=(parent_pid, subreaper), daemon=True).start()
    out = open(out_path, "w+b")  # noqa: SIM115 - lives as long as the process
    err = open(err_path, "w+b")  # noqa: SIM115
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    if isinstance(sys.stdout, io.TextIOWrapper):  # a line printed is in the file at once: live logs show it
        sys.stdout.reconfigure(line_buffering=True)
    functions: dict[str, Callable[[TaskContext], Any]] = {}
    params: OrderedDict[int, Any] = OrderedDict()
    while True:
        try:
            message = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        _remember_params(message, params)
        reply = run_task(message, functions)
        if subreaper:
            guard.reap_children()  # orphans handed to us that have ended (the task is over: none is its own)
        sys.stdout.flush()
        sys.stderr.flush()
        reply["stdout"] = _take_output(out, message["max_log_bytes"])
        reply["stderr"] = _take_output(err, message["max_log_bytes"])
        conn.send_bytes(json.dumps(reply).encode())


def _take_output(stream: BinaryIO, max_bytes: int) -> str:
    """What the task wrote to this capture file, which is then emptied for the next task (most
    tasks write nothing: one fstat, no reads)."""
    if os.fstat(stream.fileno()).st_size == 0:
        return ""
    text = read_capped(stream, max_bytes)
    reset(stream)
    return text


def _watch_parent(parent_pid: int, subreaper: bool) -> None:
    """If the worker is killed (even with -9), take this task and its children down with it,
    so a lost worker leaves no orphan still working on a task that will run elsewhere. As a
    subreaper, first every descendant (they may have left the group), then the group and us."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    if subreaper:
        guard.kill_tree(None)
    os.killpg(0, signal.SIGKILL)


def _remember_params(message: dict[str, Any], params: OrderedDict[int, Any]) -> None:
    """Attach the event's parameters to the task's context, from the message or the cache."""
    event_id = message["context"]["event_id"]
    if "params" in message:
        params[event_id] = message.pop("params")
    params.move_to_end(event_id)
    if len(params) > 2 * PARAMS_KEPT:
        params.popitem(last=False)
    message["context"]["params"] = params[event_id]


def run_task(message: dict[str, Any], functions: dict[str, Callable[[TaskContext], Any]]) -> dict[str, Any]:
    for entry in message["python_path"]:
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        function = functions.get(message["target"]) or _import(message["target"], functions)
        ctx = TaskContext(**message["context"])
        value = function(ctx)
    except BaseException as exc:
        traceback.print_exc()
        return {"ok": False, "kind": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return _encode(value, message["max_result_bytes"])


def _import(target: str, functions: dict[str, Callable[[TaskContext], Any]]) -> Callable[[TaskContext], Any]:
    module_name, _, attribute = target.partition(":")
    function = getattr(importlib.import_module(module_name), attribute)
    if not callable(function):
        raise TypeError(f"{target} is not callable")
    functions[target] = function
    return function  # type: ignore[no-any-return]


def _encode(value: Any, max_bytes: int) -> dict[str, Any]:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "kind": "invalid_result", "error": f"the task's result is not JSON: {exc}"}
    size = len(text.encode())
    if size > max_bytes:
        error = (
            f"the task's result is {size:,} bytes, over the {max_bytes:,}-byte cap; "
            "write large data to files and return their paths"
        )
        return {"ok": False, "kind": "invalid_result", "error": error}
    return {"ok": True, "result": text}
