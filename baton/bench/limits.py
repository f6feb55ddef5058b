"""Does a concurrency key hold under real workers, and what does it cost? One event of
``partitions`` no-op tasks whose node declares ``concurrency: {key: erp, limit: N}``, run by
worker processes, while a sampler reads how many of the key's tasks are running, as often as it
can; optionally one worker is killed with SIGKILL partway (``bench/limits.py`` prints the
figures; ``tests/acceptance/test_limits_cluster.py`` checks them).

The figures: the limit, the most running the sampler saw, how many samples it took, the tasks
run, the seconds from submission to the event's end, and with a kill the seconds from the kill
until the dead worker held no task any more (its leases ran out, then the controller's sweep
ended its attempts: at most ``lease_s`` plus ``sweep_s`` after it last heartbeat).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, cast

from baton.controller.loop import Controller, ControllerConfig
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.local.workers import LocalWorkers
from baton.settings import Settings
from baton.store import limits, open_store
from baton.store.sql import SqlStore

KEY = "erp"


def graph(partitions: int, limit: int) -> Any:
    g = GraphBuilder("limits_bench", defaults={"retries": 2, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("departments", "list", default=[f"d{i}" for i in range(partitions)]).partitions(param="departments")
    g.python("extract", "baton.bench.tasks:noop", concurrency={"key": KEY, "limit": limit})
    return g.build()


def running(store: SqlStore) -> int:
    """How many of the key's tasks are running now."""
    with store.transaction(write=False) as tx:
        found = limits.key_states(tx, [KEY])
    return found[0].running if found else 0


def _kill_holding(store: SqlStore, pids: set[int], killed: dict[str, float]) -> None:
    """SIGKILL whichever of the workers ``pids`` holds the most tasks, at a moment it holds some:
    stopped first (SIGSTOP), so that what the store says it holds cannot change before it dies;
    let go again if it holds none by then."""
    holding = sorted(((len(w.running), w.pid) for w in store.workers() if w.pid in pids and w.running), reverse=True)
    if not holding:
        return
    pid = holding[0][1]
    os.kill(pid, signal.SIGSTOP)
    held = sum(len(w.running) for w in store.workers() if w.pid == pid)
    if not held:
        os.kill(pid, signal.SIGCONT)
        return
    os.kill(pid, signal.SIGKILL)
    killed.update(pid=pid, at=time.monotonic(), held=held)


def measure(db: str, partitions: int, limit: int, workers: int, slots: int, kill_after: int | None,
            lease_s: float, log_dir: Path, hold: str = "auto") -> dict[str, Any]:  # fmt: skip
    settings = Settings(db=db, lease_s=lease_s, heartbeat_s=min(5.0, lease_s / 3))
    store = cast(SqlStore, open_store(db, settings))
    planned = graph(partitions, limit)
    record = store.register_graph(planned, source="bench/limits.py")
    fleet = LocalWorkers(settings, workers, {"slots": slots}, log_dir, hold=hold)
    fleet.start()
    seen: list[int] = []
    stop = threading.Event()
    killed: dict[str, float] = {}

    def sample() -> None:
        while not stop.is_set():
            seen.append(running(store))
            if "at" in killed and "freed" not in killed:
                victim = killed["pid"]
                held = [w for w in store.workers() if w.pid == victim and w.running]
                if not held:
                    killed["freed"] = time.monotonic()

    try:
        deadline = time.monotonic() + 60
        while sum(w.state == "active" for w in store.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        event, _ = store.submit(record.id, validate_params(planned, {}))
        controller = Controller(store, ControllerConfig.from_settings(settings, poll_s=0.05))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        driver = threading.Thread(target=controller.run_until_finished, args=(event.id, stop), daemon=True)
        began = time.monotonic()
        driver.start()
        while driver.is_alive():
            if kill_after is not None and "at" not in killed:
                done = store.node_counts(event.id).get("extract", {}).get("succeeded", 0)
                if done >= kill_after:
                    _kill_holding(store, {p.pid for p in fleet.processes}, killed)
            driver.join(0.01 if kill_after is not None and "at" not in killed else 0.05)
        took = time.monotonic() - began
    finally:
        stop.set()
        fleet.stop()
    final = store.event(event.id)
    out: dict[str, Any] = {
        "held_at_kill": int(killed.get("held", 0)),
        "backend": store.__class__.__name__.removesuffix("Store").lower(),
        "limit": limit,
        "max_running_seen": max(seen, default=0),
        "samples": len(seen),
        "tasks": final.tasks_total,
        "state": final.state.value,
        "seconds": round(took, 3),
        "workers": workers,
        "slots": slots,
    }
    if kill_after is not None:
        out["killed_after_tasks"] = kill_after
        out["lease_s"] = lease_s
        out["slots_free_after_kill_s"] = round(killed["freed"] - killed["at"], 3) if "freed" in killed else None
    store.close()
    return out
