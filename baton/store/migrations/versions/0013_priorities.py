"""Priorities: an event's priority, each task's turn (fair queueing among equal priorities) and
when ageing last raised it; the ready queue's index orders by turn after priority.

Existing events have priority 0 and existing tasks turn 0 and were never raised: they keep the
order they had (priority, then depth, then age), as every task of one turn does.

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TURN: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.add_column("events", sa.Column("priority", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("tasks", sa.Column("turn", TURN, nullable=False, server_default=sa.text("0")))
    op.add_column("tasks", sa.Column("aged_at", TIME))
    op.drop_index("tasks_ready", table_name="tasks")
    op.create_index(
        "tasks_ready",
        "tasks",
        [sa.text("priority DESC"), "turn", sa.text("stage DESC"), "available_at", "id"],
        sqlite_where=sa.text("state = 'ready' AND parked = 0"),
        postgresql_where=sa.text("state = 'ready' AND parked = 0"),
    )
