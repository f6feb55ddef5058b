"""Each backend is configured by the settings it is given, and by nothing else."""

from __future__ import annotations

from pathlib import Path

from baton.settings import Settings, default_settings
from baton.store import open_store
from baton.store.sql import SqlStore
from baton.store.sqlite import SqliteStore

SYNCHRONOUS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}  # what PRAGMA synchronous answers


def pragmas(backend: SqliteStore) -> tuple[int, ...]:
    with backend.transaction(write=False) as tx:
        return tuple(tx.one(f"PRAGMA {name}")[0] for name in ("synchronous", "busy_timeout", "wal_autocheckpoint"))


def test_sqlite_connections_take_their_pragmas_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(sqlite_synchronous="FULL", sqlite_busy_timeout_s=1.25, sqlite_checkpoint_bytes=64 * 4096)
    backend = SqliteStore(tmp_path / "set.db", settings)
    plain = SqliteStore(tmp_path / "plain.db")
    try:
        assert pragmas(backend) == (SYNCHRONOUS["FULL"], 1250, 64)
        defaults = default_settings()
        assert pragmas(plain) == (
            SYNCHRONOUS[defaults.sqlite_synchronous],
            int(defaults.sqlite_busy_timeout_s * 1000),
            4000,  # 16 MB of 4 KiB pages, as measured in docs/benchmarks.md
        )
    finally:
        backend.close()
        plain.close()


def test_the_caps_and_the_reconnect_time_come_from_the_settings(store_url: str) -> None:
    settings = Settings(max_result_bytes=2000, max_params_bytes=3000, max_log_bytes=4000, reconnect_s=7.0)
    backend = open_store(store_url, settings)
    try:
        assert isinstance(backend, SqlStore)
        assert (backend.max_result_bytes, backend.max_params_bytes, backend.max_log_bytes) == (2000, 3000, 4000)
        # SQLite is a local file: there is no connection to lose, so nothing is retried
        assert backend.reconnect_s == (7.0 if store_url.startswith("postgresql") else 0.0)
    finally:
        backend.close()
