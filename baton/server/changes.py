"""One thread per server watches the store for changes and counts them; long polls wait on
the count. A waiter passes the count it saw before its last look (``since``): when the count has
moved on, something changed after that look and the waiter returns at once, so a change that
lands between a worker's empty claim and its wait is never slept through.

The count lives in this process and starts again at zero when the server restarts, so each run
of the server has an ``epoch`` of its own: a waiter whose ``since`` came from another run (a
claim answered before a restart, a wait sent after it) is answered at once and looks again,
instead of waiting for a count that means nothing here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import threading
import uuid

from baton.server.background import Background
from baton.store.protocol import ChangeFeed

log = logging.getLogger("baton.api")
LOOK_S = 1.0  # the longest the watching thread blocks in the store before checking for stop


class ChangeWatch(Background):
    thread_name = "baton-changes"
    stop_wait_s = LOOK_S + 1

    def __init__(self, feed: ChangeFeed, safety_poll_s: float = 1.0) -> None:
        super().__init__()
        self.feed = feed
        self.safety_poll_s = safety_poll_s  # where the store cannot wake us: count a change this often
        self.count = 0
        self.epoch = uuid.uuid4().hex[:16]  # this run's: counts of another run mean nothing here
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.RLock()  # release() runs in a signal handler, maybe inside wait()'s hold
        self._released = False

    def start(self) -> None:
        self._stop_r, self._stop_w = os.pipe()  # readable once stop() is called: the look ends at once
        super().start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(AttributeError, OSError):
            os.write(self._stop_w, b"!")
        super().stop()
        for fd in (getattr(self, "_stop_r", None), getattr(self, "_stop_w", None)):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                changed = self._look() or not self.feed.pushes_changes
            except Exception as exc:  # the store is away: wake everyone so they look for themselves
                log.warning("cannot watch the store for changes: %s", exc)
                self._stop.wait(1.0)
                changed = True
            if changed:
                self.bump()

    def _look(self) -> bool:
        """Whether the store changed, after waiting up to LOOK_S for it. Where the store offers a
        descriptor, the wait is on it and on stop() beside it, so that stopping (a server's
        SIGTERM) does not wait out the look."""
        fd = self.feed.change_fd() if self.feed.pushes_changes else None
        if fd is None:
            return self.feed.wait_for_change(LOOK_S if self.feed.pushes_changes else self.safety_poll_s)
        if self.feed.wait_for_change(0.0):
            return True
        select.select([fd, self._stop_r], [], [], LOOK_S)
        return self.feed.wait_for_change(0.0)

    def release(self) -> None:
        """The server is stopping: answer every long poll now (and any that still comes), so
        shutting down waits for none of them and their workers look again at once."""
        self._released = True
        self.bump()

    @property
    def released(self) -> bool:
        """The server is stopping: streams should end."""
        return self._released

    def bump(self) -> None:
        with self._lock:
            self.count += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def news(self, since: int, epoch: str | None) -> bool:
        """Whether a waiter that saw ``since`` (in ``epoch``, when it says) should look again now.
        A count above ours can only come from another run, like another epoch."""
        return self._released or self.count != since or (epoch is not None and epoch != self.epoch)

    async def wait(self, since: int, timeout_s: float, epoch: str | None = None) -> int:
        """Return the count once there is news for ``since`` (see :meth:`news`), or after
        ``timeout_s``."""
        if self.news(since, epoch) or timeout_s <= 0:
            return self.count
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            if self.news(since, epoch):
                return self.count
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry[1].wait(), timeout_s)
            return self.count
        finally:
            with self._lock:
                self._waiters.discard(entry)
