"""A throwaway PostgreSQL server for the tests, started from the installed binaries.

No Docker here: ``initdb`` and ``pg_ctl`` from the distribution's packages run a private
cluster in a temporary folder on a free port. As root (CI), the server runs as the
``postgres`` user, since PostgreSQL refuses to run as root. Each test process (pytest-xdist
runs several) starts its own: its own folder (under the process's own temporary folder, see
conftest.py) and its own port (:mod:`ports`), tried again on another port if that one was
taken between choosing and binding it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ports import free_port

PORT_TRIES = 5


def find_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


class PgServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="baton-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PgServer:
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        for attempt in range(PORT_TRIES):
            logged = self._log_text()
            try:
                self._pg_ctl("start")
                return self
            except subprocess.CalledProcessError as exc:
                said = self._log_text()[len(logged) :]
                if attempt == PORT_TRIES - 1 or "Address already in use" not in said:
                    raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r}\n{said[-3000:]}") from exc
                self.port = free_port()  # taken since it was chosen: another one
        raise AssertionError("unreachable")

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c shared_preload_libraries=pg_stat_statements -c max_connections=200")  # fmt: skip
        self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, *extra)

    def restart(self, mode: str = "immediate") -> None:
        """Restart the server (``immediate`` is a crash: no clean shutdown)."""
        self._pg_ctl("restart", "-m", mode)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
