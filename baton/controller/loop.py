"""The controller ("master control server"): a restartable loop over time-driven work.

It expands newly submitted events into tasks (planning is pure; saving the plan is one
transaction, so a crash leaves an event either unexpanded or fully expanded), expires leases
of workers that stopped heartbeating (cause ``worker_lost``), and announces retries whose
backoff has ended. Readiness after a report is decided by the controller's rule in
:mod:`baton.store.advance`, executed in the very transaction that records the report, so no
report can be lost or counted twice between a write and a decision, whatever process dies when.

Several controllers may run against one store: one holds the ``controller`` role (a lease row it
renews); the others stand by and take over within ``lead_ttl_s`` of the leader dying. Every move
is guarded by its expected state too, so even two acting at once could not double-count.

Everything it knows is in the backend: killing it at any instant and starting it again loses
nothing. It survives the database going away: verbs retry, and the loop waits and goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from baton.engine.planner import plan
from baton.errors import BackendError, ParamsInvalid, TransientError
from baton.settings import Settings, default_settings
from baton.store.protocol import ControllerStore
from baton.store.records import EventRecord

log = logging.getLogger("baton.controller")
ROLE = "controller"


@dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """The controller's timings, from the settings (:meth:`from_settings`; they have no default
    here, so each is written once, in :class:`~baton.settings.Settings`), and its internal limits."""

    poll_s: float  # longest wait between looks at the store when nothing wakes us
    idle_poll_s: float  # the same, when the store pushes changes (PostgreSQL LISTEN/NOTIFY, a watched WAL)
    sweep_s: float  # how often to look for expired leases and ended backoffs
    lead_ttl_s: float  # a dead leader's role passes to a standby after this long
    # Fewest seconds between two looks at the store when a change woke us: under load the store
    # changes with every report (SQLite's data_version, PostgreSQL's NOTIFY), and the controller
    # has nothing to do with reports, so looking at each one would only burn a core. Not a
    # setting: readiness is decided in each report's own transaction, so only a new event's
    # expansion can wait on this, by 20 ms at most.
    min_round_s: float = 0.02
    expand_batch: int = 20  # submitted events taken per step (each is expanded in a transaction of its own)
    expire_batch: int = 500  # leases expired per sweep; a full batch sweeps again at once
    event_id: int | None = None  # expand only this event (baton run); None: every submitted event

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ControllerConfig:
        """The controller's config from ``settings``; ``overrides`` set fields directly."""
        values: dict[str, Any] = {
            "poll_s": settings.poll_s,
            "idle_poll_s": settings.idle_poll_s,
            "sweep_s": settings.sweep_s,
            "lead_ttl_s": settings.lead_ttl_s,
        }
        return cls(**{**values, **overrides})


class Controller:
    def __init__(self, backend: ControllerStore, config: ControllerConfig | None = None, name: str = "") -> None:
        self.backend = backend
        self.config = config or ControllerConfig.from_settings(default_settings())
        self.id = f"{name or socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._next_sweep = 0.0
        self._next_renewal = 0.0
        self._leading = False
        self._due_checked = 0.0

    @property
    def leading(self) -> bool:
        return self._leading

    def step(self) -> int:
        """Do whatever is due now; return how much was done (0 when idle or standing by)."""
        if not self._hold_role():
            return 0
        done = self.expand()
        if time.monotonic() >= self._next_sweep:
            expired, self._due_checked = self.backend.sweep(self.config.expire_batch, self._due_checked)
            # a full batch means more may be waiting: sweep again at once
            full = expired >= self.config.expire_batch
            self._next_sweep = time.monotonic() + (0 if full else self.config.sweep_s)
            done += expired
        return done

    def _hold_role(self) -> bool:
        if time.monotonic() >= self._next_renewal:
            was = self._leading
            self._leading = self.backend.lead(ROLE, self.id, self.config.lead_ttl_s)
            self._next_renewal = time.monotonic() + self.config.lead_ttl_s / 3
            if self._leading != was:
                log.info("controller %s %s", self.id, "is now the leader" if self._leading else "is standing by")
        return self._leading

    def expand(self) -> int:
        done = 0
        for event in self.backend.events_to_expand(self.config.expand_batch, only=self.config.event_id):
            try:
                done += self._expand_one(event)
            except TransientError:
                raise  # the store is away: the event stays submitted and is tried again
            except Exception as exc:  # one event must never stop the others
                # Anything else is this event's own doing (a graph the store's columns cannot
                # hold, a plan that cannot be saved): it fails with its cause and the loop goes on.
                # If the store itself is broken, recording the failure fails too, and the event
                # stays submitted for the next round.
                log.exception("event %s cannot be expanded; it fails", event.id)
                self.backend.fail_event(event.id, f"cannot expand: {type(exc).__name__}: {exc}"[:2000])
        return done

    def _expand_one(self, event: EventRecord) -> int:
        graph = self.backend.graph_of(event.graph_id)
        try:
            planned = plan(graph, event.params)
        except ParamsInvalid as exc:
            self.backend.fail_event(event.id, f"cannot plan: {exc}")
            return 0
        if self.backend.save_plan(event.id, planned):
            log.info("event %s expanded into %s tasks", event.id, len(planned.tasks))
            return 1
        return 0

    def run(self, stop: threading.Event | None = None) -> None:
        """Loop until ``stop`` is set; give the role up on the way out."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                self._round(stop)
        finally:
            if self._leading:
                with contextlib.suppress(BackendError):  # if not, the role lapses by itself
                    self.backend.resign(ROLE, self.id)

    def run_until_finished(self, event_id: int, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set() and not self._finished(event_id):
            self._round(stop)

    def _finished(self, event_id: int) -> bool:
        try:
            return self.backend.event_state(event_id).terminal
        except BackendError:
            return False

    def _round(self, stop: threading.Event) -> None:
        try:
            busy = self.step()
        except BackendError as exc:
            log.error("controller step failed (%s); trying again shortly", exc)
            stop.wait(1.0)
            return
        except Exception:  # a bug of ours: the loop must outlive it, the others' events depend on it
            log.exception("controller step failed unexpectedly; trying again shortly")
            stop.wait(1.0)
            return
        if not busy:
            wait = self._idle_wait()
            began = time.monotonic()
            try:
                self.backend.wait_for_change(wait)
            except BackendError:
                stop.wait(wait)
            rest = self.config.min_round_s - (time.monotonic() - began)
            if rest > 0:
                stop.wait(rest)

    def _idle_wait(self) -> float:
        """Sleep until the next periodic duty, or a change wakes us (a new event, on PostgreSQL)."""
        poll = self.config.idle_poll_s if self.backend.pushes_changes else self.config.poll_s
        due = self._next_renewal if not self._leading else min(self._next_renewal, self._next_sweep)
        return max(0.0, min(poll, due - time.monotonic()))
