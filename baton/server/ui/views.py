"""What the pages of one event share: one look at the event, and each fragment computed once per
version of it, whatever the number of pages showing it.

Ten pages open on one event would otherwise each read the event, and render its header, graph
and waiting panel, every time it moves; with :class:`Views` (one per app) they cost about what one
page costs, plus writing each page its message. Kept, per app and bounded in number (least
recently used first out):

- the event's latest **look** (its record, its per-node counts and the version they make), reused
  for LOOK_TTL_S;
- each **fragment** at a version, per kind of viewer (whether they may steer: the header then
  holds buttons);
- the **timeline**, whose read walks every task of the event (about 70 ms at 60,000 tasks on
  SQLite). While the event runs, once computed it is held at least TIMELINE_MIN_S, and at least
  COST_SHARE times what it cost, so that one event's timeline never takes more than 1/COST_SHARE
  of a core however many pages show it and however fast the event moves. Once the event has
  ended its timeline is computed at its final version, and kept until it falls out.

Access is never cached: every request still checks its token may see the event's type.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from baton.store.protocol import ReadStore
from baton.store.records import EventRecord
from baton.wire.api import event_version

T = TypeVar("T")
LOOK_TTL_S = 0.5  # streams waking together share one look
TIMELINE_MIN_S = 5.0
COST_SHARE = 400  # hold an expensive answer 400 times what it cost: at most 0.25 % of a core
MAX_ENTRIES = 256


@dataclass(frozen=True)
class Look:
    """One read of an event: enough for its header, graph and waiting panel, and its version."""

    event: EventRecord
    counts: Mapping[str, Mapping[str, int]]
    version: str


def look_at(store: ReadStore, event_id: int) -> Look:
    event = store.event(event_id)
    counts = store.node_counts(event_id)
    return Look(event, counts, event_version(event, counts))


def hold_for_cost(cost_s: float) -> float:
    """How long an expensive answer is kept once computed (see the module docstring)."""
    return max(TIMELINE_MIN_S, COST_SHARE * cost_s)


@dataclass
class _Entry:
    version: object = None
    value: Any = None
    made_at: float = 0.0
    hold_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Views:
    """The app's shared views (see the module docstring). Thread-safe: fragments are computed in
    the server's worker threads; callers asking for the same key at once wait for one computation."""

    def __init__(self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._max = max_entries
        self.computed = 0  # how many answers were computed (for tests and figures)

    def get(self, key: Hashable, version: object, compute: Callable[[], T],
            hold: Callable[[float], float] | None = None) -> T:  # fmt: skip
        """``compute()``'s answer for ``key`` at ``version``: computed once, then reused while the
        version holds, or (with ``hold``, given what it cost) while its hold lasts. A caller that
        passes no ``hold`` gets the answer at its version (an event that has just ended: its
        final timeline, not one held from before)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        with entry.lock:
            held = hold is not None and self._clock() - entry.made_at < entry.hold_s
            if entry.made_at and (entry.version == version or held):
                return entry.value  # type: ignore[no-any-return]
            started = time.perf_counter()
            value = compute()
            cost = time.perf_counter() - started
            entry.version, entry.value, entry.made_at = version, value, self._clock()
            entry.hold_s = hold(cost) if hold is not None else 0.0
            self.computed += 1
            return value

    def look(self, store: ReadStore, event_id: int) -> Look:
        """The event's latest look, at most LOOK_TTL_S old."""
        unmatched = object()  # a look is kept for its time only, never for a version
        return self.get(("look", event_id), unmatched, lambda: look_at(store, event_id), hold=lambda _: LOOK_TTL_S)

    def forget(self, event_id: int) -> None:
        """Drop the event's look (it was just changed from here): the next one reads it again."""
        with self._lock:
            self._entries.pop(("look", event_id), None)
