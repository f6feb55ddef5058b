-- Baton schema v1 (SQLite). Timestamps are seconds since the epoch (REAL).
CREATE TABLE graphs (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    event_type    TEXT NOT NULL,
    digest        TEXT NOT NULL,
    spec          TEXT NOT NULL,
    source        TEXT NOT NULL DEFAULT '',
    registered_at REAL NOT NULL,
    UNIQUE (name, version),
    UNIQUE (name, digest)
);
CREATE INDEX graphs_event_type ON graphs (event_type, id);

CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    type             TEXT NOT NULL,
    graph_id         INTEGER NOT NULL REFERENCES graphs (id),
    idem_key         TEXT UNIQUE,
    params           TEXT NOT NULL,
    state            TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    submitted_at     REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    tasks_total      INTEGER NOT NULL DEFAULT 0,
    tasks_active     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_submitted ON events (id) WHERE state = 'submitted';

-- Per event and node: how many tasks have not succeeded yet. Reaching 0 satisfies the
-- node-level (all / broadcast) edges out of the node.
CREATE TABLE event_nodes (
    event_id  INTEGER NOT NULL REFERENCES events (id),
    node      TEXT NOT NULL,
    total     INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    PRIMARY KEY (event_id, node)
);

-- Interned (labels, cost) pairs, so a claim filters by a small integer.
CREATE TABLE requirements (
    id     INTEGER PRIMARY KEY,
    labels TEXT NOT NULL,
    cost   TEXT NOT NULL,
    UNIQUE (labels, cost)
);

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    node             TEXT NOT NULL,
    partition        TEXT NOT NULL,
    state            TEXT NOT NULL,
    pending          INTEGER NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    req_id           INTEGER NOT NULL REFERENCES requirements (id),
    attempt          INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    available_at     REAL,
    ready_at         REAL,
    worker_id        TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    started_at       REAL,
    finished_at      REAL,
    result           TEXT,
    error            TEXT,
    UNIQUE (event_id, node, partition)
);
CREATE INDEX tasks_ready ON tasks (priority DESC, available_at, id) WHERE state = 'ready';
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_worker ON tasks (worker_id) WHERE state = 'running';
CREATE INDEX tasks_event_state ON tasks (event_id, state);

CREATE TABLE attempts (
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    attempt     INTEGER NOT NULL,
    worker_id   TEXT,
    outcome     TEXT NOT NULL,
    started_at  REAL,
    finished_at REAL NOT NULL,
    exit_code   INTEGER,
    error       TEXT,
    stdout      TEXT NOT NULL DEFAULT '',
    stderr      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE workers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    capacity   TEXT NOT NULL,
    labels     TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_seen  REAL NOT NULL,
    state      TEXT NOT NULL
);

-- Every decision with its cause: why each task and event is in its state.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    event_id INTEGER,
    task_id  INTEGER,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    cause    TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event ON audit (event_id, id);
CREATE INDEX audit_task ON audit (task_id, id) WHERE task_id IS NOT NULL;
