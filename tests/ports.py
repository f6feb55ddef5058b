"""Loopback ports for the servers the tests start (``baton server``, PostgreSQL, ``--ui``).

A port is chosen here and bound a moment later by another process, so whoever else takes it
in between makes that start fail. With the suite run by several pytest-xdist processes, asking
the kernel for a free port (binding port 0) is not enough: each process's own connections take
ports from the same ephemeral range, and so do the other processes' choices. So each test
process hands out ports from a block of its own, below the kernel's ephemeral range (which
neither ``bind(0)`` nor an outgoing connection ever takes), starting at a random place in the
block (another run on the same machine may use the same block) and skipping any port that is
taken. Servers started on a chosen port also retry on another when the port is taken anyway
(``serving.Served``, ``pgserver.PgServer``).
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
from pathlib import Path

BLOCK = 1000  # ports per test process
BLOCKS = 10  # processes with blocks of their own (more share them, round robin)
_lock = threading.Lock()


def worker_id() -> str:
    """This test process's name: pytest-xdist's ``gw0``, ``gw1``... or ``main`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _block() -> range:
    name = worker_id()
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    top = min(_ephemeral_low(), 65536)
    start = max(top - BLOCK * BLOCKS, 1024) + BLOCK * (index % BLOCKS)
    return range(start, start + BLOCK)


_BLOCK = _block()
_START = random.randrange(len(_BLOCK))
_next = itertools.cycle([*_BLOCK[_START:], *_BLOCK[:_START]])


def is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port of this process's block that nothing is bound to right now."""
    with _lock:
        for _ in range(len(_BLOCK)):
            port = next(_next)
            if is_free(port):
                return port
    raise RuntimeError(f"no free port left in {_BLOCK} for test process {worker_id()}")
