"""Make the databases of release 0.1.0 that tests/integration/test_schema.py upgrades in place.

Run once, with release 0.1.0's code first on the path (it used numbered SQL migrations; later
code cannot make these files):

    git worktree add /tmp/release010 a12e5da
    PYTHONPATH=/tmp/release010 .venv/bin/python tests/data/release_0_1_0/make_dumps.py

Writes ``sqlite.sql`` (sqlite3's iterdump) and ``postgresql.sql`` (pg_dump, plain format) beside
this file. Each holds three year-end events: one run to success by ``baton run``, one expanded by
the controller with its tasks waiting for workers, one cancelled before it started.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
GRAPH = ROOT / "examples" / "year_end_report" / "graph.yaml"
PG_ADMIN = os.environ.get("PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "baton_release_0_1_0"


def baton(db: str, cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "baton", *args, "--db", db], cwd=cwd, capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"baton {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def fill(db: str, cwd: Path) -> None:
    baton(db, cwd, "run", str(GRAPH), "-p", "year=2024", "-p", "departments=sales,hr,branch_a", "--workers", "1")
    baton(db, cwd, "submit", "year_end_report", "-p", "year=2025", "-p", "departments=sales,hr", "--key", "ye-2025")
    controller = subprocess.Popen([sys.executable, "-m", "baton", "controller", "--db", db], cwd=cwd)
    deadline = time.monotonic() + 60
    while "running" not in baton(db, cwd, "status", "2"):
        if time.monotonic() > deadline:
            raise SystemExit("the controller did not expand event 2 within 60 s")
        time.sleep(0.2)
    controller.send_signal(signal.SIGTERM)
    controller.wait(30)
    baton(db, cwd, "submit", "year_end_report", "-p", "year=2026", "--key", "ye-2026")
    baton(db, cwd, "cancel", "3")


def main() -> None:
    from baton.store import migrate

    if not hasattr(migrate, "apply_pending"):
        raise SystemExit("run this with release 0.1.0's code first on PYTHONPATH (see the docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        path = cwd / "baton.db"
        fill(f"sqlite:///{path}", cwd)
        with sqlite3.connect(path) as conn:
            (HERE / "sqlite.sql").write_text("\n".join(conn.iterdump()) + "\n", encoding="utf-8")
        admin = ["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-q", "-c"]
        subprocess.run([*admin, f"DROP DATABASE IF EXISTS {PG_NAME}"], check=True)
        subprocess.run([*admin, f"CREATE DATABASE {PG_NAME}"], check=True)
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_NAME
        try:
            fill(url, cwd)
            dump = subprocess.run(["pg_dump", "--no-owner", "--no-privileges", url], check=True, capture_output=True,
                                  text=True).stdout  # fmt: skip
            (HERE / "postgresql.sql").write_text(dump, encoding="utf-8")
        finally:
            subprocess.run([*admin, f"DROP DATABASE IF EXISTS {PG_NAME}"], check=True)


if __name__ == "__main__":
    main()
