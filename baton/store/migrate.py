"""Bringing a database's schema to the one this code declares (``tables.py``), with Alembic.

Every process that opens a store calls ``migrate``; almost always the database is already at
``HEAD``, and that is answered by one read through the store's own connection, without
importing SQLAlchemy or Alembic (~0.2 s a process). Otherwise the store takes its migration lock
(SQLite: the writers' flock and ``BEGIN IMMEDIATE``; PostgreSQL: an advisory transaction lock),
reads the revision again and runs what is missing, all in one transaction: a crash half-way
leaves the database as it was, and processes starting together migrate once.

A database made by release 0.1.0 has no Alembic revision but a ``schema_migrations`` table with
the numbered SQL files it ran; revisions 0001 to 0004 are those files, so it is stamped at its
version and upgraded from there. A database at a revision this code does not know was made by a
newer Baton and is refused, never written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from baton.errors import BackendError, SchemaError
from baton.store.tx import Tx, read_rows, scalar

if TYPE_CHECKING:
    import sqlalchemy as sa

HEAD = "0015"  # the newest revision in migrations/versions (tests/integration/test_schema.py checks)
LEGACY_HEAD = 4  # the last numbered SQL migration release 0.1.0 knew
VERSION_TABLE = "alembic_version"
LEGACY_TABLE = "schema_migrations"
SCRIPTS = "baton.store:migrations"
DRIVERS = {"sqlite": "sqlite+pysqlite://", "postgresql": "postgresql+psycopg://"}  # the DB-API modules the stores use


class Revision(NamedTuple):
    """Where a database's schema stands: its Alembic revision, or an old release's version."""

    current: str | None
    legacy_version: int | None = None

    @property
    def at_head(self) -> bool:
        return self.current == HEAD

    def describe(self) -> str:
        if self.current is not None:
            return self.current
        if self.legacy_version is not None:
            return f"schema_migrations version {self.legacy_version} (release 0.1.0)"
        return "none (an empty database)"


class VersionRow(NamedTuple):
    version_num: str


class Upgrade(NamedTuple):
    before: Revision
    after: str


def _has_table(tx: Tx, dialect: str, name: str) -> bool:
    if dialect == "sqlite":
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
    return bool(scalar(tx, sql, (name,)))


def _one_revision(found: list[str]) -> str | None:
    if len(found) > 1:
        raise SchemaError(f"{VERSION_TABLE} holds several revisions {sorted(found)}: Baton's revisions are linear")
    return next(iter(found), None)


def read_revision(tx: Tx, dialect: str) -> Revision:
    """The schema's revision, read with the store's own connection (no SQLAlchemy)."""
    if _has_table(tx, dialect, VERSION_TABLE):
        found = [row.version_num for row in read_rows(tx, VersionRow, f"SELECT version_num FROM {VERSION_TABLE}")]
        return Revision(_one_revision(found))
    if _has_table(tx, dialect, LEGACY_TABLE):
        version = scalar(tx, f"SELECT max(version) FROM {LEGACY_TABLE}")
        return Revision(None, None if version is None else int(version))
    return Revision(None)


def _refuse_newer(revision: Revision, known: set[str]) -> None:
    if revision.current is not None and revision.current not in known:
        raise SchemaError(
            f"the database schema is at revision {revision.current}, which this Baton does not know "
            f"(it knows up to {HEAD}): it was made by a newer Baton; upgrade Baton before using this database"
        )
    if revision.legacy_version is not None and revision.legacy_version > LEGACY_HEAD:
        raise SchemaError(
            f"the database schema is at version {revision.legacy_version} but this Baton knows only up to "
            f"{LEGACY_HEAD} in schema_migrations; upgrade Baton before using this database"
        )


def upgrade(connection: sa.Connection) -> Upgrade:
    """Run every missing revision on ``connection``, whose transaction (and lock) the caller holds."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", SCRIPTS)
    config.attributes["connection"] = connection
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    before = _revision_of(connection)
    _refuse_newer(before, known)
    if before.current is None and before.legacy_version:
        command.stamp(config, f"{before.legacy_version:04d}")
    command.upgrade(config, "head")
    return Upgrade(before, HEAD)


def _revision_of(connection: sa.Connection) -> Revision:
    import sqlalchemy as sa

    tables = set(sa.inspect(connection).get_table_names())
    if VERSION_TABLE in tables:
        found = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        return Revision(_one_revision(list(found)))
    if LEGACY_TABLE in tables:
        version = connection.execute(sa.text(f"SELECT max(version) FROM {LEGACY_TABLE}")).scalar()
        return Revision(None, None if version is None else int(version))
    return Revision(None)


def run(connect: Callable[[], Any], dialect: str, lock: str | None = None, begin: str | None = None) -> Upgrade:
    """Open one SQLAlchemy connection with ``connect`` (a DB-API connection factory), begin
    (with ``begin`` if given), take ``lock`` (SQL) if given, and upgrade; errors become BackendError."""
    import sqlalchemy as sa
    from alembic.util import CommandError

    engine = sa.create_engine(DRIVERS[dialect], creator=connect, poolclass=sa.pool.NullPool)
    if begin is not None:
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
    try:
        with engine.begin() as connection:
            if lock is not None:
                connection.exec_driver_sql(lock)
            return upgrade(connection)
    except sa.exc.DBAPIError as exc:
        raise BackendError(f"cannot migrate the database schema: {exc.orig}") from exc
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        raise BackendError(f"cannot migrate the database schema: {exc}") from exc
    finally:
        engine.dispose()
