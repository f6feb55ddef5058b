"""The claim/report hot path.

Depth-first order among ready tasks of equal priority: a task's stage is its node's longest path
from a root, and deeper stages are claimed first. Two indexes every state change had to maintain
go: a worker's running tasks are found through tasks_lease, an event's tasks through the
(event_id, node, partition) key.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("stage", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.drop_index("tasks_ready", table_name="tasks")
    op.create_index(
        "tasks_ready",
        "tasks",
        [sa.text("priority DESC"), sa.text("stage DESC"), "available_at", "id"],
        sqlite_where=sa.text("state = 'ready'"),
        postgresql_where=sa.text("state = 'ready'"),
    )
    op.drop_index("tasks_worker", table_name="tasks")
    op.drop_index("tasks_event_state", table_name="tasks")
