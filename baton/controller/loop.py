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

Each kind of work is a duty (:mod:`baton.controller.duties`) with its own next due time; one
loop runs those that are due and then waits, on an injected clock, until the earliest is due
again or the store changes.

Everything it knows is in the backend: killing it at any instant and starting it again loses
nothing. It survives the database going away: verbs retry, and the loop waits and goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

from baton.clock import Clock, SystemClock
from baton.controller.deliver import Deliver, Terms
from baton.controller.duties import (
    Ageing,
    Closing,
    Deadlines,
    Dispatch,
    Duty,
    Expand,
    Leadership,
    Prune,
    Sweep,
    UnparkRated,
)
from baton.controller.schedules import Backfiller, Ticker
from baton.errors import BackendError
from baton.settings import Settings, default_settings
from baton.store.protocol import ControllerStore

log = logging.getLogger("baton.controller")
ROLE = "controller"


class ConfigOverrides(TypedDict, total=False):
    """Fields of :class:`ControllerConfig` that :meth:`ControllerConfig.from_settings` may set."""

    poll_s: float
    idle_poll_s: float
    sweep_s: float
    lead_ttl_s: float
    deadline_check_s: float
    ageing_step_s: float
    prune_s: float
    prune_batch: int
    retention_days: float | None
    notice_retention_s: float
    webhook_poll_s: float
    webhook_connect_timeout_s: float
    webhook_read_timeout_s: float
    webhook_horizon_s: float
    webhook_max_in_flight: int
    min_round_s: float
    expand_batch: int
    expire_batch: int
    schedule_look_s: float
    backfill_s: float
    dispatch_s: float
    event_id: int | None


@dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """The controller's timings, from the settings (:meth:`from_settings`; they have no default
    here, so each is written once, in :class:`~baton.settings.Settings`), and its internal limits."""

    poll_s: float  # longest wait between looks at the store when nothing wakes us
    idle_poll_s: float  # the same, when the store pushes changes (PostgreSQL LISTEN/NOTIFY, a watched WAL)
    sweep_s: float  # how often to look for expired leases and ended backoffs
    lead_ttl_s: float  # a dead leader's role passes to a standby after this long
    deadline_check_s: float  # how often to forecast the ends of events with deadlines
    ageing_step_s: float  # how often waiting tasks below the top priority are raised by 1 (0: never)
    prune_s: float  # how often to look for events past their retention
    prune_batch: int  # rows removed per pruning transaction
    retention_days: float | None  # for graphs that declare no retention (None: kept)
    notice_retention_s: float  # outbox rows are kept this long once over
    webhook_poll_s: float  # how often to look for webhook deliveries due (sooner while some are in flight)
    webhook_connect_timeout_s: float
    webhook_read_timeout_s: float
    webhook_horizon_s: float  # a delivery whose retry would come later than this after it was made is given up
    webhook_max_in_flight: int  # deliveries posted at once, at most
    # Fewest seconds between two looks at the store when a change woke us: under load the store
    # changes with every report (SQLite's data_version, PostgreSQL's NOTIFY), and the controller
    # has nothing to do with reports, so looking at each one would only burn a core. Not a
    # setting: readiness is decided in each report's own transaction, so only a new event's
    # expansion can wait on this, by 20 ms at most.
    min_round_s: float = 0.02
    expand_batch: int = 20  # submitted events taken per step (each is expanded in a transaction of its own)
    expire_batch: int = 500  # leases expired per sweep; a full batch sweeps again at once
    dispatch_batch: int = 100  # outbox notices acted on per transaction
    dispatch_s: float = 0.5  # how often to look at the outbox (at once again after a full batch)
    schedule_look_s: float = 30.0  # the ticker looks at least this often (new and changed schedules)
    backfill_s: float = 1.0  # how often running backfills raise their next fires
    event_id: int | None = None  # expand only this event (baton run); None: every submitted event

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Unpack[ConfigOverrides]) -> ControllerConfig:
        """The controller's config from ``settings``; ``overrides`` set fields directly."""
        config = cls(
            poll_s=settings.poll_s,
            idle_poll_s=settings.idle_poll_s,
            sweep_s=settings.sweep_s,
            lead_ttl_s=settings.lead_ttl_s,
            deadline_check_s=settings.deadline_check_s,
            ageing_step_s=settings.ageing_step_s,
            prune_s=settings.prune_s,
            prune_batch=settings.prune_batch,
            retention_days=settings.retention_days,
            notice_retention_s=settings.notice_retention_s,
            webhook_poll_s=settings.webhook_poll_s,
            webhook_connect_timeout_s=settings.webhook_connect_timeout_s,
            webhook_read_timeout_s=settings.webhook_read_timeout_s,
            webhook_horizon_s=settings.webhook_horizon_s,
            webhook_max_in_flight=settings.webhook_max_in_flight,
        )
        return dataclasses.replace(config, **overrides)


def delivery_terms(config: ControllerConfig) -> Terms:
    return Terms(poll_s=config.webhook_poll_s, connect_timeout_s=config.webhook_connect_timeout_s,
                 read_timeout_s=config.webhook_read_timeout_s, horizon_s=config.webhook_horizon_s,
                 max_in_flight=config.webhook_max_in_flight)  # fmt: skip


def leader_duties(config: ControllerConfig, clock: Clock) -> list[Duty]:
    """What the leader does, in this order each round: expand new events, sweep, return tasks
    whose rate limit allows a start again, age waiting tasks, raise the schedules' fires and
    backfills, act on the outbox, watch deadlines, prune, deliver webhooks. A controller of one
    event (``baton run``: ``event_id``) expands, sweeps and returns rate-parked tasks only: it
    starts nothing else, and what its event's end raises waits in the outbox for the cluster's
    controller."""
    if config.event_id is not None:
        return [Expand(config.expand_batch, config.event_id), Sweep(config.sweep_s, config.expire_batch),
                UnparkRated(config.sweep_s)]  # fmt: skip
    duties: list[Duty] = [
        Expand(config.expand_batch, config.event_id),
        Sweep(config.sweep_s, config.expire_batch),
        UnparkRated(config.sweep_s),
        Ticker(config.schedule_look_s, clock),
        Backfiller(config.backfill_s, clock),
        Dispatch(config.dispatch_batch, config.dispatch_s),
        Deadlines(config.deadline_check_s, clock),
        Prune(config.prune_s, config.prune_batch, config.retention_days, config.notice_retention_s, clock),
        Deliver(delivery_terms(config), clock),
    ]
    if config.ageing_step_s > 0:
        duties.insert(3, Ageing(config.ageing_step_s, clock))
    return duties


class Controller:
    """One loop over the controller's duties (:mod:`baton.controller.duties`): each round it
    renews its role when due and, while it leads, runs every duty that is due; then it waits for
    the earliest due time, or less if the store changes. Time is read from ``clock`` and waited
    on through it, so a :class:`~baton.clock.FakeClock` drives it without sleeping."""

    def __init__(
        self,
        backend: ControllerStore,
        config: ControllerConfig | None = None,
        name: str = "",
        *,
        clock: Clock | None = None,
        duties: Sequence[Duty] | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or ControllerConfig.from_settings(default_settings())
        self.clock = clock or SystemClock()
        self.id = f"{name or socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.leadership = Leadership(ROLE, self.id, self.config.lead_ttl_s)
        self.duties = list(duties) if duties is not None else leader_duties(self.config, self.clock)

    @property
    def leading(self) -> bool:
        return self.leadership.leading

    def step(self) -> int:
        """Do whatever is due now; return how much was done (0 when idle or standing by)."""
        self._run_if_due(self.leadership)
        if not self.leading:
            return 0
        return sum(self._run_if_due(duty) for duty in self.duties)

    def _run_if_due(self, duty: Duty) -> int:
        now = self.clock.now()
        if duty.every_round or duty.next_due(now) <= now:
            return duty.run(self.backend, now)
        return 0

    def expand(self) -> int:
        """Expand submitted events now, leading or not (callers that drive the store by hand)."""
        return Expand(self.config.expand_batch, self.config.event_id).run(self.backend, self.clock.now())

    def run(self, stop: threading.Event | None = None) -> None:
        """Loop until ``stop`` is set; give the role up on the way out."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                self._round(stop)
        finally:
            self.close()
            with contextlib.suppress(BackendError):  # if not, the role lapses by itself
                self.leadership.resign(self.backend)

    def close(self) -> None:
        """Let go of what the duties hold (the delivery duty's threads and connections)."""
        for duty in self.duties:
            if isinstance(duty, Closing):
                duty.close()

    def run_until_finished(self, event_id: int, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        try:
            while not stop.is_set() and not self._finished(event_id):
                self._round(stop)
        finally:
            self.close()

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
            self.clock.wait(1.0, stop.wait)
            return
        except Exception:  # a bug of ours: the loop must outlive it, the others' events depend on it
            log.exception("controller step failed unexpectedly; trying again shortly")
            self.clock.wait(1.0, stop.wait)
            return
        if not busy:
            wait = self._idle_wait()
            began = self.clock.now()
            try:
                self.clock.wait(wait, self.backend.wait_for_change)
            except BackendError:
                self.clock.wait(wait, stop.wait)
            rest = self.config.min_round_s - (self.clock.now() - began)
            if rest > 0:
                self.clock.wait(rest, stop.wait)

    def _idle_wait(self) -> float:
        """Until the next duty is due, or a change wakes us (a new event, on PostgreSQL)."""
        poll = self.config.idle_poll_s if self.backend.pushes_changes else self.config.poll_s
        now = self.clock.now()
        timed = [self.leadership, *self.duties] if self.leading else [self.leadership]
        due = min(duty.next_due(now) for duty in timed)
        return max(0.0, min(poll, due - now))
