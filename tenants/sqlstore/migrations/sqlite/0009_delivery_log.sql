-- The delivery log: what became of each notification of a workspace, kept 7
-- days, without any message content. at_us is Unix microseconds (UTC), so that
-- both dialects order and compare it the same way; id breaks ties.
CREATE TABLE delivery_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    at_us        INTEGER NOT NULL,
    protocol     TEXT NOT NULL,
    ref          TEXT NOT NULL DEFAULT '',
    app          TEXT NOT NULL DEFAULT '',
    result       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    token_prefix TEXT NOT NULL DEFAULT ''
);
-- A workspace's log newest first, unfiltered and by each filter (keyset paging).
CREATE INDEX delivery_log_workspace_at ON delivery_log (workspace_id, at_us DESC, id DESC);
CREATE INDEX delivery_log_workspace_result_at ON delivery_log (workspace_id, result, at_us DESC, id DESC);
CREATE INDEX delivery_log_workspace_app_at ON delivery_log (workspace_id, app, at_us DESC, id DESC);
-- The retention job deletes by age.
CREATE INDEX delivery_log_at ON delivery_log (at_us);
