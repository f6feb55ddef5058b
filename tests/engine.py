"""A controller and one database-connected worker as threads of the test process, over the
test's store: what runs the tasks while a client speaks to ``baton server`` about them. The
tasks themselves are real child processes (the worker's executors)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from baton.controller.loop import Controller, ControllerConfig
from baton.graphs.builder import GraphBuilder
from baton.settings import default_settings
from baton.store.protocol import Store
from baton.worker.loop import Worker, WorkerConfig

GRAPHS = str(Path(__file__).resolve().parent / "graphs")
JOIN_S = 30.0


class Engine:
    def __init__(self, backend: Store, slots: int = 2) -> None:
        settings = default_settings()
        self.stop = threading.Event()
        config = ControllerConfig.from_settings(settings, poll_s=0.05, idle_poll_s=0.1, sweep_s=0.2)
        self.controller = Controller(backend, config)
        self.worker = Worker(backend, WorkerConfig.from_settings(
            settings, capacity={"slots": slots}, lease_s=10, heartbeat_s=0.2, poll_s=0.05, idle_poll_s=0.1,
        ))  # fmt: skip
        self.threads = [
            threading.Thread(target=self.controller.run, args=(self.stop,), daemon=True),
            threading.Thread(target=self.worker.run, daemon=True),
        ]

    def __enter__(self) -> Engine:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop.set()
        self.worker.request_stop(drain_s=0)
        for thread in self.threads:
            thread.join(JOIN_S)
        assert not any(t.is_alive() for t in self.threads), "the engine did not stop"


def graph(name: str, **defaults: Any) -> GraphBuilder:
    """A graph of the test task bodies in tests/graphs."""
    return GraphBuilder(name, python_path=[GRAPHS], defaults=defaults or None)
