"""Task bodies for the worker-kill tests (tests/acceptance/test_worker_kill.py).

The first attempt starts a child, and on request a daemon that leaves its process group (double
fork and setsid), writes the identities of its processes to ``attempt-1.json`` and hangs. A retry
writes ``attempt-N.json``: when it started and which of the first attempt's processes were still
alive then. Every file is written to a temporary name and renamed, so no reader ever sees half of
one. A process's identity is its pid and its start time, so a reused pid is never taken for it.

The same code runs as a Python task (``kill_tasks:hang``, parameters ``folder`` and ``daemon``)
and as an argv command (``python kill_tasks.py FOLDER ATTEMPT DAEMON``; DAEMON is ``yes``/``no``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]


def identity(pid: int) -> list[Any]:
    return [pid, _start_time(pid)]


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (Linux); None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()[19].decode()


def alive(process: list[Any]) -> bool:
    """Is this process still running (not a zombie, not a later process with the same pid)?"""
    pid, started = process
    if started is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0] not in (b"Z", b"X") and fields[19].decode() == started


def write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    """The file's content, or None while it does not exist (it never exists half-written)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def wait_for_json(path: Path, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while (data := read_json(path)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written within {timeout_s}s")
        time.sleep(0.01)
    return data


def run(folder: Path, attempt: int, daemon: bool) -> None:
    if attempt > 1:
        first = read_json(folder / "attempt-1.json")
        still = [p for p in first["processes"] if alive(p)] if first else None
        write_json(folder / f"attempt-{attempt}.json", {"t": time.time(), "alive_at_start": still})
        return
    child = subprocess.Popen(SLEEP)
    processes = [identity(os.getpid()), identity(child.pid)]
    if daemon:
        subprocess.run([sys.executable, __file__, "daemon", str(folder / "daemon.json")], check=True)
        processes.append(wait_for_json(folder / "daemon.json")["process"])
    write_json(folder / "attempt-1.json", {"t": time.time(), "processes": processes})
    print("hanging now", flush=True)
    time.sleep(600)


def _daemonize(marker: Path) -> None:
    """The classic double fork: the daemon is in a session of its own, and its parent is gone."""
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    write_json(marker, {"process": identity(os.getpid())})
    time.sleep(600)
    os._exit(0)


def hang(ctx: Any) -> None:
    run(Path(ctx.params["folder"]), ctx.attempt, ctx.params.get("daemon") == "yes")


if __name__ == "__main__":
    if sys.argv[1] == "daemon":
        _daemonize(Path(sys.argv[2]))
    else:
        run(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "yes")
