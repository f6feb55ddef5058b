"""The first schema (release 0.1.0's sqlite_0001 / postgresql_0001).

Revision ID: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")
ZERO = sa.text("0")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, sa.Identity(always=False), primary_key=True)


def _where(condition: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "graphs",
        _id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False, server_default=""),
        sa.Column("registered_at", TIME, nullable=False),
        sa.UniqueConstraint("name", "version"),
        sa.UniqueConstraint("name", "digest"),
    )
    op.create_index("graphs_event_type", "graphs", ["event_type", "id"])
    op.create_table(
        "events",
        _id(),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("graph_id", ID, sa.ForeignKey("graphs.id"), nullable=False),
        sa.Column("idem_key", sa.Text(), unique=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("cancel_requested", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("submitted_at", TIME, nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("finished_at", TIME),
        sa.Column("tasks_total", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("tasks_active", sa.Integer(), nullable=False, server_default=ZERO),
    )
    op.create_index("events_submitted", "events", ["id"], **_where("state = 'submitted'"))
    op.create_table(
        "event_nodes",
        sa.Column("event_id", ID, sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("node", sa.Text(), primary_key=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
    )
    op.create_table(
        "requirements",
        _id(),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("cost", sa.Text(), nullable=False),
        sa.UniqueConstraint("labels", "cost"),
    )
    op.create_table(
        "tasks",
        _id(),
        sa.Column("event_id", ID, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("partition", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("req_id", ID, sa.ForeignKey("requirements.id"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("failures", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("available_at", TIME),
        sa.Column("ready_at", TIME),
        sa.Column("worker_id", sa.Text()),
        sa.Column("lease_expires_at", TIME),
        sa.Column("cancel_requested", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("started_at", TIME),
        sa.Column("finished_at", TIME),
        sa.Column("result", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.UniqueConstraint("event_id", "node", "partition"),
    )
    op.create_index(
        "tasks_ready", "tasks", [sa.text("priority DESC"), "available_at", "id"], **_where("state = 'ready'")
    )
    op.create_index("tasks_lease", "tasks", ["lease_expires_at"], **_where("state = 'running'"))
    op.create_index("tasks_worker", "tasks", ["worker_id"], **_where("state = 'running'"))
    op.create_index("tasks_event_state", "tasks", ["event_id", "state"])
    op.create_table(
        "attempts",
        sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("worker_id", sa.Text()),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("finished_at", TIME, nullable=False),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("stdout", sa.Text(), nullable=False, server_default=""),
        sa.Column("stderr", sa.Text(), nullable=False, server_default=""),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("last_seen", TIME, nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
    )
    op.create_table(
        "audit",
        _id(),
        sa.Column("at", TIME, nullable=False),
        sa.Column("event_id", ID),
        sa.Column("task_id", ID),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("audit_event", "audit", ["event_id", "id"])
    op.create_index("audit_task", "audit", ["task_id", "id"], **_where("task_id IS NOT NULL"))
