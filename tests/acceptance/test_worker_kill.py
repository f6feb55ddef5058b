"""A worker killed with -9 takes the processes of its attempts down with it, before any retry.

Argv commands run under a guard (baton/worker/guard.py) that reads end of file on its control
pipe when the worker dies; executors of Python tasks notice that their parent is gone. Either way
the attempt's processes, their children and (on Linux) daemons that left the process group are
gone within 2 s, so the retry that runs once the lease has expired never runs beside an old copy.

The task bodies (tests/graphs/kill_tasks.py) write the identities of their processes atomically,
and the retry records which processes of the first attempt were still alive when it started.
The second half runs the guard on its own, without a store: what a command sees and how it ends.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cluster import GRAPHS, Cluster, running_cluster

from baton.engine.states import EventState, Outcome
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import CommandAction, Graph
from baton.worker.commands import KILL_GRACE_S, CommandResult, TaskFiles, run_command

GONE_WITHIN_S = 2.0
FILES = TaskFiles(inputs_json="{}", params_json="{}", max_result_bytes=1024 * 1024)
KILL_TASKS = Path(GRAPHS) / "kill_tasks.py"
LINUX = sys.platform.startswith("linux")
linux_only = pytest.mark.skipif(
    not LINUX, reason="only Linux has child subreapers and PR_SET_PDEATHSIG (see docs/architecture.md)"
)


def _load_kill_tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kill_tasks", KILL_TASKS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


K = _load_kill_tasks()


def wait_gone(processes: list[Any], within_s: float) -> float:
    """Seconds until none of the processes is alive; fails naming the survivors after ``within_s``."""
    started = time.monotonic()
    while survivors := [p for p in processes if K.alive(p)]:
        assert time.monotonic() - started < within_s, f"still alive after {within_s}s: {survivors}"
        time.sleep(0.005)
    return time.monotonic() - started


# --- a worker killed with -9, on both stores ------------------------------------------------


@pytest.fixture
def cluster(store_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from running_cluster(store_url, tmp_path)


def hanging_graph(kind: str, folder: Path, daemon: bool) -> Graph:
    g = GraphBuilder(f"kill-{kind}", python_path=[GRAPHS], defaults={"retries": 1, "retry_delay_s": 0.0})
    g.param("folder", "string", default=str(folder)).param("daemon", "string", default="yes" if daemon else "no")
    if kind == "command":
        g.command("stuck", ["{python}", str(KILL_TASKS), "{params.folder}", "{attempt}", "{params.daemon}"])
    else:
        g.python("stuck", "kill_tasks:hang")
    return g.build()


def kill_9_mid_attempt(cluster: Cluster, folder: Path, kind: str, daemon: bool) -> float:
    """Kill -9 the worker running the first attempt of the only task while a second worker stands
    by; check the retry saw none of the first attempt's processes. Returns kill-to-gone seconds."""
    event_id = cluster.submit(hanging_graph(kind, folder, daemon))
    cluster.start_controller()
    victim = cluster.start_worker(slots=1)
    first = K.wait_for_json(folder / "attempt-1.json", timeout_s=60)
    assert len(first["processes"]) == (3 if daemon else 2)  # the task's process, its child (, the daemon)
    cluster.start_worker(slots=1)  # takes the retry once the lease (2 s) has expired
    killed = time.monotonic()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    wait_gone(first["processes"], within_s=GONE_WITHIN_S - (time.monotonic() - killed))
    gone_after_s, gone_at = time.monotonic() - killed, time.time()
    assert cluster.wait(event_id) is EventState.SUCCEEDED
    (task,) = cluster.backend.tasks(event_id)
    assert [a.outcome for a in cluster.backend.attempts([task.id])] == [Outcome.LOST, Outcome.SUCCEEDED]
    retry = K.read_json(folder / "attempt-2.json")
    assert retry["alive_at_start"] == [], "the retry ran beside processes of the first attempt"
    assert retry["t"] > gone_at, "the retry started before the first attempt's processes were gone"
    print(f"{kind}{' + daemon' if daemon else ''}: gone {gone_after_s:.3f}s after kill -9")
    return gone_after_s


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["command", "python"])
def test_kill_9_of_a_worker_ends_its_attempt_and_the_attempts_child_before_the_retry(
    cluster: Cluster, tmp_path: Path, kind: str
) -> None:
    assert kill_9_mid_attempt(cluster, tmp_path, kind, daemon=False) < GONE_WITHIN_S


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["command", "python"])
@pytest.mark.long(seconds=15)
def test_a_daemon_that_left_the_attempts_process_group_dies_with_the_killed_worker(
    cluster: Cluster, tmp_path: Path, kind: str
) -> None:
    assert kill_9_mid_attempt(cluster, tmp_path, kind, daemon=True) < GONE_WITHIN_S


# --- the guard on its own -------------------------------------------------------------------


def run(
    argv: list[str], timeout_s: float | None = None, should_stop: Callable[[], bool] = lambda: False, **kw: Any
) -> CommandResult:
    return run_command(CommandAction(tuple(argv), **kw), {}, {}, FILES, timeout_s, 65536, should_stop)


def test_a_command_ends_as_it_would_without_the_guard() -> None:
    failed = run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (failed.exit_code, failed.stdout, failed.stderr) == (3, "out\n", "err\n")
    assert run(["sh", "-c", "kill -USR1 $$"]).exit_code == -signal.SIGUSR1
    assert run(["sh", "-c", "kill -KILL $$"]).exit_code == -signal.SIGKILL


def test_a_command_that_cannot_start_says_why_with_exit_code_127(tmp_path: Path) -> None:
    not_executable = tmp_path / "data.txt"
    not_executable.write_text("just text")
    cases = {
        "/no/such/program": (["/no/such/program"], {}, "No such file or directory"),
        "no-such-program-on-the-path": (["no-such-program-on-the-path"], {}, "No such file or directory"),
        str(not_executable): ([str(not_executable)], {}, "Permission denied"),
        "true": (["true"], {"cwd": str(tmp_path / "no-such-dir")}, "No such file or directory"),
        "echo": (["echo", "x" * 3_000_000], {}, "Argument list too long"),
    }
    for name, (argv, kw, why) in cases.items():
        result = run(argv, **kw)
        assert (result.exit_code, result.stderr) == (127, f"cannot start {name!r}: {why}\n"), argv[:1]


def test_the_environment_reaches_the_command_as_meant() -> None:
    """Python's start-up turns LC_CTYPE=C into C.UTF-8 (PEP 538); the guard puts it back."""
    result = run(["sh", "-c", 'printf %s "$LC_CTYPE"'], env={"LC_CTYPE": "C"})
    assert result.stdout == "C"


def test_a_timeout_terminates_the_command_then_kills_it_with_its_child_after_the_grace(tmp_path: Path) -> None:
    """Both the command and its child ignore SIGTERM: SIGKILL after the grace takes both."""
    stubborn = (
        "trap 'echo got TERM' TERM; (trap '' TERM; exec sleep 600) & echo $! > {pid}.tmp; mv {pid}.tmp {pid}; "
        "while :; do sleep 0.05; done"
    )
    started = time.monotonic()
    result = run(["sh", "-c", stubborn.format(pid=tmp_path / "child")], timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert result.timed_out and result.exit_code == -signal.SIGKILL and "got TERM" in result.stdout
    assert 0.5 + KILL_GRACE_S <= elapsed < 0.5 + KILL_GRACE_S + 1.5
    assert not K.alive(_pid_in(tmp_path / "child"))  # the guard has reaped it before it ended


def test_a_stop_order_terminates_the_command_and_its_group(tmp_path: Path) -> None:
    marker = tmp_path / "child"
    result = run(
        ["sh", "-c", f"sleep 600 & echo $! > {marker}.tmp; mv {marker}.tmp {marker}; wait"], should_stop=marker.exists
    )
    assert result.stopped and result.exit_code == -signal.SIGTERM
    assert not K.alive(_pid_in(marker))  # the guard has reaped it before it ended


def test_what_a_command_leaves_behind_is_killed_when_it_exits(tmp_path: Path) -> None:
    """The leader starts a child (and on Linux a daemon in a session of its own), then exits."""
    script = (
        "import importlib.util, os, threading\n"
        f"spec = importlib.util.spec_from_file_location('kill_tasks', {str(KILL_TASKS)!r})\n"
        "k = importlib.util.module_from_spec(spec); spec.loader.exec_module(k)\n"
        f"folder = k.Path({str(tmp_path)!r})\n"
        f"threading.Thread(target=k.run, args=(folder, 1, {LINUX}), daemon=True).start()\n"
        "k.wait_for_json(folder / 'attempt-1.json')\n"
        "os._exit(0)\n"
    )
    result = run([sys.executable, "-c", script])
    assert result.exit_code == 0, result.stderr
    processes = K.read_json(tmp_path / "attempt-1.json")["processes"]
    assert len(processes) == (3 if LINUX else 2)
    assert [p for p in processes if K.alive(p)] == []  # gone by the time run_command returned


FAKE_WORKER = """
import json, os, sys, threading, time
from pathlib import Path
from baton.graphs.model import CommandAction
from baton.worker.commands import TaskFiles, run_command
from baton.worker.executor import Executor
kill_tasks, ready, folders = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
for folder in folders:  # each started while those before it run
    argv = (sys.executable, kill_tasks, folder, "1", "no")
    threading.Thread(target=run_command, args=(CommandAction(argv), {}, {}, TaskFiles("{}", "{}", 4096), None, 4096,
                                                  lambda: False)).start()
    while not (Path(folder) / "attempt-1.json").exists():
        time.sleep(0.01)
executor = Executor()  # started last: it must not hold the commands' pipes either
ready.with_suffix(".tmp").write_text(json.dumps(executor.process.pid))
os.replace(ready.with_suffix(".tmp"), ready)
time.sleep(600)
"""


def pipe_write_ends(pid: int) -> set[str]:
    """The pipes this process holds open for writing ("pipe:[inode]"); none if it has ended."""
    ends = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            flags = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
            if target.startswith("pipe:") and int(flags, 8) & os.O_ACCMODE == os.O_WRONLY:
                ends.add(target)
    except OSError:
        pass
    return ends


@linux_only
def test_only_the_worker_holds_the_write_ends_of_its_guards_pipes(tmp_path: Path) -> None:
    """Were a write end inherited by another command, its guard, or an executor, that guard would
    not read end of file when the worker dies. Three commands started one after the other and an
    executor started last; no other process on the machine holds their pipes for writing. Then
    the worker is killed with -9 and all of them end."""
    folders = [tmp_path / name for name in ("a", "b", "c")]
    for folder in folders:
        folder.mkdir()
    argv = [sys.executable, "-c", FAKE_WORKER, str(KILL_TASKS), str(tmp_path / "ready"), *map(str, folders)]
    worker = subprocess.Popen(argv)
    try:
        executor = K.wait_for_json(tmp_path / "ready")
        processes = [p for f in folders for p in K.read_json(f / "attempt-1.json")["processes"]]
        controls = pipe_write_ends(worker.pid)
        assert len(controls) == len(folders)
        holders = {pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if pipe_write_ends(pid) & controls}
        assert holders == {worker.pid}
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert wait_gone([*processes, K.identity(executor)], within_s=GONE_WITHIN_S) < GONE_WITHIN_S


@linux_only
def test_the_command_dies_with_its_guard_even_when_the_guard_is_killed(tmp_path: Path) -> None:
    guards: list[subprocess.Popen[bytes]] = []
    results: list[CommandResult] = []
    argv = (sys.executable, str(KILL_TASKS), str(tmp_path), "1", "no")
    thread = threading.Thread(
        target=lambda: results.append(
            run_command(CommandAction(argv), {}, {}, FILES, None, 4096, lambda: False, on_start=guards.append)
        )
    )
    thread.start()
    leader, child = K.wait_for_json(tmp_path / "attempt-1.json")["processes"]
    guards[0].send_signal(signal.SIGKILL)
    thread.join(timeout=10)
    assert results and results[0].exit_code == -signal.SIGKILL
    try:
        assert wait_gone([leader], within_s=1.0) < 1.0  # PR_SET_PDEATHSIG
    finally:
        os.kill(child[0], signal.SIGKILL)  # the rest of the group outlives a guard killed alone


def _pid_in(path: Path) -> list[Any]:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return K.identity(int(path.read_text()))
