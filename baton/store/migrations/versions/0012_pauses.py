"""Pauses, and graphs' event limits.

Pauses: an event, a graph or one node of an event held out of the claims until resumed.

A paused scope's unfinished tasks carry ``parked = 2`` (1 is a full concurrency key), which keeps
them out of the ``tasks_ready`` index whatever moves them to ready meanwhile. No existing row is
paused, so nothing needs filling.

Event limits: a graph version's ``event_limit`` (from its spec) in two columns the controller's
query reads, and an index of running events by graph to count them. Older graphs declare none.

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.add_column("graphs", sa.Column("max_running_events", sa.Integer()))
    op.add_column("graphs", sa.Column("event_limit_policy", sa.Text()))
    op.create_index("events_running", "events", ["graph_id"], sqlite_where=sa.text("state = 'running'"),
                    postgresql_where=sa.text("state = 'running'"))  # fmt: skip
    op.create_table(
        "pauses",
        sa.Column("id", ID, sa.Identity(always=False), primary_key=True),
        sa.Column("target", sa.Text(), nullable=False, unique=True),
        sa.Column("graph", sa.Text()),
        sa.Column("event_id", ID),
        sa.Column("node", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("paused_by", sa.Text(), nullable=False),
        sa.Column("paused_at", TIME, nullable=False),
    )
    op.create_index("pauses_event", "pauses", ["event_id"], sqlite_where=sa.text("event_id IS NOT NULL"),
                    postgresql_where=sa.text("event_id IS NOT NULL"))  # fmt: skip


def downgrade() -> None:
    op.drop_index("events_running", table_name="events")
    op.drop_column("graphs", "event_limit_policy")
    op.drop_column("graphs", "max_running_events")
    op.drop_index("pauses_event", table_name="pauses")
    op.drop_table("pauses")
