-- Metered overage reported to Stripe: one row per batch of a workspace's
-- month, written before it is sent, so a retry resends the same batch with
-- the same identifier and Stripe counts it once.
CREATE TABLE overage_reports (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    period       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    quantity     BIGINT NOT NULL,
    customer_id  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    reported_at  TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, period, seq)
);
