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
TURN: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
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
    # Its event limit (docs/limits.md), from the spec, for the controller's query of what it may
    # plan: at most this many events of the graph's name run at once (None: no limit).
    sa.Column("max_running_events", INT),
    sa.Column("event_limit_policy", TEXT),
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
    # The event centre: what raised the event (a schedule's fire, a backfill, another event's
    # end), when it must be done by, and the controller's forecast of when it will be.
    sa.Column("schedule_id", ID),
    sa.Column("scheduled_for", TIME),  # the fire's instant (its identity, with the schedule)
    sa.Column("backfill_id", ID),
    sa.Column("source_event_id", ID),  # the event whose end raised this one (a chain)
    sa.Column("deadline_at", TIME),
    sa.Column("predicted_end_at", TIME),
    sa.Column("at_risk_at", TIME),  # when the forecast first passed the deadline
    sa.Column("missed_at", TIME),  # when the deadline passed with the event unfinished
    # Added to each of its tasks' node priority when it is planned (baton.engine.priorities).
    sa.Column("priority", INT, nullable=False, server_default=ZERO),
    sa.Index("events_submitted", "id", **_where("state = 'submitted'")),
    sa.Index("events_schedule", "schedule_id", "scheduled_for", **_where("schedule_id IS NOT NULL")),
    sa.Index("events_backfill", "backfill_id", "id", **_where("backfill_id IS NOT NULL")),
    sa.Index("events_deadline", "deadline_at", **_where("deadline_at IS NOT NULL AND finished_at IS NULL")),
    # Retention walks finished events oldest first.
    sa.Index("events_finished", "finished_at", **_where("finished_at IS NOT NULL")),
    # A graph's running events, counted against its event limit.
    sa.Index("events_running", "graph_id", **_where("state = 'running'")),
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
    # Its concurrency key, rendered when the event was planned (None: the node declares none),
    # and whether it is parked, out of the claim's queue: 1 until its key has a free slot, 2 while
    # its event, graph or node is paused (see ``pauses``), 3 until its rate limit allows a start,
    # 4 while a worker holds it (see ``held_by``).
    sa.Column("limit_key", TEXT),
    sa.Column("parked", INT, nullable=False, server_default=ZERO),
    # Its rate limit's key, rendered when the event was planned (None: the node declares none).
    sa.Column("rate_key", TEXT),
    # Fair queueing among equal priorities: its event's start turn plus its partition's ordinal
    # (baton.engine.priorities); and when ageing last raised its priority (None: never).
    sa.Column("turn", TURN, nullable=False, server_default=ZERO),
    sa.Column("aged_at", TIME),
    # A ready task a worker holds beyond its free slots (``parked = 4``; baton.store.holds): by
    # whom, since when, until when without word from it, whether the store asks it back, and how
    # many of its holds were lost with their worker (past MAX_HOLD_LOSSES it is only claimed to run).
    sa.Column("held_by", TEXT),
    sa.Column("held_at", TIME),
    sa.Column("hold_expires_at", TIME),
    sa.Column("hold_recall", INT, nullable=False, server_default=ZERO),
    sa.Column("hold_losses", INT, nullable=False, server_default=ZERO),
    sa.UniqueConstraint("event_id", "node", "partition"),
    # An event's tasks in id order: keyset pages of them (read API, UI) cost O(page).
    sa.Index("tasks_event", "event_id", "id"),
    # Lease expiry, and a worker's running tasks (only running tasks are in it).
    sa.Index("tasks_lease", "lease_expires_at", **_where("state = 'running'")),
    # A key's running, ready and parked tasks, counted and unparked by key.
    sa.Index("tasks_limit_key", "limit_key", "state", "parked", **_where("limit_key IS NOT NULL")),
    # A rate key's queued and parked tasks, counted and returned by key.
    sa.Index("tasks_rate_key", "rate_key", "state", "parked", **_where("rate_key IS NOT NULL")),
    # A worker's held tasks, and the holds whose time ran out.
    sa.Index("tasks_held", "held_by", "hold_expires_at", **_where("parked = 4")),
)
# The claim walks this index in order and stops at the first task it may take (the order is
# baton.engine.priorities.queue_key's).
sa.Index(
    "tasks_ready",
    tasks.c.priority.desc(),
    tasks.c.turn,
    tasks.c.stage.desc(),
    tasks.c.available_at,
    tasks.c.id,
    **_where("state = 'ready' AND parked = 0"),
)

# A concurrency key's limit: at most this many of its tasks run at once. Claims on one key lock
# its row, so two never both take its last slot.
limit_keys = sa.Table(
    "limit_keys",
    metadata,
    sa.Column("key", TEXT, primary_key=True),
    sa.Column("max_running", INT, nullable=False),
)

# What is paused: an event, a graph (by name: its every version's events, and those raised while
# it is paused), or one node of an event. ``target`` names it (``event:7``, ``graph:year_end``,
# ``event:7:node:extract_erp``); the scope's unfinished tasks carry ``parked = 2`` meanwhile.
pauses = sa.Table(
    "pauses",
    metadata,
    _id(),
    sa.Column("target", TEXT, nullable=False, unique=True),
    sa.Column("graph", TEXT),
    sa.Column("event_id", ID),
    sa.Column("node", TEXT),
    sa.Column("reason", TEXT, nullable=False, server_default=""),
    sa.Column("paused_by", TEXT, nullable=False),
    sa.Column("paused_at", TIME, nullable=False),
    sa.Index("pauses_event", "event_id", **_where("event_id IS NOT NULL")),
)

# A rate limit: at most max_starts of the key's tasks start in any period_s. Claims on one key
# lock its row; clock_at is the latest time a claim counted the key's starts at, and no claim
# reading an earlier clock may start its tasks (so every window is counted whole).
rate_keys = sa.Table(
    "rate_keys",
    metadata,
    sa.Column("key", TEXT, primary_key=True),
    sa.Column("max_starts", INT, nullable=False),
    sa.Column("period_s", TIME, nullable=False),
    sa.Column("clock_at", TIME, nullable=False, server_default=ZERO),
)

# The starts of each rate key whose window has not passed (older ones are deleted as claims
# record new ones): n tasks started at ``at``.
rate_starts = sa.Table(
    "rate_starts",
    metadata,
    sa.Column("key", TEXT, primary_key=True),
    sa.Column("at", TIME, primary_key=True),
    sa.Column("n", INT, nullable=False),
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

# --- the event centre ---------------------------------------------------------------------------

# Business calendars, by name: the validated YAML document as JSON (graphs' schedules name them).
calendars = sa.Table(
    "calendars",
    metadata,
    sa.Column("name", TEXT, primary_key=True),
    sa.Column("spec", TEXT, nullable=False),
    sa.Column("source", TEXT, nullable=False, server_default=""),
    sa.Column("updated_at", TIME, nullable=False),
)

# One row per schedule a graph declares (the graph's newest version says what it is). Fires up
# to ``handled_through`` are handled: raised, queued or missed. ``next_fire_at`` is when the
# ticker must look again (NULL: compute it), ``queued_at`` a fire held back by ``queue_one``.
schedules = sa.Table(
    "schedules",
    metadata,
    _id(),
    sa.Column("name", TEXT, nullable=False, unique=True),
    sa.Column("graph", TEXT, nullable=False),
    sa.Column("spec", TEXT, nullable=False),
    sa.Column("state", TEXT, nullable=False),  # active, paused, retired (the graph dropped it)
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
    sa.Index("schedules_due", "next_fire_at", **_where("state = 'active'")),
)

# Which graphs an event's end raises: rebuilt from each new graph version's ``raised_by``.
chains = sa.Table(
    "chains",
    metadata,
    sa.Column("graph", TEXT, primary_key=True),  # the graph raised
    sa.Column("source_type", TEXT, primary_key=True),  # the event type whose end raises it
    sa.Column("spec", TEXT, nullable=False),
    sa.Index("chains_source", "source_type"),
)

# The outbox of facts: written in the transaction that makes them true (an event ended, a
# deadline is at risk or missed, a schedule missed fires), then dispatched by the controller into
# chained events and webhook deliveries. A row's id is the notification's identity.
notices = sa.Table(
    "notices",
    metadata,
    _id(),
    sa.Column("at", TIME, nullable=False),
    sa.Column("kind", TEXT, nullable=False),
    sa.Column("event_id", ID),
    sa.Column("schedule_id", ID),
    sa.Column("detail", TEXT, nullable=False, server_default="{}"),
    sa.Column("dispatched_at", TIME),
    sa.Index("notices_waiting", "id", **_where("dispatched_at IS NULL")),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    _id(),
    sa.Column("name", TEXT, nullable=False, unique=True),
    sa.Column("url", TEXT, nullable=False),
    sa.Column("secret", TEXT, nullable=False),  # signs each body (HMAC-SHA256); never logged
    sa.Column("kinds", TEXT, nullable=False),  # JSON list of notice kinds
    sa.Column("event_types", TEXT),  # JSON list; NULL: every type
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("disabled_at", TIME),
)

# One delivery per (webhook, notice): its ``uid`` is sent as the delivery's id, the same on
# every retry, so a receiver drops what it has seen.
deliveries = sa.Table(
    "deliveries",
    metadata,
    _id(),
    sa.Column("webhook_id", ID, sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("notice_id", ID, sa.ForeignKey("notices.id"), nullable=False),
    sa.Column("uid", TEXT, nullable=False, unique=True),
    sa.Column("body", TEXT, nullable=False),  # the JSON posted, fixed when the delivery is made
    sa.Column("state", TEXT, nullable=False),  # pending, delivered, expired, cancelled
    sa.Column("attempts", INT, nullable=False, server_default=ZERO),
    sa.Column("next_at", TIME, nullable=False),
    sa.Column("last_status", INT),
    sa.Column("last_error", TEXT),
    sa.Column("last_at", TIME),  # when the last try ended (the controller's clock)
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("delivered_at", TIME),
    sa.UniqueConstraint("webhook_id", "notice_id"),
    sa.Index("deliveries_due", "next_at", **_where("state = 'pending'")),
    sa.Index("deliveries_log", "webhook_id", "id"),  # one webhook's delivery log, newest first
)

# A backfill raises a schedule's past fires in order, at most ``max_running`` at once; ``cursor``
# is the last fire it handled, so a controller that dies resumes after it.
backfills = sa.Table(
    "backfills",
    metadata,
    _id(),
    sa.Column("schedule_id", ID, nullable=False),
    sa.Column("from_at", TIME, nullable=False),
    sa.Column("to_at", TIME, nullable=False),
    sa.Column("max_running", INT, nullable=False),
    sa.Column("rerun", INT, nullable=False, server_default=ZERO),
    sa.Column("state", TEXT, nullable=False),  # running, done, cancelled
    sa.Column("cursor", TIME),
    sa.Column("raised", INT, nullable=False, server_default=ZERO),
    sa.Column("skipped", INT, nullable=False, server_default=ZERO),
    sa.Column("total", INT, nullable=False),
    sa.Column("created_by", TEXT, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("finished_at", TIME),
    sa.Index("backfills_running", "id", **_where("state = 'running'")),
)
