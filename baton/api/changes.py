"""One thread per server watches the store for changes and counts them; long polls wait on
the count. A waiter passes the count it saw before its last look (``since``): when the count has
moved on, something changed after that look and the waiter returns at once, so a change that
lands between a worker's empty claim and its wait is never slept through."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from baton.backends.protocol import ChangeFeed

log = logging.getLogger("baton.api")
LOOK_S = 1.0  # the longest the watching thread blocks in the store before checking for stop


class ChangeWatch:
    def __init__(self, feed: ChangeFeed, safety_poll_s: float = 1.0) -> None:
        self.feed = feed
        self.safety_poll_s = safety_poll_s  # where the store cannot wake us: count a change this often
        self.count = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="baton-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LOOK_S + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait_s = LOOK_S if self.feed.pushes_changes else self.safety_poll_s
                changed = self.feed.wait_for_change(wait_s) or not self.feed.pushes_changes
            except Exception as exc:  # the store is away: wake everyone so they look for themselves
                log.warning("cannot watch the store for changes: %s", exc)
                self._stop.wait(1.0)
                changed = True
            if changed:
                self.bump()

    def bump(self) -> None:
        with self._lock:
            self.count += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    async def wait(self, since: int, timeout_s: float) -> int:
        """Return the count once it is past ``since``, or after ``timeout_s``."""
        if self.count > since or timeout_s <= 0:
            return self.count
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            if self.count > since:
                return self.count
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry[1].wait(), timeout_s)
            return self.count
        finally:
            with self._lock:
                self._waiters.discard(entry)
