"""A daemon thread the app starts with its lifespan and stops on the way out."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class Background(ABC):
    """Runs :meth:`_run` in a daemon thread between :meth:`start` and :meth:`stop`; ``_run``
    returns soon after ``_stop`` is set (it waits at most ``stop_wait_s`` for it)."""

    thread_name = "baton-background"
    stop_wait_s = 5.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.stop_wait_s)

    @abstractmethod
    def _run(self) -> None: ...
