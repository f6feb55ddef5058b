"""The guard: a tiny supervisor that runs one argv command for a worker and never outlives it.

A worker killed with -9 runs no cleanup, and a command in a session of its own is then
reparented to init and keeps running beside the retry of its task. So the worker starts the
guard instead of the command (``guard.py CONTROL_FD LC_CTYPE COMMAND...``, in a bare ``python -I
-S``; see ``commands.guard_command``), and the guard starts the command and stays its parent:

- The worker holds the only write end of the control pipe. End of file on it means the worker
  is gone (any signal, kill -9 included) or wants the command gone now: the command's process
  group and every other descendant are SIGKILLed. A byte on it (:data:`STOP`) asks for a graceful
  stop instead (timeouts, stop orders): SIGTERM, :data:`KILL_GRACE_S` of grace, then SIGKILL.
- The command runs in a session (process group) of its own. On Linux the guard is a child
  subreaper, so descendants that leave the group (setsid, double fork) are handed to it when their
  parent dies and are killed too; and the command's leader has PR_SET_PDEATHSIG(SIGKILL), so it
  dies even if the guard itself is killed.
- When the leader ends, what is left of its group and of its descendants is killed; the guard
  then exits with the leader's exit code, or dies of the same signal, so the worker sees what it
  saw when it ran the command itself. A command that cannot start is reported on stderr
  (``cannot start 'x': No such file or directory``) with exit code 127.

Elsewhere (macOS, the BSDs) there is neither subreaper nor parent-death signal: the pipe and the
group kill work the same, but descendants that left the group can escape.

This file imports nothing from Baton and as little as it can: it starts once per command (about
7 ms on top of the interpreter's own start-up, most of it ``os`` and ``ctypes``). The executors
import its helpers (:func:`become_subreaper`, :func:`kill_tree`) to do the same for Python
tasks. ``LC_CTYPE`` is ``=VALUE``, or empty when the command's environment has none: Python's
start-up turns a C locale into ``LC_CTYPE=C.UTF-8`` in the environment (PEP 538), and the
command must get the environment the worker meant.
"""

from __future__ import annotations

import os
import select
import sys
import time

TYPE_CHECKING = False  # not typing's: importing typing would take ~10 ms of each start
if TYPE_CHECKING:
    from typing import Any, NoReturn

_signal: Any = __import__("_signal")  # the C module: `signal` would import enum, ~5 ms per command

KILL_GRACE_S = 2.0
STOP = b"T"
EXIT_CANNOT_START = 127
STOP_SIGNALS = frozenset({_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP})
_SIGKILL: int = _signal.SIGKILL
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_libc: Any = None


def _prctl(option: int, value: int) -> bool:
    """prctl(2), on Linux only; False where there is none or it failed."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        import ctypes  # only here: ~3 ms

        _libc = ctypes.CDLL(None, use_errno=True)
    return bool(_libc.prctl(option, value, 0, 0, 0) == 0)


def become_subreaper() -> bool:
    """Have orphaned descendants handed to this process instead of init (Linux 3.4+); its caller
    must then reap them (:func:`reap_children`). False where that is not possible."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def children() -> list[int] | None:
    """The pids of this process's children (zombies included), or None where there is no /proc."""
    me = os.getpid()
    try:
        threads = os.listdir(f"/proc/{me}/task")
    except OSError:
        return None
    if not os.path.exists(f"/proc/{me}/task/{me}/children"):  # a kernel without CONFIG_PROC_CHILDREN
        return _children_by_scan(me)
    pids: list[int] = []
    for tid in threads:
        try:
            with open(f"/proc/{me}/task/{tid}/children", "rb") as f:
                pids.extend(map(int, f.read().split()))
        except OSError:
            pass  # that thread has ended
    return pids


def _children_by_scan(me: int) -> list[int]:
    pids = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # it has ended
        fields = stat[stat.rfind(b")") + 2 :].split()  # after the command's name, which may hold anything
        if len(fields) > 1 and int(fields[1]) == me:
            pids.append(int(name))
    return pids


def reap_children() -> tuple[dict[int, int], bool]:
    """Reap every child that has ended, without waiting: their wait statuses by pid, and whether
    any child is left."""
    ended: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended, False
        if pid == 0:
            return ended, True
        ended[pid] = status


def kill_tree(pgid: int | None, wait_s: float = KILL_GRACE_S) -> dict[int, int]:
    """SIGKILL process group ``pgid`` (if given) and every child of this process, round after
    round (a subreaper is handed the children of those it kills), and reap them, until no child
    is left or ``wait_s`` has passed. Returns the wait statuses of the children reaped.

    Only children are killed by pid: a child's pid cannot be reused before we reap it."""
    ended: dict[int, int] = {}
    deadline = time.monotonic() + wait_s
    while True:
        if pgid is not None:
            _signal_group(pgid, _SIGKILL)
        for pid in children() or ():
            _signal_process(pid, _SIGKILL)
        reaped, left = reap_children()
        ended.update(reaped)
        if not left or time.monotonic() >= deadline:
            return ended
        time.sleep(0.005)


def _signal_group(pgid: int, signum: int) -> None:
    try:  # noqa: SIM105 - not contextlib: its import would slow every command's start
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_process(pid: int, signum: int) -> None:
    try:  # noqa: SIM105
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


# --- the guard process ----------------------------------------------------------------------


def main(args: list[str]) -> NoReturn:
    """``CONTROL_FD LC_CTYPE COMMAND...``: run the command, end it as told, exit as it did."""
    if len(args) < 3:
        os.write(2, b"usage: guard.py CONTROL_FD LC_CTYPE COMMAND...\n")
        os._exit(2)
    control, argv = int(args[0]), args[2:]
    os.set_inheritable(control, False)  # the command must not hold it
    env = _meant_environment(args[1])
    become_subreaper()
    wake = _wake_on_signals()
    try:
        leader = _spawn(argv, env)
    except OSError as exc:
        os.write(2, f"cannot start {argv[0]!r}: {exc.strerror}\n".encode(errors="replace"))
        os._exit(EXIT_CANNOT_START)
    _exit_as(_supervise(leader, control, wake))


def _meant_environment(lc_ctype: str) -> dict[bytes, bytes]:
    env = dict(os.environb)
    if lc_ctype:
        env[b"LC_CTYPE"] = os.fsencode(lc_ctype[1:])
    else:
        env.pop(b"LC_CTYPE", None)
    return env


def _wake_on_signals() -> int:
    """A pipe that gets a byte (the signal's number) for each SIGCHLD or stop signal, so one
    select() waits for the control pipe and the children together, without polling."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    for signum in (_signal.SIGCHLD, *STOP_SIGNALS):
        _signal.signal(signum, _noted)
    return wake_r


def _noted(signum: int, frame: object) -> None:
    """The wake-up pipe has the news already."""


def _spawn(argv: list[str], env: dict[bytes, bytes]) -> int:
    """Fork and exec the command in a session of its own; OSError if it cannot start."""
    guard_pid = os.getpid()
    errors_r, errors_w = os.pipe()  # close-on-exec: end of file with nothing read = exec worked
    pid = os.fork()
    if pid == 0:
        try:
            _become_command(argv, env, guard_pid)
        except OSError as exc:
            os.write(errors_w, str(exc.errno or 0).encode())
        finally:
            os._exit(EXIT_CANNOT_START)
    os.close(errors_w)
    report = b""
    while chunk := os.read(errors_r, 64):
        report += chunk
    os.close(errors_r)
    if report:
        os.waitpid(pid, 0)
        raise OSError(int(report), os.strerror(int(report)))
    return pid


def _become_command(argv: list[str], env: dict[bytes, bytes], guard_pid: int) -> None:
    """In the forked child: reset what Python changed, leave the guard's session, exec."""
    _signal.set_wakeup_fd(-1)
    for signum in (_signal.SIGCHLD, *STOP_SIGNALS, _signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(signum, _signal.SIG_DFL)  # as subprocess's restore_signals does
    os.setsid()
    if _prctl(_PR_SET_PDEATHSIG, _SIGKILL) and os.getppid() != guard_pid:
        os._exit(EXIT_CANNOT_START)  # the guard died before the death signal was armed: never start
    os.execvpe(argv[0], argv, env)


def _supervise(leader: int, control: int, wake: int) -> int:
    """Wait for the leader to end, a stop order or the worker's end; kill what is left and
    return the leader's wait status."""
    kill_at: float | None = None  # when a graceful stop turns into SIGKILL
    while not _ended(leader):
        timeout = None if kill_at is None else kill_at - time.monotonic()
        if timeout is not None and timeout <= 0:
            break
        ready = select.select([control, wake], [], [], timeout)[0]
        if control in ready:
            if not os.read(control, 64):
                break  # the worker is gone, or wants the command gone now
            kill_at = kill_at or _terminate(leader)
        if wake in ready and _drain(wake) & STOP_SIGNALS:
            kill_at = kill_at or _terminate(leader)
        _reap_others(leader)
    return kill_tree(leader).get(leader, _SIGKILL)  # a leader stuck unkillable counts as killed


def _ended(leader: int) -> bool:
    """Has the leader ended? Left a zombie (WNOWAIT), so its group id stays ours until the
    group is killed."""
    return os.waitid(os.P_PID, leader, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _terminate(leader: int) -> float:
    """SIGTERM the command's group and any descendant that left it; return when to SIGKILL."""
    _signal_group(leader, _signal.SIGTERM)
    for pid in children() or ():
        if pid != leader:
            _signal_process(pid, _signal.SIGTERM)
    return time.monotonic() + KILL_GRACE_S


def _drain(wake: int) -> set[int]:
    signums: set[int] = set()
    try:
        while chunk := os.read(wake, 256):
            signums.update(chunk)
    except BlockingIOError:
        pass
    return signums


def _reap_others(leader: int) -> None:
    """Reap orphans handed to us that have ended (never the leader: see :func:`_ended`)."""
    for pid in children() or ():
        if pid != leader:
            try:  # noqa: SIM105
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _exit_as(status: int) -> NoReturn:
    """Exit with the leader's code, or die of the signal that killed it (without a core dump)."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        os._exit(code)
    if not _prctl(_PR_SET_DUMPABLE, 0):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if -code != _SIGKILL:  # SIGKILL's action cannot be set (nor changed from the default)
        _signal.signal(-code, _signal.SIG_DFL)
    os.kill(os.getpid(), -code)
    os._exit(128 - code)  # a signal whose default is not to terminate


if __name__ == "__main__":
    main(sys.argv[1:])
