"""Alembic's entry: runs the revisions on the connection Baton hands over (see migrate.upgrade).

Baton opens the connection, takes the migration lock and begins the transaction itself, so that
checking the revision, stamping an old release's database and upgrading are one transaction.
"""

from __future__ import annotations

from alembic import context

from baton.store import tables

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=tables.metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
