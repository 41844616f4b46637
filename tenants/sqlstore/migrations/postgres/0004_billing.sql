-- Billing: each workspace's Stripe customer and subscription state, the
-- Stripe events applied (each once), push packages, and where each audited
-- change came from.
ALTER TABLE workspaces ADD COLUMN stripe_customer_id TEXT;
CREATE UNIQUE INDEX workspaces_stripe_customer ON workspaces (stripe_customer_id);
ALTER TABLE workspaces ADD COLUMN billing_subscription_id TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN billing_plan TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN billing_status TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN billing_period_end TIMESTAMPTZ;
ALTER TABLE workspaces ADD COLUMN billing_grace_until TIMESTAMPTZ;
ALTER TABLE workspaces ADD COLUMN billing_grace_ended BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE workspaces ADD COLUMN billing_subscription_created TIMESTAMPTZ;
ALTER TABLE workspaces ADD COLUMN billing_state_at TIMESTAMPTZ;
ALTER TABLE workspaces ADD COLUMN billing_invoice_id TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN billing_invoice_created TIMESTAMPTZ;
ALTER TABLE workspaces ADD COLUMN billing_invoice_paid BOOLEAN NOT NULL DEFAULT FALSE;
-- Pushes bought as packages for package_period (2006-01), added to that month's limit.
ALTER TABLE workspaces ADD COLUMN package_period TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN package_pushes BIGINT NOT NULL DEFAULT 0;
CREATE INDEX workspaces_billing_grace ON workspaces (billing_grace_until);

-- Every Stripe event applied; its id is written in the transaction of its effect.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    workspace_id TEXT NOT NULL DEFAULT '',
    outcome      TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL
);

-- Push packages, one per paid Checkout session.
CREATE TABLE push_packages (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    period              TEXT NOT NULL,
    pushes              BIGINT NOT NULL,
    checkout_session_id TEXT NOT NULL UNIQUE,
    event_id            TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX push_packages_workspace ON push_packages (workspace_id, period);

ALTER TABLE audit_log ADD COLUMN source TEXT NOT NULL DEFAULT '';
