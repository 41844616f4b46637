-- Rocket.Chat Cloud registration: a Rocket.Chat server asks to register
-- (an intent, polled by its device code), a workspace owner confirms it on
-- the dashboard, and the server then holds an OAuth client of that
-- workspace whose client-credentials grant yields short-lived access tokens.
-- Every code, secret and token is stored only as its SHA-256.
CREATE TABLE cloud_intents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code_hash   TEXT NOT NULL UNIQUE,
    -- What the Rocket.Chat server said about itself (buildWorkspaceRegistrationData).
    unique_id        TEXT NOT NULL,
    rc_workspace_id  TEXT NOT NULL DEFAULT '',
    address          TEXT NOT NULL,
    site_name        TEXT NOT NULL DEFAULT '',
    contact_name     TEXT NOT NULL DEFAULT '',
    contact_email    TEXT NOT NULL DEFAULT '',
    version          TEXT NOT NULL DEFAULT '',
    seats            BIGINT NOT NULL DEFAULT 0,
    request_ip       TEXT NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    expires_at       DATETIME NOT NULL,
    interval_seconds INTEGER NOT NULL,
    last_polled_at   DATETIME,
    -- Set when an owner confirms the user code for their workspace.
    workspace_id     TEXT REFERENCES workspaces (id) ON DELETE CASCADE,
    confirmed_by     TEXT NOT NULL DEFAULT '',
    confirmed_at     DATETIME,
    denied_at        DATETIME,
    -- Set when a poll collected the client: the device code is spent.
    claimed_at       DATETIME
);
CREATE INDEX cloud_intents_expires ON cloud_intents (expires_at);

CREATE TABLE cloud_clients (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    address      TEXT NOT NULL DEFAULT '',
    unique_id    TEXT NOT NULL DEFAULT '',
    secret_hash  TEXT NOT NULL,
    -- After a rotation the old secret still works until previous_secret_until,
    -- so the server keeps sending until its admin pastes the new one.
    previous_secret_hash  TEXT NOT NULL DEFAULT '',
    previous_secret_until DATETIME,
    -- How the client came to be: "poll" (the device flow) or "manual" (a pasted token).
    origin       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    revoked_at   DATETIME,
    revoked_by   TEXT NOT NULL DEFAULT '',
    last_token_at DATETIME
);
CREATE INDEX cloud_clients_workspace ON cloud_clients (workspace_id, created_at);

CREATE TABLE cloud_access_tokens (
    token_hash   TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES cloud_clients (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    scope        TEXT NOT NULL DEFAULT '',
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL
);
CREATE INDEX cloud_access_tokens_client ON cloud_access_tokens (client_id, expires_at);
