"""Schema migrations: numbered SQL files per dialect, applied in order, each in a transaction.

Files live beside this module as ``<dialect>_<NNNN>_<name>.sql``. The applied versions are
kept in ``schema_migrations``; a database newer than this code is refused rather than used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from baton.backends.tx import Tx
from baton.errors import SchemaError

FILE_RE = re.compile(r"^(?P<dialect>[a-z]+)_(?P<version>\d{4})_(?P<name>\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines() if not line.strip().startswith("--"))
        return [s.strip() for s in body.split(";") if s.strip()]


def migrations(dialect: str) -> list[Migration]:
    folder = resources.files("baton.backends") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = FILE_RE.match(entry.name)
        if match and match["dialect"] == dialect:
            found.append(Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest_version(dialect: str) -> int:
    return max((m.version for m in migrations(dialect)), default=0)


def applied_versions(tx: Tx) -> set[int]:
    tx.q(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at DOUBLE PRECISION NOT NULL)"
    )
    return {r[0] for r in tx.rows("SELECT version FROM schema_migrations")}


def apply_pending(tx: Tx, dialect: str) -> list[int]:
    """Apply every migration not yet applied; the caller holds the write lock."""
    done = applied_versions(tx)
    known = migrations(dialect)
    newest = max((m.version for m in known), default=0)
    if done and max(done) > newest:
        raise SchemaError(
            f"the database schema is at version {max(done)} but this Baton knows only up to {newest}; "
            "upgrade Baton before using this database"
        )
    applied = []
    for migration in known:
        if migration.version in done:
            continue
        for statement in migration.statements():
            tx.q(statement)
        tx.q(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, tx.now),
        )
        applied.append(migration.version)
    return applied
