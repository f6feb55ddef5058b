"""How long a remote worker's requests take, by route: what ``baton bench --remote`` reports
(``baton worker --stats-file``). Off unless asked for; a worker that records keeps at most
:data:`MAX_SAMPLES` durations per route (the count goes on past that)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

MAX_SAMPLES = 1_000_000
_ID = re.compile(r"/\d+(?=/|$)")


def route_of(path: str) -> str:
    """``/worker/v1/graphs/12`` → ``/worker/v1/graphs/{id}``: one key per route, not per object."""
    return _ID.sub("/{id}", path)


class CallTimes:
    """Request counts and durations (seconds) by method and route; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, list[float]] = {}

    def record(self, method: str, path: str, seconds: float) -> None:
        key = f"{method} {route_of(path)}"
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            samples = self.seconds.setdefault(key, [])
            if len(samples) < MAX_SAMPLES:
                samples.append(seconds)

    def dump(self, path: Path) -> None:
        """Write ``{"counts": {route: n}, "seconds": {route: [durations]}}`` (for the bench)."""
        with self._lock:
            text = json.dumps({"counts": self.counts, "seconds": self.seconds})
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
