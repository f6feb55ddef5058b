"""The event centre: schedules and business calendars, chained events, backfills, deadlines, and
the outbox that turns facts (an event ended, a deadline is at risk) into chained events and
webhook deliveries.

Events gain what raised them (a schedule's fire, a backfill, another event's end), a deadline and
the controller's forecast; existing events have none of these, so nothing needs filling. The
index on ``finished_at`` is what retention walks.

Revision ID: 0010
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")
INT = sa.Integer()
TEXT = sa.Text()
ZERO = sa.text("0")

revision = "0010"
down_revision = "0009"


def _where(condition: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, sa.Identity(always=False), primary_key=True)


def upgrade() -> None:
    _events()
    _calendars_and_schedules()
    _outbox()
    _backfills()


def _events() -> None:
    columns: list[sa.Column[Any]] = [
        sa.Column("schedule_id", ID),
        sa.Column("scheduled_for", TIME),
        sa.Column("backfill_id", ID),
        sa.Column("source_event_id", ID),
        sa.Column("deadline_at", TIME),
        sa.Column("predicted_end_at", TIME),
        sa.Column("at_risk_at", TIME),
        sa.Column("missed_at", TIME),
    ]
    with op.batch_alter_table("events") as batch:
        for column in columns:
            batch.add_column(column)
    op.create_index("events_schedule", "events", ["schedule_id", "scheduled_for"],
                    **_where("schedule_id IS NOT NULL"))  # fmt: skip
    op.create_index("events_backfill", "events", ["backfill_id", "id"], **_where("backfill_id IS NOT NULL"))
    op.create_index("events_deadline", "events", ["deadline_at"],
                    **_where("deadline_at IS NOT NULL AND finished_at IS NULL"))  # fmt: skip
    op.create_index("events_finished", "events", ["finished_at"], **_where("finished_at IS NOT NULL"))


def _calendars_and_schedules() -> None:
    op.create_table(
        "calendars",
        sa.Column("name", TEXT, primary_key=True),
        sa.Column("spec", TEXT, nullable=False),
        sa.Column("source", TEXT, nullable=False, server_default=""),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "schedules",
        _id(),
        sa.Column("name", TEXT, nullable=False, unique=True),
        sa.Column("graph", TEXT, nullable=False),
        sa.Column("spec", TEXT, nullable=False),
        sa.Column("state", TEXT, nullable=False),
        sa.Column("note", TEXT),
        sa.Column("paused_by", TEXT),
        sa.Column("paused_at", TIME),
        sa.Column("handled_through", TIME, nullable=False),
        sa.Column("next_fire_at", TIME),
        sa.Column("queued_at", TIME),
        sa.Column("last_fire_at", TIME),
        sa.Column("last_event_id", ID),
        sa.Column("missed", INT, nullable=False, server_default=ZERO),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_index("schedules_due", "schedules", ["next_fire_at"], **_where("state = 'active'"))
    op.create_table(
        "chains",
        sa.Column("graph", TEXT, primary_key=True),
        sa.Column("source_type", TEXT, primary_key=True),
        sa.Column("spec", TEXT, nullable=False),
    )
    op.create_index("chains_source", "chains", ["source_type"])


def _outbox() -> None:
    op.create_table(
        "notices",
        _id(),
        sa.Column("at", TIME, nullable=False),
        sa.Column("kind", TEXT, nullable=False),
        sa.Column("event_id", ID),
        sa.Column("schedule_id", ID),
        sa.Column("detail", TEXT, nullable=False, server_default="{}"),
        sa.Column("dispatched_at", TIME),
    )
    op.create_index("notices_waiting", "notices", ["id"], **_where("dispatched_at IS NULL"))
    op.create_table(
        "webhooks",
        _id(),
        sa.Column("name", TEXT, nullable=False, unique=True),
        sa.Column("url", TEXT, nullable=False),
        sa.Column("secret", TEXT, nullable=False),
        sa.Column("kinds", TEXT, nullable=False),
        sa.Column("event_types", TEXT),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("disabled_at", TIME),
    )
    op.create_table(
        "deliveries",
        _id(),
        sa.Column("webhook_id", ID, sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("notice_id", ID, sa.ForeignKey("notices.id"), nullable=False),
        sa.Column("uid", TEXT, nullable=False, unique=True),
        sa.Column("body", TEXT, nullable=False),
        sa.Column("state", TEXT, nullable=False),
        sa.Column("attempts", INT, nullable=False, server_default=ZERO),
        sa.Column("next_at", TIME, nullable=False),
        sa.Column("last_status", INT),
        sa.Column("last_error", TEXT),
        sa.Column("last_at", TIME),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("delivered_at", TIME),
        sa.UniqueConstraint("webhook_id", "notice_id"),
    )
    op.create_index("deliveries_due", "deliveries", ["next_at"], **_where("state = 'pending'"))
    op.create_index("deliveries_log", "deliveries", ["webhook_id", "id"])


def _backfills() -> None:
    op.create_table(
        "backfills",
        _id(),
        sa.Column("schedule_id", ID, nullable=False),
        sa.Column("from_at", TIME, nullable=False),
        sa.Column("to_at", TIME, nullable=False),
        sa.Column("max_running", INT, nullable=False),
        sa.Column("rerun", INT, nullable=False, server_default=ZERO),
        sa.Column("state", TEXT, nullable=False),
        sa.Column("cursor", TIME),
        sa.Column("raised", INT, nullable=False, server_default=ZERO),
        sa.Column("skipped", INT, nullable=False, server_default=ZERO),
        sa.Column("total", INT, nullable=False),
        sa.Column("created_by", TEXT, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("finished_at", TIME),
    )
    op.create_index("backfills_running", "backfills", ["id"], **_where("state = 'running'"))
