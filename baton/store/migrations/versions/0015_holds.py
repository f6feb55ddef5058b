"""Held tasks: a ready task a worker holds beyond its free slots (``parked = 4``), by whom, until
when, since when, whether the store asks it back, and how many holds of it were lost.

A held task is out of the ``tasks_ready`` index (its ``parked`` is not 0), is not running, and
has not used an attempt. Existing tasks hold nothing, so nothing is filled from older rows.

Revision ID: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("held_by", sa.Text()))
    op.add_column("tasks", sa.Column("held_at", TIME))
    op.add_column("tasks", sa.Column("hold_expires_at", TIME))
    op.add_column("tasks", sa.Column("hold_recall", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("tasks", sa.Column("hold_losses", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_index(
        "tasks_held",
        "tasks",
        ["held_by", "hold_expires_at"],
        sqlite_where=sa.text("parked = 4"),
        postgresql_where=sa.text("parked = 4"),
    )
