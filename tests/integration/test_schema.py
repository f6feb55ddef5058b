"""The schema: a migrated database of each dialect equals the declaration in ``tables.py``,
whether it was made fresh or by release 0.1.0 (with events in it) and upgraded in place; the
upgrade keeps every row; a newer schema is refused; processes migrating together migrate once."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import SchemaError
from baton.store import journal, migrate, open_store, tables
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report

RELEASE_0_1_0 = Path(__file__).resolve().parents[1] / "data" / "release_0_1_0"
NOT_OURS = {journal.TABLE, migrate.VERSION_TABLE}


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:"):
        return sa.create_engine(url, poolclass=NullPool)
    return sa.create_engine("postgresql+psycopg://" + url.split("://", 1)[1], poolclass=NullPool)


def _ours(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
    return not (kind == "table" and name in NOT_OURS)


def schema_diff(url: str) -> list[Any]:
    """What Alembic's autogenerate finds between the database and tables.py (types included)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _ours})
            return list(compare_metadata(context, tables.metadata))
    finally:
        engine.dispose()


def index_definitions(url: str) -> dict[str, str]:
    """Each named index as the database itself spells it, order, partial condition and all
    (autogenerate compares names and columns, not these)."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            return {name: re.sub(r"\s+", " ", sql.replace('"', "")).strip() for name, sql in rows}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND NOT tablename = ANY(%s)",
            (sorted(NOT_OURS),),
        )
        return dict(rows.fetchall())


@pytest.fixture
def declared_url(request: pytest.FixtureRequest, tmp_path: Path, dialect: str) -> Iterator[str]:
    """A database made straight from tables.py (create_all), to read its index definitions."""
    url = _scratch(request, tmp_path, dialect, "declared")
    engine = _engine(url)
    tables.metadata.create_all(engine)
    engine.dispose()
    yield url


@pytest.fixture(params=["sqlite", "postgres"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _scratch(request: pytest.FixtureRequest, tmp_path: Path, dialect: str, name: str) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    admin: str = request.getfixturevalue("pg_admin")
    database = f"baton_s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    request.addfinalizer(lambda: _drop(admin, database))
    return admin.rsplit("/", 1)[0] + "/" + database


def _drop(admin: str, database: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, tmp_path: Path, dialect: str) -> str:
    return _scratch(request, tmp_path, dialect, "empty")


def load_release_0_1_0(url: str) -> None:
    """Restore the committed dump of a database release 0.1.0 made (see make_dumps.py)."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript((RELEASE_0_1_0 / "sqlite.sql").read_text(encoding="utf-8"))
        return
    psql = shutil.which("psql")
    assert psql is not None, "psql (PostgreSQL's client) is needed to restore the dump"
    subprocess.run([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(RELEASE_0_1_0 / "postgresql.sql")],
                   check=True, capture_output=True)  # fmt: skip


def table_columns(url: str) -> dict[str, list[str]]:
    """Every table's columns, by table."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            return {t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()}
    finally:
        engine.dispose()


def table_rows(url: str, like: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the migration bookkeeping, sorted, columns in name order
    (``like``: only these tables and columns, to compare with a database of an older schema)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            found = {}
            for table in sa.inspect(conn).get_table_names():
                if table in NOT_OURS | {migrate.LEGACY_TABLE} or (like is not None and table not in like):
                    continue
                columns = sorted(c["name"] for c in sa.inspect(conn).get_columns(table))
                columns = [c for c in columns if like is None or c in like[table]]
                select = sa.text(f"SELECT {', '.join(columns)} FROM {table}")
                found[table] = sorted((tuple(row) for row in conn.execute(select)), key=repr)
            return found
    finally:
        engine.dispose()


def test_head_is_the_newest_revision_and_the_revisions_are_one_line() -> None:
    config = Config()
    config.set_main_option("script_location", migrate.SCRIPTS)
    script = ScriptDirectory.from_config(config)
    assert script.get_heads() == [migrate.HEAD]
    chain = [s.revision for s in script.walk_revisions()]
    assert chain == [f"{n:04d}" for n in range(int(migrate.HEAD), 0, -1)]


def test_a_fresh_database_migrates_to_the_declared_schema(empty_url: str, declared_url: str) -> None:
    done = open_store(empty_url, migrate=False).migrate()
    assert done.before == migrate.Revision(None) and done.after == migrate.HEAD
    assert schema_diff(empty_url) == []
    assert index_definitions(empty_url) == index_definitions(declared_url)
    assert set(index_definitions(empty_url)) >= {"tasks_ready", "tasks_lease", "events_submitted", "audit_task"}


def test_a_database_of_release_0_1_0_upgrades_in_place_and_keeps_every_row(empty_url: str, declared_url: str) -> None:
    load_release_0_1_0(empty_url)
    before = table_rows(empty_url)
    assert len(before["events"]) == 3 and len(before["tasks"]) > 20 and before["audit"]
    columns = table_columns(empty_url)
    store = open_store(empty_url, migrate=False)
    assert store.schema_revision() == migrate.Revision(None, migrate.LEGACY_HEAD)
    done = store.migrate()
    assert done.before.legacy_version == migrate.LEGACY_HEAD and done.after == migrate.HEAD
    assert store.schema_revision() == migrate.Revision(migrate.HEAD)
    assert table_rows(empty_url, like=columns) == before
    assert schema_diff(empty_url) == []
    assert index_definitions(empty_url) == index_definitions(declared_url)
    _carry_on(store)
    store.close()


def _carry_on(store: Store) -> None:
    """The upgraded store works: the three events read as they were, the same idempotency key
    finds the same event, and the waiting event runs to success."""
    succeeded, running, cancelled = sorted(store.events(), key=lambda e: e.id)
    assert (succeeded.state, running.state, cancelled.state) == (
        EventState.SUCCEEDED, EventState.RUNNING, EventState.CANCELLED)  # fmt: skip
    again, created = store.submit(running.graph_id, json.loads(json.dumps(running.params)), key="ye-2025")
    assert (again.id, created) == (running.id, False)
    while True:
        claims = store.claim(ClaimRequest("upgraded", {"slots": 8}, frozenset({"erp"}), 8, 30.0)).claims
        if not claims:
            break
        now = time.time()
        store.report("upgraded", [Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now, now) for c in claims])
    assert store.event(running.id).state is EventState.SUCCEEDED
    assert {t.state for t in store.tasks(running.id)} == {TaskState.SUCCEEDED}


def test_migrating_twice_changes_nothing_and_a_newer_schema_is_refused(empty_url: str) -> None:
    store = open_store(empty_url)
    assert store.migrate().before == migrate.Revision(migrate.HEAD)
    future = f"{int(migrate.HEAD) + 1:04d}"
    engine = _engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": future})
    engine.dispose()
    for attempt in (store.migrate, lambda: open_store(empty_url)):
        with pytest.raises(SchemaError, match=f"revision {future}.*newer Baton"):
            attempt()
    assert store.schema_revision() == migrate.Revision(future)
    store.close()


def test_a_release_0_1_0_database_from_a_newer_numbered_release_is_refused(empty_url: str) -> None:
    load_release_0_1_0(empty_url)
    engine = _engine(empty_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (5, 'future', 0)"))
    engine.dispose()
    with pytest.raises(SchemaError, match="version 5"):
        open_store(empty_url)
    assert table_rows(empty_url)["events"], "a refused database is left as it was"


@pytest.mark.long(seconds=15)
def test_processes_that_start_together_on_an_empty_database_migrate_it_once(empty_url: str) -> None:
    upgrade = [sys.executable, "-m", "baton", "db", "upgrade", "--db", empty_url]
    runs = [subprocess.Popen(upgrade, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    said = sorted(out.strip() for out, _ in outputs)
    assert said == [
        f"schema at revision {migrate.HEAD}: up to date",
        f"schema at revision {migrate.HEAD}: up to date",
        f"schema upgraded from none (an empty database) to revision {migrate.HEAD}",
    ]
    assert schema_diff(empty_url) == []
