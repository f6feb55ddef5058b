"""Everything on one machine: worker processes for ``baton run`` (and the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

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
        self, settings: Settings, count: int, capacity: Mapping[str, int], log_dir: Path, labels: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        self.count = count
        self.capacity = dict(capacity)
        self.labels = list(labels)
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            argv = worker_command(self.settings, self.capacity, self.labels, name=f"local{i + 1}")
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
