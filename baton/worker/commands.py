"""Argv commands: parameters reach them as a JSON file, and as whole argv items or environment
variables where the graph places them.

There is no shell anywhere on this path: the argv list reaches ``execvpe`` as a list, so a
parameter such as ``"; touch /tmp/pwned #"`` or ``$(id)`` arrives as one literal argument. A
placeholder (``{partition}``, ``{params.year}`` ...) is replaced only when it is the whole item;
that was checked when the graph was loaded.

The command is not the worker's child: it runs under a guard (``guard.py``), a small process
that starts it in a session of its own and ends it with its whole process group (and, on Linux,
every descendant) when the worker asks or when the worker dies, even of kill -9: the worker holds
the only write end of the guard's control pipe, and the guard reads end of file when it closes.
A timeout or a stop order is a graceful stop (SIGTERM, ``KILL_GRACE_S`` of grace, then SIGKILL);
a missing executable is reported by the guard as ``cannot start 'x': ...`` with exit code 127.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from baton.graphs.model import CommandAction
from baton.graphs.spec import PLACEHOLDER_RE
from baton.settings import without_settings
from baton.worker import context as C
from baton.worker import guard
from baton.worker.capture import read_capped

KILL_GRACE_S = guard.KILL_GRACE_S
GUARD_SLACK_S = 3.0  # how long past its grace a guard may take before the worker kills it


@dataclass(frozen=True)
class TaskFiles:
    """What a command reads from files (its upstream results and the event's parameters, as JSON
    text) and how big a result it may write back."""

    inputs_json: str
    params_json: str
    max_result_bytes: int


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None
    timed_out: bool
    stopped: bool
    result_json: str | None
    stdout: str
    stderr: str
    result_problem: str | None = None  # why the result file cannot be a result (too big, not UTF-8)


def placeholder_values(fields: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, str]:
    """The text each placeholder stands for; non-string parameters are given as JSON."""
    values = {"python": sys.executable, **{k: str(v) for k, v in fields.items()}}
    for name, value in params.items():
        values[f"params.{name}"] = value if isinstance(value, str) else json.dumps(value)
    return values


def substitute(item: str, values: Mapping[str, str]) -> str:
    match = PLACEHOLDER_RE.fullmatch(item)
    return values[match.group(1)] if match else item


def run_command(
    action: CommandAction,
    values: Mapping[str, str],
    env_extra: Mapping[str, str],
    files: TaskFiles,
    timeout_s: float | None,
    max_log_bytes: int,
    should_stop: Callable[[], bool],
    on_start: Callable[[subprocess.Popen[bytes]], None] = lambda p: None,
    on_capture: Callable[[BinaryIO, BinaryIO], None] = lambda out, err: None,
) -> CommandResult:
    """Run the command to completion, its timeout, or until ``should_stop()``. ``on_start`` gets
    the guard's process (the command is its child), ``on_capture`` the files its stdout and
    stderr go to (before it starts; they are closed when this returns)."""
    argv = [substitute(a, values) for a in action.argv]
    with tempfile.TemporaryDirectory(prefix="baton-task-") as tmp:
        inputs, params, result = Path(tmp, "inputs.json"), Path(tmp, "params.json"), Path(tmp, "result.json")
        inputs.write_text(files.inputs_json, encoding="utf-8")
        params.write_text(files.params_json, encoding="utf-8")
        env = {**without_settings(os.environ), **env_extra, C.ENV_INPUTS_FILE: str(inputs),
               C.ENV_PARAMS_FILE: str(params), C.ENV_RESULT_FILE: str(result)}  # fmt: skip
        env |= {k: substitute(v, values) for k, v in action.env.items()}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            on_capture(out, err)
            try:
                guarded = Guarded.start(argv, env, action.cwd, out, err)
            except OSError as exc:  # no such cwd, argv too long (E2BIG), no memory for a process
                return CommandResult(127, False, False, None, "", f"cannot start {argv[0]!r}: {exc.strerror}\n")
            try:
                on_start(guarded.process)
                code, timed_out, stopped = _wait(guarded, timeout_s, should_stop)
            finally:
                guarded.kill()  # a no-op once it has ended; else (an error here) it must not run on
            text, problem = read_result(result, files.max_result_bytes)
            stdout, stderr = read_capped(out, max_log_bytes), read_capped(err, max_log_bytes)
            return CommandResult(code, timed_out, stopped, text, stdout, stderr, problem)


def read_result(path: Path, max_bytes: int) -> tuple[str | None, str | None]:
    """The result file's text (None when absent or empty), or why it cannot be a result. Never
    reads more than the cap: a command may write gigabytes there."""
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read the result file: {exc.strerror or exc}"
    if len(raw) > max_bytes:
        size = path.stat().st_size
        return None, (f"the result file is {size:,} bytes, over the {max_bytes:,}-byte cap; "
                      "write large data to files and return their paths")  # fmt: skip
    try:
        return raw.decode("utf-8") or None, None
    except UnicodeDecodeError as exc:
        return None, f"the result file is not UTF-8 text (byte {exc.start})"


class Guarded:
    """The worker's side of one command running under its guard."""

    def __init__(self, process: subprocess.Popen[bytes], control: int) -> None:
        self.process = process
        self._control: int | None = control  # the write end of the guard's control pipe
        self._pidfd = _pidfd(process.pid)  # readable once the guard has ended (Linux 5.3+)

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], cwd: str | None, out: Any, err: Any) -> Guarded:
        """Start the guard, which starts the command. Both ends of the pipe are close-on-exec and
        the guard gets the read end alone (``pass_fds``, which also closes every other descriptor
        in the child): no other process can hold the write end, so its end of file is the worker's."""
        control_r, control_w = os.pipe()
        try:
            process = subprocess.Popen(
                [*guard_command(), str(control_r), _lc_ctype(env), *argv],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(control_r,),
                start_new_session=True,  # out of reach of the worker's terminal (Ctrl-C drains it)
                shell=False,
            )
        except BaseException:
            os.close(control_w)
            raise
        finally:
            os.close(control_r)
        return cls(process, control_w)

    def ended_within(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the guard to end (woken at once where there are pidfds)."""
        if self._pidfd is None:
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return False
            return True
        if not select.select([self._pidfd], [], [], timeout_s)[0]:
            return False
        self.process.wait()
        return True

    def stop(self) -> int | None:
        """Graceful: the guard SIGTERMs the command's group, and SIGKILLs what is left after the
        grace (children included, even when the leader has already exited)."""
        if self._control is not None:
            with contextlib.suppress(OSError):  # it has just ended
                os.write(self._control, guard.STOP)
        try:
            return self.process.wait(timeout=KILL_GRACE_S + GUARD_SLACK_S)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        """At once: closing the control pipe has the guard SIGKILL the command and its descendants."""
        if self._control is not None:
            os.close(self._control)
            self._control = None
        try:
            return self.process.wait(timeout=GUARD_SLACK_S)
        except subprocess.TimeoutExpired:  # the guard itself is stuck: the command's leader dies with it
            self.process.kill()
            return self.process.wait()
        finally:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    except OSError:  # an older kernel, or a sandbox that forbids it: poll instead
        return None


def guard_command() -> list[str]:
    """How the guard starts: a bare interpreter (no site, no environment) that imports it from its
    folder rather than running the file, so its cached bytecode is used (compiling costs ~3 ms)."""
    folder = os.path.dirname(os.path.abspath(guard.__file__))
    code = f"import sys; sys.path.append({folder!r}); import guard; guard.main(sys.argv[1:])"
    return [sys.executable, "-I", "-S", "-c", code]


def _lc_ctype(env: Mapping[str, str]) -> str:
    """LC_CTYPE as the guard must restore it (see guard.py: Python's start-up may change it)."""
    return "=" + env["LC_CTYPE"] if "LC_CTYPE" in env else ""


def _wait(guarded: Guarded, timeout_s: float | None, should_stop: Callable[[], bool]) -> tuple[int | None, bool, bool]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    step = 0.002
    while True:
        if guarded.ended_within(step):
            return guarded.process.returncode, False, False
        if should_stop():
            return guarded.stop(), False, True
        if deadline is not None and time.monotonic() >= deadline:
            return guarded.stop(), True, False
        step = min(step * 2, 0.1)
