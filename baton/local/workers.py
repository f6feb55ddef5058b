"""Everything on one machine: worker processes for ``baton run`` (and the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from baton.errors import UsageError
from baton.graphs.model import Graph
from baton.settings import Settings, child_env

# How long a stopped worker may take past its drain before it is killed: it hands in its last
# reports and deregisters after the drain.
STOP_SLACK_S = 5.0


def worker_command(
    capacity: Mapping[str, int], labels: Sequence[str] = (), name: str = "", extra: Sequence[str] = ()
) -> list[str]:
    """The argv that starts one ``baton worker`` of this shape; its settings travel in its
    environment (:func:`worker_environment`), so none are on the command line."""
    argv = [sys.executable, "-m", "baton", "worker"]
    for key, amount in capacity.items():
        argv += ["--slots", str(amount)] if key == "slots" else ["--resource", f"{key}={amount}"]
    for label in labels:
        argv += ["--label", label]
    if name:
        argv += ["--name", name]
    return argv + list(extra)


def worker_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """A local worker's environment: ``environ`` with every setting replaced by ``settings``,
    the parent's resolved ones (file, environment and flags alike), and no settings file to read
    again; a file could have changed since, and the worker must use what its parent uses."""
    return {**child_env(settings, environ), "PYTHONUNBUFFERED": "1"}


class LocalWorkers:
    """N worker processes on this host; stopped with SIGTERM (graceful), then SIGKILL."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        capacity: Mapping[str, int],
        log_dir: Path,
        labels: Sequence[str] = (),
        event_id: int | None = None,
        hold: str = "auto",
    ) -> None:
        self.settings = settings
        self.event_id = event_id  # take only this event's tasks (None: any)
        self.hold = hold  # baton worker --hold
        self.count = count
        self.capacity = dict(capacity)
        self.labels = list(labels)
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            only = [] if self.event_id is None else ["--event", str(self.event_id)]
            held = [] if self.hold == "auto" else ["--hold", self.hold]
            argv = worker_command(self.capacity, self.labels, name=f"local{i + 1}", extra=only + held)
            with open(self.log_dir / f"worker-{i + 1}.log", "ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        env=worker_environment(self.settings, os.environ),
                    )
                )

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.processes)

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGTERM each worker; kill one still running ``timeout_s`` later (default: its drain
        plus :data:`STOP_SLACK_S`)."""
        stop_processes(self.processes, self.settings.drain_s + STOP_SLACK_S if timeout_s is None else timeout_s)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM each process, then SIGKILL one still running ``timeout_s`` later."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def check_fits(graph: Graph, capacity: dict[str, int], labels: Sequence[str]) -> None:
    """Refuse a local run in which some node could never be placed on any local worker."""
    problems = []
    for node in graph.nodes:
        short = {k: v for k, v in node.cost.items() if capacity.get(k, 0) < v}
        missing = sorted(node.labels - set(labels))
        if short:
            problems.append(f"node {node.name} needs {short} but each local worker has {capacity}")
        if missing:
            problems.append(f"node {node.name} needs labels {missing} that no local worker has")
    if problems:
        raise UsageError("these tasks could never run here: " + "; ".join(problems))


def labels_needed(graph: Graph) -> list[str]:
    """Local workers stand in for every server, so they get every label the graph asks for."""
    return sorted(set().union(*(node.labels for node in graph.nodes)))


def local_log_dir(settings: Settings) -> Path:
    if settings.db.startswith("sqlite://"):
        return Path(settings.db.removeprefix("sqlite://").removeprefix("/")).parent / "logs"
    return Path(".baton/logs")
