-- Workspaces, their tokens, terms consent, operators and the audit log.
CREATE TABLE workspaces (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    region        TEXT NOT NULL,
    plan          TEXT NOT NULL DEFAULT 'free',
    quota_limit   INTEGER,
    status        TEXT NOT NULL DEFAULT 'active',
    server_id     TEXT NOT NULL DEFAULT '',
    privacy       TEXT NOT NULL DEFAULT 'full',
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);
CREATE INDEX workspaces_contact_email ON workspaces (contact_email);

CREATE TABLE workspace_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME,
    revoked_at   DATETIME
);
CREATE INDEX workspace_tokens_workspace ON workspace_tokens (workspace_id);

CREATE TABLE terms_versions (
    version      TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    published_at DATETIME NOT NULL
);

CREATE TABLE consents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    terms_version TEXT NOT NULL,
    accepted_by   TEXT NOT NULL,
    accepted_ip   TEXT NOT NULL DEFAULT '',
    accepted_at   DATETIME NOT NULL
);
CREATE INDEX consents_workspace ON consents (workspace_id, accepted_at);

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    DATETIME NOT NULL
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    workspace_id TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    created_at   DATETIME NOT NULL
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, created_at);
