"""The controller ("master control server"): a restartable loop over time-driven work.

It expands newly submitted events into tasks (planning is pure; saving the plan is one
transaction, so a crash leaves an event either unexpanded or fully expanded) and expires
leases of workers that stopped heartbeating (cause ``worker_lost``). Readiness after a report
is decided by the controller's rule in :mod:`baton.backends.advance`, executed in the very
transaction that records the report, so no report can be lost or counted twice between a
write and a decision, whatever process dies when.

Everything it knows is in the backend: killing it at any instant and starting it again
loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from baton.backends.sql import SqlBackend
from baton.errors import ParamsInvalid
from baton.planner import plan

log = logging.getLogger("baton.controller")


@dataclass(frozen=True)
class ControllerConfig:
    poll_s: float = 0.5
    sweep_s: float = 0.5  # how often to look for expired leases (they last seconds, not ms)
    expand_batch: int = 20
    expire_batch: int = 500


class Controller:
    def __init__(self, backend: SqlBackend, config: ControllerConfig | None = None) -> None:
        self.backend = backend
        self.config = config or ControllerConfig()
        self._next_sweep = 0.0

    def step(self) -> int:
        """Do whatever is due now; return how much was done (0 when idle)."""
        done = self.expand()
        if time.monotonic() >= self._next_sweep:
            expired = self.backend.expire_leases(self.config.expire_batch)
            # a full batch means more may be waiting: sweep again at once
            self._next_sweep = time.monotonic() + (0 if expired >= self.config.expire_batch else self.config.sweep_s)
            done += expired
        return done

    def expand(self) -> int:
        done = 0
        for event in self.backend.events_to_expand(self.config.expand_batch):
            graph = self.backend.graph_of(event.graph_id)
            try:
                planned = plan(graph, event.params)
            except ParamsInvalid as exc:
                self.backend.fail_event(event.id, f"cannot plan: {exc}")
                continue
            if self.backend.save_plan(event.id, planned):
                log.info("event %s expanded into %s tasks", event.id, len(planned.tasks))
                done += 1
        return done

    def run(self, stop: threading.Event | None = None) -> None:
        """Loop until ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.step() == 0:
                self.backend.wait_for_change(self.config.poll_s)

    def run_until_finished(self, event_id: int, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set() and not self.backend.event_state(event_id).terminal:
            if self.step() == 0:
                self.backend.wait_for_change(min(self.config.poll_s, 0.2))
            else:
                time.sleep(0)
