-- What lakeFS's authorization API serves (SQLite): groups as records (memberships now
-- reference them), policies and their attachments, access keys with sealed secrets, external
-- principals and claimed token ids. Deleting a user, group or policy cascades to everything
-- attached to it, in the one DELETE statement.

ALTER TABLE users ADD COLUMN source TEXT;

CREATE TABLE groups (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT,
    created_at  INTEGER NOT NULL
);

-- Groups named by existing memberships become records.
INSERT INTO groups (name, description, created_at)
SELECT g.group_name, NULL, MIN(u.created_at)
FROM user_groups g JOIN users u ON u.username = g.username
GROUP BY g.group_name;

CREATE TABLE user_groups_new (
    username   TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    PRIMARY KEY (username, group_name)
);
INSERT INTO user_groups_new (username, group_name) SELECT username, group_name FROM user_groups;
DROP TABLE user_groups;
ALTER TABLE user_groups_new RENAME TO user_groups;
CREATE INDEX user_groups_group_name ON user_groups (group_name);

CREATE TABLE policies (
    name       TEXT    NOT NULL PRIMARY KEY,
    statement  TEXT    NOT NULL,
    acl        TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

CREATE TABLE user_policies (
    username    TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    policy_name TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
    PRIMARY KEY (username, policy_name)
);
CREATE INDEX user_policies_policy_name ON user_policies (policy_name);

CREATE TABLE group_policies (
    group_name  TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    policy_name TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, policy_name)
);
CREATE INDEX group_policies_policy_name ON group_policies (policy_name);

CREATE TABLE credentials (
    access_key_id TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX credentials_username ON credentials (username);

CREATE TABLE external_principals (
    id       TEXT NOT NULL PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE
);
CREATE INDEX external_principals_username ON external_principals (username);

CREATE TABLE claimed_token_ids (
    token_id   TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX claimed_token_ids_expires_at ON claimed_token_ids (expires_at);
