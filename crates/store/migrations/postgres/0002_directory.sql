-- What lakeFS's authorization API serves (PostgreSQL): groups as records (memberships now
-- reference them), policies and their attachments, access keys with sealed secrets, external
-- principals and claimed token ids. Deleting a user, group or policy cascades to everything
-- attached to it, in the one DELETE statement. Constraint names are explicit: the store maps
-- unique violations to messages by name.

ALTER TABLE users ADD COLUMN source TEXT;

CREATE TABLE groups (
    name        TEXT   NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    CONSTRAINT groups_pkey PRIMARY KEY (name)
);

-- Groups named by existing memberships become records.
INSERT INTO groups (name, description, created_at)
SELECT g.group_name, NULL, MIN(u.created_at)
FROM user_groups g JOIN users u ON u.username = g.username
GROUP BY g.group_name;

ALTER TABLE user_groups
    ADD CONSTRAINT user_groups_group_name_fkey FOREIGN KEY (group_name)
        REFERENCES groups (name) ON DELETE CASCADE;
CREATE INDEX user_groups_group_name ON user_groups (group_name);

CREATE TABLE policies (
    name       TEXT   NOT NULL,
    statement  TEXT   NOT NULL,
    acl        TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    CONSTRAINT policies_pkey PRIMARY KEY (name)
);

CREATE TABLE user_policies (
    username    TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    CONSTRAINT user_policies_pkey PRIMARY KEY (username, policy_name),
    CONSTRAINT user_policies_username_fkey FOREIGN KEY (username)
        REFERENCES users (username) ON DELETE CASCADE,
    CONSTRAINT user_policies_policy_name_fkey FOREIGN KEY (policy_name)
        REFERENCES policies (name) ON DELETE CASCADE
);
CREATE INDEX user_policies_policy_name ON user_policies (policy_name);

CREATE TABLE group_policies (
    group_name  TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    CONSTRAINT group_policies_pkey PRIMARY KEY (group_name, policy_name),
    CONSTRAINT group_policies_group_name_fkey FOREIGN KEY (group_name)
        REFERENCES groups (name) ON DELETE CASCADE,
    CONSTRAINT group_policies_policy_name_fkey FOREIGN KEY (policy_name)
        REFERENCES policies (name) ON DELETE CASCADE
);
CREATE INDEX group_policies_policy_name ON group_policies (policy_name);

CREATE TABLE credentials (
    access_key_id TEXT   NOT NULL,
    username      TEXT   NOT NULL,
    sealed_secret BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT credentials_pkey PRIMARY KEY (access_key_id),
    CONSTRAINT credentials_username_fkey FOREIGN KEY (username)
        REFERENCES users (username) ON DELETE CASCADE
);
CREATE INDEX credentials_username ON credentials (username);

CREATE TABLE external_principals (
    id       TEXT NOT NULL,
    username TEXT NOT NULL,
    CONSTRAINT external_principals_pkey PRIMARY KEY (id),
    CONSTRAINT external_principals_username_fkey FOREIGN KEY (username)
        REFERENCES users (username) ON DELETE CASCADE
);
CREATE INDEX external_principals_username ON external_principals (username);

CREATE TABLE claimed_token_ids (
    token_id   TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT claimed_token_ids_pkey PRIMARY KEY (token_id)
);
CREATE INDEX claimed_token_ids_expires_at ON claimed_token_ids (expires_at);
