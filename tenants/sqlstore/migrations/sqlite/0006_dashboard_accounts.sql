-- Dashboard accounts of workspace owners, browser sessions (stored by the
-- hash of their id) and sign-in attempts, counted per address and per account.
CREATE TABLE owner_accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL while a sign-up holds the email and creates the workspace.
    workspace_id  TEXT REFERENCES workspaces (id) ON DELETE CASCADE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    DATETIME NOT NULL
);
CREATE INDEX owner_accounts_workspace ON owner_accounts (workspace_id);

CREATE TABLE web_sessions (
    id_hash      TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    account_id   INTEGER NOT NULL,
    workspace_id TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- A fixed window of sign-in attempts per subject (an address or an
-- account), counted up before the password is checked, so that concurrent
-- attempts cannot all pass the limit.
CREATE TABLE signin_attempts (
    subject      TEXT PRIMARY KEY,
    window_start DATETIME NOT NULL,
    attempts     INTEGER NOT NULL
);
CREATE INDEX signin_attempts_window ON signin_attempts (window_start);
