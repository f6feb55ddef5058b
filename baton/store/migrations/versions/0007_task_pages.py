"""An event's tasks in id order: pages of an event's tasks cost O(page), whatever its size.

Without it a page of ``GET /events/{id}/tasks`` read the whole event through the unique
(event_id, node, partition) index and sorted it (SQLite), or walked the primary key to the end of
the table past other events' tasks when a filter matched few (PostgreSQL). Neither column ever
changes, so the index is written once per task, when the event is expanded.

Revision ID: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_index("tasks_event", "tasks", ["event_id", "id"])
