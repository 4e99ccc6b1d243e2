-- The user directory, login audit and single-use grants (PostgreSQL).
-- Constraint names are explicit: the store maps unique violations to messages by name.

CREATE TABLE users (
    username      TEXT   NOT NULL,
    external_id   TEXT,
    email         TEXT,
    friendly_name TEXT,
    created_at    BIGINT NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (username),
    CONSTRAINT users_external_id_key UNIQUE (external_id)
);

CREATE TABLE user_groups (
    username   TEXT NOT NULL,
    group_name TEXT NOT NULL,
    CONSTRAINT user_groups_pkey PRIMARY KEY (username, group_name),
    CONSTRAINT user_groups_username_fkey FOREIGN KEY (username)
        REFERENCES users (username) ON DELETE CASCADE
);

CREATE TABLE login_audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    outcome     TEXT   NOT NULL CHECK (outcome IN ('success', 'failure')),
    reason      TEXT   NOT NULL,
    external_id TEXT,
    username    TEXT,
    client_addr TEXT,
    request_id  TEXT   NOT NULL
);

CREATE TABLE grants (
    kind       TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT grants_pkey PRIMARY KEY (kind, key)
);

CREATE INDEX grants_expires_at ON grants (expires_at);
