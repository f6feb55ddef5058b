"""The controller's duties: each a small object that says when it is next due and does its work.

A duty's times are its clock's (:class:`~baton.clock.Clock`), so a test moves a fake clock past
``next_due`` and sees the duty run then, and not before. ``now`` is the clock's monotonic time;
a duty that decides by dates (a deadline, an age, a schedule's fire) is given the clock and reads
its wall time. Its work is done through the store, in
the store's own transactions and by the store's clock (leases and roles expire by it).

- :class:`Leadership` takes or renews the controller's role; every controller runs it, and only
  the one that holds the role runs the others;
- :class:`Expand` turns submitted events into tasks; it has no time of its own but runs at every
  round, since the round may have been started by a new event;
- :class:`Sweep` expires lost leases and announces retries whose backoff ended;
- :class:`UnparkRated` returns tasks parked on a spent rate limit when their key's next start
  is allowed;
- :class:`Ageing` raises the priority of ready tasks that waited a step below the head's;
- :class:`~baton.controller.deliver.Deliver` posts webhook deliveries (in its own module).

A new duty (fire schedules, prune old events) is one more class with
``next_due`` and ``run``, added to :func:`baton.controller.loop.leader_duties`.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol, runtime_checkable

from baton.clock import Clock
from baton.engine.forecast import Typical, forecast, history
from baton.engine.planner import plan
from baton.errors import ParamsInvalid, TransientError
from baton.store.protocol import ControllerStore
from baton.store.records import EventRecord, PruneRequest, Watched

log = logging.getLogger("baton.controller")
NOW = -math.inf  # a due time already passed, whatever the clock says


class Duty(Protocol):
    """Work the controller does on a schedule of its own."""

    @property
    def every_round(self) -> bool:
        """True: run at every round of the loop, whatever ``next_due`` says (a round follows each
        change in the store, and comes at least every poll)."""
        ...

    def next_due(self, now: float) -> float:
        """When the duty is next due, on the clock; ``math.inf``: it has no time of its own."""
        ...

    def run(self, store: ControllerStore, now: float) -> int:
        """Do the work due at ``now``; return how much was done (0: nothing was waiting)."""
        ...


@runtime_checkable
class Closing(Protocol):
    """A duty that holds something to let go of when the controller stops (threads, connections)."""

    def close(self) -> None: ...


class Leadership:
    """Take or renew ``role`` for ``ttl_s`` (by the store's clock), a third of the way through it:
    a leader that stops renewing loses the role when it runs out, and a standby takes it at its
    next look."""

    every_round = False

    def __init__(self, role: str, holder: str, ttl_s: float) -> None:
        self.role, self.holder, self.ttl_s = role, holder, ttl_s
        self.leading = False
        self._due = NOW

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        was = self.leading
        self.leading = store.lead(self.role, self.holder, self.ttl_s)
        self._due = now + self.ttl_s / 3
        if self.leading != was:
            log.info("controller %s %s", self.holder, "is now the leader" if self.leading else "is standing by")
        return 0  # holding the role is not work done: a standby is idle

    def resign(self, store: ControllerStore) -> None:
        """Give the role up now, so that a standby need not wait for it to run out."""
        if self.leading:
            store.resign(self.role, self.holder)
            self.leading = False


class Expand:
    """Plan up to ``batch`` submitted events (only event ``only``, when given) and save each plan
    in a transaction of its own."""

    every_round = True

    def __init__(self, batch: int, only: int | None = None) -> None:
        self.batch, self.only = batch, only

    def next_due(self, now: float) -> float:
        return math.inf

    def run(self, store: ControllerStore, now: float) -> int:
        done = 0
        for event in store.events_to_expand(self.batch, only=self.only):
            try:
                done += _expand_one(store, event)
            except TransientError:
                raise  # the store is away: the event stays submitted and is tried again
            except Exception as exc:  # one event must never stop the others
                # Anything else is this event's own doing (a graph the store's columns cannot
                # hold, a plan that cannot be saved): it fails with its cause and the loop goes on.
                # If the store itself is broken, recording the failure fails too, and the event
                # stays submitted for the next round.
                log.exception("event %s cannot be expanded; it fails", event.id)
                store.fail_event(event.id, f"cannot expand: {type(exc).__name__}: {exc}"[:2000])
        return done


def _expand_one(store: ControllerStore, event: EventRecord) -> int:
    graph = store.graph_of(event.graph_id)
    try:
        planned = plan(graph, event.params, event.priority)
    except ParamsInvalid as exc:
        store.fail_event(event.id, f"cannot plan: {exc}")
        return 0
    if store.save_plan(event.id, planned):
        log.info("event %s expanded into %s tasks", event.id, len(planned.tasks))
        return 1
    return 0


class Sweep:
    """Every ``every_s``, expire up to ``batch`` lapsed leases (cause ``worker_lost``) and wake
    workers for retries whose backoff ended; a full batch means more may be waiting, so it is due
    again at once."""

    every_round = False

    def __init__(self, every_s: float, batch: int) -> None:
        self.every_s, self.batch = every_s, batch
        self._due = NOW
        self._checked = 0.0  # retries whose backoff ended up to here (the store's time) are announced

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        expired, self._checked = store.sweep(self.batch, self._checked)
        self._due = now if expired >= self.batch else now + self.every_s
        return expired


class UnparkRated:
    """Return tasks parked on a spent rate limit to the queue when their key allows a start: at
    the time the store says the next start is allowed, and every ``every_s`` otherwise (a claim
    parks tasks between two looks; a key a claim held; starts the queue's own tasks took)."""

    every_round = False

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._due = NOW

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        back, wait_s = store.unpark_rated()
        self._due = now + (self.every_s if wait_s is None else max(0.0, min(wait_s, self.every_s)))
        return back


class Ageing:
    """Every ``step_s``, raise by 1 the priority of ready tasks that waited a full step below the
    head of the queue's priority (the store's :meth:`age`, by this clock's wall time), up to
    ``batch`` per transaction; a full batch means more wait, so it is due again at once. Tasks of
    priority ``p`` behind a stream of ``P`` start within ``P - p + 1`` steps (see
    :mod:`baton.engine.priorities`)."""

    every_round = False

    def __init__(self, step_s: float, clock: Clock, batch: int = 1000) -> None:
        self.step_s, self.clock, self.batch = step_s, clock, batch  # waits are dates: the clock's wall time
        self._due = clock.now() + step_s
        self.raised = 0  # tasks raised so far (a counter for metrics)

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        raised = store.age(self.clock.wall(), self.step_s, self.batch)
        self.raised += raised
        self._due = now if raised >= self.batch else now + self.step_s
        return raised


class Dispatch:
    """Act on the outbox's notices (events raised by another event's end; webhook deliveries)
    every ``every_s``, and at once again while batches come back full. Not at every round: a
    round follows every change in the store, and under load that is every report, while an
    event's end is rare and waiting a moment for what it raises costs nothing."""

    every_round = False

    def __init__(self, batch: int, every_s: float = 0.5) -> None:
        self.batch, self.every_s = batch, every_s
        self._due = NOW

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        done = store.dispatch(self.batch)
        self._due = now if done >= self.batch else now + self.every_s
        return done


class Prune:
    """Every ``every_s``, remove what retention says is over, a batch per transaction. While
    batches come back full it goes on, but pauses after each for nineteen times as long as the
    batch took, so pruning holds the database about :data:`SHARE` of the time whatever the
    load: under load each batch takes longer, and the pauses grow with it."""

    every_round = False
    SHARE = 0.05  # of the time a backlog is pruned, the part its transactions take
    MIN_PAUSE_S = 0.05

    def __init__(
        self, every_s: float, batch: int, default_days: float | None, notice_keep_s: float, clock: Clock
    ) -> None:
        self.every_s, self.batch, self.default_days, self.notice_keep_s = every_s, batch, default_days, notice_keep_s
        self.clock = clock  # ages are dates: its wall time
        self._due = NOW

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        wall = self.clock.wall()
        asked = PruneRequest(wall, self.batch, default_days=self.default_days, notice_before=wall - self.notice_keep_s)
        done = store.prune(asked)
        spent = max(0.0, self.clock.now() - now)
        pause = max(self.MIN_PAUSE_S, spent * (1 / self.SHARE - 1))
        self._due = now + spent + (pause if done.more else self.every_s)
        return done.events + done.tasks + done.audit + done.notices


class Deadlines:
    """Every ``every_s``, forecast the end of each unfinished event that has a deadline
    (:mod:`baton.engine.forecast`) and let the store mark it at risk or missed. What a graph's
    earlier runs say is learnt once per ``HISTORY_S`` per graph version, not at every look."""

    every_round = False
    HISTORY_S = 600.0
    NEAR_S = 1.0  # a forecast that moved less than this is not written again

    def __init__(self, every_s: float, clock: Clock, batch: int = 200) -> None:
        self.every_s, self.clock, self.batch = every_s, clock, batch  # deadlines are dates: the clock's wall time
        self._due = NOW
        self._learnt: dict[int, tuple[float, dict[str, Typical]]] = {}

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        self._due = now + self.every_s
        wall, made = self.clock.wall(), 0
        for event in store.watched_events(self.batch):
            predicted = self._forecast(store, event, wall)
            settled = event.missed_at is not None or (
                wall <= event.deadline_at
                and (event.at_risk_at is not None or predicted is None or predicted <= event.deadline_at)
            )
            if settled and _near(predicted, event.predicted_end_at, self.NEAR_S):
                continue  # nothing to mark, and the forecast has not moved
            made += len(store.record_forecast(event.id, predicted, wall))
        return made

    def _forecast(self, store: ControllerStore, event: Watched, wall: float) -> float | None:
        if event.started_at is None:
            return None  # not expanded yet: nothing to go on
        graph = store.graph_of(event.graph_id)
        learnt = self._learnt.get(event.graph_id)
        if learnt is None or wall - learnt[0] > self.HISTORY_S:
            learnt = (wall, history(graph, store.graph_runs(event.graph_id)))
            self._learnt[event.graph_id] = learnt
        return forecast(graph, learnt[1], store.nodes_now(event.id), event.started_at, wall)


def _near(a: float | None, b: float | None, within: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < within
