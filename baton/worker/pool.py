"""A pool of warm executor processes, at most one per slot."""

from __future__ import annotations

import threading

from baton.worker.executor import Executor


class ExecutorPool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[Executor] = []
        self._all: list[Executor] = []
        self._lock = threading.Lock()

    def warm(self, count: int) -> None:
        """Start executors ahead of the first task (each takes ~0.1 s to boot)."""
        started = [Executor() for _ in range(min(count, self.size))]
        with self._lock:
            self._idle.extend(started)
            self._all.extend(started)

    def borrow(self) -> Executor:
        with self._lock:
            while self._idle:
                executor = self._idle.pop()
                if executor.alive:
                    return executor
                self._all.remove(executor)
        executor = Executor()
        with self._lock:
            self._all.append(executor)
        return executor

    def give_back(self, executor: Executor) -> None:
        """Return an executor after a task (one that was killed is closed instead; one that died
        by itself while idle is caught by borrow)."""
        with self._lock:
            if not executor.killed:
                self._idle.append(executor)
            else:
                if executor in self._all:
                    self._all.remove(executor)
                executor.close()

    def close(self) -> None:
        with self._lock:
            executors, self._all, self._idle = self._all, [], []
        for executor in executors:
            executor.close()
