"""Shared fixtures. Every store a test opens is checked for broken invariants afterwards.

``store_url`` (and ``backend`` on top of it) is parametrized over SQLite and PostgreSQL, so the
contract tests run on both. PostgreSQL comes from a throwaway server started from the installed
binaries (or ``BATON_TEST_POSTGRES_DSN`` when there are none); with ``CI=true`` a missing
PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pgserver import PgServer, find_bindir
from serving import Served

from baton.store import open_store
from baton.store.protocol import Store
from baton.testing import check_invariants

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "graphs"
EXAMPLE = ROOT / "examples" / "year_end_report" / "graph.yaml"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEMPLATE = "baton_template"


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but {why}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {why}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    """Our own server when the binaries are installed (restart tests need one), else None."""
    bindir = find_bindir()
    if bindir is None:
        yield None
        return
    server = PgServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_admin(pg_server: PgServer | None) -> Iterator[str]:
    """An admin DSN, with a migrated template database to clone for each test."""
    dsn = pg_server.dsn if pg_server is not None else os.environ.get("BATON_TEST_POSTGRES_DSN")
    if not dsn:
        _unavailable("no pg_ctl found and BATON_TEST_POSTGRES_DSN is not set")
    assert dsn is not None
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
    except psycopg.Error as exc:
        _unavailable(f"cannot connect to {dsn}: {exc}")
    template = open_store(_database(dsn, TEMPLATE))
    template.debug.record_moves()  # every database cloned from it journals its task moves
    template.close()
    yield dsn


def _database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"baton_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield _database(pg_admin, name)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that journals its task moves, copied for each test: migrating a
    new file loads SQLAlchemy and Alembic, about a second per process (tests/integration/
    test_schema.py migrates empty databases itself)."""
    path = tmp_path_factory.mktemp("template") / "baton.db"
    template = open_store(f"sqlite:///{path}")
    template.debug.record_moves()
    template.close()
    return path


def _sqlite_copy(template: Path, folder: Path) -> str:
    path = folder / "baton.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite URL in the test's folder, no file yet (for tests about the embedded backend itself)."""
    return f"sqlite:///{tmp_path / 'baton.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The contract fixture: the same test once on SQLite, once on PostgreSQL, each migrated."""
    if request.param == "sqlite":
        return _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def backend(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    store.debug.record_moves()  # a no-op on PostgreSQL (cloned from the template, which has it)
    yield store
    problems = check_invariants(store)
    store.close()
    assert not problems, "broken invariants:\n" + "\n".join(problems)


def baton(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``baton`` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "baton", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def served(backend: Store, tmp_path: Path) -> Iterator[Served]:
    """A real ``baton server`` over the test's store (both backends), on a loopback port."""
    server = Served(backend.url, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
