"""Task bodies for the remote task server tests (tests/acceptance/test_remote.py).

``ledger`` rows (one JSON line per start and per end of an execution, with the attempt and the
process id) let a test count executions outside Baton's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def _ledger(ctx: Any, what: str) -> None:
    path = ctx.params.get("ledger")
    if path:
        row = {"node": ctx.node, "partition": ctx.partition, "attempt": ctx.attempt, "pid": os.getpid(),
               "what": what, "t": time.time()}  # fmt: skip
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def step(ctx: Any) -> dict[str, Any]:
    """Sleeps ``sleep_s``; on its first attempt, ``first_<partition>_s`` instead where that is set
    (not zero)."""
    _ledger(ctx, "start")
    first = ctx.params.get(f"first_{ctx.partition}_s") if ctx.attempt == 1 else 0.0
    delay = float(first or ctx.params.get("sleep_s") or 0.0)
    time.sleep(delay)
    _ledger(ctx, "end")
    return {"slept": delay, "attempt": ctx.attempt}


def environment(ctx: Any) -> dict[str, Any]:
    """The ``BATON_*`` variable names the task's process sees, and any value naming a database."""
    names = sorted(k for k in os.environ if k.upper().startswith("BATON_"))
    databases = sorted(k for k, v in os.environ.items() if "sqlite:" in v or "postgresql:" in v)
    return {"baton_variables": names, "database_urls_in": databases}


def gated(ctx: Any) -> dict[str, Any]:
    """Like :func:`step`, and the first attempt of partition ``gated`` waits (up to 120 s) until
    the file ``gate`` exists: a test holds a worker's slot as long as it needs."""
    _ledger(ctx, "start")
    gate = ctx.params.get("gate")
    if gate and ctx.attempt == 1 and ctx.partition == ctx.params.get("gated"):
        deadline = time.monotonic() + 120
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(float(ctx.params.get("sleep_s") or 0.0))
    _ledger(ctx, "end")
    return {"attempt": ctx.attempt}
