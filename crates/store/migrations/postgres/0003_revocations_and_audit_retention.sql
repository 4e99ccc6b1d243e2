-- Token revocation (`lakests tokens revoke`) and the index audit retention purges by.

-- Every token of the user issued at or before revoked_up_to (Unix seconds) is refused.
CREATE TABLE revoked_users (
    username      TEXT   NOT NULL,
    revoked_up_to BIGINT NOT NULL,
    CONSTRAINT revoked_users_pkey PRIMARY KEY (username)
);

-- Single tokens, by jti.
CREATE TABLE revoked_tokens (
    jti        TEXT   NOT NULL,
    revoked_at BIGINT NOT NULL,
    CONSTRAINT revoked_tokens_pkey PRIMARY KEY (jti)
);

CREATE INDEX login_audit_at ON login_audit (at);
