"""Everything on one machine: worker processes for ``baton run`` (and the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from baton.errors import UsageError
from baton.model import Graph
from baton.settings import Settings


def worker_command(
    settings: Settings,
    capacity: Mapping[str, int],
    labels: Sequence[str] = (),
    name: str = "",
    extra: Sequence[str] = (),
) -> list[str]:
    """The argv that starts one ``baton worker`` with these settings."""
    argv = [
        sys.executable,
        "-m",
        "baton",
        "worker",
        "--db",
        settings.db,
        "--lease-s",
        str(settings.lease_s),
        "--heartbeat-s",
        str(settings.heartbeat_interval_s),
        "--poll-s",
        str(settings.poll_s),
        "--idle-poll-s",
        str(settings.idle_poll_s),
        "--drain-s",
        str(settings.drain_s),
        "--max-result-bytes",
        str(settings.max_result_bytes),
        "--max-log-bytes",
        str(settings.max_log_bytes),
    ]
    for key, amount in capacity.items():
        argv += ["--slots", str(amount)] if key == "slots" else ["--resource", f"{key}={amount}"]
    for label in labels:
        argv += ["--label", label]
    if name:
        argv += ["--name", name]
    return argv + list(extra)


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
    ) -> None:
        self.settings = settings
        self.event_id = event_id  # take only this event's tasks (None: any)
        self.count = count
        self.capacity = dict(capacity)
        self.labels = list(labels)
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            only = [] if self.event_id is None else ["--event", str(self.event_id)]
            argv = worker_command(self.settings, self.capacity, self.labels, name=f"local{i + 1}", extra=only)
            with open(self.log_dir / f"worker-{i + 1}.log", "ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                )

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.processes)

    def stop(self, timeout_s: float = 30.0) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
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
