"""Alembic keeps the revision from here on: the numbered-SQL runner's table goes.

A database made by release 0.1.0 was stamped at its last version in ``schema_migrations``
before this revision runs (see ``baton.store.migrate``). Its SQLite files declared the text
primary keys of ``workers`` and ``leadership`` without NOT NULL, which SQLite (unlike the SQL
standard) then does not imply; the two small tables are rebuilt with it.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS schema_migrations")
    if op.get_context().dialect.name == "sqlite":
        for table, key in (("workers", "id"), ("leadership", "role")):
            with op.batch_alter_table(table) as batch:
                batch.alter_column(key, existing_type=sa.Text(), nullable=False)
