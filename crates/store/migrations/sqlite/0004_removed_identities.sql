-- Identities whose user was removed (issue 15): provisioning at login must not bring a removed
-- user back while the identity provider still signs them in. Every deletion of a user that has
-- an external id records it here, whichever path deleted it (`lakests users remove`, lakeFS
-- through the authorization API, a cascade), because a trigger does it in the same statement.
-- `lakests users readmit` (or `lakests users add --external-id`) forgets the mark.

CREATE TABLE removed_identities (
    external_id TEXT    NOT NULL PRIMARY KEY,
    username    TEXT    NOT NULL,
    removed_at  INTEGER NOT NULL
);

CREATE TRIGGER users_remember_removed_identity
AFTER DELETE ON users
FOR EACH ROW WHEN OLD.external_id IS NOT NULL
BEGIN
    INSERT INTO removed_identities (external_id, username, removed_at)
    VALUES (OLD.external_id, OLD.username, CAST(strftime('%s', 'now') AS INTEGER))
    ON CONFLICT (external_id) DO UPDATE SET
        username = excluded.username,
        removed_at = excluded.removed_at;
END;
