"""Rate limits: a task's rendered rate key, each key's limit and period, and the starts still
inside each key's window.

A task its rate refuses is parked with ``parked = 3`` (out of the ``tasks_ready`` index, like a
task parked on a full concurrency key, ``parked = 1``). Existing tasks have no rate key, so
nothing here needs filling from older rows.

Revision ID: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("rate_key", sa.Text()))
    op.create_index(
        "tasks_rate_key",
        "tasks",
        ["rate_key", "state", "parked"],
        sqlite_where=sa.text("rate_key IS NOT NULL"),
        postgresql_where=sa.text("rate_key IS NOT NULL"),
    )
    op.create_table(
        "rate_keys",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("max_starts", sa.Integer(), nullable=False),
        sa.Column("period_s", TIME, nullable=False),
        sa.Column("clock_at", TIME, nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "rate_starts",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("at", TIME, primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
    )
