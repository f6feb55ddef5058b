"""Backends: where all state lives. ``open_backend`` turns a URL into one.

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (or a bare path): the
  embedded default, for one host.
- ``postgresql://…``: for many machines (see docs/deployment.md once it lands).
"""

from __future__ import annotations

from pathlib import Path

from baton.backends.protocol import Store
from baton.backends.sql import SqlBackend
from baton.errors import UsageError


def open_backend(url: str, migrate: bool = True, **options: object) -> Store:
    """Open (and by default migrate) the backend named by ``url``."""
    backend: SqlBackend
    if url.startswith(("postgresql://", "postgres://")):
        from baton.backends.postgres import PostgresBackend

        options.pop("synchronous", None)  # a SQLite setting
        backend = PostgresBackend(url, **options)  # type: ignore[arg-type]
        if migrate:
            backend.migrate()
        return backend
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path:
            raise UsageError(f"{url!r}: a SQLite URL needs a file path, e.g. sqlite:///baton.db")
    elif "://" in url:
        raise UsageError(f"{url!r}: unknown database URL (expected sqlite:///PATH or postgresql://...)")
    else:
        path = url
    from baton.backends.sqlite import SqliteBackend

    options.pop("reconnect_s", None)  # a PostgreSQL setting: SQLite is a local file

    backend = SqliteBackend(Path(path), **options)  # type: ignore[arg-type]
    if migrate:
        backend.migrate()
    return backend
