"""The front door: API tokens, the claim a task was taken by, and task counts by state.

``tokens`` holds the SHA-256 of each opaque token (never the token), its role and what it is
limited to. ``tasks.claim_id`` names the claim request that took a running task, so a claim
retried after its answer was lost gets the same attempts back instead of new ones.
``event_node_states`` counts an event's tasks per node in the states not known otherwise
(pending, failed, upstream_failed, cancelled; filled here from the tasks), so an event's
progress reads in O(nodes).

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("claim_id", sa.Text()))
    op.create_table(
        "event_node_states",
        sa.Column("event_id", ID, sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("node", sa.Text(), primary_key=True),
        sa.Column("state", sa.Text(), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO event_node_states (event_id, node, state, n) "
        "SELECT event_id, node, state, COUNT(*) FROM tasks "
        "WHERE state IN ('pending', 'failed', 'upstream_failed', 'cancelled') GROUP BY event_id, node, state"
    )
    op.create_table(
        "tokens",
        sa.Column("id", ID, sa.Identity(always=False), primary_key=True),
        sa.Column("digest", sa.Text(), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("event_types", sa.Text()),
        sa.Column("labels", sa.Text()),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME),
    )
