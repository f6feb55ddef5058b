"""Argv commands: parameters reach them as whole argv items or environment variables.

There is no shell anywhere on this path: ``subprocess.Popen`` gets a list, so a parameter
such as ``"; touch /tmp/pwned #"`` or ``$(id)`` arrives as one literal argument. A placeholder
(``{partition}``, ``{params.year}`` ...) is replaced only when it is the whole item; that was
checked when the graph was loaded.

The command runs in its own session, so a timeout or a cancel kills its whole process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton import context as C
from baton.model import CommandAction
from baton.spec import PLACEHOLDER_RE
from baton.worker.capture import read_capped

KILL_GRACE_S = 2.0


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None
    timed_out: bool
    stopped: bool
    result_json: str | None
    stdout: str
    stderr: str


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
    inputs_json: str,
    timeout_s: float | None,
    max_log_bytes: int,
    should_stop: Callable[[], bool],
    on_start: Callable[[subprocess.Popen[bytes]], None] = lambda p: None,
) -> CommandResult:
    """Run the command to completion, its timeout, or until ``should_stop()``."""
    argv = [substitute(a, values) for a in action.argv]
    with tempfile.TemporaryDirectory(prefix="baton-task-") as tmp:
        inputs, result = Path(tmp, "inputs.json"), Path(tmp, "result.json")
        inputs.write_text(inputs_json, encoding="utf-8")
        env = {**os.environ, **env_extra, C.ENV_INPUTS_FILE: str(inputs), C.ENV_RESULT_FILE: str(result)}
        env |= {k: substitute(v, values) for k, v in action.env.items()}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = _start(argv, env, action.cwd, out, err)
            except OSError as exc:
                return CommandResult(127, False, False, None, "", f"cannot start {argv[0]!r}: {exc.strerror}\n")
            on_start(proc)
            code, timed_out, stopped = _wait(proc, timeout_s, should_stop)
            text = result.read_text(encoding="utf-8") if result.exists() else None
            return CommandResult(
                code, timed_out, stopped, text or None, read_capped(out, max_log_bytes), read_capped(err, max_log_bytes)
            )


def _start(argv: list[str], env: dict[str, str], cwd: str | None, out: Any, err: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        start_new_session=True,
        shell=False,
    )


def _wait(
    proc: subprocess.Popen[bytes], timeout_s: float | None, should_stop: Callable[[], bool]
) -> tuple[int | None, bool, bool]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    step = 0.002
    while True:
        try:
            return proc.wait(timeout=step), False, False
        except subprocess.TimeoutExpired:
            pass
        if should_stop():
            kill_group(proc)
            return proc.returncode, False, True
        if deadline is not None and time.monotonic() >= deadline:
            kill_group(proc)
            return proc.returncode, True, False
        step = min(step * 2, 0.1)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, then SIGKILL whatever is left after a grace
    (children included, even when the leader has already exited)."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
