"""Concurrency keys: a task's rendered key and whether it is parked, and each key's limit.

A parked task is ready but out of the claim's queue (the ``tasks_ready`` index now holds only
unparked ready tasks) until a task holding its key ends. Existing tasks have no key and are not
parked, so nothing here needs filling from older rows.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("limit_key", sa.Text()))
    op.add_column("tasks", sa.Column("parked", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.drop_index("tasks_ready", table_name="tasks")
    op.create_index(
        "tasks_ready",
        "tasks",
        [sa.text("priority DESC"), sa.text("stage DESC"), "available_at", "id"],
        sqlite_where=sa.text("state = 'ready' AND parked = 0"),
        postgresql_where=sa.text("state = 'ready' AND parked = 0"),
    )
    op.create_index(
        "tasks_limit_key",
        "tasks",
        ["limit_key", "state", "parked"],
        sqlite_where=sa.text("limit_key IS NOT NULL"),
        postgresql_where=sa.text("limit_key IS NOT NULL"),
    )
    op.create_table(
        "limit_keys",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("max_running", sa.Integer(), nullable=False),
    )
