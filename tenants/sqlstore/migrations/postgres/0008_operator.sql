-- Operator tools: this month's usage copied onto each workspace (by a
-- one-minute job, never by the push path) so the workspace list sorts and
-- filters by it in SQL; the indexes that keep that list paged at 100,000
-- workspaces; and operator API keys, stored by the hash of the key.
ALTER TABLE workspaces ADD COLUMN usage_period TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN usage_used BIGINT NOT NULL DEFAULT 0;
CREATE INDEX workspaces_usage_period ON workspaces (usage_period);
CREATE INDEX workspaces_by_usage ON workspaces (usage_used, id);
CREATE INDEX workspaces_by_created ON workspaces (created_at, id);
-- Byte order (COLLATE "C") lets one index serve both the name sort and prefix search.
CREATE INDEX workspaces_by_name ON workspaces ((lower(name) COLLATE "C"), id);
CREATE INDEX workspaces_by_email ON workspaces ((lower(contact_email) COLLATE "C"));
CREATE INDEX workspaces_by_server_id ON workspaces (server_id);
CREATE INDEX workspaces_by_status ON workspaces (status, usage_used, id);
CREATE INDEX workspaces_by_plan ON workspaces (plan, usage_used, id);
CREATE INDEX consents_by_terms ON consents (workspace_id, terms_version);
CREATE INDEX usage_months_by_period ON usage_months (period, workspace_id);
CREATE INDEX quota_usage_by_period ON quota_usage (period, workspace_id);

CREATE TABLE operator_api_keys (
    id          BIGSERIAL PRIMARY KEY,
    operator_id BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    name        TEXT NOT NULL DEFAULT '',
    key_hash    TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX operator_api_keys_operator ON operator_api_keys (operator_id);
