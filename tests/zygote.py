"""Start ``baton`` commands as new processes forked from one that has already imported Baton.

A ``python -m baton`` spends most of its CPU importing (about 0.5 s of a 0.6 s ``submit`` on this
machine), and the suite starts a few hundred of them. Each test process has one *zygote*: a child
that imports the command line, its commands, the stores and the server once, then waits on a Unix
socket. For each request it forks a *waiter*, which forks the command's process and reports its
pid, then its exit status and CPU time. The command's process is as separate as a ``subprocess``
one: its own working directory, environment (replaced before anything runs), ``stdout``/``stderr``
files, memory cap and exit code; it runs ``baton/__main__.py`` exactly as ``python -m baton`` would.
What it does not repeat is the interpreter's start-up and the imports, and those are covered by the
processes the tests still start with ``sys.executable -m baton`` (workers, controllers, the remote
cluster) and by the README's commands.

The zygote is started on first use in each test process and ends when that process does (it
watches the pipe on its standard input).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PRELOAD = ("baton.cli.main", "baton.store.sqlite", "baton.store.postgres", "baton.server.app")


@dataclass(frozen=True)
class Ran:
    """A finished command: exit code (negative: killed by that signal), output, CPU seconds."""

    code: int
    stdout: str
    stderr: str
    cpu_s: float


class Forked:
    """A command started from the zygote, with the part of :class:`subprocess.Popen` tests use."""

    def __init__(self, conn: socket.socket, argv: list[str]) -> None:
        self._conn = conn
        self._buffer = b""
        self._lock = threading.Lock()
        self.args = argv
        started = self._line(None)
        assert started is not None
        self.pid: int = started["pid"]
        self.returncode: int | None = None
        self.cpu_s: float | None = None

    def _line(self, timeout: float | None) -> dict[str, Any] | None:
        """The waiter's next report, or None if none came within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self._conn], [], [], left)
            if not readable:
                return None
            data = self._conn.recv(4096)
            if not data:
                raise RuntimeError(f"the zygote's waiter for {self.args} went away")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        report: dict[str, Any] = json.loads(line)
        return report

    def _collect(self, timeout: float | None) -> int | None:
        with self._lock:
            if self.returncode is None:
                done = self._line(timeout)
                if done is None:
                    return None
                self.returncode, self.cpu_s = done["code"], done["cpu_s"]
                self._conn.close()
            return self.returncode

    def poll(self) -> int | None:
        return self._collect(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._collect(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="zygote-"))
        self._socket = self._folder / "socket"
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(self._socket)],
            stdin=subprocess.PIPE,  # the zygote ends when this end closes (this process ended)
            cwd=self._folder,
        )
        assert self._proc.stdout is None
        ready = self._folder / "ready"
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the zygote did not start (exit {self._proc.returncode})")
            time.sleep(0.01)

    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path | str,
        stdout: Path,
        stderr: Path,
        append: bool = False,
        memory_cap: int | None = None,
    ) -> Forked:
        """``baton ARGV`` in a new process; its output goes to the given files."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(self._socket))
        request = {"argv": argv, "env": env, "cwd": str(cwd), "stdout": str(stdout), "stderr": str(stderr),
                   "append": append, "memory_cap": memory_cap}  # fmt: skip
        conn.sendall(json.dumps(request).encode() + b"\n")
        return Forked(conn, argv)

    def run(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        timeout: float = 120,
        memory_cap: int | None = None,
    ) -> Ran:
        """``baton ARGV`` to its end; a command still running after ``timeout`` is killed and
        :class:`subprocess.TimeoutExpired` raised, as :func:`subprocess.run` does."""
        with tempfile.TemporaryDirectory(prefix="baton-run-") as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            proc = self.start(argv, env=dict(os.environ if env is None else env), cwd=cwd or os.getcwd(),
                              stdout=out, stderr=err, memory_cap=memory_cap)  # fmt: skip
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            assert proc.cpu_s is not None
            text = [p.read_bytes().decode(errors="replace") for p in (out, err)]
            return Ran(code, text[0], text[1], proc.cpu_s)


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def zygote() -> Zygote:
    """This test process's zygote, started on first use."""
    global _zygote
    with _zygote_lock:
        if _zygote is None or _zygote._proc.poll() is not None:
            _zygote = Zygote()
        return _zygote


# --- the zygote's side -----------------------------------------------------------------------------


def _command(request: dict[str, Any]) -> None:
    """In the command's process: become ``python -m baton ARGV`` and run to the end."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if request["memory_cap"] is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (request["memory_cap"], request["memory_cap"]))
    mode = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if request["append"] else os.O_TRUNC)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        opened = os.open(path, mode, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    os.close(null)
    sys.argv = [str(Path(sys.executable).parent / "baton"), *request["argv"]]
    sys.path.insert(0, request["cwd"])  # as ``-m`` does: the working directory first
    import runpy

    runpy.run_module("baton", run_name="__main__", alter_sys=True)
    sys.exit(0)  # the interpreter then ends as ``python -m baton`` would: threads joined, atexit run


def _waiter(conn: socket.socket, request: dict[str, Any]) -> None:
    """In the waiter: start the command, report its pid, then its end."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _command(request)  # never returns: SystemExit ends this process
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status, usage = os.wait4(pid, 0)
    done = {"code": os.waitstatus_to_exitcode(status), "cpu_s": usage.ru_utime + usage.ru_stime}
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(done).encode() + b"\n")
    os._exit(0)


def _serve(path: str) -> None:
    import importlib

    for name in _PRELOAD:
        importlib.import_module(name)
    from baton.cli import main as cli

    for module in set(cli.COMMANDS.values()):
        importlib.import_module(f"baton.cli.{module}")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # waiters are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    Path("ready").touch()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                os._exit(0)  # the test process ended
            conn, _ = listener.accept()
            request = json.loads(conn.makefile("rb").readline())
            if os.fork() == 0:
                listener.close()
                selector.close()
                _waiter(conn, request)
            conn.close()


if __name__ == "__main__":
    sys.path.pop(0)  # not this folder: the command must import what ``python -m baton`` would
    _serve(sys.argv[1])
