"""Time, in one place: a clock that loops read and wait on, and the backoff every retry loop follows.

A loop given a :class:`Clock` instead of calling :mod:`time` can be driven by a test's
:class:`FakeClock`, which never blocks: a wait returns at once, having moved time on by the
wait's length (unless what it waited on had already happened). The test then sees exactly when
each thing happens, with no sleeping and no margin for a slow machine.

:class:`Backoff` is the single shape of "try again after a transient failure": pauses doubling
from ``first_s`` up to ``max_s``, optionally jittered, until a number of tries or a time limit
runs out. Each retry loop (the store's verbs, the worker's HTTP link, the client, PostgreSQL's
LISTEN connection) keeps its own numbers as its own instance.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

Wake = Callable[[float], bool]
"""A blocking wait with a timeout that says whether it was woken: ``threading.Event.wait``, a
store's ``wait_for_change``."""


class Clock(Protocol):
    """What a loop needs of time: read it, and wait."""

    def now(self) -> float:
        """Monotonic seconds, for intervals and deadlines (not a date)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for timestamps."""
        ...

    def wait(self, seconds: float, wake: Wake | None = None) -> bool:
        """Wait ``seconds``, or less if ``wake`` (given the timeout) returns sooner; return what
        ``wake`` returned, False without one. ``wait(s)`` alone is a sleep."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time`, and waits that block."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, seconds: float, wake: Wake | None = None) -> bool:
        seconds = max(0.0, seconds)
        if wake is None:
            time.sleep(seconds)
            return False
        return wake(seconds)


class FakeClock:
    """A clock for tests: time moves only by :meth:`advance` or by a wait, and no wait blocks.

    A wait first asks ``wake`` without waiting (``wake(0)``): if it says woken (a stop event set, a
    change in the store), the wait ends at once and time stands still; otherwise time jumps ahead
    by the whole wait, as if it had been slept. Every wait's length is kept in :attr:`waits`."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> float:
        return self.now() + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds`` (never back)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._now += seconds

    def wait(self, seconds: float, wake: Wake | None = None) -> bool:
        seconds = max(0.0, seconds)
        self.waits.append(seconds)
        if wake is not None and wake(0.0):
            return True
        self.advance(seconds)
        return False


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How long to pause before each retry of something that failed transiently.

    Pauses start at ``first_s`` and double up to ``max_s``; with ``jitter`` each is scaled by a
    random factor between ``1 - jitter`` and ``1 + jitter`` (so retrying processes spread out).
    The pauses end, and the caller gives up, after ``tries`` retries, or when the next pause would
    end more than ``within_s`` after :meth:`delays` was called; None sets no such limit."""

    first_s: float
    max_s: float
    jitter: float = 0.0
    tries: int | None = None
    within_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s:
            raise ValueError(f"a backoff needs 0 < first_s <= max_s, not {self.first_s} and {self.max_s}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"a backoff's jitter is a fraction in [0, 1), not {self.jitter}")
        if (self.tries is not None and self.tries < 0) or (self.within_s is not None and self.within_s < 0):
            raise ValueError(f"a backoff's limits cannot be negative (tries={self.tries}, within_s={self.within_s})")

    def delays(self, clock: Clock | None = None, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """The pauses before each retry, in order, until the policy gives up. ``within_s`` counts
        from this call: make it just before the first try."""
        clock = clock or SystemClock()
        return self._pauses(clock, clock.now(), rand)

    def _pauses(self, clock: Clock, started: float, rand: Callable[[], float]) -> Iterator[float]:
        delay, made = self.first_s, 0
        while self.tries is None or made < self.tries:
            pause = delay * (1 - self.jitter + 2 * self.jitter * rand())
            if self.within_s is not None and clock.now() + pause > started + self.within_s:
                return
            yield pause
            made += 1
            delay = min(delay * 2, self.max_s)
