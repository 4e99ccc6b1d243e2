-- The generation of the cached data: one row, moved by every transaction that writes a table
-- whose rows lakests caches (the tables of migration 0005). Every lakests process reads it for
-- each request that would be answered from its caches (one read shared by the requests waiting
-- at the same moment), so a change committed through one replica, the CLI or psql is seen by
-- every replica's next request: no notification has to arrive first.
--
-- The row is moved by deferred constraint triggers, at commit: the writing transaction takes
-- the row's lock last, after every other lock it needs, so two writers cannot deadlock on it;
-- and once per transaction (a transaction-local setting remembers it). The notifications of
-- migration 0005 stay, for replicas of earlier versions during a rolling upgrade.
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

CREATE CONSTRAINT TRIGGER users_generation AFTER INSERT OR UPDATE OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER user_groups_generation AFTER INSERT OR UPDATE OR DELETE ON user_groups
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER groups_generation AFTER INSERT OR UPDATE OR DELETE ON groups
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER policies_generation AFTER INSERT OR UPDATE OR DELETE ON policies
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER user_policies_generation AFTER INSERT OR UPDATE OR DELETE ON user_policies
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER group_policies_generation AFTER INSERT OR UPDATE OR DELETE ON group_policies
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER credentials_generation AFTER INSERT OR UPDATE OR DELETE ON credentials
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER external_principals_generation AFTER INSERT OR UPDATE OR DELETE ON external_principals
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER revoked_users_generation AFTER INSERT OR UPDATE OR DELETE ON revoked_users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();
CREATE CONSTRAINT TRIGGER revoked_tokens_generation AFTER INSERT OR UPDATE OR DELETE ON revoked_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakests_bump_generation();

-- TRUNCATE (never done by lakests; by hand in psql) has no constraint trigger: it moves the
-- row at once.
CREATE TRIGGER users_generation_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER user_groups_generation_truncate AFTER TRUNCATE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER groups_generation_truncate AFTER TRUNCATE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER policies_generation_truncate AFTER TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER user_policies_generation_truncate AFTER TRUNCATE ON user_policies
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER group_policies_generation_truncate AFTER TRUNCATE ON group_policies
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER credentials_generation_truncate AFTER TRUNCATE ON credentials
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER external_principals_generation_truncate AFTER TRUNCATE ON external_principals
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER revoked_users_generation_truncate AFTER TRUNCATE ON revoked_users
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
CREATE TRIGGER revoked_tokens_generation_truncate AFTER TRUNCATE ON revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_bump_generation();
