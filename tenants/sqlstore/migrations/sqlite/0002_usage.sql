-- Usage: the database quota store's counters and duplicate suppression, daily
-- counts, quota threshold events, and month totals archived from Redis.

-- The database quota store's count per workspace and month (2006-01).
CREATE TABLE quota_usage (
    workspace_id TEXT NOT NULL,
    period       TEXT NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, period)
);

-- Counts per workspace and UTC day (2006-01-02), from the database quota store or archived from Redis.
CREATE TABLE usage_daily (
    workspace_id TEXT NOT NULL,
    day          TEXT NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0,
    dead_tokens  INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    acked        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, day)
);

-- Notifications remembered for duplicate suppression: a short hash, never the
-- payload; state is delivered or undelivered; expires_at is in Unix milliseconds.
CREATE TABLE dedupe (
    workspace_id TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL,
    state        TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, dedupe_key)
);
CREATE INDEX dedupe_expires ON dedupe (expires_at);

-- The first time a workspace reached 80% or 100% of its limit in a month.
CREATE TABLE quota_events (
    workspace_id TEXT NOT NULL,
    period       TEXT NOT NULL,
    threshold    INTEGER NOT NULL,
    used         INTEGER NOT NULL,
    limit_at     INTEGER NOT NULL,
    created_at   DATETIME NOT NULL,
    PRIMARY KEY (workspace_id, period, threshold)
);

-- Month totals archived from Redis by the usage rollup.
CREATE TABLE usage_months (
    workspace_id TEXT NOT NULL,
    period       TEXT NOT NULL,
    used         INTEGER NOT NULL,
    updated_at   DATETIME NOT NULL,
    PRIMARY KEY (workspace_id, period)
);
