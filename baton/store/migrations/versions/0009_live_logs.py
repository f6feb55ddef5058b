"""Live logs: what running attempts have written so far, for reading while they run.

A worker appends each running attempt's new output every few seconds (fenced like a report:
only the attempt's own worker, only while it runs, only at the log's end). The transaction that
ends the attempt deletes its rows, so the table holds running attempts' output only; nothing
here needs filling from older rows.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "live_logs",
        sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("stream", sa.Text(), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
    )
