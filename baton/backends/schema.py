"""The schema as declared: what the migrations of every dialect must produce.

The migration files are the source of truth for *how* to get there; this module states *where*
they must end up, table by table, column by column (with a dialect-neutral type) and index by
index. ``tests/integration/test_schema.py`` migrates a fresh database of each dialect and
compares it with this declaration, so a migration that drifts on one database fails.
"""

from __future__ import annotations

INT, TEXT, FLOAT = "int", "text", "float"

TABLES: dict[str, dict[str, str]] = {
    "schema_migrations": {"version": INT, "name": TEXT, "applied_at": FLOAT},
    "graphs": {
        "id": INT, "name": TEXT, "version": INT, "event_type": TEXT, "digest": TEXT, "spec": TEXT,
        "source": TEXT, "registered_at": FLOAT,
    },
    "events": {
        "id": INT, "type": TEXT, "graph_id": INT, "idem_key": TEXT, "params": TEXT, "state": TEXT,
        "cancel_requested": INT, "submitted_at": FLOAT, "started_at": FLOAT, "finished_at": FLOAT,
        "tasks_total": INT, "tasks_active": INT, "error": TEXT,
    },
    "event_nodes": {"event_id": INT, "node": TEXT, "total": INT, "remaining": INT},
    "requirements": {"id": INT, "labels": TEXT, "cost": TEXT},
    "tasks": {
        "id": INT, "event_id": INT, "node": TEXT, "partition": TEXT, "state": TEXT, "pending": INT,
        "priority": INT, "stage": INT, "req_id": INT, "attempt": INT, "failures": INT, "available_at": FLOAT,
        "ready_at": FLOAT, "worker_id": TEXT, "lease_expires_at": FLOAT, "cancel_requested": INT,
        "started_at": FLOAT, "finished_at": FLOAT, "result": TEXT, "error": TEXT,
    },
    "attempts": {
        "task_id": INT, "attempt": INT, "worker_id": TEXT, "outcome": TEXT, "started_at": FLOAT,
        "finished_at": FLOAT, "exit_code": INT, "error": TEXT, "stdout": TEXT, "stderr": TEXT,
    },
    "workers": {
        "id": TEXT, "name": TEXT, "host": TEXT, "pid": INT, "capacity": TEXT, "labels": TEXT,
        "started_at": FLOAT, "last_seen": FLOAT, "state": TEXT,
    },
    "audit": {
        "id": INT, "at": FLOAT, "event_id": INT, "task_id": INT, "actor": TEXT, "action": TEXT, "cause": TEXT,
        "detail": TEXT,
    },
    "leadership": {"role": TEXT, "holder": TEXT, "expires_at": FLOAT, "since": FLOAT},
}  # fmt: skip

# Named indexes (each dialect also makes its own for primary keys and UNIQUE constraints).
INDEXES: dict[str, str] = {
    "graphs_event_type": "graphs",
    "events_submitted": "events",
    "tasks_ready": "tasks",
    "tasks_lease": "tasks",
    "audit_event": "audit",
    "audit_task": "audit",
}

TYPE_NAMES: dict[str, dict[str, str]] = {
    "sqlite": {"INTEGER": INT, "TEXT": TEXT, "REAL": FLOAT, "DOUBLE PRECISION": FLOAT},
    "postgresql": {"bigint": INT, "integer": INT, "text": TEXT, "double precision": FLOAT},
}
