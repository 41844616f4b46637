-- changed_at marks the last change that affects authentication or sending
-- (settings, tokens, consent); replicas poll it to drop cached entries.
ALTER TABLE workspaces ADD COLUMN changed_at TIMESTAMPTZ;
UPDATE workspaces SET changed_at = updated_at;
CREATE INDEX workspaces_changed_at ON workspaces (changed_at);
