-- Identities whose user was removed (issue 15): provisioning at login must not bring a removed
-- user back while the identity provider still signs them in. Every deletion of a user that has
-- an external id records it here, whichever path deleted it (`lakests users remove`, lakeFS
-- through the authorization API, a cascade), because a trigger does it in the same transaction.
-- `lakests users readmit` (or `lakests users add --external-id`) forgets the mark.

CREATE TABLE removed_identities (
    external_id TEXT   NOT NULL,
    username    TEXT   NOT NULL,
    removed_at  BIGINT NOT NULL,
    CONSTRAINT removed_identities_pkey PRIMARY KEY (external_id)
);

CREATE FUNCTION lakests_remember_removed_identity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO removed_identities (external_id, username, removed_at)
    VALUES (OLD.external_id, OLD.username, EXTRACT(EPOCH FROM now())::BIGINT)
    ON CONFLICT (external_id) DO UPDATE SET
        username = EXCLUDED.username,
        removed_at = EXCLUDED.removed_at;
    RETURN OLD;
END;
$$;

CREATE TRIGGER users_remember_removed_identity
AFTER DELETE ON users
FOR EACH ROW WHEN (OLD.external_id IS NOT NULL)
EXECUTE FUNCTION lakests_remember_removed_identity();
