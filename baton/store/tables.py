"""The schema, declared once for every dialect (SQLAlchemy Core).

This is where the tables must end up; the Alembic revisions in ``baton/backends/alembic`` are how
a database gets there. ``tests/integration/test_schema.py`` migrates a fresh database and one
made by an older release on each dialect and compares them with this declaration, so a revision
that drifts on one database fails. The runtime SQL stays hand-written (``sql.py``, ``claims.py``,
``advance.py``): the claim and report paths are tuned statement by statement, and a query builder
would stand between them and the planner without buying anything. Only migrations and the schema
test import SQLAlchemy.

Timestamps are seconds since the epoch as floating point; JSON documents are TEXT.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

# An id: SQLite's INTEGER PRIMARY KEY is the rowid itself; PostgreSQL counts with a BIGINT identity.
ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INT = sa.Integer()
TEXT = sa.Text()
TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")
ZERO = sa.text("0")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, sa.Identity(always=False), primary_key=True)


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, the same on both dialects."""
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


metadata = sa.MetaData()

graphs = sa.Table(
    "graphs",
    metadata,
    _id(),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("version", INT, nullable=False),
    sa.Column("event_type", TEXT, nullable=False),
    sa.Column("digest", TEXT, nullable=False),
    sa.Column("spec", TEXT, nullable=False),
    sa.Column("source", TEXT, nullable=False, server_default=""),
    sa.Column("registered_at", TIME, nullable=False),
    sa.UniqueConstraint("name", "version"),
    sa.UniqueConstraint("name", "digest"),
    sa.Index("graphs_event_type", "event_type", "id"),
)

events = sa.Table(
    "events",
    metadata,
    _id(),
    sa.Column("type", TEXT, nullable=False),
    sa.Column("graph_id", ID, sa.ForeignKey("graphs.id"), nullable=False),
    sa.Column("idem_key", TEXT, unique=True),
    sa.Column("params", TEXT, nullable=False),
    sa.Column("state", TEXT, nullable=False),
    sa.Column("cancel_requested", INT, nullable=False, server_default=ZERO),
    sa.Column("submitted_at", TIME, nullable=False),
    sa.Column("started_at", TIME),
    sa.Column("finished_at", TIME),
    sa.Column("tasks_total", INT, nullable=False, server_default=ZERO),
    sa.Column("tasks_active", INT, nullable=False, server_default=ZERO),
    sa.Column("error", TEXT),  # why an event that could not be expanded failed
    sa.Index("events_submitted", "id", **_where("state = 'submitted'")),
)

# Per event and node: how many tasks have not succeeded yet. Reaching 0 satisfies the node-level
# (all / broadcast) edges out of the node.
event_nodes = sa.Table(
    "event_nodes",
    metadata,
    sa.Column("event_id", ID, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("node", TEXT, primary_key=True),
    sa.Column("total", INT, nullable=False),
    sa.Column("remaining", INT, nullable=False),
)

# Per event, node and state: how many tasks are in it, kept in the same transaction as each move
# (``Tx.moved``), so an event's counts read in O(nodes) however many tasks it has. Only the
# states in ``tx.COUNTED``: the others are known without counting (see ``SqlReads.node_counts``).
event_node_states = sa.Table(
    "event_node_states",
    metadata,
    sa.Column("event_id", ID, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("node", TEXT, primary_key=True),
    sa.Column("state", TEXT, primary_key=True),
    sa.Column("n", INT, nullable=False),
    # SQLite: the rows live in the key's own tree, so a commit that moves tasks rewrites one
    # page of this table, not a table page and an index page
    sqlite_with_rowid=False,
)

# Interned (labels, cost) pairs, so a claim filters by a small integer.
requirements = sa.Table(
    "requirements",
    metadata,
    _id(),
    sa.Column("labels", TEXT, nullable=False),
    sa.Column("cost", TEXT, nullable=False),
    sa.UniqueConstraint("labels", "cost"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    _id(),
    sa.Column("event_id", ID, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("node", TEXT, nullable=False),
    sa.Column("partition", TEXT, nullable=False),
    sa.Column("state", TEXT, nullable=False),
    sa.Column("pending", INT, nullable=False),
    sa.Column("priority", INT, nullable=False, server_default=ZERO),
    sa.Column("req_id", ID, sa.ForeignKey("requirements.id"), nullable=False),
    sa.Column("attempt", INT, nullable=False, server_default=ZERO),
    sa.Column("failures", INT, nullable=False, server_default=ZERO),
    sa.Column("available_at", TIME),
    sa.Column("ready_at", TIME),
    sa.Column("worker_id", TEXT),
    sa.Column("lease_expires_at", TIME),
    sa.Column("cancel_requested", INT, nullable=False, server_default=ZERO),
    sa.Column("started_at", TIME),
    sa.Column("finished_at", TIME),
    sa.Column("result", TEXT),
    sa.Column("error", TEXT),
    # A task's node's longest path from a root: deeper stages are claimed first among equal
    # priorities, so partitions that have started finish before new ones start.
    sa.Column("stage", INT, nullable=False, server_default=ZERO),
    # The claim request that took a running task: a claim retried with the same id after its
    # answer was lost gets these attempts back.
    sa.Column("claim_id", TEXT),
    sa.UniqueConstraint("event_id", "node", "partition"),
    # An event's tasks in id order: keyset pages of them (read API, UI) cost O(page).
    sa.Index("tasks_event", "event_id", "id"),
    # Lease expiry, and a worker's running tasks (only running tasks are in it).
    sa.Index("tasks_lease", "lease_expires_at", **_where("state = 'running'")),
)
# The claim walks this index in order and stops at the first task it may take.
sa.Index(
    "tasks_ready",
    tasks.c.priority.desc(),
    tasks.c.stage.desc(),
    tasks.c.available_at,
    tasks.c.id,
    **_where("state = 'ready'"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("attempt", INT, primary_key=True, autoincrement=False),
    sa.Column("worker_id", TEXT),
    sa.Column("outcome", TEXT, nullable=False),
    sa.Column("started_at", TIME),
    sa.Column("finished_at", TIME, nullable=False),
    sa.Column("exit_code", INT),
    sa.Column("error", TEXT),
    sa.Column("stdout", TEXT, nullable=False, server_default=""),
    sa.Column("stderr", TEXT, nullable=False, server_default=""),
)

# What running attempts have written so far, appended by their workers every few seconds: a
# row lives only while its attempt runs (the transaction that ends the attempt deletes it; the
# report's output, in ``attempts``, replaces it). ``size`` is the text's length in UTF-8 bytes,
# for the cap (``max_log_bytes``); offsets are in characters, like the reads of ``attempts``.
live_logs = sa.Table(
    "live_logs",
    metadata,
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("attempt", INT, primary_key=True, autoincrement=False),
    sa.Column("stream", TEXT, primary_key=True),
    sa.Column("text", TEXT, nullable=False),
    sa.Column("size", INT, nullable=False),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", TEXT, primary_key=True),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("host", TEXT, nullable=False),
    sa.Column("pid", INT, nullable=False),
    sa.Column("capacity", TEXT, nullable=False),
    sa.Column("labels", TEXT, nullable=False),
    sa.Column("started_at", TIME, nullable=False),
    sa.Column("last_seen", TIME, nullable=False),
    sa.Column("state", TEXT, nullable=False),
)

# Every decision with its cause: why each task and event is in its state.
audit = sa.Table(
    "audit",
    metadata,
    _id(),
    sa.Column("at", TIME, nullable=False),
    sa.Column("event_id", ID),
    sa.Column("task_id", ID),
    sa.Column("actor", TEXT, nullable=False),
    sa.Column("action", TEXT, nullable=False),
    sa.Column("cause", TEXT, nullable=False),
    sa.Column("detail", TEXT, nullable=False, server_default="{}"),
    sa.Index("audit_event", "event_id", "id"),
    sa.Index("audit_task", "task_id", "id", **_where("task_id IS NOT NULL")),
)

# Which controller acts: one row per role, held by renewing it before it expires.
leadership = sa.Table(
    "leadership",
    metadata,
    sa.Column("role", TEXT, primary_key=True),
    sa.Column("holder", TEXT, nullable=False),
    sa.Column("expires_at", TIME, nullable=False),
    sa.Column("since", TIME, nullable=False),
)

# API tokens: the SHA-256 of each (the token itself is shown once, never stored), its role and
# what it is limited to (JSON lists of event types or labels; NULL: no limit).
tokens = sa.Table(
    "tokens",
    metadata,
    _id(),
    sa.Column("digest", TEXT, nullable=False, unique=True),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("role", TEXT, nullable=False),
    sa.Column("event_types", TEXT),
    sa.Column("labels", TEXT),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("revoked_at", TIME),
)

# Web UI sessions: the SHA-256 of each cookie's random value, the token it stands for, its end.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("digest", TEXT, primary_key=True),
    sa.Column("token_id", ID, sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("expires_at", TIME, nullable=False),
    sa.Index("sessions_expiry", "expires_at"),
)
