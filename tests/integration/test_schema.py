"""The migrated schema of each dialect equals the one declared in baton.backends.schema."""

from __future__ import annotations

from baton.backends import journal, schema
from baton.backends.sql import SqlBackend
from baton.backends.tx import Tx


def _sqlite(tx: Tx) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    names = [r[0] for r in tx.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
    tables = {t: {r[1]: r[2] for r in tx.rows(f"PRAGMA table_info({t})")} for t in names}
    indexes = {
        r[0]: r[1] for r in tx.rows("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    }
    return tables, indexes


def _postgres(tx: Tx) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    for table, column, kind in tx.rows(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
    ):
        tables.setdefault(table, {})[column] = kind
    indexes = {
        r[0]: r[1]
        for r in tx.rows(
            "SELECT i.indexname, i.tablename FROM pg_indexes i WHERE i.schemaname = 'public' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        )
    }
    return tables, indexes


def test_the_migrated_schema_equals_the_declared_one(backend: SqlBackend) -> None:
    dialect = getattr(backend, "dialect", "")
    with backend.transaction(write=False) as tx:
        tables, indexes = _sqlite(tx) if dialect == "sqlite" else _postgres(tx)
    tables.pop(journal.TABLE, None)  # the suite's own move journal, not part of the schema
    types = schema.TYPE_NAMES[dialect]
    neutral = {t: {c: types.get(k, f"unknown {k}") for c, k in cols.items()} for t, cols in tables.items()}
    assert neutral == schema.TABLES
    assert indexes == schema.INDEXES
