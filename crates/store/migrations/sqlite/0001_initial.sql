-- The user directory, login audit and single-use grants (SQLite).

CREATE TABLE users (
    username      TEXT    NOT NULL PRIMARY KEY,
    external_id   TEXT    UNIQUE,
    email         TEXT,
    friendly_name TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE user_groups (
    username   TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (username, group_name)
);

CREATE TABLE login_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),
    reason      TEXT    NOT NULL,
    external_id TEXT,
    username    TEXT,
    client_addr TEXT,
    request_id  TEXT    NOT NULL
);

CREATE TABLE grants (
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE INDEX grants_expires_at ON grants (expires_at);
