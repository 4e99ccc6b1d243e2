-- Token revocation (`lakests tokens revoke`) and the index audit retention purges by.

-- Every token of the user issued at or before revoked_up_to (Unix seconds) is refused.
CREATE TABLE revoked_users (
    username      TEXT    NOT NULL PRIMARY KEY,
    revoked_up_to INTEGER NOT NULL
);

-- Single tokens, by jti.
CREATE TABLE revoked_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    revoked_at INTEGER NOT NULL
);

CREATE INDEX login_audit_at ON login_audit (at);
