-- Which controller acts: one row per role, held by renewing it before it expires.
CREATE TABLE leadership (
    role       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    since      DOUBLE PRECISION NOT NULL
);
