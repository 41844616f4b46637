-- One-time links of the owner account flows: password resets, claims of a
-- workspace registered without an owner, and invitations of another owner.
-- Only the hash of a link's token is stored; used_at is set when the link is
-- used or superseded, so a link works once at most.
CREATE TABLE owner_links (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The account a reset is for; 0 for claims and invitations.
    account_id   INTEGER NOT NULL DEFAULT 0,
    -- The invited email, or the account's email of a reset.
    email        TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL,
    used_at      DATETIME
);
CREATE INDEX owner_links_workspace ON owner_links (workspace_id, kind);
CREATE INDEX owner_links_account ON owner_links (account_id, kind);
