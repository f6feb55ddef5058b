"""Task bodies for the engine's own tests. Each behaves as its name says.

``ledger`` rows are appended to the file named by the ``ledger`` parameter, one JSON line per
execution start, so tests count executions outside Baton's own bookkeeping.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _ledger(ctx: Any, what: str) -> None:
    path = ctx.params.get("ledger")
    if path:
        line = json.dumps(
            {
                "node": ctx.node,
                "partition": ctx.partition,
                "attempt": ctx.attempt,
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "what": what,
                "t": time.time(),
            }
        )
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def ok(ctx: Any) -> dict[str, Any]:
    _ledger(ctx, "start")
    print(f"hello from {ctx.node}[{ctx.partition}]")
    ctx.log("logged a line")
    return {"node": ctx.node, "partition": ctx.partition, "inputs": sorted(ctx.inputs)}


def slow(ctx: Any) -> dict[str, Any]:
    """Sleeps ``slow_<partition>_s`` when that is set and non-zero, else ``sleep_s``; cut short
    once the file named by the ``release`` parameter (when set) exists: a test holds tasks
    running for as long as it needs them, and lets the rest of the event run at once."""
    _ledger(ctx, "start")
    delay = float(ctx.params.get(f"slow_{ctx.partition}_s") or ctx.params.get("sleep_s") or 0.0)
    release = ctx.params.get("release")
    if release:
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not Path(release).exists():
            time.sleep(0.02)
    else:
        time.sleep(delay)
    _ledger(ctx, "end")
    return {"slept": delay}


def fail(ctx: Any) -> None:
    _ledger(ctx, "start")
    raise RuntimeError(f"always fails ({ctx.node}[{ctx.partition}] attempt {ctx.attempt})")


def fail_partition(ctx: Any) -> dict[str, Any]:
    """Fails for the partition named by the ``bad`` parameter, until the file ``fixed`` exists."""
    _ledger(ctx, "start")
    if ctx.partition == ctx.params.get("bad") and not Path(ctx.params.get("fixed", "/nonexistent")).exists():
        raise FileNotFoundError(f"input for {ctx.partition} is missing")
    return {"ok": ctx.partition}


def hang(ctx: Any) -> None:
    _ledger(ctx, "start")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    # written whole, then renamed: a test waiting for the file must never read it half-written
    target = Path(ctx.params["child_pid_file"])
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(str(child.pid))
    os.replace(temporary, target)
    print("hanging now", flush=True)
    time.sleep(600)


def crash(ctx: Any) -> None:
    _ledger(ctx, "start")
    if ctx.attempt == 1:
        ctypes.string_at(0)  # segfault


def shout(ctx: Any) -> None:
    sys.stdout.write("x" * int(ctx.params.get("bytes", 1_000_000)))


def bad_result(ctx: Any) -> Any:
    return {"a set": {1, 2}}


def echo_params(ctx: Any) -> dict[str, Any]:
    return {"event_id": ctx.event_id, "params": dict(ctx.params)}


SEEN_VARIABLES = ("BATON_DB", "BATON_CONFIG", "BATON_LEASE_S", "BATON_UNRELATED")


def environment(ctx: Any) -> dict[str, Any]:
    """Which of SEEN_VARIABLES the task's process sees."""
    return {name: os.environ.get(name) for name in SEEN_VARIABLES}


def talk_then_wait(ctx: Any) -> dict[str, Any]:
    """Prints a line to each stream (no flush: the executor's stdout is line-buffered), then waits
    until the file named by the ``release`` parameter exists (at most a minute)."""
    print(f"started {ctx.node}, attempt {ctx.attempt} ✓")
    print(f"{ctx.node} is waiting", file=sys.stderr)
    release, deadline = Path(ctx.params["release"]), time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    print("released")
    return {"released": release.exists()}
