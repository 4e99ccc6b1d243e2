-- The generation of the cached data: one row, moved by every transaction that writes a table
-- whose rows lakests caches (users, memberships, groups, policies and their attachments,
-- credentials, external principals, token revocations; not login audit records, grants or
-- claimed token ids). Every lakests process reads it for each request it would answer from
-- its caches (one read shared by the requests waiting at the same moment), so a change
-- committed through one replica, the CLI or psql is seen by every replica's next request.
--
-- The row is moved by deferred constraint triggers, at commit: the writing transaction takes
-- the row's lock last, after every other lock it needs, so two writers cannot deadlock on it;
-- and once per transaction (a transaction-local setting remembers it). TRUNCATE (never done by
-- lakests; by hand in psql) has no constraint trigger: a statement trigger moves the row at once.
CREATE TABLE lakests_generation (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    value bigint NOT NULL
);
INSERT INTO lakests_generation (id, value) VALUES (true, 0);

CREATE FUNCTION lakests_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('lakests.generation_moved', true) IS DISTINCT FROM 'yes' THEN
        UPDATE lakests_generation SET value = value + 1;
        PERFORM set_config('lakests.generation_moved', 'yes', true);
    END IF;
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'user_groups', 'groups', 'policies', 'user_policies',
                             'group_policies', 'credentials', 'external_principals',
                             'revoked_users', 'revoked_tokens']
    LOOP
        EXECUTE format('CREATE CONSTRAINT TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW '
                       'EXECUTE FUNCTION lakests_bump_generation()', t || '_generation', t);
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation()',
                       t || '_generation_truncate', t);
    END LOOP;
END;
$$;
