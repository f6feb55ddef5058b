"""Backends: where all state lives. ``open_store`` turns a URL into one.

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (or a bare path): the
  embedded default, for one host.
- ``postgresql://…``: for many machines (see docs/deployment.md).

Each backend takes what it needs from the :class:`~baton.settings.Settings` it is given (the
result and parameter caps, plus its own database's settings).
"""

from __future__ import annotations

from pathlib import Path

from baton.errors import UsageError
from baton.settings import Settings, default_settings
from baton.store.protocol import Store
from baton.store.sql import SqlStore


def open_store(url: str, settings: Settings | None = None, migrate: bool = True) -> Store:
    """Open (and by default migrate) the backend named by ``url``, configured by ``settings``
    (every default when None; its ``db`` is not consulted: ``url`` names the database)."""
    settings = settings or default_settings()
    backend: SqlStore
    if url.startswith(("postgresql://", "postgres://")):
        from baton.store.postgres import PostgresStore

        backend = PostgresStore(url, settings)
    else:
        from baton.store.sqlite import SqliteStore

        backend = SqliteStore(sqlite_path(url), settings)
    if migrate:
        backend.migrate()
    return backend


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite://`` URL (or a bare path)."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path:
            raise UsageError(f"{url!r}: a SQLite URL needs a file path, e.g. sqlite:///baton.db")
        return Path(path)
    if "://" in url:
        raise UsageError(f"{url!r}: unknown database URL (expected sqlite:///PATH or postgresql://...)")
    return Path(url)
