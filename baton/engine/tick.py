"""One look at one schedule: which fires to raise now, which are missed, what comes next (pure).

The controller's ticker (:class:`baton.controller.duties.Ticker`) reads a due schedule's state,
asks :func:`tick`, and has the store write the answer in one transaction, guarded by the state it
read, so two controllers looking at once cannot both act.

Fires come from :func:`baton.engine.fires.catch_up` (on-time fires, and late ones as the schedule's
``catch_up`` says). A fire whose jitter puts its raise time after ``now`` waits for a later look.
Then **overlap** applies, fire by fire in order, each seeing the event raised before it (the
schedule's previous event, or a sibling raised by this very look) as still running:

- ``allow``: every fire is raised;
- ``skip``: a fire that finds the previous event running is missed;
- ``queue_one``: it is held (one at most; a fire finding one held is missed) and raised once the
  previous event ends;
- ``cancel_running``: the newest due fire is raised and the previous event, if running, is
  cancelled; older fires due at the same look are missed (they would be cancelled at once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from baton.engine.fires import BusinessDays, Fire, catch_up, deadline_of, fire_at, fire_params, next_fire, raise_at
from baton.graphs.schedules import Overlap, Schedule

GRACE_S = 60.0  # a fire at most this late (past its jitter) is on time


@dataclass(frozen=True)
class Raised:
    """An event to raise for one fire."""

    fire: Fire
    params: dict[str, Any]
    deadline_at: float | None


@dataclass(frozen=True)
class Tick:
    """What one look decided; ``missed`` counts fires not raised (-1: more than were counted)."""

    raised: tuple[Raised, ...]
    handled_through: float
    next_fire_at: float | None  # when to look again (a raise time); None: the schedule has ended
    queued_at: float | None  # the fire held by queue_one, if any
    cancel_previous: bool = False
    missed: int = 0
    missed_by_overlap: int = 0
    missed_fires: tuple[Fire, ...] = field(default_factory=tuple)


def tick(schedule: Schedule, days: BusinessDays | None, handled_through: float, queued_at: float | None,
         previous_running: bool, now: float) -> Tick:  # fmt: skip
    """Decide one look at ``schedule`` at ``now``."""
    raised: list[Fire] = []
    if queued_at is not None and not previous_running:
        raised.append(fire_at(schedule, queued_at))  # the held fire goes first
        queued_at, previous_running = None, True
    found = catch_up(schedule, days, handled_through, now, grace_s=GRACE_S + schedule.jitter_s)
    due = [f for f in found.raise_now if raise_at(schedule, f) <= now]
    later = [f for f in found.raise_now if raise_at(schedule, f) > now]
    handled = math.nextafter(later[0].at, -math.inf) if later else found.handled_through
    kept, queued_at, skipped, cancel = _overlap(schedule.overlap, due, previous_running, queued_at)
    upcoming = later[0] if later else next_fire(schedule, days, handled)
    return Tick(
        raised=tuple(Raised(f, fire_params(schedule, f, days), deadline_of(schedule, f)) for f in raised + kept),
        handled_through=handled,
        next_fire_at=None if upcoming is None else raise_at(schedule, upcoming),
        queued_at=queued_at,
        cancel_previous=cancel,
        missed=found.missed_count + len(skipped) if found.missed_count >= 0 else -1,
        missed_by_overlap=len(skipped),
        missed_fires=tuple(sorted((*found.missed, *skipped), key=lambda f: f.at)),
    )


def _overlap(policy: Overlap, due: list[Fire], running: bool, queued: float | None
             ) -> tuple[list[Fire], float | None, list[Fire], bool]:  # fmt: skip
    """The fires raised, the fire held, the fires missed, and whether to cancel the previous."""
    if policy is Overlap.ALLOW or not due:
        return due, queued, [], False
    if policy is Overlap.CANCEL_RUNNING:
        return due[-1:], queued, due[:-1], running
    kept: list[Fire] = []
    skipped: list[Fire] = []
    for f in due:
        if not running:
            kept.append(f)
            running = True
        elif policy is Overlap.QUEUE_ONE and queued is None:
            queued = f.at
        else:
            skipped.append(f)
    return kept, queued, skipped, False
