"""What a worker that holds tasks keeps (``baton worker --hold``): the tasks it holds, each with
the deadline after which it must not start them, how many to ask for, and what it owes the store.

Without holds a slot that frees waits one claim's round trip for its next task. With them the
worker keeps up to ``k`` tasks beyond its free slots (see :mod:`baton.store.holds`), starts the
next one the moment a slot frees, and tells the store in its next claim, which a thread of its
own sends while tasks run. ``k`` follows Little's law: to hide a round trip ``R`` behind tasks of
``t`` seconds on ``s`` slots a worker needs about ``s * R / t`` in hand (:class:`Pace`); tasks ten
round trips long or more are not held beyond the free slots (holding them gains nothing and makes
other workers wait).

**The deadline.** The store keeps a hold for ``hold_s`` from the moment it granted or renewed it;
the worker counts from the moment it *sent* the claim or heartbeat that did so (earlier, on its
own monotonic clock), less a quarter of ``hold_s`` for the start's own journey back. A hold past
its deadline is dropped unstarted: the store may give the task to another worker then.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from baton.store.records import Claim, Report

MARGIN = 0.25  # of hold_s: a start made just before the deadline still reaches the store in time
LONG_TASKS = 10.0  # tasks this many round trips long (or longer) are not held beyond free slots
SMOOTHING = 0.2  # weight of the newest sample in the moving averages


@dataclass
class Held:
    """A task this worker holds and has not started."""

    claim: Claim
    deadline: float  # monotonic: never started at or after this
    rank: tuple[int, ...] = ()  # its place in the queue's order as far as the worker knows it (lowest first)


class Pace:
    """Moving averages of the claims' round trip and the tasks' run time, and from them how many
    tasks to hold beyond the free slots."""

    def __init__(self) -> None:
        self.round_trip_s: float | None = None
        self.run_s: float | None = None

    def saw_round_trip(self, seconds: float) -> None:
        self.round_trip_s = _averaged(self.round_trip_s, seconds)

    def saw_runs(self, reports: Iterable[Report]) -> None:
        for r in reports:
            self.run_s = _averaged(self.run_s, max(0.0, r.finished_at - r.started_at))

    def extra(self, slots: int, most: int) -> int:
        """Tasks to hold beyond the free slots, at most ``most``: none until both averages are
        known, none for long tasks, else twice what Little's law asks (bursts of ends)."""
        if most <= 0 or self.round_trip_s is None or self.run_s is None:
            return 0
        if self.run_s >= LONG_TASKS * self.round_trip_s:
            return 0
        return min(most, math.ceil(2 * slots * self.round_trip_s / max(self.run_s, 1e-4)))


def _averaged(old: float | None, new: float) -> float:
    return new if old is None else old + SMOOTHING * (new - old)


@dataclass
class Book:
    """The worker's side of its holds: the tasks held and not started (in the order received),
    the starts and give-backs not yet sent, and the started tasks the store has not yet
    acknowledged (to the store they are still held)."""

    hold_s: float
    held: deque[Held] = field(default_factory=deque)
    to_run: list[Claim] = field(default_factory=list)  # claimed to run (for idle slots), not yet started
    starts: list[tuple[int, int]] = field(default_factory=list)  # to send
    releases: list[int] = field(default_factory=list)  # to send
    unacknowledged: dict[int, int] = field(default_factory=dict)  # task_id -> attempt, started, not yet acknowledged
    dropped: int = 0  # holds that passed their deadline unstarted
    # Asked to give holds back for an idle worker: hold no more beyond the free slots until one
    # of this worker's tasks ends (else it would take back at once what it gave).
    yielding: bool = False

    def deadline(self, sent_at: float) -> float:
        return sent_at + self.hold_s * (1 - MARGIN)

    def add(
        self,
        claims: Iterable[Claim],
        sent_at: float,
        running: Mapping[int, object],
        rank: Callable[[Claim], tuple[int, ...]] = lambda c: (),
    ) -> None:
        """Holds from a claim sent at ``sent_at``, kept in ``rank`` order (the queue's: a later
        claim may bring tasks the queue puts first, say a partition's next stage; ties keep their
        order); one of a task already running or held here (a hold lost and granted again) is
        given back."""
        known = {h.claim.task_id for h in self.held}
        for c in claims:
            if c.task_id in running or c.task_id in known:
                self.releases.append(c.task_id)
            else:
                self.held.append(Held(c, self.deadline(sent_at), rank(c)))
        self.held = deque(sorted(self.held, key=lambda h: h.rank))

    def take(self, fits: Mapping[str, int], costs: Mapping[int, Mapping[str, int]], now: float) -> list[Claim]:
        """The held tasks to start now, in order, as far as they fit ``fits`` (their costs by task
        id); those past their deadline are dropped on the way."""
        free = dict(fits)
        taken: list[Claim] = []
        kept: deque[Held] = deque()
        while self.held:
            h = self.held.popleft()
            if h.deadline <= now:
                self.dropped += 1
                continue
            cost = costs.get(h.claim.task_id, {"slots": 1})
            if all(free.get(k, 0) >= v for k, v in cost.items()) and free.get("slots", 0) > 0:
                for k, v in cost.items():
                    free[k] = free.get(k, 0) - v
                taken.append(h.claim)
                self.starts.append((h.claim.task_id, h.claim.attempt))
                self.unacknowledged[h.claim.task_id] = h.claim.attempt
            else:
                kept.append(h)
        self.held = kept
        return taken

    def give_back(self, task_ids: Iterable[int]) -> None:
        """Drop these held tasks unstarted and tell the store (those started already stay)."""
        wanted = set(task_ids)
        back = [h.claim.task_id for h in self.held if h.claim.task_id in wanted]
        self.held = deque(h for h in self.held if h.claim.task_id not in wanted)
        self.releases += back

    def forget(self, task_ids: Iterable[int]) -> None:
        """Drop these held tasks unstarted without telling the store (it no longer holds them)."""
        gone = set(task_ids)
        self.held = deque(h for h in self.held if h.claim.task_id not in gone)

    def give_all_back(self) -> None:
        self.give_back([h.claim.task_id for h in self.held])

    def renewed(self, listed: Iterable[int], sent_at: float) -> None:
        """A heartbeat sent at ``sent_at`` renewed the holds of these tasks."""
        renewed = set(listed)
        for h in self.held:
            if h.claim.task_id in renewed:
                h.deadline = max(h.deadline, self.deadline(sent_at))

    def listed(self) -> list[tuple[int, int]]:
        """What the store should see this worker hold: held tasks, and started ones it has not
        acknowledged."""
        return [(h.claim.task_id, h.claim.attempt) for h in self.held] + sorted(self.unacknowledged.items())
